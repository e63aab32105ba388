// The Policy seam: given a request's key and the live health view (Backend::health(), read-only),
// pick a backend.
// A policy type registers itself by name with one line in registry.cpp. Per snapshot it may
// prepare an immutable PolicyTable shared by every worker (a Maglev lookup table); each worker
// then makes its own Policy instance, so a pick never locks.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "balancer/backend.h"

namespace sluice::balancer {

// The backends one request has already tried: a retry moves on to one it has not tried yet.
class TriedBackends {
 public:
  static constexpr size_t kMax = 11;  // the first try and up to 10 retries
  void clear() { count_ = 0; }
  void add(int backend) {
    if (count_ < kMax) tried_[count_++] = backend;
  }
  bool contains(int backend) const {
    for (size_t i = 0; i < count_; ++i)
      if (tried_[i] == backend) return true;
    return false;
  }
  bool empty() const { return count_ == 0; }
  int last() const { return count_ > 0 ? tried_[count_ - 1] : -1; }

 private:
  int tried_[kMax];  // only the first count_ are ever read
  size_t count_ = 0;
};

// Whether a backend can take one more request now (it is below its max_connections). The
// caller keeps the counts; pick_backend only asks.
class RoomView {
 public:
  virtual bool has_room(int backend) const = 0;

 protected:
  ~RoomView() = default;
};

struct PickRequest {
  uint64_t key_hash = 0;  // hash of the request's balancing key, when has_key
  bool has_key = false;
  const TriedBackends* tried = nullptr;  // skipped while an untried backend is usable
  uint64_t now_ms = 0;                   // monotonic time, for slow start
  const RoomView* room = nullptr;        // null: every backend has room
};

// What pick_backend returns besides a backend's index.
inline constexpr int kNoBackend = -1;  // nothing usable: every backend (backups too) is down
inline constexpr int kAllBusy = -2;    // the usable tier is up, but every backend is full

// Immutable per-snapshot state of a policy, built off the workers and only read by them.
class PolicyTable {
 public:
  virtual ~PolicyTable() = default;
};

// A Policy keeps a reference to its Pool: the pool must stay where it is (a snapshot keeps it in
// place) for as long as the policy lives. Weights are 1..256.
class Policy {
 public:
  virtual ~Policy() = default;
  // Returns the index of a backend among `candidates` (indices into the pool, all of them up,
  // all primaries or all backups, none of them already tried when another could be), or -1.
  virtual int pick(const PickRequest& request, const std::vector<int>& candidates) = 0;
};

struct PolicyType {
  std::string_view name;
  // Builds the shared table for a pool; nullptr when the policy needs none.
  std::shared_ptr<const PolicyTable> (*prepare)(const Pool& pool);
  // Makes one worker's instance. `table` is what prepare() returned for this pool.
  std::unique_ptr<Policy> (*make)(const Pool& pool, const PolicyTable* table);
  // The policy reads BackendState::active, so the proxy must count in-flight requests.
  bool counts_active;
  // The policy hashes the request's balancing key (PickRequest::key_hash).
  bool uses_key;
};

// Looks a policy type up by its config name; nullptr when none has that name.
const PolicyType* find_policy(std::string_view name);
// The names of all registered policies, for error messages and docs.
std::vector<std::string_view> policy_names();

// Picks a backend from `pool` with `policy`: usable primaries first, backups only when no
// primary is up; within that tier, backends the request already tried only when it has no other.
// A backend without room (request.room) is passed over; when every usable backend of the tier
// lacks room the answer is kAllBusy (a full tier waits: it does not spill over to the backups).
// kNoBackend when nothing is usable.
int pick_backend(const Pool& pool, Policy& policy, const PickRequest& request);

// A stable 64-bit hash of a balancing key: the same on every machine and in every process, so a
// fleet of instances maps a key to the same backend.
uint64_t hash_key(std::string_view key);

}  // namespace sluice::balancer
