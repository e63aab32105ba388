// Smooth weighted round-robin through pick_backend: shares follow weights, picks interleave,
// down backends are skipped, backups stand in only when every primary is down.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "balancer/policy.h"

namespace sluice::balancer {
namespace {

Pool pool_of(std::initializer_list<uint32_t> weights, std::vector<bool> backup = {}) {
  Pool pool;
  pool.name = "test";
  for (uint32_t weight : weights) {
    Backend backend;
    backend.address = "127.0.0.1:" + std::to_string(9000 + pool.backends.size());
    backend.weight = weight;
    backend.backup = pool.backends.size() < backup.size() && backup[pool.backends.size()];
    pool.backends.push_back(std::move(backend));
  }
  // As build_snapshot does: the shared table is prepared once the backends are final.
  const PolicyType* type = find_policy(pool.policy);
  REQUIRE(type != nullptr);
  if (type->prepare != nullptr) pool.table = type->prepare(pool);
  return pool;
}

std::unique_ptr<Policy> round_robin(const Pool& pool) {
  const PolicyType* type = find_policy("round_robin");
  REQUIRE(type != nullptr);
  return type->make(pool, pool.table.get());
}

// How often each backend was picked over `picks` picks; index pool size counts the -1s.
std::vector<int> tally(const Pool& pool, Policy& policy, int picks, PickRequest request = {}) {
  std::vector<int> counts(pool.backends.size() + 1, 0);
  for (int i = 0; i < picks; ++i) {
    const int picked = pick_backend(pool, policy, request);
    counts[picked < 0 ? pool.backends.size() : static_cast<size_t>(picked)]++;
  }
  return counts;
}

TEST_CASE("round robin shares picks in proportion to weight within 2%", "[balancer]") {
  const Pool pool = pool_of({5, 3, 1});
  const auto policy = round_robin(pool);
  const int picks = 100000;
  const std::vector<int> counts = tally(pool, *policy, picks);
  const double weights[] = {5, 3, 1};
  for (size_t i = 0; i < 3; ++i) {
    const double expected = picks * weights[i] / 9.0;
    INFO("backend " << i << " picked " << counts[i] << " times, expected " << expected);
    CHECK(std::abs(counts[i] - expected) <= 0.02 * expected);
  }
  CHECK(counts[3] == 0);
}

TEST_CASE("round robin spreads a heavy backend through the cycle instead of in a burst",
          "[balancer]") {
  const Pool pool = pool_of({5, 1, 1});
  const auto policy = round_robin(pool);
  int run = 0;
  int longest_run = 0;
  for (int i = 0; i < 700; ++i) {
    run = pick_backend(pool, *policy, {}) == 0 ? run + 1 : 0;
    longest_run = std::max(longest_run, run);
  }
  // Five of seven picks go to backend 0, but never all five in a row.
  CHECK(longest_run < 5);
}

TEST_CASE("round robin over equal weights visits every backend once per cycle", "[balancer]") {
  const Pool pool = pool_of({1, 1, 1});
  const auto policy = round_robin(pool);
  std::vector<int> picks;
  for (int i = 0; i < 30; ++i) picks.push_back(pick_backend(pool, *policy, {}));
  for (size_t cycle = 0; cycle < picks.size(); cycle += 3) {
    std::vector<int> seen(picks.begin() + cycle, picks.begin() + cycle + 3);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == std::vector<int>{0, 1, 2});
  }
  for (size_t i = 1; i < picks.size(); ++i) CHECK(picks[i] != picks[i - 1]);
}

TEST_CASE("a backend that is down is never picked", "[balancer]") {
  const Pool pool = pool_of({1, 5, 1});
  pool.backends[1].state->up = false;
  const auto policy = round_robin(pool);
  const std::vector<int> counts = tally(pool, *policy, 1000);
  CHECK(counts[1] == 0);
  CHECK(counts[0] == 500);
  CHECK(counts[2] == 500);
}

TEST_CASE("a backup is not picked while any primary is up", "[balancer]") {
  const Pool pool = pool_of({1, 1, 10}, {false, false, true});
  const auto policy = round_robin(pool);
  CHECK(tally(pool, *policy, 1000)[2] == 0);
  pool.backends[0].state->up = false;
  const std::vector<int> counts = tally(pool, *policy, 1000);
  CHECK(counts[1] == 1000);
  CHECK(counts[2] == 0);
}

TEST_CASE("backups are picked when every primary is down", "[balancer]") {
  const Pool pool = pool_of({1, 1, 1, 1}, {false, false, true, true});
  pool.backends[0].state->up = false;
  pool.backends[1].state->up = false;
  const auto policy = round_robin(pool);
  const std::vector<int> counts = tally(pool, *policy, 1000);
  CHECK(counts[2] == 500);
  CHECK(counts[3] == 500);
}

TEST_CASE("no backend is picked when every backend is down", "[balancer]") {
  const Pool pool = pool_of({1, 1}, {false, true});
  for (const Backend& backend : pool.backends) backend.state->up = false;
  const auto policy = round_robin(pool);
  CHECK(pick_backend(pool, *policy, {}) == -1);
}

TEST_CASE("no backend is picked from an empty pool", "[balancer]") {
  const Pool pool;
  const auto policy = round_robin(pool);
  CHECK(pick_backend(pool, *policy, {}) == -1);
}

TEST_CASE("a backend the request already tried is skipped when another is up", "[balancer]") {
  const Pool pool = pool_of({10, 1, 1});
  const auto policy = round_robin(pool);
  TriedBackends tried;
  tried.add(0);
  PickRequest request;
  request.tried = &tried;
  const std::vector<int> counts = tally(pool, *policy, 1000, request);
  CHECK(counts[0] == 0);
  CHECK(counts[1] + counts[2] == 1000);
}

TEST_CASE("a backend the request already tried is picked again when it is the only one up",
          "[balancer]") {
  const Pool pool = pool_of({1, 1});
  pool.backends[1].state->up = false;
  const auto policy = round_robin(pool);
  TriedBackends tried;
  tried.add(0);
  PickRequest request;
  request.tried = &tried;
  CHECK(pick_backend(pool, *policy, request) == 0);
}

TEST_CASE("an unknown policy name finds no policy", "[balancer]") {
  CHECK(find_policy("nope") == nullptr);
  CHECK(find_policy("") == nullptr);
}

TEST_CASE("every listed policy name finds its policy type", "[balancer]") {
  const std::vector<std::string_view> names = policy_names();
  CHECK(std::find(names.begin(), names.end(), "round_robin") != names.end());
  for (std::string_view name : names) {
    const PolicyType* type = find_policy(name);
    REQUIRE(type != nullptr);
    CHECK(type->name == name);
    CHECK(type->make != nullptr);
  }
}

TEST_CASE("round robin needs no in-flight counts", "[balancer]") {
  const PolicyType* type = find_policy("round_robin");
  REQUIRE(type != nullptr);
  CHECK_FALSE(type->counts_active);
}

}  // namespace
}  // namespace sluice::balancer
