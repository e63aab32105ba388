// After a 101: raw bytes both ways between the client and the backend, each direction with its
// own backpressure, until both sides have closed. A CONNECT tunnel (forward.cpp) runs here too.
#include "core/proxy/exchange.h"

namespace sluice::core {

void Exchange::enter_tunnel(Block* block, const char* data, size_t length) {
  stage_ = Stage::kTunnel;
  upstream_->deadline().clear();
  if (length > 0) {
    Slice s{block, data, length};
    record_.response_bytes += length;
    client_.send(&s, 1);
  }
  Slice early = client_.begin_tunnel();  // client bytes that followed the request
  if (early.block) {
    record_.request_bytes += early.length;
    upstream_->stream().write(&early, 1);
    block_unref(early.block);
  }
}

void Exchange::tunnel_to_backend(Block* block, const char* data, size_t length) {
  Slice s{block, data, length};
  if (!upstream_ || upstream_->stream().write(&s, 1) != 0) return abort(Outcome::kTunnelClosed);
  record_.request_bytes += length;
  if (upstream_->stream().queued_bytes() > kHighWater) {
    client_.pause_request();
    upstream_->stream().notify_drained();
  }
}

void Exchange::tunnel_to_client(Block* block, const char* data, size_t length) {
  Slice s{block, data, length};
  record_.response_bytes += length;
  client_.send(&s, 1);
  client_.flush();
  client_.send_now();
  if (client_.backlogged()) {
    upstream_->stream().read_stop();
    client_.wait_for_client(false);
  }
}

void Exchange::on_tunnel_eof() {
  upstream_eof_ = true;
  client_.half_close();
  if (client_eof_) abort(Outcome::kTunnelClosed);
}

void Exchange::on_client_eof() {
  client_eof_ = true;
  if (upstream_) upstream_->stream().shutdown_write();
  if (upstream_eof_) abort(Outcome::kTunnelClosed);
}

}  // namespace sluice::core
