// Consistent hashing with a Maglev lookup table: D. E. Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016, section 3.4 ("Consistent Hashing").
//
// Every backend has a permutation of the table's entries, given by an offset and a skip hashed
// from its address; the backends take turns claiming the next free entry of their permutation
// until the table is full. A key maps to entry key_hash % kTableSize. Removing or adding one of
// N backends moves little more than the 1/N of the keys that must move, and the table depends
// only on the backends' addresses and weights, so every instance of a fleet sends a key to the
// same backend.
//
// Weights follow Envoy's weighted Maglev (source/extensions/load_balancing_policies/maglev/):
// a backend of weight w takes a turn in iteration i only while i * w has reached its target,
// and each turn raises the target by the largest weight, so it claims w / max_weight entries
// per iteration. Integers throughout, so the table is the same on every machine.
//
// prepare() builds one table for the primaries and one for the backups, once per snapshot on
// the main thread; each worker's instance only reads them. A key whose backend is down (or was
// already tried by a retry) probes the following entries, so the keys of the backends that stay
// up keep their backend, and a key returns to its own backend when that one comes back.
// Requests without a key fall back to smooth weighted round-robin.
#include "balancer/maglev.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "balancer/policy.h"
#include "balancer/smooth_round_robin.h"

namespace sluice::balancer {
namespace maglev {
namespace {

struct BuildEntry {
  int32_t index;    // into pool.backends
  uint64_t offset;  // the first entry of its permutation
  uint64_t skip;    // the step of its permutation, in 1..kTableSize-1
  uint64_t weight;
  uint64_t next = 0;    // how far along its permutation it is
  uint64_t target = 0;  // weighted turns: it takes one when iteration * weight >= target
};

}  // namespace

std::vector<int32_t> build_table(const Pool& pool, bool backup) {
  std::vector<BuildEntry> entries;
  uint64_t max_weight = 1;
  for (size_t i = 0; i < pool.backends.size(); ++i) {
    const Backend& backend = pool.backends[i];
    if (backend.backup != backup) continue;
    // Two differently seeded hashes of the address, as the paper's h1 and h2.
    const uint64_t offset = hash_key(backend.address) % kTableSize;
    const uint64_t skip = hash_key(backend.address + "#maglev-skip") % (kTableSize - 1) + 1;
    const uint64_t weight = std::max<uint64_t>(backend.weight, 1);  // config keeps it 1..256
    entries.push_back(BuildEntry{static_cast<int32_t>(i), offset, skip, weight});
    max_weight = std::max(max_weight, weight);
  }
  if (entries.empty()) return {};
  // Turns go in address order, not config order: backends resolved from DNS come in any order.
  std::sort(entries.begin(), entries.end(), [&pool](const BuildEntry& a, const BuildEntry& b) {
    const Backend& x = pool.backends[a.index];
    const Backend& y = pool.backends[b.index];
    if (x.address != y.address) return x.address < y.address;
    if (a.weight != b.weight) return a.weight < b.weight;
    return a.index < b.index;
  });

  std::vector<int32_t> table(kTableSize, -1);
  uint32_t filled = 0;
  for (uint64_t iteration = 0; filled < kTableSize; ++iteration) {
    for (BuildEntry& entry : entries) {
      if (iteration * entry.weight < entry.target) continue;
      entry.target += max_weight;
      // Each permutation visits every entry once (kTableSize is prime), so a free one turns up.
      uint64_t slot = (entry.offset + entry.next * entry.skip) % kTableSize;
      while (table[slot] >= 0) slot = (entry.offset + ++entry.next * entry.skip) % kTableSize;
      ++entry.next;
      table[slot] = entry.index;
      if (++filled == kTableSize) break;
    }
  }
  return table;
}

}  // namespace maglev

namespace {

// A key whose entry's backend cannot take it looks at this many following entries before it
// falls back to a plain modulo over the candidates.
constexpr uint32_t kMaxProbes = 64;

class MaglevTable final : public PolicyTable {
 public:
  explicit MaglevTable(const Pool& pool)
      : primaries(maglev::build_table(pool, false)), backups(maglev::build_table(pool, true)) {}

  const std::vector<int32_t> primaries;
  const std::vector<int32_t> backups;
};

class Maglev final : public Policy {
 public:
  Maglev(const Pool& pool, const MaglevTable* table)
      : pool_(pool), table_(table), rotation_(pool), usable_(pool.backends.size(), 0) {}

  int pick(const PickRequest& request, const std::vector<int>& candidates) override {
    if (candidates.empty()) return -1;
    if (!request.has_key) return rotation_.pick(request, candidates);
    // Candidates are all primaries or all backups: look the key up in that tier's table.
    const std::vector<int32_t>* table = nullptr;
    if (table_ != nullptr)
      table = pool_.backends[candidates[0]].backup ? &table_->backups : &table_->primaries;
    int chosen = -1;
    if (table != nullptr && table->size() == maglev::kTableSize) {
      for (int i : candidates) usable_[i] = 1;
      uint32_t slot = static_cast<uint32_t>(request.key_hash % maglev::kTableSize);
      for (uint32_t probe = 0; probe <= kMaxProbes; ++probe) {
        const int32_t entry = (*table)[slot];
        if (entry >= 0 && static_cast<size_t>(entry) < usable_.size() && usable_[entry]) {
          chosen = entry;
          break;
        }
        slot = slot + 1 == maglev::kTableSize ? 0 : slot + 1;
      }
      for (int i : candidates) usable_[i] = 0;
    }
    if (chosen >= 0) return chosen;
    // Too many backends down around the key's entry (or no table): still a stable choice.
    return candidates[request.key_hash % candidates.size()];
  }

 private:
  const Pool& pool_;
  const MaglevTable* table_;     // shared by every worker's instance, only read
  SmoothRoundRobin rotation_;    // for requests without a key
  std::vector<uint8_t> usable_;  // per backend: among this pick's candidates; all 0 between picks
};

std::shared_ptr<const PolicyTable> prepare(const Pool& pool) {
  return std::make_shared<const MaglevTable>(pool);
}

std::unique_ptr<Policy> make(const Pool& pool, const PolicyTable* table) {
  return std::make_unique<Maglev>(pool, dynamic_cast<const MaglevTable*>(table));
}

}  // namespace

extern const PolicyType kMaglev{"hash", &prepare, &make, false, true};

}  // namespace sluice::balancer
