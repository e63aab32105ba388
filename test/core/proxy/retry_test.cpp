// Specification of the retry decision: what a failed upstream attempt may be tried again, where,
// and why not. A retry must never make a backend act on a request twice.
#include "core/proxy/retry.h"

#include <llhttp.h>

#include <catch2/catch.hpp>

using namespace sluice::core;

namespace {

// A GET without a body on a fresh connection, first attempt, one retry allowed.
AttemptFacts get_facts(AttemptFailure failure) {
  AttemptFacts f;
  f.failure = failure;
  f.idempotent = true;
  f.attempts = 1;
  f.retries = 1;
  return f;
}

}  // namespace

TEST_CASE("a failed connect moves to another backend", "[retry]") {
  CHECK(decide_retry(get_facts(AttemptFailure::kConnect)).where == RetryWhere::kOtherBackend);
}

TEST_CASE("a failed connect of a POST with a body still moves on: nothing was sent", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kConnect);
  f.idempotent = false;
  f.has_body = true;
  CHECK(decide_retry(f).where == RetryWhere::kOtherBackend);
}

TEST_CASE("a failed connect with no retries left gives up", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kConnect);
  f.attempts = 2;
  CHECK(decide_retry(f).where == RetryWhere::kNowhere);
}

TEST_CASE("with retries 0 a failed connect gives up at once", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kConnect);
  f.retries = 0;
  CHECK(decide_retry(f).where == RetryWhere::kNowhere);
}

TEST_CASE("a GET closed before any response byte moves to another backend", "[retry]") {
  CHECK(decide_retry(get_facts(AttemptFailure::kClosedEarly)).where == RetryWhere::kOtherBackend);
}

TEST_CASE("a GET on a stale pooled connection is resent once to the same backend", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kClosedEarly);
  f.reused_connection = true;
  CHECK(decide_retry(f).where == RetryWhere::kSameBackend);
}

TEST_CASE("the stale-connection retry happens even with no retries configured", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kClosedEarly);
  f.reused_connection = true;
  f.retries = 0;
  CHECK(decide_retry(f).where == RetryWhere::kSameBackend);
}

TEST_CASE("a second stale connection counts as an ordinary failure", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kClosedEarly);
  f.reused_connection = true;
  f.stale_retried = true;
  f.retries = 0;
  CHECK(decide_retry(f).where == RetryWhere::kNowhere);
}

TEST_CASE("a POST closed before any response byte is not resent", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kClosedEarly);
  f.idempotent = false;
  f.reused_connection = true;
  const RetryDecision d = decide_retry(f);
  CHECK(d.where == RetryWhere::kNowhere);
  CHECK(std::string(d.why) == "the method is not idempotent");
}

TEST_CASE("a PUT with a body closed early is not resent", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kClosedEarly);
  f.has_body = true;
  f.reused_connection = true;
  CHECK(decide_retry(f).where == RetryWhere::kNowhere);
}

TEST_CASE("a request whose body bytes reached the backend is not resent", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kClosedEarly);
  f.body_sent = true;
  CHECK(decide_retry(f).where == RetryWhere::kNowhere);
}

TEST_CASE("nothing is retried once the response started", "[retry]") {
  for (AttemptFailure failure : {AttemptFailure::kConnect, AttemptFailure::kClosedEarly,
                                 AttemptFailure::kNoAnswer, AttemptFailure::kInvalidResponse}) {
    AttemptFacts f = get_facts(failure);
    f.response_started = true;
    f.retries = 5;
    CHECK(decide_retry(f).where == RetryWhere::kNowhere);
  }
}

TEST_CASE("a backend that did not answer in time is not retried: it may be acting", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kNoAnswer);
  f.retries = 5;
  CHECK(decide_retry(f).where == RetryWhere::kNowhere);
}

TEST_CASE("an invalid response is not retried", "[retry]") {
  AttemptFacts f = get_facts(AttemptFailure::kInvalidResponse);
  f.retries = 5;
  CHECK(decide_retry(f).where == RetryWhere::kNowhere);
}

TEST_CASE("idempotent methods are those of RFC 9110", "[retry]") {
  for (uint8_t m : {HTTP_GET, HTTP_HEAD, HTTP_PUT, HTTP_DELETE, HTTP_OPTIONS, HTTP_TRACE})
    CHECK(idempotent_method(m));
  for (uint8_t m : {HTTP_POST, HTTP_PATCH, HTTP_CONNECT}) CHECK_FALSE(idempotent_method(m));
}

TEST_CASE("only an idempotent request without a body is resendable", "[retry]") {
  CHECK(resendable(false, HTTP_GET));
  CHECK_FALSE(resendable(true, HTTP_PUT));
  CHECK_FALSE(resendable(false, HTTP_POST));
}
