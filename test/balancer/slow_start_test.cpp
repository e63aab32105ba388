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
