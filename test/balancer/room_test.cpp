// What every registered policy promises through pick_backend about room (max_connections): a
// backend without room is passed over like one that is down, but a tier whose usable backends
// are all full answers kAllBusy (the request waits) rather than falling to the backups.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "balancer/policy.h"
#include "test/balancer/pool_fixture.h"

namespace sluice::balancer {
namespace {

using testing::keyed;
using testing::policy_for;
using testing::pool_of;

// Backends listed in `full` have no room.
class FullSet final : public RoomView {
 public:
  explicit FullSet(std::vector<int> full) : full_(std::move(full)) {}
  bool has_room(int backend) const override {
    for (int f : full_)
      if (f == backend) return false;
    return true;
  }

 private:
  std::vector<int> full_;
};

// Picks per backend over `picks` picks; [size] counts kNoBackend, [size + 1] kAllBusy.
std::vector<int> tally_with_room(const Pool& pool, Policy& policy, int picks, bool with_keys,
                                 const RoomView& room, const std::vector<int>& tried = {}) {
  TriedBackends already;
  for (int backend : tried) already.add(backend);
  std::vector<int> counts(pool.backends.size() + 2, 0);
  for (int i = 0; i < picks; ++i) {
    PickRequest request = with_keys ? keyed(i) : PickRequest{};
    request.tried = &already;
    request.room = &room;
    const int picked = pick_backend(pool, policy, request);
    if (picked == kNoBackend)
      ++counts[pool.backends.size()];
    else if (picked == kAllBusy)
      ++counts[pool.backends.size() + 1];
    else
      ++counts[static_cast<size_t>(picked)];
  }
  return counts;
}

std::string policy_and_keys(bool* with_keys) {
  const std::string name =
      GENERATE(as<std::string>{}, "round_robin", "least_conn", "hash", "random_two");
  *with_keys = GENERATE(false, true);
  return name;
}

TEST_CASE("no policy picks a backend without room while another has some", "[balancer]") {
  bool with_keys = false;
  const std::string policy_name = policy_and_keys(&with_keys);
  INFO(policy_name << (with_keys ? " with keys" : ""));
  const Pool pool = pool_of(policy_name, {1, 5, 1, 2});
  const auto policy = policy_for(pool);
  const FullSet room({1, 3});
  const std::vector<int> counts = tally_with_room(pool, *policy, 2000, with_keys, room);
  CHECK(counts[1] == 0);
  CHECK(counts[3] == 0);
  CHECK(counts[0] + counts[2] == 2000);
}

TEST_CASE("a tier of full backends answers kAllBusy, never a backup", "[balancer]") {
  bool with_keys = false;
  const std::string policy_name = policy_and_keys(&with_keys);
  INFO(policy_name << (with_keys ? " with keys" : ""));
  const Pool pool = pool_of(policy_name, {1, 1, 1}, {false, false, true});
  pool.backends[1].state->up = false;  // a down primary is not a full one
  const auto policy = policy_for(pool);
  const FullSet room({0});
  CHECK(tally_with_room(pool, *policy, 100, with_keys, room)[4] == 100);
}

TEST_CASE("with every primary down a full backup is passed over for one with room", "[balancer]") {
  bool with_keys = false;
  const std::string policy_name = policy_and_keys(&with_keys);
  INFO(policy_name << (with_keys ? " with keys" : ""));
  const Pool pool = pool_of(policy_name, {1, 1, 1}, {false, true, true});
  pool.backends[0].state->up = false;
  const auto policy = policy_for(pool);
  CHECK(tally_with_room(pool, *policy, 100, with_keys, FullSet({1}))[2] == 100);
  CHECK(tally_with_room(pool, *policy, 100, with_keys, FullSet({1, 2}))[4] == 100);
}

TEST_CASE("with every backend down the answer is kNoBackend, full or not", "[balancer]") {
  const Pool pool = pool_of("round_robin", {1, 1});
  for (const Backend& backend : pool.backends) backend.state->up = false;
  const auto policy = policy_for(pool);
  CHECK(tally_with_room(pool, *policy, 10, false, FullSet({0}))[2] == 10);
}

TEST_CASE("a retry passes over both the backends it tried and the full ones", "[balancer]") {
  bool with_keys = false;
  const std::string policy_name = policy_and_keys(&with_keys);
  INFO(policy_name << (with_keys ? " with keys" : ""));
  const Pool pool = pool_of(policy_name, {1, 1, 1});
  const auto policy = policy_for(pool);
  CHECK(tally_with_room(pool, *policy, 100, with_keys, FullSet({2}), {0})[1] == 100);
  // The one with room was tried already: it is picked again rather than waiting.
  CHECK(tally_with_room(pool, *policy, 100, with_keys, FullSet({1, 2}), {0})[0] == 100);
}

}  // namespace
}  // namespace sluice::balancer
