// Active checks end a passive ejection early: `rise` passing checks in a row, each started
// during the ejection, let the backend back in on probation before its ejection time is up.
// A check that started before the ejection says nothing about the backend since, so it does
// not count.
#include <catch2/catch.hpp>
#include <cstdint>

#include "conf/snapshot.h"
#include "core/io/log.h"
#include "health/passive.h"
#include "health/probe.h"

namespace sluice::health {
namespace {

using balancer::Backend;

void quiet() {
  core::set_log_level(core::LogLevel::kError);
}

// Checks every second, rise 2; 3 failures in a row eject for 30 s.
conf::Upstream checked_upstream(uint32_t rise = 2) {
  conf::Upstream upstream;
  upstream.pool.name = "app";
  upstream.settings.name = "app";
  upstream.settings.health.enabled = true;
  upstream.settings.health.interval_ms = 1000;
  upstream.settings.health.rise = rise;
  upstream.settings.health.fall = 3;
  upstream.settings.passive.failures = 3;
  upstream.settings.passive.ejection_ms = 30000;
  upstream.settings.passive.max_ejection_ms = 300000;
  return upstream;
}

void eject(const Backend& backend, const conf::Upstream& upstream, uint64_t now_ms) {
  for (uint32_t i = 0; i < upstream.settings.passive.failures; ++i)
    record_failure(backend, upstream.settings.passive, now_ms, "app", "a 5xx answer");
  REQUIRE(backend.state->ejected);
}

// One backend's checks as its Probe runs them: each notes at its start which ejection it falls
// in, and the passes counted towards ending an ejection go on from one check to the next.
struct Checks {
  const Backend& backend;
  const conf::Upstream& upstream;
  EjectionPasses counted;

  uint64_t start() const { return Probe::ejection_at_start(backend); }
  void pass(uint64_t started_in, uint64_t now_ms) {
    Probe::apply_pass(backend, upstream, now_ms, started_in, counted);
  }
  // `count` checks that start and pass one interval apart, the first at `now_ms`.
  void pass(int count, uint64_t now_ms) {
    for (int i = 0; i < count; ++i) pass(start(), now_ms + uint64_t(i) * 1000);
  }
  void fail(int count) {
    for (int i = 0; i < count; ++i)
      Probe::apply_failure(backend, upstream, {balancer::CheckFailure::kStatus, 500}, counted);
  }
};

TEST_CASE("rise passing checks that started during an ejection end it before its time is up",
          "[health][probe][ejection]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2);
  Backend backend;
  Checks checks{backend, upstream, {}};
  eject(backend, upstream, 1000);
  checks.pass(2, 2000);
  CHECK(backend.up());
  CHECK_FALSE(backend.state->ejected);
  CHECK(backend.state->ejected_until_ms == UINT64_MAX);
}

TEST_CASE("rise - 1 passing checks during an ejection leave the backend ejected",
          "[health][probe][ejection]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(3);
  Backend backend;
  Checks checks{backend, upstream, {}};
  eject(backend, upstream, 1000);
  checks.pass(2, 2000);
  CHECK_FALSE(backend.up());
  CHECK(backend.state->ejected);
  CHECK(backend.state->ejected_until_ms == 1000 + 30000);
}

TEST_CASE("a rise of 1 ends an ejection on the first passing check that started during it",
          "[health][probe][ejection]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(1);
  Backend backend;
  Checks checks{backend, upstream, {}};
  eject(backend, upstream, 1000);
  checks.pass(1, 1500);
  CHECK(backend.up());
}

TEST_CASE("a passing check that started before the ejection does not count towards ending it",
          "[health][probe][ejection]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2);
  Backend backend;
  Checks checks{backend, upstream, {}};
  const uint64_t started_in = checks.start();  // the check is on its way...
  eject(backend, upstream, 1000);              // ...when the workers eject the backend
  checks.pass(started_in, 1100);
  checks.pass(1, 2000);
  CHECK_FALSE(backend.up());
  checks.pass(1, 3000);
  CHECK(backend.up());
}

TEST_CASE("a check that started before the ejection's end was stored does not count",
          "[health][probe][ejection]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(1);
  Backend backend;
  Checks checks{backend, upstream, {}};
  backend.state->ejected = true;  // a worker won the ejection and has yet to store its end
  const uint64_t started_in = checks.start();
  CHECK(started_in == 0);
  backend.state->ejected_until_ms = 31000;
  checks.pass(started_in, 2000);
  CHECK_FALSE(backend.up());
}

TEST_CASE("a failed check during an ejection starts the count towards ending it again",
          "[health][probe][ejection]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2);
  Backend backend;
  Checks checks{backend, upstream, {}};
  eject(backend, upstream, 1000);
  checks.pass(1, 2000);
  checks.fail(1);
  checks.pass(1, 4000);
  CHECK_FALSE(backend.up());
  checks.pass(1, 5000);
  CHECK(backend.up());
}

TEST_CASE("passes counted during one ejection do not count towards ending the next",
          "[health][probe][ejection]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(3);
  Backend backend;
  Checks checks{backend, upstream, {}};
  eject(backend, upstream, 1000);
  checks.pass(2, 2000);
  checks.pass(1, 31000);  // the first pass once it ran out lets it back
  REQUIRE(backend.up());
  eject(backend, upstream, 40000);
  checks.pass(2, 41000);
  CHECK_FALSE(backend.up());
  checks.pass(1, 43000);
  CHECK(backend.up());
}

TEST_CASE("a backend let back in early by its checks is on probation and starts its slow start",
          "[health][probe][ejection]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2);
  Backend backend;
  Checks checks{backend, upstream, {}};
  eject(backend, upstream, 1000);
  checks.pass(2, 2000);
  REQUIRE(backend.up());
  CHECK(backend.state->up_since_ms == 3000);
  CHECK(backend.state->consecutive_failures == upstream.settings.passive.failures - 1);
}

TEST_CASE("a backend let back in early is ejected for twice as long on its next failure",
          "[health][probe][ejection]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2);
  Backend backend;
  Checks checks{backend, upstream, {}};
  eject(backend, upstream, 1000);
  checks.pass(2, 2000);
  REQUIRE(backend.up());
  CHECK(record_failure(backend, upstream.settings.passive, 5000, "app", "a 5xx answer"));
  CHECK(backend.state->ejected_until_ms == 5000 + 60000);
}

TEST_CASE("a backend that checks took down during its ejection comes up and back in together",
          "[health][probe][ejection]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2);
  Backend backend;
  Checks checks{backend, upstream, {}};
  eject(backend, upstream, 1000);
  checks.fail(3);
  REQUIRE_FALSE(backend.state->up);
  checks.pass(1, 5000);
  CHECK_FALSE(backend.state->up);
  CHECK(backend.state->ejected);
  checks.pass(1, 6000);
  CHECK(backend.state->up);
  CHECK_FALSE(backend.state->ejected);
  CHECK(backend.up());
}

}  // namespace
}  // namespace sluice::health
