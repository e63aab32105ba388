// Smooth weighted round-robin: every pick adds each candidate's weight to its running score,
// takes the highest, and subtracts the total from the winner. Heavy backends are spread
// evenly through the cycle instead of receiving their share in bursts.
#include <memory>
#include <vector>

#include "balancer/policy.h"

namespace sluice::balancer {
namespace {

class RoundRobin final : public Policy {
 public:
  explicit RoundRobin(const Pool& pool) : pool_(pool), score_(pool.backends.size(), 0) {}

  int pick(const PickRequest& request, const std::vector<int>& candidates) override {
    int64_t total = 0;
    int best = -1;
    for (int i : candidates) {
      if (i == request.avoid && candidates.size() > 1) continue;
      const int64_t weight = effective_weight(pool_, pool_.backends[i], request.now_ms);
      score_[i] += weight;
      total += weight;
      if (best < 0 || score_[i] > score_[best]) best = i;
    }
    if (best >= 0) score_[best] -= total;
    return best;
  }

 private:
  const Pool& pool_;
  std::vector<int64_t> score_;
};

std::unique_ptr<Policy> make(const Pool& pool, const PolicyTable*) {
  return std::make_unique<RoundRobin>(pool);
}

}  // namespace

extern const PolicyType kRoundRobin{"round_robin", nullptr, &make, false, false};

}  // namespace sluice::balancer
