// Phases 5 and 7 for a route with a cache (core/cache implements them): a source that may answer
// a request from stored responses, and a tap that stores what the backend sends. The exchange
// asks a route's ResponseCache once per request; what follows is between the exchange and the
// CacheTicket it gets back, so nothing of one request's caching outlives it.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "core/http/head_writer.h"
#include "core/http/http_head.h"
#include "core/io/buffer.h"

namespace sluice::core {

class ClientSide;
class UpstreamConnection;
struct Generation;
struct WorkerContext;
}  // namespace sluice::core
namespace sluice::balancer {
struct BackendState;
}  // namespace sluice::balancer
namespace sluice::core {

// A backend response an exchange hands to its cache ticket to read to the end on its own
// (CacheTicket::carry_on), with what the exchange held for it.
struct CarriedFetch {
  UpstreamConnection* connection;
  WorkerContext& ctx;
  Generation* generation;  // the exchange's: held until the fetch ends
  uint32_t response_timeout_ms;
  const char* unread = "";  // response bytes received after the head, not parsed yet
  size_t unread_length = 0;
  // The backend's in-flight count and max_connections slot, given back when the fetch ends.
  balancer::BackendState* counted = nullptr;
  const balancer::BackendState* slot = nullptr;
  std::string_view upstream = {};
};

// A response the cache sent the client itself: what the exchange's record needs of it.
struct CachedAnswer {
  uint16_t status = 0;
  uint64_t bytes = 0;                // head and body
  std::string_view outcome = "hit";  // for the record: "hit", "stale" ...
};

// What a cache makes of a request.
enum class CacheStep : uint8_t {
  kAnswered,  // the whole response went to the client's send(): flush and end the exchange
  kFetch,     // go to the backend, with the ticket tapping (and perhaps replacing) the response
  kWait,      // another exchange is fetching the same response: the ticket calls back
  kBypass,    // nothing here for the cache (an unsafe method it only invalidates for, say)
  kRefresh,   // as kAnswered (stale-while-revalidate), then go to the backend all the same:
              // the ticket refreshes what is stored, and nothing of it goes to the client
};

// How the exchange hears from a ticket that waits (kWait) for another exchange's response.
class CacheWaiter {
 public:
  virtual void on_cache_head(const CachedAnswer& answer) = 0;  // a head went to send()
  virtual void on_cache_body(uint64_t bytes) = 0;              // more body went to send()
  virtual void on_cache_end(bool complete) = 0;                // the response ended (or broke off)
  virtual void on_cache_fetch() = 0;  // waiting is over without an answer: go to the backend

 protected:
  ~CacheWaiter() = default;
};

// What the backend's response head means to a fetching ticket.
enum class TapStep : uint8_t {
  kRelay,   // relay it (with `extra` fields in its head); the body comes to on_body()
  kServed,  // the ticket sent an answer of its own (after a 304, or stale for a 5xx): drop it
};

// One request's business with a cache; owned by its exchange.
class CacheTicket {
 public:
  virtual ~CacheTicket() = default;
  // kFetch: fields for the request toward the backend ("Name: value\r\n"...), the validators
  // of a stored response being revalidated; empty for a plain miss.
  virtual std::string_view request_fields() const = 0;
  virtual TapStep on_response_head(const MessageHead& response, std::string_view* extra,
                                   CachedAnswer* answer) = 0;
  // The response body as it arrives, without chunk framing.
  virtual void on_body(const char* data, size_t length) = 0;
  virtual void on_end(bool complete) = 0;
  // The backend failed or could not be reached: true when a stale response went out instead
  // of the error (stale-if-error).
  virtual bool on_error(CachedAnswer* answer) = 0;
  // For the record: "hit", "miss", "stale", "revalidated", "collapsed", "bypass" ...
  virtual std::string_view outcome() const = 0;
  // The exchange is ending while the backend is still sending the body (its client went away,
  // or a refresh's client has its answer): true when the ticket reads the rest itself. It then
  // owns the connection, what the exchange held for it, and itself; the exchange lets go of
  // them without closing, giving back or deleting anything.
  virtual bool carry_on(const CarriedFetch&) { return false; }
};

// A request as the cache sees it.
struct CacheQuery {
  const MessageHead& request;
  std::string_view scheme;  // "http" or "https": part of the key
  ResponseRewrite rewrite;  // how a response head for this client is written
  BlockPool& blocks;        // where answer heads are written
};

// What a route's cache has done and holds, over every worker, for /metrics: plain numbers, so
// that the pages need not know the cache's types.
struct CacheFigures {
  uint64_t hits = 0, misses = 0, stale = 0, revalidated = 0, collapsed = 0, bypassed = 0;
  uint64_t stored = 0, evicted = 0, invalidated = 0;
  uint64_t bytes = 0, entries = 0, max_bytes = 0;
};

// A route's cache on one worker.
class ResponseCache {
 public:
  virtual ~ResponseCache() = default;
  // Fills *answer for kAnswered and kRefresh, and sets *ticket for kFetch, kWait, kRefresh and
  // (where the response matters to it) kBypass.
  virtual CacheStep begin(const CacheQuery& query, ClientSide& client, CacheWaiter* waiter,
                          std::unique_ptr<CacheTicket>* ticket, CachedAnswer* answer) = 0;
  virtual CacheFigures figures() const = 0;
};

}  // namespace sluice::core
