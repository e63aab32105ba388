// The phases of an exchange, in the order they run, and the interfaces a feature implements to
// take part in one. Each returns a closed set of values; none may do more than its phase allows.
// Chains are built once per config generation (core/server wires them), so a feature that is
// off has no entry and costs nothing on the request path.
//
//  1. ConnectionGate   at accept, by client address, before a byte is read: admit or refuse.
//  2. parse            the request head, strictly (core/http); limits answer 400/414/431.
//  3. RequestGate      each may let the request on or answer it itself (ACL, filters, limits,
//                      a cache lookup that hits).
//  4. target           the route, and through it the upstream (later: a forward-proxy origin).
//  5. source           the upstream relay: policy pick, pooled connection, safe retries
//                      (later: a cache hit, an admin page).
//  6. head rewrite     one pass over each head (core/http/head_writer).
//  7. ResponseTap      sees the response head and body slices as they pass, never copying them.
//  8. finish(outcome)  the one end of every exchange: fills the ExchangeRecord, then every
//     ExchangeObserver reads it (the access log, metrics).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conf/prefix_tree.h"
#include "core/http/http_head.h"
#include "core/io/buffer.h"
#include "core/proxy/exchange_record.h"

namespace sluice::core {

// An answer the proxy makes itself. Every locally made response goes through one path
// (Exchange::reply_locally), whoever decides on it.
struct LocalReply {
  int status = 500;
  std::string_view detail;  // the body's text, and the log's
  int retry_after_s = 0;    // sent as Retry-After when positive
  Outcome outcome = Outcome::kLocalReply;
  std::string_view header = {};  // one more response field, "Name: value" (empty: none)
};

// 5. A source that is not a backend: pages the proxy makes from its own state (the admin
// listener's). Runs on the worker; `page` starts as an empty 200 text/plain. Every method
// reaches it, since which a path takes is the page's business; `client` is the connection's
// peer, for pages that only a local client may use.
struct LocalPage {
  int status = 200;
  std::string_view content_type = "text/plain; charset=utf-8";
  std::string body;
};
class PageSource {
 public:
  virtual ~PageSource() = default;
  virtual void serve(const MessageHead& request, const conf::IpAddress& client,
                     LocalPage* page) = 0;
};
constexpr int32_t kAdminListener = -2;  // ClientSide::listener() of the admin listener

// 1. At accept: the peer's address (after a PROXY header, where used) as text and as the access
// tables match it, and the index in the snapshot's config of the listener it came in on (-1 for
// the admin listener).
enum class Admission : uint8_t { kAdmit, kRefuse };
struct ConnectionInput {
  std::string_view client;
  const conf::IpAddress& address;
  int32_t listener;
};
class ConnectionGate {
 public:
  virtual ~ConnectionGate() = default;
  virtual Admission admit(const ConnectionInput& input) const = 0;
};

// 3. Per request, after the head. kAnswer means `reply` is filled and goes to the client.
// `client` is the request's client: the connection's, or where trusted_proxies says so, the
// one X-Forwarded-For names.
enum class GateVerdict : uint8_t { kPass, kAnswer };
struct GateInput {
  const MessageHead& request;
  std::string_view client;
  const conf::IpAddress& address;  // `client` as the access tables match it
  int32_t route;                   // -1 when no route matched
  int32_t listener;                // its index in the snapshot's config (-1: the admin's)
};
class RequestGate {
 public:
  virtual ~RequestGate() = default;
  virtual GateVerdict check(const GateInput& input, LocalReply* reply) const = 0;
};

// 7. Sees the response as it is relayed. Slices are the bytes sent, valid during the call.
class ResponseTap {
 public:
  virtual ~ResponseTap() = default;
  virtual void on_head(const MessageHead& response) = 0;
  virtual void on_body(const Slice& bytes) = 0;
  virtual void on_end(bool complete) = 0;
};

// 8. Reads the record of every finished exchange. Runs on the worker: must not block.
class ExchangeObserver {
 public:
  virtual ~ExchangeObserver() = default;
  virtual void on_finish(const ExchangeRecord& record, const MessageHead* request) = 0;
};

// The chains of one config generation. Empty vectors when nothing is configured.
struct PhaseChains {
  std::vector<const ConnectionGate*> connection_gates;
  std::vector<const RequestGate*> request_gates;
  std::vector<ExchangeObserver*> observers;
};

}  // namespace sluice::core
