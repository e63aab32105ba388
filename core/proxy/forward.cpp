// Phase 4 on forward and intercept listeners: the request names its own destination. The
// exchange asks the worker's OriginSource (core/forward) for it, which may answer later (DNS),
// then goes on as for a route: the rewritten request to the origin, or for CONNECT a 200 and a
// tunnel over a connection of its own.
#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <uv.h>

#include <cstring>

#include "conf/ip_address.h"
#include "core/http/request_target.h"
#include "core/proxy/exchange.h"
#include "core/proxy/forwarding.h"

namespace sluice::core {
namespace {

bool https_target(std::string_view target) {
  if (target.size() < 6) return false;
  for (size_t i = 0; i < 5; ++i)
    if ((target[i] | 0x20) != "https"[i]) return false;
  return target[5] == ':';
}

uint16_t port_of(const sockaddr_storage& a) {
  return ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(a).sin6_port
                                       : reinterpret_cast<const sockaddr_in&>(a).sin_port);
}

bool unspecified(const conf::IpAddress& ip) {
  const size_t n = ip.family == AF_INET ? 4 : 16;
  for (size_t i = 0; i < n; ++i)
    if (ip.bytes[i] != 0) return false;
  return true;
}

// True when `d` is where one of this proxy's own listeners (or its admin listener) listens: a
// connection that was not redirected, or one sent back at us, would loop.
bool own_address(const conf::Config& config, const sockaddr_storage& d) {
  const conf::IpAddress ip = conf::ip_address(d);
  auto same = [&](const conf::SocketAddress& listener) {
    const conf::IpAddress mine = conf::ip_address(listener.storage);
    if (port_of(listener.storage) != port_of(d) || mine.family != ip.family) return false;
    return unspecified(mine) ||
           std::memcmp(mine.bytes, ip.bytes, ip.family == AF_INET ? 4 : 16) == 0;
  };
  for (const conf::ListenerConfig& l : config.listeners)
    if (same(l.address)) return true;
  return config.admin.enabled && same(config.admin.address);
}

}  // namespace

// Intercept: the client spoke to the origin's address and the kernel brought it here. The
// origin is that address as written, under the listener's allow list like any literal.
void Exchange::start_intercept(const conf::ListenerConfig& listener) {
  sockaddr_storage source, destination;
  if (!client_.connection_endpoints(&source, &destination))
    return reply_locally({400, "the connection's original destination is unknown"});
  if (own_address(generation_->snapshot->config, destination))
    return reply_locally({403,
                          "the destination is this proxy itself: not an intercepted connection", 0,
                          Outcome::kDenied});
  const conf::IpAddress ip = conf::ip_address(destination);
  char text[INET6_ADDRSTRLEN + 2];
  const bool v6 = ip.family == AF_INET6;
  conf::format_ip_address(ip, text + (v6 ? 1 : 0), sizeof text - 2);
  if (v6) {
    text[0] = '[';
    std::strcat(text, "]");
  }
  OriginQuery query;
  query.forward = &listener.forward;
  query.host = text;
  query.port = port_of(destination);
  finding_origin_ = true;
  starting_ = true;
  ctx_.origins->find(query, this);
  starting_ = false;
}

void Exchange::start_forward(const conf::ListenerConfig& listener) {
  if (!pass_gates()) return;  // access lists
  forward_ = true;
  forwarded_ = forwarded_mode(listener.forward.forwarded);
  if (!ctx_.origins) return reply_locally({502, "this worker has no forward proxy"});
  if (listener.mode == conf::ListenerMode::kIntercept) return start_intercept(listener);
  connect_ = request_->method == HTTP_CONNECT;
  OriginQuery query;
  query.forward = &listener.forward;
  request_->find(FieldKind::kProxyAuthorization, &query.credentials);  // users: checked first
  if (!request_->absolute_form())
    return reply_locally({400,
                          "a forward proxy takes absolute-form targets (GET http://host/path) "
                          "and CONNECT host:port"});
  if (!connect_ && https_target(request_->target()))
    return reply_locally({400, "an https:// target goes through CONNECT"});
  if (!split_authority(request_->host(), connect_ ? 0 : 80, &query.host, &query.port))
    return reply_locally({400, "the target names no usable host and port"});
  finding_origin_ = true;
  starting_ = true;
  ctx_.origins->find(query, this);
  starting_ = false;
}

void Exchange::on_origin(std::shared_ptr<const Origin> origin, const LocalReply* refusal) {
  finding_origin_ = false;
  if (refusal) {
    reply_locally(*refusal);
  } else {
    origin_ = std::move(origin);
    record_.origin = origin_->pool.name;
    if (connect_) {
      stage_ = Stage::kUpstream;
      attempt(RetryWhere::kOtherBackend);
    } else {
      send_upstream();
    }
  }
  if (!starting_) client_.settle();  // an answer that came later, from the loop
}

// CONNECT: the origin's connection is open. The client hears 200 and from then on the bytes
// pass raw both ways, as after a 101.
void Exchange::open_tunnel() {
  static constexpr std::string_view k200 = "HTTP/1.1 200 Connection established\r\n\r\n";
  Block* block = ctx_.blocks.acquire(k200.size());
  std::memcpy(block->data(), k200.data(), k200.size());
  Slice s{block, block->data(), k200.size()};
  record_.status = 200;
  record_.first_byte_ms = uv_now(ctx_.loop);
  record_.response_bytes += s.length;
  response_started_ = true;
  client_.send(&s, 1);
  block_unref(block);
  enter_tunnel(nullptr, nullptr, 0);
  client_.flush();
  client_.send_now();
}

}  // namespace sluice::core
