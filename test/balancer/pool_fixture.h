// Helpers shared by the policy tests: pools built as build_snapshot builds them (the policy's
// table prepared once the backends are final), tallies of many picks, and checks of shares.
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "balancer/policy.h"

namespace sluice::balancer::testing {

// The address of the n-th test backend, "10.0.<n / 250>.<n % 250 + 1>:8080".
inline std::string address_of(size_t n) {
  return "10.0." + std::to_string(n / 250) + "." + std::to_string(n % 250 + 1) + ":8080";
}

// Prepares the policy's shared table, as build_snapshot does once the backends are final.
inline void prepare(Pool& pool) {
  const PolicyType* type = find_policy(pool.policy);
  REQUIRE(type != nullptr);
  pool.table = type->prepare != nullptr ? type->prepare(pool) : nullptr;
}

// A pool of backends at the given addresses and weights; `backup[i]` marks backend i a backup.
inline Pool pool_at(std::string_view policy, const std::vector<std::string>& addresses,
                    const std::vector<uint32_t>& weights = {},
                    const std::vector<bool>& backup = {}) {
  Pool pool;
  pool.name = "test";
  pool.policy = std::string(policy);
  for (size_t i = 0; i < addresses.size(); ++i) {
    Backend backend;
    backend.address = addresses[i];
    backend.weight = i < weights.size() ? weights[i] : 1;
    backend.backup = i < backup.size() && backup[i];
    pool.backends.push_back(std::move(backend));
  }
  prepare(pool);
  return pool;
}

// A pool of backends at address_of(0), address_of(1), ... with the given weights.
inline Pool pool_of(std::string_view policy, const std::vector<uint32_t>& weights,
                    const std::vector<bool>& backup = {}) {
  std::vector<std::string> addresses;
  for (size_t i = 0; i < weights.size(); ++i) addresses.push_back(address_of(i));
  return pool_at(policy, addresses, weights, backup);
}

// One worker's instance of the pool's policy. The pool must outlive it and stay where it is.
inline std::unique_ptr<Policy> policy_for(const Pool& pool) {
  const PolicyType* type = find_policy(pool.policy);
  REQUIRE(type != nullptr);
  return type->make(pool, pool.table.get());
}

// The hash of the n-th test key, as the proxy hashes a balancing key.
inline uint64_t key_hash_of(int n) {
  return hash_key("client-" + std::to_string(n));
}

// A request carrying the n-th test key.
inline PickRequest keyed(int n) {
  PickRequest request;
  request.has_key = true;
  request.key_hash = key_hash_of(n);
  return request;
}

// How often each backend was picked over `picks` picks through pick_backend; the last element
// counts the picks that found no backend. With `with_keys`, pick i carries key i; every pick
// has already tried the backends in `tried`.
inline std::vector<int> tally(const Pool& pool, Policy& policy, int picks, bool with_keys = false,
                              const std::vector<int>& tried = {}) {
  TriedBackends already;
  for (int backend : tried) already.add(backend);
  std::vector<int> counts(pool.backends.size() + 1, 0);
  for (int i = 0; i < picks; ++i) {
    PickRequest request = with_keys ? keyed(i) : PickRequest{};
    request.tried = &already;
    const int picked = pick_backend(pool, policy, request);
    counts[picked < 0 ? pool.backends.size() : static_cast<size_t>(picked)]++;
  }
  return counts;
}

// Like tally, with the proxy's bookkeeping of in-flight requests: each pick adds one to the
// backend's active count, and once `in_flight` requests are out the oldest one finishes.
inline std::vector<int> tally_in_flight(const Pool& pool, Policy& policy, int picks,
                                        size_t in_flight) {
  std::vector<int> counts(pool.backends.size() + 1, 0);
  std::deque<int> outstanding;
  for (int i = 0; i < picks; ++i) {
    const int picked = pick_backend(pool, policy, PickRequest{});
    counts[picked < 0 ? pool.backends.size() : static_cast<size_t>(picked)]++;
    if (picked < 0) continue;
    pool.backends[picked].state->active.fetch_add(1);
    outstanding.push_back(picked);
    if (outstanding.size() > in_flight) {
      pool.backends[outstanding.front()].state->active.fetch_sub(1);
      outstanding.pop_front();
    }
  }
  for (int backend : outstanding) pool.backends[backend].state->active.fetch_sub(1);
  return counts;
}

// The largest deviation of any backend's share of `counts` from its share of `weights`,
// relative to that share: 0.01 is 1% of what the weight asks for.
inline double worst_deviation(const std::vector<int>& counts,
                              const std::vector<uint32_t>& weights) {
  double picks = 0;
  double total_weight = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    picks += counts[i];
    total_weight += weights[i];
  }
  double worst = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double expected = picks * weights[i] / total_weight;
    worst = std::max(worst, std::abs(counts[i] - expected) / expected);
  }
  return worst;
}

// Checks that each backend's share of `counts` is within `tolerance` (relative) of its weight's.
inline void check_shares(const std::vector<int>& counts, const std::vector<uint32_t>& weights,
                         double tolerance) {
  double picks = 0;
  double total_weight = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    picks += counts[i];
    total_weight += weights[i];
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    const double expected = picks * weights[i] / total_weight;
    INFO("backend " << i << " (weight " << weights[i] << ") picked " << counts[i]
                    << " times, expected " << expected << "; worst deviation "
                    << worst_deviation(counts, weights));
    CHECK(std::abs(counts[i] - expected) <= tolerance * expected);
  }
}

}  // namespace sluice::balancer::testing
