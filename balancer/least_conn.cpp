// Weighted least connections: pick the candidate with the fewest in-flight requests (summed over
// all workers in BackendState::active) relative to its weight. Ratios are compared by cross
// multiplication, active_a * weight_b < active_b * weight_a, so no floating point is involved.
// Candidates that tie on the lowest ratio (every one of them when nothing is in flight) are
// separated by smooth weighted round-robin, so an idle or evenly loaded pool still gets each
// backend's weight share instead of always the first of the tied.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "balancer/policy.h"
#include "balancer/smooth_round_robin.h"

namespace sluice::balancer {
namespace {

class LeastConn final : public Policy {
 public:
  explicit LeastConn(const Pool& pool)
      : pool_(pool),
        ties_(pool),
        active_(pool.backends.size(), 0),
        weight_(pool.backends.size(), 1) {}

  // Two passes over the candidates: the first reads each in-flight count once (other workers
  // keep changing them) and finds the lowest ratio, the second runs smooth weighted round-robin
  // over the candidates at that ratio. Only the tied candidates' scores move.
  int pick(const PickRequest& request, const std::vector<int>& candidates) override {
    int best = -1;
    for (int i : candidates) {
      const Backend& backend = pool_.backends[i];
      active_[i] = backend.health().active();
      weight_[i] = std::max<int64_t>(1, effective_weight(pool_, backend, request.now_ms));
      if (best < 0 || active_[i] * weight_[best] < active_[best] * weight_[i]) best = i;
    }
    if (best < 0) return -1;
    const int64_t best_active = active_[best];
    const int64_t best_weight = weight_[best];
    return ties_.pick(request, candidates,
                      [&](int i) { return active_[i] * best_weight == best_active * weight_[i]; });
  }

 private:
  const Pool& pool_;
  SmoothRoundRobin ties_;        // rotation among the candidates tied at the lowest ratio
  std::vector<int64_t> active_;  // this pick's snapshot of the in-flight counts, per backend
  std::vector<int64_t> weight_;  // this pick's effective weights, per backend
};

std::unique_ptr<Policy> make(const Pool& pool, const PolicyTable*) {
  return std::make_unique<LeastConn>(pool);
}

}  // namespace

extern const PolicyType kLeastConn{"least_conn", nullptr, &make, true, false};

}  // namespace sluice::balancer
