// The Maglev lookup table behind the "hash" policy (balancer/maglev.cpp), exposed so tests can
// look at the table itself: how many entries each backend owns, and which entries move when the
// set of backends changes.
#pragma once

#include <cstdint>
#include <vector>

#include "balancer/backend.h"

namespace sluice::balancer::maglev {

// Entries per table: a prime, as the permutations need. The paper wants it well above 100 times
// the number of backends, so that each backend's share of keys stays close to its weight's.
inline constexpr uint32_t kTableSize = 65537;

// The lookup table over the backends of `pool` in one tier (the primaries, or with `backup` the
// backups): kTableSize entries, each an index into pool.backends. Empty when the tier has no
// backends. A backend's place depends only on its address and weight and on the other backends'
// addresses and weights, not on their order in the pool, so every instance of a fleet builds the
// same table from the same backends.
std::vector<int32_t> build_table(const Pool& pool, bool backup);

}  // namespace sluice::balancer::maglev
