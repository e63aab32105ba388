// Smooth weighted round-robin, the state every policy that rotates by weight shares: each pick
// adds every eligible candidate's weight to its running score, takes the highest, and subtracts
// the total from the winner, so heavy backends are spread through the cycle, not bunched.
#pragma once

#include <cstdint>
#include <vector>

#include "balancer/policy.h"

namespace sluice::balancer {

class SmoothRoundRobin {
 public:
  explicit SmoothRoundRobin(const Pool& pool) : pool_(pool), score_(pool.backends.size(), 0) {}

  // Picks among the `candidates` that `eligible(index)` accepts; -1 when none is eligible. Only
  // eligible scores move.
  template <typename Eligible>
  int pick(const PickRequest& request, const std::vector<int>& candidates, Eligible eligible) {
    int64_t total = 0;
    int best = -1;
    for (int i : candidates) {
      if (!eligible(i)) continue;
      const int64_t weight = effective_weight(pool_, pool_.backends[i], request.now_ms);
      score_[i] += weight;
      total += weight;
      if (best < 0 || score_[i] > score_[best]) best = i;
    }
    if (best >= 0) score_[best] -= total;
    return best;
  }

  int pick(const PickRequest& request, const std::vector<int>& candidates) {
    return pick(request, candidates, [](int) { return true; });
  }

 private:
  const Pool& pool_;
  std::vector<int64_t> score_;
};

}  // namespace sluice::balancer
