// Consistent hashing with a Maglev table ("hash"): keys spread by weight, every instance maps a
// key alike, a change of backends moves few keys, and a backend that is down only moves its own.
#include "balancer/maglev.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "balancer/policy.h"
#include "test/balancer/pool_fixture.h"

namespace sluice::balancer {
namespace {

using testing::address_of;
using testing::check_shares;
using testing::keyed;
using testing::policy_for;
using testing::pool_at;
using testing::pool_of;
using testing::tally;

constexpr int kKeys = 100000;

std::vector<std::string> addresses(size_t first, size_t count) {
  std::vector<std::string> out;
  for (size_t i = first; i < first + count; ++i) out.push_back(address_of(i));
  return out;
}

// The address each of kKeys keys goes to, through pick_backend ("" for none).
std::vector<std::string> route(const Pool& pool) {
  const auto policy = policy_for(pool);
  std::vector<std::string> routes;
  routes.reserve(kKeys);
  for (int key = 0; key < kKeys; ++key) {
    const int picked = pick_backend(pool, *policy, keyed(key));
    routes.push_back(picked < 0 ? "" : pool.backends[picked].address);
  }
  return routes;
}

double fraction_differing(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  int differing = 0;
  for (size_t i = 0; i < a.size(); ++i) differing += a[i] != b[i];
  return static_cast<double>(differing) / static_cast<double>(a.size());
}

TEST_CASE("the Maglev table gives each backend entries in proportion to its weight",
          "[balancer][maglev]") {
  const std::vector<uint32_t> weights = {5, 3, 1, 1};
  const Pool pool = pool_of("hash", weights);
  const std::vector<int32_t> table = maglev::build_table(pool, false);
  REQUIRE(table.size() == maglev::kTableSize);
  std::vector<int> entries(weights.size() + 1, 0);
  for (int32_t entry : table) {
    REQUIRE(entry >= 0);
    REQUIRE(entry < 4);
    entries[entry]++;
  }
  check_shares(entries, weights, 0.001);
}

TEST_CASE("the Maglev table of a tier holds only that tier's backends", "[balancer][maglev]") {
  const Pool pool = pool_of("hash", {1, 1, 1, 1}, {false, true, false, true});
  const std::vector<int32_t> primaries = maglev::build_table(pool, false);
  const std::vector<int32_t> backups = maglev::build_table(pool, true);
  CHECK(
      std::all_of(primaries.begin(), primaries.end(), [](int32_t e) { return e == 0 || e == 2; }));
  CHECK(std::all_of(backups.begin(), backups.end(), [](int32_t e) { return e == 1 || e == 3; }));
  CHECK(maglev::build_table(pool_of("hash", {1, 1}), true).empty());
}

TEST_CASE("hash sends 100,000 random keys to backends by weight within 2%", "[balancer][maglev]") {
  const std::vector<uint32_t> weights = {5, 3, 1, 1};
  const Pool pool = pool_of("hash", weights);
  const auto policy = policy_for(pool);
  check_shares(tally(pool, *policy, kKeys, true), weights, 0.02);
}

TEST_CASE("hash sends a key to the same backend every time", "[balancer][maglev]") {
  const Pool pool = pool_of("hash", {1, 2, 3, 4});
  const auto policy = policy_for(pool);
  for (int key = 0; key < 1000; ++key) {
    const int first = pick_backend(pool, *policy, keyed(key));
    for (int again = 0; again < 3; ++again) CHECK(pick_backend(pool, *policy, keyed(key)) == first);
  }
}

TEST_CASE("hash tables built separately from the same backends route every key alike",
          "[balancer][maglev]") {
  // Two instances of a fleet, or two snapshots of one instance.
  const Pool one = pool_at("hash", addresses(0, 10), {1, 2, 1, 3, 1, 1, 2, 1, 1, 5});
  const Pool other = pool_at("hash", addresses(0, 10), {1, 2, 1, 3, 1, 1, 2, 1, 1, 5});
  CHECK(maglev::build_table(one, false) == maglev::build_table(other, false));
  CHECK(fraction_differing(route(one), route(other)) == 0);
}

TEST_CASE("hash routes every key alike whatever the order of the backends in the pool",
          "[balancer][maglev]") {
  // Backends resolved from DNS come in any order.
  std::vector<std::string> shuffled = addresses(0, 10);
  std::reverse(shuffled.begin(), shuffled.end());
  std::rotate(shuffled.begin(), shuffled.begin() + 3, shuffled.end());
  const Pool ordered = pool_at("hash", addresses(0, 10));
  const Pool reordered = pool_at("hash", shuffled);
  CHECK(fraction_differing(route(ordered), route(reordered)) == 0);
}

TEST_CASE("removing one of 10 backends from the hash table remaps at most 12% of keys",
          "[balancer][maglev]") {
  const std::vector<std::string> ten = addresses(0, 10);
  std::vector<std::string> nine = ten;
  nine.erase(nine.begin() + 4);
  const std::vector<std::string> before = route(pool_at("hash", ten));
  const std::vector<std::string> after = route(pool_at("hash", nine));
  const double moved = fraction_differing(before, after);
  INFO("remapped " << moved * 100 << "% of keys");
  CHECK(moved <= 0.12);
  // Every key of the removed backend moved (it is gone), and it had about its tenth of them.
  const int removed_keys = static_cast<int>(std::count(before.begin(), before.end(), ten[4]));
  CHECK(std::count(after.begin(), after.end(), ten[4]) == 0);
  CHECK(removed_keys > kKeys / 10 * 0.9);
  CHECK(moved * kKeys >= removed_keys);
}

TEST_CASE("adding an 11th backend to the hash table remaps at most 12% of keys",
          "[balancer][maglev]") {
  const std::vector<std::string> before = route(pool_at("hash", addresses(0, 10)));
  const std::vector<std::string> after = route(pool_at("hash", addresses(0, 11)));
  const double moved = fraction_differing(before, after);
  INFO("remapped " << moved * 100 << "% of keys");
  CHECK(moved <= 0.12);
  // Most of the keys that moved went to the new backend, which got about its eleventh.
  const auto to_new = std::count(after.begin(), after.end(), address_of(10));
  CHECK(to_new > kKeys / 11 * 0.9);
  CHECK(to_new >= moved * kKeys * 0.75);
}

TEST_CASE("hash never picks a backend that is down and keeps the other backends' keys",
          "[balancer][maglev]") {
  const Pool pool = pool_at("hash", addresses(0, 10));
  const std::vector<std::string> before = route(pool);
  pool.backends[4].state->up = false;
  const std::vector<std::string> during = route(pool);
  int moved = 0;
  for (int key = 0; key < kKeys; ++key) {
    CHECK(during[key] != pool.backends[4].address);
    if (before[key] != pool.backends[4].address) {
      if (during[key] != before[key]) FAIL("key " << key << " moved off a backend that is up");
    } else {
      ++moved;
    }
  }
  CHECK(moved > 0);
}

TEST_CASE("hash spreads the keys of a backend that is down over the others by weight",
          "[balancer][maglev]") {
  const std::vector<uint32_t> weights = {1, 1, 1, 2, 1, 1, 1, 1, 1, 1};
  const Pool pool = pool_at("hash", addresses(0, 10), weights);
  const std::vector<std::string> before = route(pool);
  pool.backends[0].state->up = false;
  const std::vector<std::string> during = route(pool);
  std::map<std::string, int> took;
  int moved = 0;
  for (int key = 0; key < kKeys; ++key) {
    if (before[key] != pool.backends[0].address) continue;
    took[during[key]]++;
    ++moved;
  }
  // Nine backends take the keys, the one of weight 2 about twice as many as each other one.
  REQUIRE(took.size() == 9);
  for (size_t i = 1; i < 10; ++i) {
    const double expected = moved * weights[i] / 10.0;
    INFO("backend " << i << " took " << took[pool.backends[i].address] << " of " << moved);
    CHECK(std::abs(took[pool.backends[i].address] - expected) < expected * 0.35);
  }
}

TEST_CASE("hash sends a key back to its backend when that backend comes back up",
          "[balancer][maglev]") {
  const Pool pool = pool_at("hash", addresses(0, 10));
  const std::vector<std::string> before = route(pool);
  pool.backends[4].state->up = false;
  pool.backends[7].state->ejected = true;
  route(pool);
  pool.backends[4].state->up = true;
  pool.backends[7].state->ejected = false;
  CHECK(fraction_differing(before, route(pool)) == 0);
}

TEST_CASE("hash still maps every key to a backend that is up with most backends down",
          "[balancer][maglev]") {
  const Pool pool = pool_at("hash", addresses(0, 50));
  for (size_t i = 0; i < 50; ++i) pool.backends[i].state->up = i == 17 || i == 33;
  const auto policy = policy_for(pool);
  const std::vector<int> counts = tally(pool, *policy, 10000, true);
  CHECK(counts[17] + counts[33] == 10000);
  CHECK(counts[17] > 3000);
  CHECK(counts[33] > 3000);
}

TEST_CASE("hash sends a retry of a key elsewhere and the next request back", "[balancer][maglev]") {
  const Pool pool = pool_at("hash", addresses(0, 10));
  const auto policy = policy_for(pool);
  for (int key = 0; key < 1000; ++key) {
    const int first = pick_backend(pool, *policy, keyed(key));
    TriedBackends tried;
    tried.add(first);
    PickRequest again = keyed(key);
    again.tried = &tried;
    const int retry = pick_backend(pool, *policy, again);
    CHECK(retry >= 0);
    CHECK(retry != first);
    // The retry goes where the key would go while its backend is down.
    pool.backends[first].state->up = false;
    CHECK(pick_backend(pool, *policy, keyed(key)) == retry);
    pool.backends[first].state->up = true;
    CHECK(pick_backend(pool, *policy, keyed(key)) == first);
  }
}

TEST_CASE("hash maps keys over the backups with the backups' own table", "[balancer][maglev]") {
  const std::vector<std::string> all = addresses(0, 8);
  const std::vector<bool> backup = {false, false, false, false, true, true, true, true};
  const Pool pool = pool_at("hash", all, {}, backup);
  for (size_t i = 0; i < 4; ++i) pool.backends[i].state->up = false;
  // The backups alone, as primaries of a pool of their own, map every key alike.
  const Pool backups_only = pool_at("hash", addresses(4, 4));
  CHECK(fraction_differing(route(pool), route(backups_only)) == 0);
}

TEST_CASE("hash without a key falls back to weighted round-robin", "[balancer][maglev]") {
  const std::vector<uint32_t> weights = {5, 3, 1, 1};
  const Pool pool = pool_of("hash", weights);
  const auto policy = policy_for(pool);
  const std::vector<int> counts = tally(pool, *policy, 100000, false);
  check_shares(counts, weights, 0.02);
  CHECK(counts[0] == 50000);
}

TEST_CASE("hash needs no in-flight counts and prepares a shared table", "[balancer][maglev]") {
  const PolicyType* type = find_policy("hash");
  REQUIRE(type != nullptr);
  CHECK_FALSE(type->counts_active);
  CHECK(type->prepare != nullptr);
  CHECK(pool_of("hash", {1, 1}).table != nullptr);
}

}  // namespace
}  // namespace sluice::balancer
