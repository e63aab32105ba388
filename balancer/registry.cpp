// Maps config names to policies, and the backup fallback shared by every policy.
#include <string_view>

#include "balancer/policy.h"

namespace sluice::balancer {

// The registration: one line per policy, naming the PolicyType its file defines. (Each policy
// file is picked up by the build on its own.)
#define SLUICE_POLICIES(POLICY) \
  POLICY(kRoundRobin)           \
  POLICY(kLeastConn)            \
  POLICY(kMaglev)               \
  POLICY(kRandomTwo)

#define SLUICE_DECLARE(type) extern const PolicyType type;
SLUICE_POLICIES(SLUICE_DECLARE)
#undef SLUICE_DECLARE

namespace {
#define SLUICE_ADDRESS(type) &type,
const PolicyType* const kPolicies[] = {SLUICE_POLICIES(SLUICE_ADDRESS)};
#undef SLUICE_ADDRESS
}  // namespace

const PolicyType* find_policy(std::string_view name) {
  for (const PolicyType* p : kPolicies)
    if (p->name == name) return p;
  return nullptr;
}

std::vector<std::string_view> policy_names() {
  std::vector<std::string_view> names;
  for (const PolicyType* p : kPolicies) names.push_back(p->name);
  return names;
}

uint32_t effective_weight(const Pool& pool, const Backend& backend, uint64_t now_ms) {
  if (pool.slow_start_ms == 0) return backend.weight;
  const uint64_t since = backend.health().up_since_ms();
  if (since == 0 || now_ms >= since + pool.slow_start_ms) return backend.weight;
  const uint64_t elapsed = now_ms > since ? now_ms - since : 0;
  const uint64_t ramped = backend.weight * (100 + 900 * elapsed / pool.slow_start_ms) / 1000;
  return ramped > 0 ? static_cast<uint32_t>(ramped) : 1;
}

uint64_t hash_key(std::string_view key) {
  // FNV-1a, then a murmur3 finalizer: FNV alone leaves the low bits poorly mixed for short keys.
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

int pick_backend(const Pool& pool, Policy& policy, const PickRequest& request) {
  // Small fixed pools are the norm; a thread-local vector keeps this allocation-free.
  thread_local std::vector<int> candidates;
  const TriedBackends* tried = request.tried && !request.tried->empty() ? request.tried : nullptr;
  for (bool backup : {false, true}) {
    candidates.clear();
    size_t usable = 0;
    size_t full = 0;
    for (size_t i = 0; i < pool.backends.size(); ++i) {
      const Backend& b = pool.backends[i];
      if (b.backup != backup || !b.up()) continue;
      if (request.room && !request.room->has_room(static_cast<int>(i))) {
        ++full;
        continue;
      }
      ++usable;
      if (!tried || !tried->contains(static_cast<int>(i)))
        candidates.push_back(static_cast<int>(i));
    }
    if (usable > 0 && candidates.empty()) {
      // Every usable one was tried: try them again, but not the one that just failed.
      for (size_t i = 0; i < pool.backends.size(); ++i)
        if (pool.backends[i].backup == backup && pool.backends[i].up() &&
            (!request.room || request.room->has_room(static_cast<int>(i))) &&
            (usable == 1 || static_cast<int>(i) != tried->last()))
          candidates.push_back(static_cast<int>(i));
    }
    if (!candidates.empty()) return policy.pick(request, candidates);
    if (full > 0) return kAllBusy;
  }
  return kNoBackend;
}

}  // namespace sluice::balancer
