// A route's cache: what every worker shares (settings, the store, counters, the fetches in
// flight that concurrent misses wait on), carried across reloads while the route's cache
// settings stay, and on each worker the ResponseCache its exchanges ask.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "conf/config.h"
#include "core/cache/cache_control.h"
#include "core/cache/clock.h"
#include "core/cache/flight.h"
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

class SharedCache {
 public:
  explicit SharedCache(const conf::CacheConfig& c) : config(c), store(c.max_bytes) {}
  const conf::CacheConfig config;
  Store store;
  CacheCounters counters;

  // Fetches in flight, one per key at most, over every worker.
  std::shared_ptr<Flight> flight(const std::string& key);
  // A new flight for `key`, or null when one is in flight already.
  std::shared_ptr<Flight> start_flight(const std::string& key);
  void end_flight(const std::string& key, const Flight* flight);

 private:
  std::mutex flights_lock_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

class WorkerCache final : public ResponseCache {
 public:
  WorkerCache(std::shared_ptr<SharedCache> shared, std::shared_ptr<WorkerWake> wake)
      : shared_(std::move(shared)), wake_(std::move(wake)) {}
  CacheStep begin(const CacheQuery& query, ClientSide& client, CacheWaiter* waiter,
                  std::unique_ptr<CacheTicket>* ticket, CachedAnswer* answer) override;
  CacheFigures figures() const override;

  SharedCache& shared() { return *shared_; }
  const std::shared_ptr<WorkerWake>& wake() const { return wake_; }

 private:
  CacheStep lookup(const CacheQuery& query, ClientSide& client, CacheWaiter* waiter,
                   std::unique_ptr<CacheTicket>* ticket, CachedAnswer* answer);

  std::shared_ptr<SharedCache> shared_;
  std::shared_ptr<WorkerWake> wake_;
};

// The primary key of a request (RFC 9111 4): its origin ("scheme://host", the host in lower
// case) and the target as the backend gets it. The method is not part of it: HEAD is answered
// from GET's response.
std::string cache_origin(std::string_view scheme, std::string_view host);
std::string cache_key(std::string_view scheme, const MessageHead& request);

}  // namespace sluice::core::cache
