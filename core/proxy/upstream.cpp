// Upstream connections and the per-worker pool of idle ones.
#include "core/proxy/upstream.h"

#include "core/io/tcp_stream.h"
#include "core/proxy/worker_context.h"

namespace sluice::core {
namespace {
// Responses come from backends we chose, but their heads are still bounded.
constexpr ParseLimits kResponseLimits{8192, 65536, 256};
}  // namespace

UpstreamConnection::UpstreamConnection(WorkerContext& ctx, std::string_view key, uint64_t key_hash)
    : ctx_(ctx),
      parser_(HttpParser::Kind::kResponse, ctx.heads, kResponseLimits),
      key_(key),
      key_hash_(key_hash) {
  deadline_.init(ctx.loop, &UpstreamConnection::on_deadline, this);
}

UpstreamConnection* UpstreamConnection::open(WorkerContext& ctx, std::string_view key,
                                             uint64_t key_hash, const sockaddr* address,
                                             UpstreamUser* user, int* error) {
  auto* conn = new UpstreamConnection(ctx, key, key_hash);
  TcpStream* tcp = TcpStream::connect(ctx.loop, ctx.blocks, address,
                                      &UpstreamConnection::on_connect, conn, error);
  if (!tcp) {
    conn->destroy();
    return nullptr;
  }
  tcp->use_bulk_blocks(&ctx.bulk_blocks);
  conn->stream_ = tcp;
  conn->stream_->set_handler(conn);
  conn->user_ = user;
  return conn;
}

void UpstreamConnection::on_connect(void* self, int status) {
  auto* conn = static_cast<UpstreamConnection*>(self);
  if (status == 0) {
    conn->connected_ = true;
    conn->stream_->read_start();
  }
  if (conn->user_) conn->user_->on_upstream_connected(status);
}

void UpstreamConnection::on_deadline(void* self) {
  auto* conn = static_cast<UpstreamConnection*>(self);
  if (conn->idle) {
    conn->ctx_.upstreams.remove(conn);
    conn->destroy();
  } else if (conn->user_) {
    conn->user_->on_upstream_timeout();
  }
}

void UpstreamConnection::on_read(Block* block, const char* data, size_t length) {
  if (user_) {
    user_->on_upstream_read(block, data, length);
    return;
  }
  // Bytes on an idle connection answer no request: the connection cannot be trusted again.
  ctx_.upstreams.remove(this);
  destroy();
}

void UpstreamConnection::on_eof() {
  if (user_) {
    user_->on_upstream_eof();
    return;
  }
  ctx_.upstreams.remove(this);
  destroy();
}

void UpstreamConnection::on_error(int uv_error) {
  if (user_) {
    user_->on_upstream_error(uv_error);
    return;
  }
  ctx_.upstreams.remove(this);
  destroy();
}

void UpstreamConnection::on_drained() {
  if (user_) user_->on_upstream_drained();
}

void UpstreamConnection::destroy() {
  user_ = nullptr;
  if (stream_) stream_->close();
  stream_ = nullptr;
  if (HttpParser* p = &parser_; p->head()) ctx_.heads.release(p->release_head());
  deadline_.close([](void* self) { delete static_cast<UpstreamConnection*>(self); });
}

UpstreamConnection* UpstreamPool::take(uint64_t key_hash, const std::string& key) {
  auto it = idle_.find(key_hash);
  if (it == idle_.end() || it->second.head == nullptr) return nullptr;
  UpstreamConnection* conn = it->second.head;
  if (conn->key() != key) return nullptr;  // two addresses with one hash: just do not share
  remove(conn);
  return conn;
}

void UpstreamPool::put(UpstreamConnection* conn, uint32_t max_idle, uint32_t idle_timeout_ms) {
  IdleList& list = idle_[conn->key_hash()];
  if (list.count >= max_idle) {
    conn->destroy();
    return;
  }
  conn->attach(nullptr);
  conn->idle = true;
  conn->idle_prev = nullptr;
  conn->idle_next = list.head;
  if (list.head) list.head->idle_prev = conn;
  list.head = conn;
  ++list.count;
  ++total_;
  conn->deadline().set(idle_timeout_ms);
}

void UpstreamPool::remove(UpstreamConnection* conn) {
  if (!conn->idle) return;
  IdleList& list = idle_[conn->key_hash()];
  if (conn->idle_prev)
    conn->idle_prev->idle_next = conn->idle_next;
  else
    list.head = conn->idle_next;
  if (conn->idle_next) conn->idle_next->idle_prev = conn->idle_prev;
  conn->idle_prev = conn->idle_next = nullptr;
  conn->idle = false;
  --list.count;
  --total_;
}

void UpstreamPool::close_all() {
  for (auto& [key, list] : idle_) {
    while (list.head) {
      UpstreamConnection* conn = list.head;
      remove(conn);
      conn->destroy();
    }
  }
}

}  // namespace sluice::core
