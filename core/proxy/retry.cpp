// The retry rules, in the order they are checked.
#include "core/proxy/retry.h"

namespace sluice::core {

RetryDecision decide_retry(const AttemptFacts& f) {
  if (f.response_started) return {RetryWhere::kNowhere, "the response already started"};
  const bool retries_left = f.attempts <= f.retries;
  switch (f.failure) {
    case AttemptFailure::kNoAnswer:
      return {RetryWhere::kNowhere, "the backend may be acting on the request"};
    case AttemptFailure::kInvalidResponse:
      return {RetryWhere::kNowhere, "the backend answered, wrongly"};
    case AttemptFailure::kConnect:
      if (!retries_left) return {RetryWhere::kNowhere, "no retries left"};
      return {RetryWhere::kOtherBackend, "nothing was sent"};
    case AttemptFailure::kClosedEarly:
      break;
  }
  if (f.body_sent || f.has_body) return {RetryWhere::kNowhere, "the request has a body"};
  if (!f.idempotent) return {RetryWhere::kNowhere, "the method is not idempotent"};
  if (f.reused_connection && !f.stale_retried)
    return {RetryWhere::kSameBackend, "a pooled connection had gone stale"};
  if (!retries_left) return {RetryWhere::kNowhere, "no retries left"};
  return {RetryWhere::kOtherBackend, "closed before any response byte"};
}

}  // namespace sluice::core
