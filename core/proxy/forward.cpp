// Phase 4 on forward and intercept listeners: the request names its own destination. The
// exchange asks the worker's OriginSource (core/forward) for it, which may answer later (DNS),
// then goes on as for a route: the rewritten request to the origin, or for CONNECT a 200 and a
// tunnel over a connection of its own.
#include <llhttp.h>
#include <uv.h>

#include <cstring>

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

}  // namespace

void Exchange::start_forward(const conf::ListenerConfig& listener) {
  if (!pass_gates()) return;  // access lists, and the forward proxy's users (a 407)
  forward_ = true;
  forwarded_ = forwarded_mode(listener.forward.forwarded);
  connect_ = request_->method == HTTP_CONNECT;
  OriginQuery query;
  query.forward = &listener.forward;
  if (!request_->absolute_form())
    return reply_locally({400,
                          "a forward proxy takes absolute-form targets (GET http://host/path) "
                          "and CONNECT host:port"});
  if (!connect_ && https_target(request_->target()))
    return reply_locally({400, "an https:// target goes through CONNECT"});
  if (!split_authority(request_->host(), connect_ ? 0 : 80, &query.host, &query.port))
    return reply_locally({400, "the target names no usable host and port"});
  if (!ctx_.origins) return reply_locally({502, "this worker has no forward proxy"});
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
