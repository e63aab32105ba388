// The active checks' state machine: `fall` failed checks in a row take a backend down, `rise`
// passing ones bring it back, a backend never checked needs one pass, and passing checks let a
// passively ejected backend back in: `rise` in a row that started during the ejection, or any
// one once the ejection has run out.
#include <catch2/catch.hpp>
#include <string>

#include "conf/snapshot.h"
#include "core/io/log.h"
#include "core/io/tcp_stream.h"
#include "health/checker.h"
#include "health/passive.h"
#include "health/probe.h"

namespace sluice::health {
namespace {

using balancer::Backend;

// Each change of state logs a line; the tests need none of them.
void quiet() {
  core::set_log_level(core::LogLevel::kError);
}

conf::Upstream checked_upstream(uint32_t rise = 2, uint32_t fall = 3) {
  conf::Upstream upstream;
  upstream.pool.name = "app";
  upstream.settings.name = "app";
  upstream.settings.health.enabled = true;
  upstream.settings.health.rise = rise;
  upstream.settings.health.fall = fall;
  return upstream;
}

// Checks that all started before any ejection of the backend (started_in 0).
void fail_checks(const Backend& backend, const conf::Upstream& upstream, int count) {
  EjectionPasses counted;
  for (int i = 0; i < count; ++i)
    Probe::apply_failure(backend, upstream, {balancer::CheckFailure::kStatus, 500}, counted);
}

void pass_checks(const Backend& backend, const conf::Upstream& upstream, int count,
                 uint64_t now_ms = 1000) {
  EjectionPasses counted;
  for (int i = 0; i < count; ++i) Probe::apply_pass(backend, upstream, now_ms, 0, counted);
}

TEST_CASE("a backend stays up through fall - 1 failed checks", "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 3);
  Backend backend;
  fail_checks(backend, upstream, 2);
  CHECK(backend.up());
}

TEST_CASE("a backend goes down on its fall-th failed check in a row", "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 3);
  Backend backend;
  fail_checks(backend, upstream, 3);
  CHECK_FALSE(backend.up());
  CHECK_FALSE(backend.state->up);
  CHECK_FALSE(backend.state->ejected);  // active checks never eject
}

TEST_CASE("a fall of 1 takes a backend down on its first failed check", "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 1);
  Backend backend;
  fail_checks(backend, upstream, 1);
  CHECK_FALSE(backend.up());
}

TEST_CASE("a passing check between failures starts the failure count again", "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 3);
  Backend backend;
  fail_checks(backend, upstream, 2);
  pass_checks(backend, upstream, 1);
  fail_checks(backend, upstream, 2);
  CHECK(backend.up());
  fail_checks(backend, upstream, 1);
  CHECK_FALSE(backend.up());
}

TEST_CASE("a down backend stays down through rise - 1 passing checks", "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(3, 3);
  Backend backend;
  fail_checks(backend, upstream, 3);
  pass_checks(backend, upstream, 2);
  CHECK_FALSE(backend.up());
}

TEST_CASE("a down backend comes back up on its rise-th passing check in a row", "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(3, 3);
  Backend backend;
  fail_checks(backend, upstream, 3);
  pass_checks(backend, upstream, 3);
  CHECK(backend.up());
}

TEST_CASE("a failed check between passes starts the pass count again", "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 3);
  Backend backend;
  fail_checks(backend, upstream, 3);
  pass_checks(backend, upstream, 1);
  fail_checks(backend, upstream, 1);
  pass_checks(backend, upstream, 1);
  CHECK_FALSE(backend.up());
  pass_checks(backend, upstream, 1);
  CHECK(backend.up());
}

TEST_CASE("a backend never checked before comes up on its first passing check", "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(5, 3);
  Backend backend;  // as build_snapshot leaves a backend that DNS just found
  backend.state->up = false;
  pass_checks(backend, upstream, 1, 4000);
  CHECK(backend.up());
  CHECK(backend.state->up_since_ms == 4000);
}

TEST_CASE("a backend never checked before that fails its first check then needs rise passes",
          "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 3);
  Backend backend;
  backend.state->up = false;
  fail_checks(backend, upstream, 1);
  pass_checks(backend, upstream, 1);
  CHECK_FALSE(backend.up());
  pass_checks(backend, upstream, 1);
  CHECK(backend.up());
}

TEST_CASE("a backend that comes up notes when, for slow start", "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 1);
  Backend backend;
  fail_checks(backend, upstream, 1);
  pass_checks(backend, upstream, 1, 5000);
  CHECK(backend.state->up_since_ms == 0);
  pass_checks(backend, upstream, 1, 7000);
  CHECK(backend.state->up_since_ms == 7000);
}

TEST_CASE("passing checks of a backend that is already up leave up_since_ms alone",
          "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 3);
  Backend backend;
  pass_checks(backend, upstream, 5, 9000);
  CHECK(backend.up());
  CHECK(backend.state->up_since_ms == 0);  // 0: up since long ago, no ramp
}

TEST_CASE("passing checks that started before an ejection do not end it before it runs out",
          "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 3);
  Backend backend;
  backend.state->ejected = true;
  backend.state->ejections = 1;
  backend.state->ejected_until_ms = 20000;
  pass_checks(backend, upstream, 3, 19999);
  CHECK_FALSE(backend.up());
  CHECK(backend.state->ejected);
}

TEST_CASE("a passing check lets an ejected backend back on probation once its ejection ran out",
          "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 3);
  Backend backend;
  backend.state->ejected = true;
  backend.state->ejections = 1;
  backend.state->ejected_until_ms = 20000;
  pass_checks(backend, upstream, 1, 20000);
  CHECK(backend.up());
  CHECK_FALSE(backend.state->ejected);
  CHECK(backend.state->up_since_ms == 20000);
  // On probation: one passive failure short of the threshold.
  CHECK(backend.state->consecutive_failures == upstream.settings.passive.failures - 1);
}

TEST_CASE("a failed check leaves an ejected backend ejected however long ago it ran out",
          "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(2, 3);
  Backend backend;
  backend.state->ejected = true;
  backend.state->ejected_until_ms = 20000;
  fail_checks(backend, upstream, 1);
  CHECK(backend.state->ejected);
  CHECK_FALSE(backend.up());
}

TEST_CASE("a backend remembers its last failed check and when checks took it down or up",
          "[health][probe]") {
  quiet();
  const conf::Upstream upstream = checked_upstream(1, 2);
  Backend backend;
  backend.state->changed_at_ms = 5;
  EjectionPasses counted;
  Probe::apply_failure(backend, upstream, {balancer::CheckFailure::kTimeout, 1000}, counted);
  CHECK(backend.state->changed_at_ms == 5);  // still up: no change of state
  const int64_t before = balancer::unix_ms_now();
  Probe::apply_failure(backend, upstream, {balancer::CheckFailure::kConnect, UV_ECONNREFUSED},
                       counted);
  CHECK_FALSE(backend.up());
  CHECK(backend.state->changed_at_ms >= before);
  const auto last = balancer::FailedCheck::unpack(backend.state->last_check_failure);
  CHECK(describe(last) == "connect: connection refused");
  backend.state->changed_at_ms = 5;
  pass_checks(backend, upstream, 1);
  CHECK(backend.up());
  CHECK(backend.state->changed_at_ms >= before);
}

TEST_CASE("failed checks are worded as the log says them", "[health][probe]") {
  using balancer::CheckFailure;
  CHECK(describe({CheckFailure::kStatus, 503}) == "status 503");
  CHECK(describe({CheckFailure::kTimeout, 1000}) == "no response within 1000 ms");
  CHECK(describe({CheckFailure::kClosed, 0}) == "closed without a response");
  CHECK(describe({CheckFailure::kInvalid, 0}) == "invalid response");
  CHECK(describe({CheckFailure::kWrite, UV_EPIPE}) == "write: broken pipe");
  CHECK(balancer::FailedCheck::unpack(balancer::FailedCheck{CheckFailure::kRead, -104}.pack())
            .detail == -104);
}

}  // namespace
}  // namespace sluice::health

namespace sluice::health {

TEST_CASE("a backend that checks took down comes up when its upstream stops being checked",
          "[health][checker]") {
  conf::Config config;
  conf::UpstreamConfig up;
  up.name = "app";
  conf::BackendConfig b;
  b.address = *conf::parse_socket_address("127.0.0.1:9");
  up.backends.push_back(b);
  up.health.enabled = false;
  config.upstreams.push_back(up);
  auto snapshot = conf::build_snapshot(config, nullptr);
  const Backend& backend = snapshot->upstreams[0].pool.backends[0];
  backend.state->up = false;  // as a check would have left it before the reload
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    core::BlockPool blocks;
    core::TcpConnector connector(&loop, blocks, nullptr);
    health::Checker checker(&loop, connector);
    checker.watch(snapshot);
    CHECK(backend.up());
    checker.stop();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace sluice::health
