// What one exchange was, filled in as it runs and closed by Exchange::finish(): the one thing
// observers (the access log, metrics) read. Plain values only, so it costs nothing to keep.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/io/stream.h"

namespace sluice::core {

// How an exchange ended. Closed: a new way to end is a new value here, named in the docs.
enum class Outcome : uint8_t {
  kOk,               // the backend's response reached the client whole
  kLocalReply,       // the proxy answered itself (404, 503, 502 ...)
  kBadRequest,       // the client sent something we refused (400, 408, 413 ...)
  kClientAbort,      // the client went away or stopped reading before the end
  kUpstreamReset,    // the backend reset or closed mid-response
  kUpstreamTimeout,  // the backend did not answer or connect in time
  kBadResponse,      // the backend's response could not be relayed (framing, bad 101)
  kTunnelClosed,     // a protocol switch (101) or a CONNECT tunnel ran and both sides closed
  kQueueFull,        // 503: every backend was at max_connections and the queue was full
  kQueueTimeout,     // 503: no backend had room within the upstream's queue_timeout_ms
  kDenied,           // 403: the route's access list refused the client's address
  kRateLimited,      // 429: the client or the route was over its rate_limit
};

const char* outcome_name(Outcome outcome);

struct ExchangeRecord {
  uint64_t start_ms = 0;        // loop time when the request head was complete
  uint64_t first_byte_ms = 0;   // when the backend's response head arrived (0: none)
  uint64_t end_ms = 0;          // when finish() ran
  uint64_t request_bytes = 0;   // body bytes taken from the client
  uint64_t response_bytes = 0;  // bytes sent to the client, head included
  int32_t route = -1;           // index in the snapshot's routes
  int32_t upstream = -1;        // index in the snapshot's upstreams
  int32_t backend = -1;         // the last backend tried
  uint16_t status = 0;          // status sent to the client (0: none)
  uint8_t attempts = 0;         // backends tried, retries included
  bool local = false;           // the proxy made the response itself (reply_locally, a page)
  Outcome outcome = Outcome::kClientAbort;
  // The client connection's TLS version, SNI and verified certificate subject; null over TCP.
  // Valid while the observer runs.
  const TransportFacts* tls = nullptr;
  std::string_view request_id;  // empty when request IDs are off; valid while observers run
  std::string_view client_ip;   // after a PROXY header, where one is used
  uint16_t client_port = 0;
  int32_t listener = 0;  // the listener's id (stable across reloads); kAdminListener for admin
  // A forward proxy's destination, "host:port" (upstream is -1); valid while observers run.
  std::string_view origin;
  // What a route's cache did: "hit", "miss", "stale", "revalidated", "collapsed", "bypass";
  // empty on a route without one. Static text.
  std::string_view cache;
};

}  // namespace sluice::core
