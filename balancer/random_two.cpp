// Power of two random choices (Mitzenmacher, "The Power of Two Choices in Randomized Load
// Balancing", 2001): draw two distinct candidates at random, each with probability in proportion
// to its weight, and send the request to the one with fewer in-flight requests relative to its
// weight (the first drawn on a tie). Unlike least_conn it does not herd every worker onto the
// same least loaded backend between two updates of the shared counters, and a pick looks at two
// counters instead of all of them.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "balancer/policy.h"

namespace sluice::balancer {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A different seed for every instance, also across processes, so the workers of a fleet do not
// draw in lockstep.
uint64_t next_seed() {
  static const uint64_t base = [] {
    uint64_t entropy =
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    try {
      std::random_device device;
      entropy ^= (static_cast<uint64_t>(device()) << 32) | device();
    } catch (...) {
      // No entropy source: the clock alone still differs between processes.
    }
    return entropy;
  }();
  static std::atomic<uint64_t> counter{0};
  uint64_t state = base ^ (counter.fetch_add(1, std::memory_order_relaxed) * 0xd1b54a32d192ed03ull);
  return splitmix64(state);
}

class RandomTwo final : public Policy {
 public:
  explicit RandomTwo(const Pool& pool)
      : pool_(pool), weight_(pool.backends.size(), 1), state_(next_seed()) {}

  int pick(const PickRequest& request, const std::vector<int>& candidates) override {
    int64_t total = 0;
    int count = 0;
    int only = -1;
    for (int i : candidates) {
      weight_[i] = weight_of(pool_.backends[i], request.now_ms);
      total += weight_[i];
      ++count;
      only = i;
    }
    if (count <= 1) return only;
    const int first = draw(candidates, total, -1);
    const int second = draw(candidates, total - weight_[first], first);
    const int64_t first_active = active_of(first);
    const int64_t second_active = active_of(second);
    return second_active * weight_[first] < first_active * weight_[second] ? second : first;
  }

 private:
  int64_t weight_of(const Backend& backend, uint64_t now_ms) const {
    const int64_t weight = effective_weight(pool_, backend, now_ms);
    return weight > 0 ? weight : 1;
  }

  int64_t active_of(int i) const { return pool_.backends[i].health().active(); }

  // One candidate drawn in proportion to weight_, leaving out `excluded` (whose weight `total`
  // no longer includes).
  int draw(const std::vector<int>& candidates, int64_t total, int excluded) {
    // The modulo's bias is below total / 2^64: weights are at most 256 each.
    int64_t point = static_cast<int64_t>(splitmix64(state_) % static_cast<uint64_t>(total));
    int last = -1;
    for (int i : candidates) {
      if (i == excluded) continue;
      last = i;
      point -= weight_[i];
      if (point < 0) return i;
    }
    return last;  // not reached: the weights add up to total
  }

  const Pool& pool_;
  std::vector<int64_t> weight_;  // this pick's effective weights, per backend
  uint64_t state_;               // splitmix64 state, seeded per instance
};

std::unique_ptr<Policy> make(const Pool& pool, const PolicyTable*) {
  return std::make_unique<RandomTwo>(pool);
}

}  // namespace

extern const PolicyType kRandomTwo{"random_two", nullptr, &make, true, false};

}  // namespace sluice::balancer
