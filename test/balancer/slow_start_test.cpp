// Specification of slow start: a backend that came back ramps from a tenth of its weight to all
// of it over the upstream's slow_start_ms, and the rotating policies follow the ramp.
#include <catch2/catch.hpp>

#include "balancer/policy.h"
#include "pool_fixture.h"

using namespace sluice::balancer;
using namespace sluice::balancer::testing;

TEST_CASE("without slow start a backend's weight is its configured weight") {
  Pool pool = pool_at("round_robin", {address_of(0)}, {10});
  pool.backends[0].state->up_since_ms = 1000;
  CHECK(effective_weight(pool, pool.backends[0], 1001) == 10);
}

TEST_CASE("during slow start the weight grows linearly from a tenth to the full weight") {
  Pool pool = pool_at("round_robin", {address_of(0)}, {100});
  pool.slow_start_ms = 10000;
  pool.backends[0].state->up_since_ms = 50000;
  CHECK(effective_weight(pool, pool.backends[0], 50000) == 10);
  CHECK(effective_weight(pool, pool.backends[0], 55000) == 55);
  CHECK(effective_weight(pool, pool.backends[0], 60000) == 100);
  CHECK(effective_weight(pool, pool.backends[0], 90000) == 100);
}

TEST_CASE("a ramping backend of weight 1 still gets weight 1, never 0") {
  Pool pool = pool_at("round_robin", {address_of(0)}, {1});
  pool.slow_start_ms = 10000;
  pool.backends[0].state->up_since_ms = 1;
  CHECK(effective_weight(pool, pool.backends[0], 1) == 1);
}

TEST_CASE("a backend that was never down is not ramped") {
  Pool pool = pool_at("round_robin", {address_of(0)}, {8});
  pool.slow_start_ms = 10000;
  CHECK(effective_weight(pool, pool.backends[0], 5) == 8);
}

TEST_CASE("round-robin gives a backend in slow start its ramped share") {
  Pool pool = pool_at("round_robin", {address_of(0), address_of(1)}, {10, 10});
  pool.slow_start_ms = 10000;
  pool.backends[1].state->up_since_ms = 100000;  // came back at t=100 s
  prepare(pool);
  auto policy = find_policy("round_robin")->make(pool, pool.table.get());
  PickRequest request;
  request.now_ms = 100000;  // just back: weight 1 against 10
  int picks[2] = {0, 0};
  for (int i = 0; i < 11000; ++i) ++picks[pick_backend(pool, *policy, request)];
  CHECK(picks[1] == 1000);
  CHECK(picks[0] == 10000);
}

namespace {

// How often each backend was picked over `count` picks at `now_ms`.
std::vector<int> picks_at(const Pool& pool, Policy& policy, uint64_t now_ms, int count) {
  PickRequest request;
  request.now_ms = now_ms;
  std::vector<int> picks(pool.backends.size(), 0);
  for (int i = 0; i < count; ++i) ++picks[pick_backend(pool, policy, request)];
  return picks;
}

// Two backends of `weight`; the second came back at t=100 s and ramps over 10 s.
Pool ramping_pool(std::string_view policy, uint32_t weight) {
  Pool pool = pool_at(policy, {address_of(0), address_of(1)}, {weight, weight});
  pool.slow_start_ms = 10000;
  pool.backends[1].state->up_since_ms = 100000;
  prepare(pool);
  return pool;
}

}  // namespace

TEST_CASE("least_conn gives an idle backend in slow start its ramped share") {
  // Nothing in flight: every pick is a tie, split by the ramped weights 10 and 1.
  Pool pool = ramping_pool("least_conn", 10);
  auto policy = policy_for(pool);
  const std::vector<int> picks = picks_at(pool, *policy, 100000, 11000);
  CHECK(picks[1] == 1000);
  CHECK(picks[0] == 10000);
}

TEST_CASE("least_conn's share for a ramping backend grows to its full weight over slow start") {
  // Weights 100 and 100: just back 100:10, halfway 100:55, after the ramp 100:100.
  Pool pool = ramping_pool("least_conn", 100);
  auto policy = policy_for(pool);
  check_shares(picks_at(pool, *policy, 100000, 11000), {100, 10}, 0.01);
  check_shares(picks_at(pool, *policy, 105000, 15500), {100, 55}, 0.01);
  check_shares(picks_at(pool, *policy, 110000, 20000), {100, 100}, 0.01);
}

TEST_CASE("least_conn weighs a ramping backend's in-flight requests against its ramped weight") {
  // 1 in flight on ramped weight 1 is more load than 5 on weight 10; once the ramp is over,
  // 1 on weight 10 is less.
  Pool pool = ramping_pool("least_conn", 10);
  pool.backends[0].state->active = 5;
  pool.backends[1].state->active = 1;
  auto policy = policy_for(pool);
  CHECK(picks_at(pool, *policy, 100000, 1000)[0] == 1000);
  CHECK(picks_at(pool, *policy, 110000, 1000)[1] == 1000);
}

// random_two over an idle pool is weighted sampling (the first drawn wins every tie), seeded
// from a counter and the clock, so these checks allow 5% where a million picks put the sampling
// noise of the smallest share (1/11: 90,909 expected, sd about 290) below 0.35%: 5% is over 15
// standard deviations, while the unramped share would be off by 450%.
TEST_CASE("random_two gives an idle backend in slow start its ramped share") {
  Pool pool = ramping_pool("random_two", 10);
  auto policy = policy_for(pool);
  check_shares(picks_at(pool, *policy, 100000, 1000000), {10, 1}, 0.05);
}

TEST_CASE("random_two's share for a ramping backend grows to its full weight over slow start") {
  Pool pool = ramping_pool("random_two", 100);
  auto policy = policy_for(pool);
  check_shares(picks_at(pool, *policy, 100000, 1000000), {100, 10}, 0.05);
  check_shares(picks_at(pool, *policy, 105000, 1000000), {100, 55}, 0.05);
  check_shares(picks_at(pool, *policy, 110000, 1000000), {100, 100}, 0.05);
}

TEST_CASE("random_two weighs a ramping backend's in-flight requests against its ramped weight") {
  // With two candidates both are drawn on every pick, so the comparison alone decides.
  Pool pool = ramping_pool("random_two", 10);
  pool.backends[0].state->active = 5;
  pool.backends[1].state->active = 1;
  auto policy = policy_for(pool);
  CHECK(picks_at(pool, *policy, 100000, 1000)[0] == 1000);
  CHECK(picks_at(pool, *policy, 110000, 1000)[1] == 1000);
}
