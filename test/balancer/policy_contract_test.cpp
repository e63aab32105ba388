// What every registered policy promises through pick_backend, whatever its algorithm: only
// backends that are up, backups only while no primary is up, a backend the request already tried
// only when nothing else is up, and only ever one of the candidates it was given. Each case runs
// once per registered policy, and for a policy that reads keys once with keyed requests and once
// without, so a newly registered policy is held to the same contract without editing this file.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "balancer/policy.h"
#include "test/balancer/pool_fixture.h"

namespace sluice::balancer {
namespace {

using testing::keyed;
using testing::policy_for;
using testing::pool_of;
using testing::tally;

struct Variant {
  std::string policy;
  bool with_keys;
};

std::ostream& operator<<(std::ostream& out, const Variant& variant) {
  return out << variant.policy << (variant.with_keys ? " with keys" : "");
}

std::vector<Variant> registered_variants() {
  std::vector<Variant> variants;
  for (std::string_view name : policy_names()) {
    variants.push_back({std::string(name), false});
    if (find_policy(name)->uses_key) variants.push_back({std::string(name), true});
  }
  return variants;
}

Variant every_variant() {
  return GENERATE(from_range(registered_variants()));
}

TEST_CASE("find_policy finds each policy by its config name", "[balancer]") {
  for (std::string_view name : {"round_robin", "least_conn", "hash", "random_two"}) {
    const PolicyType* type = find_policy(name);
    REQUIRE(type != nullptr);
    CHECK(type->name == name);
    CHECK(type->make != nullptr);
  }
}

TEST_CASE("policy_names lists every policy once, the four documented ones among them",
          "[balancer]") {
  std::vector<std::string_view> names = policy_names();
  std::sort(names.begin(), names.end());
  CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
  for (std::string_view name : {"hash", "least_conn", "random_two", "round_robin"})
    CHECK(std::binary_search(names.begin(), names.end(), name));
}

TEST_CASE("no policy picks a backend that is down", "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {1, 5, 1, 2});
  pool.backends[1].state->up = false;
  pool.backends[3].state->ejected = true;
  const auto policy = policy_for(pool);
  const std::vector<int> counts = tally(pool, *policy, 10000, variant.with_keys);
  CHECK(counts[1] == 0);
  CHECK(counts[3] == 0);
  CHECK(counts[0] + counts[2] == 10000);
}

TEST_CASE("no policy picks a backup while any primary is up", "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {1, 1, 10, 10}, {false, false, true, true});
  pool.backends[0].state->up = false;
  const auto policy = policy_for(pool);
  const std::vector<int> counts = tally(pool, *policy, 10000, variant.with_keys);
  CHECK(counts[1] == 10000);
}

TEST_CASE("every policy picks the backups when every primary is down", "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {1, 1, 1, 1}, {false, false, true, true});
  pool.backends[0].state->up = false;
  pool.backends[1].state->ejected = true;
  const auto policy = policy_for(pool);
  const std::vector<int> counts = tally(pool, *policy, 10000, variant.with_keys);
  CHECK(counts[2] + counts[3] == 10000);
  // Both backups share the load, not just the first.
  CHECK(counts[2] > 4000);
  CHECK(counts[3] > 4000);
}

TEST_CASE("no policy picks anything when every backend is down", "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {1, 1}, {false, true});
  for (const Backend& backend : pool.backends) backend.state->up = false;
  const auto policy = policy_for(pool);
  CHECK(tally(pool, *policy, 100, variant.with_keys)[2] == 100);
}

TEST_CASE("no policy picks anything from an empty pool", "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {});
  const auto policy = policy_for(pool);
  CHECK(tally(pool, *policy, 10, variant.with_keys)[0] == 10);
}

TEST_CASE("every policy skips the backend a request already tried when another is up",
          "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {10, 1, 1});
  const auto policy = policy_for(pool);
  const std::vector<int> counts = tally(pool, *policy, 10000, variant.with_keys, {0});
  CHECK(counts[0] == 0);
  CHECK(counts[1] + counts[2] == 10000);
  CHECK(counts[1] > 4000);
  CHECK(counts[2] > 4000);
}

TEST_CASE("every policy skips every backend a request already tried when another is up",
          "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {10, 1, 1, 1});
  const auto policy = policy_for(pool);
  const std::vector<int> counts = tally(pool, *policy, 1000, variant.with_keys, {0, 3, 1});
  CHECK(counts[2] == 1000);
}

TEST_CASE("every policy picks a tried backend again when it is the only one up", "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {1, 1}, {false, true});
  const auto policy = policy_for(pool);
  CHECK(tally(pool, *policy, 100, variant.with_keys, {0})[0] == 100);
}

TEST_CASE("a retry that has tried every primary goes back to one, not the one that just failed",
          "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {1, 1, 1}, {false, false, true});
  const auto policy = policy_for(pool);
  const std::vector<int> counts = tally(pool, *policy, 1000, variant.with_keys, {0, 1});
  CHECK(counts[0] == 1000);
}

TEST_CASE("every policy picks only among the candidates it is given", "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {3, 1, 3, 1, 3});
  const auto policy = policy_for(pool);
  const std::vector<int> candidates = {1, 3};
  for (int i = 0; i < 1000; ++i) {
    PickRequest request = variant.with_keys ? keyed(i) : PickRequest{};
    const int picked = policy->pick(request, candidates);
    CHECK((picked == 1 || picked == 3));
  }
}

TEST_CASE("every policy keeps picking correctly when backends go down and come back",
          "[balancer]") {
  const Variant variant = every_variant();
  INFO(variant);
  const Pool pool = pool_of(variant.policy, {1, 2, 3});
  const auto policy = policy_for(pool);
  pool.backends[2].state->up = false;
  CHECK(tally(pool, *policy, 1000, variant.with_keys)[2] == 0);
  pool.backends[2].state->up = true;
  pool.backends[0].state->up = false;
  const std::vector<int> counts = tally(pool, *policy, 1000, variant.with_keys);
  CHECK(counts[0] == 0);
  CHECK(counts[2] > 0);
}

}  // namespace
}  // namespace sluice::balancer
