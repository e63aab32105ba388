// The Policy seam: given a request's key and the live health view, pick a backend.
// Each worker owns its own Policy instances (made per snapshot), so a pick never locks;
// a policy registers itself by name with one line in registry.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "balancer/backend.h"

namespace sluice::balancer {

struct PickRequest {
  uint64_t key_hash = 0;  // hash of the request's balancing key, when has_key
  bool has_key = false;
  int avoid = -1;  // backend index to skip (the one a retry is leaving), -1 for none
};

class Policy {
 public:
  virtual ~Policy() = default;
  // Returns the index of a healthy backend among `candidates` (indices into the pool), or -1.
  virtual int pick(const PickRequest& request, const std::vector<int>& candidates) = 0;
};

using PolicyFactory = std::unique_ptr<Policy> (*)(const Pool& pool);

// Looks a policy up by its config name; nullptr when no policy has that name.
PolicyFactory find_policy(std::string_view name);
// The names of all registered policies, for error messages and docs.
std::vector<std::string_view> policy_names();

// Picks a backend from `pool` with `policy`: healthy primaries first, backups only when no
// primary is up. Returns -1 when nothing is usable.
int pick_backend(const Pool& pool, Policy& policy, const PickRequest& request);

}  // namespace sluice::balancer
