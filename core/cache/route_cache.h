// A route's cache: what every worker shares (settings, the store, counters), carried across
// reloads while the route's cache settings stay, and on each worker the ResponseCache its
// exchanges ask, which knows the fetches in flight there so that concurrent misses for one
// response make one backend request and are served from it as it streams in.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "conf/config.h"
#include "core/cache/cache_control.h"
#include "core/cache/store.h"
#include "core/proxy/response_cache.h"

namespace sluice::core::cache {

// What the cache did, for /metrics; summed over workers by being shared.
struct CacheCounters {
  std::atomic<uint64_t> hits{0};         // answered from a fresh stored response
  std::atomic<uint64_t> misses{0};       // fetched: nothing usable was stored
  std::atomic<uint64_t> stale{0};        // answered stale (max-stale, stale-while-revalidate,
                                         // stale-if-error)
  std::atomic<uint64_t> revalidated{0};  // a 304 refreshed a stored response
  std::atomic<uint64_t> collapsed{0};    // waited on another exchange's fetch
  std::atomic<uint64_t> bypassed{0};     // not the cache's business (methods, no-store ...)
};

struct SharedCache {
  explicit SharedCache(const conf::CacheConfig& c) : config(c), store(c.max_bytes) {}
  const conf::CacheConfig config;
  Store store;
  CacheCounters counters;
};

class Fill;

class WorkerCache final : public ResponseCache {
 public:
  explicit WorkerCache(std::shared_ptr<SharedCache> shared) : shared_(std::move(shared)) {}
  CacheStep begin(const CacheQuery& query, ClientSide& client, CacheWaiter* waiter,
                  std::unique_ptr<CacheTicket>* ticket, CachedAnswer* answer) override;
  CacheFigures figures() const override;

  SharedCache& shared() { return *shared_; }
  // Fetches in flight on this worker, by key: one per key, which later misses wait on.
  Fill* fetching(const std::string& key) const;
  void start_fetching(const std::string& key, Fill* fill) { fetching_[key] = fill; }
  void stop_fetching(const std::string& key, Fill* fill);

 private:
  CacheStep lookup(const CacheQuery& query, ClientSide& client, CacheWaiter* waiter,
                   std::unique_ptr<CacheTicket>* ticket, CachedAnswer* answer);

  std::shared_ptr<SharedCache> shared_;
  std::unordered_map<std::string, Fill*> fetching_;
};

// The primary key of a request (RFC 9111 4): scheme, the host in lower case, and the target
// as the backend gets it. The method is not part of it: HEAD is answered from GET's response.
std::string cache_key(std::string_view scheme, const MessageHead& request);

// The wall clock in whole seconds, which every worker reads alike.
int64_t wall_seconds();

}  // namespace sluice::core::cache
