// Maps config names to policies, and the backup fallback shared by every policy.
#include <string_view>

#include "balancer/policy.h"

namespace sluice::balancer {

extern const PolicyType kRoundRobin;

namespace {
// One line per policy.
const PolicyType* const kPolicies[] = {
    &kRoundRobin,
};
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
  for (bool backup : {false, true}) {
    candidates.clear();
    for (size_t i = 0; i < pool.backends.size(); ++i) {
      const Backend& b = pool.backends[i];
      if (b.backup == backup && b.up()) candidates.push_back(static_cast<int>(i));
    }
    if (!candidates.empty()) return policy.pick(request, candidates);
  }
  return -1;
}

}  // namespace sluice::balancer
