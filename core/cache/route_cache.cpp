// What a cached route does with a request: answer from the store, wait on a fetch in flight,
// fetch (a miss, a revalidation), or stay out of the way while invalidating for unsafe methods.
#include "core/cache/route_cache.h"

#include <llhttp.h>

#include <algorithm>

#include "core/cache/answer.h"
#include "core/cache/fill.h"
#include "core/cache/freshness.h"
#include "core/proxy/client_side.h"

namespace sluice::core::cache {

namespace {

bool safe_method(uint8_t method) {
  return method == HTTP_GET || method == HTTP_HEAD || method == HTTP_OPTIONS ||
         method == HTTP_TRACE;
}

void stale_status(const StoredResponse& stored, int64_t now, const char* detail, char* out,
                  size_t size) {
  const int64_t ttl = stored.freshness_lifetime - stored.current_age(now);
  std::snprintf(out, size, "sluice; hit; ttl=%lld%s%s", static_cast<long long>(ttl),
                detail ? "; detail=" : "", detail ? detail : "");
}

}  // namespace

std::string cache_origin(std::string_view scheme, std::string_view host) {
  std::string origin;
  origin.reserve(scheme.size() + 3 + host.size());
  origin.append(scheme).append("://");
  for (char c : host) origin.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
  return origin;
}

std::string cache_key(std::string_view scheme, const MessageHead& request) {
  std::string key = cache_origin(scheme, request.host());
  key.append(request.origin_target());
  return key;
}

std::shared_ptr<Flight> SharedCache::flight(const std::string& key) {
  std::lock_guard<std::mutex> hold(flights_lock_);
  auto it = flights_.find(key);
  return it == flights_.end() ? nullptr : it->second;
}

std::shared_ptr<Flight> SharedCache::start_flight(const std::string& key) {
  std::lock_guard<std::mutex> hold(flights_lock_);
  std::shared_ptr<Flight>& slot = flights_[key];
  if (slot) return nullptr;
  slot = std::make_shared<Flight>();
  return slot;
}

void SharedCache::end_flight(const std::string& key, const Flight* flight) {
  std::lock_guard<std::mutex> hold(flights_lock_);
  auto it = flights_.find(key);
  if (it != flights_.end() && it->second.get() == flight) flights_.erase(it);
}

CacheFigures WorkerCache::figures() const {
  const CacheCounters& c = shared_->counters;
  Store& store = shared_->store;
  const StoreCounters& s = store.counters();
  CacheFigures f;
  f.hits = c.hits.load(std::memory_order_relaxed);
  f.misses = c.misses.load(std::memory_order_relaxed);
  f.stale = c.stale.load(std::memory_order_relaxed);
  f.revalidated = c.revalidated.load(std::memory_order_relaxed);
  f.collapsed = c.collapsed.load(std::memory_order_relaxed);
  f.bypassed = c.bypassed.load(std::memory_order_relaxed);
  f.stored = s.stored.load(std::memory_order_relaxed);
  f.evicted = s.evicted.load(std::memory_order_relaxed);
  f.invalidated = s.invalidated.load(std::memory_order_relaxed);
  f.bytes = store.bytes();
  f.entries = store.count();
  f.max_bytes = store.max_bytes();
  return f;
}

CacheStep WorkerCache::begin(const CacheQuery& query, ClientSide& client, CacheWaiter* waiter,
                             std::unique_ptr<CacheTicket>* ticket, CachedAnswer* answer) {
  const MessageHead& request = query.request;
  if (!safe_method(request.method)) {  // it may change what is stored: drop that if it does
    shared_->counters.bypassed.fetch_add(1, std::memory_order_relaxed);
    *ticket = std::make_unique<Invalidation>(*this, request, cache_key(query.scheme, request),
                                             query.scheme);
    return CacheStep::kBypass;
  }
  // A GET with a body is no request a cache answers (RFC 9110 9.3.1 gives the body no
  // meaning), and a body could not wait on another request's fetch.
  if ((request.method != HTTP_GET && request.method != HTTP_HEAD) || request.upgrade ||
      request.framing != Framing::kNone) {
    shared_->counters.bypassed.fetch_add(1, std::memory_order_relaxed);
    return CacheStep::kBypass;
  }
  return lookup(query, client, waiter, ticket, answer);
}

CacheStep WorkerCache::lookup(const CacheQuery& query, ClientSide& client, CacheWaiter* waiter,
                              std::unique_ptr<CacheTicket>* ticket, CachedAnswer* answer) {
  const MessageHead& request = query.request;
  const CacheControl request_cc = cache_control_of(request);
  CacheCounters& counters = shared_->counters;
  if (request_cc.no_store) {  // neither served from nor stored
    counters.bypassed.fetch_add(1, std::memory_order_relaxed);
    return CacheStep::kBypass;
  }
  std::string key = cache_key(query.scheme, request);
  const int64_t now = wall_seconds();
  std::shared_ptr<const StoredResponse> stored = shared_->store.find(key, request);
  char status[96];
  if (stored) {
    switch (reuse(*stored, request_cc, now)) {
      case Reuse::kFresh:
        counters.hits.fetch_add(1, std::memory_order_relaxed);
        std::snprintf(
            status, sizeof status, "sluice; hit; ttl=%lld",
            static_cast<long long>(stored->freshness_lifetime - stored->current_age(now)));
        *answer = cache::answer(stored, query, client, status, now);
        return CacheStep::kAnswered;
      case Reuse::kStale:
        counters.stale.fetch_add(1, std::memory_order_relaxed);
        stale_status(*stored, now, "max-stale", status, sizeof status);
        *answer = cache::answer(stored, query, client, status, now);
        answer->outcome = "stale";
        return CacheStep::kAnswered;
      case Reuse::kStaleRefresh: {
        counters.stale.fetch_add(1, std::memory_order_relaxed);
        stale_status(*stored, now, "stale-while-revalidate", status, sizeof status);
        *answer = cache::answer(stored, query, client, status, now);
        answer->outcome = "stale";
        // One refresh per stale response, whoever serves it first, and by a GET: a HEAD's
        // answer could not be stored.
        if (request.method != HTTP_GET || stored->refreshing.exchange(true))
          return CacheStep::kAnswered;
        *ticket = std::make_unique<Fill>(*this, query, client, std::move(key), request_cc,
                                         std::move(stored), Fill::Mode::kRefresh);
        return CacheStep::kRefresh;
      }
      case Reuse::kRevalidate:
        if (request_cc.only_if_cached) break;
        counters.misses.fetch_add(1, std::memory_order_relaxed);
        *ticket = std::make_unique<Fill>(*this, query, client, std::move(key), request_cc,
                                         std::move(stored), Fill::Mode::kRevalidate);
        return CacheStep::kFetch;
      case Reuse::kFetch:
        break;
    }
  }
  if (request_cc.only_if_cached) {  // RFC 9111 5.2.1.7
    Slice s = write_error_response(query.blocks, 504, "only-if-cached: nothing usable is stored",
                                   query.rewrite.keep_alive, 0, query.rewrite.request_id);
    client.send(&s, 1);
    block_unref(s.block);
    *answer = CachedAnswer{504, s.length, "miss"};
    return CacheStep::kAnswered;
  }
  if (request.method == HTTP_HEAD) {  // HEAD is answered from GET's response, never stores one
    counters.bypassed.fetch_add(1, std::memory_order_relaxed);
    return CacheStep::kBypass;
  }
  if (!request_cc.no_cache && !stored && shared_->config.collapse_wait_ms > 0) {
    if (std::shared_ptr<Flight> flight = shared_->flight(key)) {
      auto wait = std::make_unique<Wait>(*this, std::move(flight), query, client, waiter);
      *ticket = std::move(wait);
      wake_->wake();  // what the fetch has brought so far goes on the next turn of the loop
      return CacheStep::kWait;
    }
  }
  counters.misses.fetch_add(1, std::memory_order_relaxed);
  *ticket = std::make_unique<Fill>(*this, query, client, std::move(key), request_cc,
                                   std::move(stored), Fill::Mode::kMiss);
  return CacheStep::kFetch;
}

// RFC 9111 4.4: a non-error answer to an unsafe method invalidates the target, and the
// Location and Content-Location URIs when they have the same origin.
TapStep Invalidation::on_response_head(const MessageHead& response, std::string_view*,
                                       CachedAnswer*) {
  if (response.status < 200 || response.status >= 400) return TapStep::kRelay;
  cache_.shared().store.erase(key_);
  std::string_view value;
  if (response.find("Location", &value)) invalidate_location(value);
  if (response.find("Content-Location", &value)) invalidate_location(value);
  return TapStep::kRelay;
}

void Invalidation::invalidate_location(std::string_view value) {
  if (value.empty()) return;
  std::string key = cache_origin(scheme_, request_.host());
  if (value[0] == '/' && (value.size() == 1 || value[1] != '/')) {  // a path on this origin
    key.append(value);
    cache_.shared().store.erase(key);
    return;
  }
  // An absolute URI counts when its scheme and host are the request's (case-insensitive).
  const size_t scheme_end = value.find("://");
  if (scheme_end == std::string_view::npos) return;
  const size_t host_end = std::min(value.find('/', scheme_end + 3), value.size());
  if (!equals_ignore_case(value.substr(0, host_end), key)) return;
  key.append(host_end < value.size() ? value.substr(host_end) : std::string_view("/"));
  cache_.shared().store.erase(key);
}

}  // namespace sluice::core::cache
