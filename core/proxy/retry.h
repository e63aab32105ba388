// Whether a failed upstream attempt may be tried again, and where. Pure: it sees only facts
// about the attempt, so every rule is a unit test. A retry must never make a backend act on a
// request twice.
#pragma once

#include <llhttp.h>

#include <cstdint>

namespace sluice::core {

enum class AttemptFailure : uint8_t {
  kConnect,          // no connection was made (refused, unreachable, connect timeout)
  kClosedEarly,      // reset, closed or unwritable before any response byte
  kNoAnswer,         // connected, request sent, no response in time
  kInvalidResponse,  // the backend's bytes were not a valid response
};

struct AttemptFacts {
  AttemptFailure failure = AttemptFailure::kConnect;
  bool response_started = false;   // some response bytes already went to the client
  bool body_sent = false;          // some request body bytes reached the backend
  bool has_body = false;           // the request carries a body at all
  bool idempotent = false;         // the method may be repeated (RFC 9110 9.2.2)
  bool reused_connection = false;  // the connection had carried an earlier request
  bool stale_retried = false;      // a stale pooled connection was already retried once
  uint8_t attempts = 0;            // backends tried so far
  uint8_t retries = 0;             // the upstream's "retries"
};

enum class RetryWhere : uint8_t {
  kNowhere,       // give up: the client gets an error (or a cut response)
  kOtherBackend,  // pick again, skipping backends already tried
  kSameBackend,   // a fresh connection to the same backend (a pooled one had gone stale)
};

struct RetryDecision {
  RetryWhere where;
  const char* why;  // the rule that decided, for logs and tests
};

// After a failed connect nothing was sent, so another backend may be tried while retries last.
// After a close before any response byte, only an idempotent request without a body is resent:
// once on a fresh connection to the same backend when a reused pooled connection had gone
// stale, else to another backend while retries last. Nothing is retried once the response
// started, nor after a timeout or an invalid response.
RetryDecision decide_retry(const AttemptFacts& facts);

// True for methods that RFC 9110 calls idempotent (llhttp method codes).
inline bool idempotent_method(uint8_t method) {
  switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_PUT:
    case HTTP_DELETE:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
      return true;
    default:
      return false;
  }
}

// A request the rules above could send again after a close: idempotent and without a body.
// Any other request must not meet a pooled connection the backend may be closing.
inline bool resendable(bool has_body, uint8_t method) {
  return !has_body && idempotent_method(method);
}

}  // namespace sluice::core
