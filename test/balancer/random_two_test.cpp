// Power of two random choices: two distinct candidates drawn by weight, the one with fewer
// in-flight requests relative to its weight wins, the first drawn on a tie.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "balancer/policy.h"
#include "test/balancer/pool_fixture.h"

namespace sluice::balancer {
namespace {

using testing::check_shares;
using testing::policy_for;
using testing::pool_of;
using testing::tally;
using testing::tally_in_flight;

void set_active(const Pool& pool, const std::vector<int>& active) {
  for (size_t i = 0; i < active.size(); ++i) pool.backends[i].state->active = active[i];
}

TEST_CASE("random_two with 1,000 requests in flight shares 100,000 picks by weight within 2%",
          "[balancer]") {
  const std::vector<uint32_t> weights = {5, 3, 1, 1};
  const Pool pool = pool_of("random_two", weights);
  const auto policy = policy_for(pool);
  check_shares(tally_in_flight(pool, *policy, 100000, 1000), weights, 0.02);
}

TEST_CASE("random_two over an idle pool draws by weight within 2%", "[balancer]") {
  // Nothing in flight: every pick is the first draw, so this is plain weighted sampling. A
  // million picks keep the weight-1 backends' sampling noise (0.3%) far below the 2% allowed.
  const std::vector<uint32_t> weights = {5, 3, 1, 1};
  const Pool pool = pool_of("random_two", weights);
  const auto policy = policy_for(pool);
  check_shares(tally(pool, *policy, 1000000), weights, 0.02);
}

TEST_CASE("random_two picks the less loaded of two backends relative to weight", "[balancer]") {
  // With two candidates both are always drawn. 4 in flight on weight 2 beats 3 on weight 1.
  const Pool pool = pool_of("random_two", {2, 1});
  set_active(pool, {4, 3});
  const auto policy = policy_for(pool);
  CHECK(tally(pool, *policy, 1000)[0] == 1000);
}

TEST_CASE("random_two never picks the backend most loaded for its weight", "[balancer]") {
  // Its two draws are distinct, so the most loaded backend always loses its comparison.
  const Pool pool = pool_of("random_two", {1, 1, 1, 1});
  set_active(pool, {100, 0, 0, 0});
  const auto policy = policy_for(pool);
  const std::vector<int> counts = tally(pool, *policy, 10000);
  CHECK(counts[0] == 0);
  CHECK(counts[1] + counts[2] + counts[3] == 10000);
}

TEST_CASE("random_two gives a loaded backend only the picks where it drew the busiest one",
          "[balancer]") {
  // Backend 1 wins only when drawn with backend 0: pairs {0,1} come up 1/6 of the time. The idle
  // backends 2 and 3 win every other pair they are in: 5/12 each.
  const Pool pool = pool_of("random_two", {1, 1, 1, 1});
  set_active(pool, {10, 5, 0, 0});
  const auto policy = policy_for(pool);
  const std::vector<int> counts = tally(pool, *policy, 120000);
  CHECK(counts[0] == 0);
  CHECK(std::abs(counts[1] - 20000) < 1000);
  CHECK(std::abs(counts[2] - 50000) < 1000);
  CHECK(std::abs(counts[3] - 50000) < 1000);
}

TEST_CASE("random_two picks the only candidate without drawing", "[balancer]") {
  const Pool pool = pool_of("random_two", {1, 1, 1});
  set_active(pool, {7, 0, 0});
  pool.backends[1].state->up = false;
  pool.backends[2].state->up = false;
  const auto policy = policy_for(pool);
  CHECK(tally(pool, *policy, 100)[0] == 100);
}

TEST_CASE("random_two instances draw independently of one another", "[balancer]") {
  // Each worker's instance has its own seed, so workers do not all pick alike.
  const Pool pool = pool_of("random_two", {1, 1, 1, 1, 1, 1, 1, 1});
  const auto first = policy_for(pool);
  const auto second = policy_for(pool);
  int same = 0;
  for (int i = 0; i < 1000; ++i)
    if (pick_backend(pool, *first, {}) == pick_backend(pool, *second, {})) ++same;
  // Independent draws agree on 1 pick in 8.
  CHECK(same < 250);
}

TEST_CASE("random_two asks the proxy to count in-flight requests", "[balancer]") {
  const PolicyType* type = find_policy("random_two");
  REQUIRE(type != nullptr);
  CHECK(type->counts_active);
  CHECK(type->prepare == nullptr);
}

}  // namespace
}  // namespace sluice::balancer
