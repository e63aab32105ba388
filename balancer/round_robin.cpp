// The round_robin policy: smooth weighted round-robin over the usable backends (see
// smooth_round_robin.h), the default for every upstream.
#include <memory>
#include <vector>

#include "balancer/policy.h"
#include "balancer/smooth_round_robin.h"

namespace sluice::balancer {
namespace {

class RoundRobin final : public Policy {
 public:
  explicit RoundRobin(const Pool& pool) : rotation_(pool) {}
  int pick(const PickRequest& request, const std::vector<int>& candidates) override {
    return rotation_.pick(request, candidates);
  }

 private:
  SmoothRoundRobin rotation_;
};

std::unique_ptr<Policy> make(const Pool& pool, const PolicyTable*) {
  return std::make_unique<RoundRobin>(pool);
}

}  // namespace

extern const PolicyType kRoundRobin{"round_robin", nullptr, &make, false, false};

}  // namespace sluice::balancer
