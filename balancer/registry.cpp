// Maps config names to policies, and the backup fallback shared by every policy.
#include <array>
#include <string_view>

#include "balancer/policy.h"

namespace sluice::balancer {

std::unique_ptr<Policy> make_round_robin(const Pool& pool);

namespace {
struct Entry {
  std::string_view name;
  PolicyFactory make;
};
constexpr std::array kPolicies = {
    Entry{"round_robin", &make_round_robin},
};
}  // namespace

PolicyFactory find_policy(std::string_view name) {
  for (const Entry& e : kPolicies)
    if (e.name == name) return e.make;
  return nullptr;
}

std::vector<std::string_view> policy_names() {
  std::vector<std::string_view> names;
  for (const Entry& e : kPolicies) names.push_back(e.name);
  return names;
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
