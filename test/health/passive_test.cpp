// Passive outlier detection: a run of failures ejects a backend for a while, repeats double the
// ejection up to a cap, and an ejected backend comes back on probation once its time is up.
#include "health/passive.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "core/io/log.h"

namespace sluice::health {
namespace {

using balancer::Backend;

// Each ejection and release logs a line; the tests need none of them.
void quiet() {
  core::set_log_level(core::LogLevel::kError);
}

conf::PassiveHealthConfig passive(uint32_t failures = 5, uint32_t ejection_ms = 10000,
                                  uint32_t max_ejection_ms = 300000) {
  conf::PassiveHealthConfig config;
  config.failures = failures;
  config.ejection_ms = ejection_ms;
  config.max_ejection_ms = max_ejection_ms;
  return config;
}

// An upstream without active checks, so release_expired is what lets backends back in.
conf::UpstreamConfig upstream_with(const conf::PassiveHealthConfig& config) {
  conf::UpstreamConfig upstream;
  upstream.name = "app";
  upstream.passive = config;
  return upstream;
}

// Reports `count` failures at `now_ms`; returns how many of them ejected the backend.
int fail(const Backend& backend, const conf::PassiveHealthConfig& config, int count,
         uint64_t now_ms) {
  int ejected = 0;
  for (int i = 0; i < count; ++i)
    ejected += record_failure(backend, config, now_ms, "app", "a 5xx answer") ? 1 : 0;
  return ejected;
}

TEST_CASE("one failure fewer than the threshold leaves a backend in", "[health][passive]") {
  quiet();
  Backend backend;
  CHECK(fail(backend, passive(5), 4, 1000) == 0);
  CHECK(backend.up());
  CHECK_FALSE(backend.state->ejected);
}

TEST_CASE("the threshold-th failure in a row ejects the backend for ejection_ms",
          "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(5, 10000);
  fail(backend, config, 4, 1000);
  CHECK(record_failure(backend, config, 1000, "app", "a 5xx answer"));
  CHECK_FALSE(backend.up());
  CHECK(backend.state->ejected);
  CHECK(backend.state->ejected_until_ms == 1000 + 10000);
  CHECK(backend.state->up);  // ejection is its own flag; the active checks' view is untouched
}

TEST_CASE("failures while a backend is ejected do not eject it again", "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(2, 10000);
  CHECK(fail(backend, config, 2, 1000) == 1);
  CHECK(fail(backend, config, 10, 2000) == 0);
  CHECK(backend.state->ejected_until_ms == 11000);
  CHECK(backend.state->ejections == 1);
}

TEST_CASE("a success between failures starts the count again", "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(5);
  fail(backend, config, 4, 1000);
  record_success(backend);
  CHECK(fail(backend, config, 4, 1000) == 0);
  CHECK(backend.up());
  CHECK(fail(backend, config, 1, 1000) == 1);
  CHECK_FALSE(backend.up());
}

TEST_CASE("a failures threshold of 0 disables ejection", "[health][passive]") {
  quiet();
  Backend backend;
  CHECK(fail(backend, passive(0), 1000, 1000) == 0);
  CHECK(backend.up());
  CHECK(backend.state->consecutive_failures == 0);
}

TEST_CASE("an ejected backend stays out until its ejection has run out", "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(1, 10000);
  const auto upstream = upstream_with(config);
  fail(backend, config, 1, 1000);
  release_expired(backend, upstream, 10999);
  CHECK_FALSE(backend.up());
  release_expired(backend, upstream, 11000);
  CHECK(backend.up());
  CHECK_FALSE(backend.state->ejected);
}

TEST_CASE("a released backend starts its slow start at the release", "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(1, 10000);
  fail(backend, config, 1, 1000);
  release_expired(backend, upstream_with(config), 12345);
  CHECK(backend.state->up_since_ms == 12345);
}

TEST_CASE("release_expired leaves a backend that is not ejected alone", "[health][passive]") {
  quiet();
  Backend backend;
  backend.state->consecutive_failures = 2;
  release_expired(backend, upstream_with(passive(5)), 1000000);
  CHECK(backend.up());
  CHECK(backend.state->consecutive_failures == 2);
  CHECK(backend.state->up_since_ms == 0);
}

TEST_CASE("with active checks release_expired does not let an ejected backend back in",
          "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(1, 10000);
  auto upstream = upstream_with(config);
  upstream.health.enabled = true;
  fail(backend, config, 1, 1000);
  release_expired(backend, upstream, 1000000);
  CHECK_FALSE(backend.up());
  CHECK(backend.state->ejected);
}

TEST_CASE("a released backend is on probation: one more failure ejects it for twice as long",
          "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(5, 10000);
  const auto upstream = upstream_with(config);
  fail(backend, config, 5, 0);
  release_expired(backend, upstream, 10000);
  REQUIRE(backend.up());
  CHECK(record_failure(backend, config, 10000, "app", "a 5xx answer"));
  CHECK_FALSE(backend.up());
  CHECK(backend.state->ejected_until_ms == 10000 + 20000);
}

TEST_CASE("each repeated ejection doubles the previous one", "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(3, 1000, 300000);
  const auto upstream = upstream_with(config);
  uint64_t now = 0;
  for (uint64_t expected : {1000, 2000, 4000, 8000, 16000}) {
    INFO("ejection " << backend.state->ejections + 1);
    REQUIRE(fail(backend, config, 3, now) == 1);
    CHECK(backend.state->ejected_until_ms == now + expected);
    now = backend.state->ejected_until_ms;
    release_expired(backend, upstream, now);
    REQUIRE(backend.up());
  }
}

TEST_CASE("a repeated ejection is capped at max_ejection_ms", "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(1, 10000, 25000);
  const auto upstream = upstream_with(config);
  uint64_t now = 0;
  for (uint64_t expected : {10000, 20000, 25000, 25000}) {
    REQUIRE(fail(backend, config, 1, now) == 1);
    CHECK(backend.state->ejected_until_ms == now + expected);
    now = backend.state->ejected_until_ms;
    release_expired(backend, upstream, now);
  }
}

TEST_CASE("the backoff stays capped however many ejections in a row", "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(1, 100, 86'400'000);
  const auto upstream = upstream_with(config);
  uint64_t now = 0;
  uint64_t backoff = 0;
  for (int i = 0; i < 64; ++i) {
    REQUIRE(fail(backend, config, 1, now) == 1);
    const uint64_t next = backend.state->ejected_until_ms - now;
    INFO("ejection " << i + 1);
    CHECK(next >= backoff);  // never shrinks, never wraps
    CHECK(next <= 86'400'000);
    backoff = next;
    now = backend.state->ejected_until_ms;
    release_expired(backend, upstream, now);
  }
  CHECK(backoff == 86'400'000);
}

TEST_CASE("a success after a release ends the backoff: the next ejection is the shortest",
          "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(1, 10000);
  const auto upstream = upstream_with(config);
  fail(backend, config, 1, 0);
  release_expired(backend, upstream, 10000);
  record_success(backend);
  fail(backend, config, 1, 50000);
  CHECK(backend.state->ejected_until_ms == 50000 + 10000);
}

TEST_CASE("a success while ejected keeps the backoff", "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(1, 10000);
  const auto upstream = upstream_with(config);
  fail(backend, config, 1, 0);
  record_success(backend);  // a request that was already in flight
  release_expired(backend, upstream, 10000);
  fail(backend, config, 1, 10000);
  CHECK(backend.state->ejected_until_ms == 10000 + 20000);
}

TEST_CASE("failures reported from four threads at once eject a backend exactly once",
          "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(5, 10000);
  std::atomic<int> ejections{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!go.load()) {
      }
      for (int i = 0; i < 10000; ++i)
        if (record_failure(backend, config, 1000, "app", "a 5xx answer")) ejections.fetch_add(1);
    });
  }
  go = true;
  for (std::thread& thread : threads) thread.join();
  CHECK(ejections == 1);
  CHECK(backend.state->ejections == 1);
  CHECK(backend.state->ejected_until_ms == 11000);
  CHECK_FALSE(backend.up());
}

TEST_CASE("an ejection is counted and stamped with its time", "[health][passive]") {
  quiet();
  Backend backend;
  const auto config = passive(1, 10000);
  const int64_t before = balancer::unix_ms_now();
  CHECK(fail(backend, config, 1, 1000) == 1);
  CHECK(backend.state->ejections_total == 1);
  CHECK(backend.state->ejected_at_ms >= before);
  end_ejection(backend, upstream_with(config), 20000, "in a test");
  CHECK(backend.state->changed_at_ms >= before);
  CHECK(fail(backend, config, 1, 30000) == 1);
  CHECK(backend.state->ejections_total == 2);  // never reset, unlike the backoff's count
}

}  // namespace
}  // namespace sluice::health
