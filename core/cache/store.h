// The responses of one route's cache, shared by every worker: 16 shards by key hash, each
// with its own lock, map and LRU list, so two workers contend only when their keys share a
// shard, and then for a lookup's length. max_bytes bounds the whole store: a store that
// grows past it evicts the least recently used responses of all its shards.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/cache/stored_response.h"
#include "core/http/http_head.h"

namespace sluice::core::cache {

// What happened in a store, for /metrics (each counter only grows).
struct StoreCounters {
  std::atomic<uint64_t> stored{0};
  std::atomic<uint64_t> evicted{0};
  std::atomic<uint64_t> invalidated{0};
};

class Store {
 public:
  explicit Store(uint64_t max_bytes) : max_bytes_(max_bytes) {}
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The stored response for `key` whose Vary fields match `request`, or null. A hit moves it
  // to the front of its shard's LRU list.
  std::shared_ptr<const StoredResponse> find(const std::string& key, const MessageHead& request);
  // Stores `response` in place of any whose Vary fields hold the same values, then evicts
  // while the store is over max_bytes. A response larger than max_bytes is not stored.
  void put(std::shared_ptr<const StoredResponse> response);
  // Drops every response stored under `key` (all its variants). Returns how many went.
  size_t erase(const std::string& key);
  // Drops every response whose key starts with `prefix`. Returns how many went.
  size_t erase_prefix(std::string_view prefix);

  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  uint64_t max_bytes() const { return max_bytes_; }
  size_t count() const;
  StoreCounters& counters() { return counters_; }

 private:
  static constexpr size_t kShards = 16;
  struct Entry {
    std::shared_ptr<const StoredResponse> response;
    uint64_t used_ns;  // when it was stored or last served (steady clock)
  };
  using Position = std::list<Entry>::iterator;
  struct Shard {
    // LRU order, most recent first; the map holds each key's variants as list positions.
    std::list<Entry> lru;
    std::unordered_map<std::string, std::vector<Position>> keys;
    mutable std::mutex lock;
  };
  Shard& shard_of(const std::string& key);
  void drop(Shard& shard, Position at);
  // Evicts the least recently used response of the whole store: the oldest of the shards'
  // last entries. False when the store is empty.
  bool evict_one();

  const uint64_t max_bytes_;
  std::atomic<uint64_t> bytes_{0};
  std::array<Shard, kShards> shards_;
  StoreCounters counters_;
};

// True when `request` has the values `stored` was selected by (RFC 9111 4.1).
bool vary_matches(const StoredResponse& stored, const MessageHead& request);
// The request's value of a field Vary names, normalised: lines joined by ",", spaces around
// commas dropped, lower case for the fields whose values are case-insensitive.
bool vary_value(const MessageHead& request, std::string_view name, std::string* value);

}  // namespace sluice::core::cache
