// Upstream connections and the per-worker pool of idle ones.
#include "core/proxy/upstream.h"

#include "core/proxy/worker_context.h"

namespace sluice::core {
namespace {
// Responses come from backends we chose, but their heads are still bounded.
constexpr ParseLimits kResponseLimits{8192, 65536, 256};

// Idle lists are per backend address and transport.
uint64_t idle_key(uint64_t key_hash, const Connector* connector) {
  return key_hash ^ (reinterpret_cast<uintptr_t>(connector) * 0x9E3779B97F4A7C15ull);
}
}  // namespace

UpstreamConnection::UpstreamConnection(WorkerContext& ctx, const Connector* connector,
                                       std::string_view key, uint64_t key_hash)
    : ctx_(ctx),
      connector_(connector),
      parser_(HttpParser::Kind::kResponse, ctx.heads, kResponseLimits),
      key_(key),
      key_hash_(key_hash) {
  deadline_.init(ctx.loop, &UpstreamConnection::on_deadline, this);
}

UpstreamConnection* UpstreamConnection::open(WorkerContext& ctx, Connector& connector,
                                             std::string_view key, uint64_t key_hash,
                                             const sockaddr* address, std::string_view preface,
                                             UpstreamUser* user, int* error) {
  auto* conn = new UpstreamConnection(ctx, &connector, key, key_hash);
  conn->stream_ = connector.connect(address, preface, conn, error);
  if (!conn->stream_) {
    conn->destroy();
    return nullptr;
  }
  conn->user_ = user;
  return conn;
}

void UpstreamConnection::on_connected(int status) {
  if (status == 0) {
    connected_ = true;
    stream_->read_start();
  }
  if (user_) user_->on_upstream_connected(status);
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

UpstreamConnection* UpstreamPool::take(uint64_t key_hash, const std::string& key,
                                       const Connector* connector, uint64_t now_ms,
                                       uint64_t max_idle_ms) {
  auto it = idle_.find(idle_key(key_hash, connector));
  if (it == idle_.end() || it->second.head == nullptr) return nullptr;
  UpstreamConnection* conn = it->second.head;
  // Two addresses with one hash, or one address under two transports: just do not share.
  if (conn->key() != key || conn->connector() != connector) return nullptr;
  if (now_ms - conn->idle_since_ms() >= max_idle_ms) return nullptr;  // the rest idled longer
  remove(conn);
  return conn;
}

void UpstreamPool::put(UpstreamConnection* conn, uint32_t max_idle, uint32_t idle_timeout_ms,
                       uint64_t now_ms) {
  if (!conn->idle_list_) conn->idle_list_ = &idle_[idle_key(conn->key_hash(), conn->connector())];
  IdleList& list = *conn->idle_list_;
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
  total_.add();
  conn->idle_since_ms_ = now_ms;
  const uint32_t backend_limit = conn->backend_idle_limit_ms_;
  conn->deadline().set(backend_limit > 0 && backend_limit < idle_timeout_ms ? backend_limit
                                                                            : idle_timeout_ms);
}

void UpstreamPool::remove(UpstreamConnection* conn) {
  if (!conn->idle) return;
  if (!conn->idle_list_) conn->idle_list_ = &idle_[idle_key(conn->key_hash(), conn->connector())];
  IdleList& list = *conn->idle_list_;
  if (conn->idle_prev)
    conn->idle_prev->idle_next = conn->idle_next;
  else
    list.head = conn->idle_next;
  if (conn->idle_next) conn->idle_next->idle_prev = conn->idle_prev;
  conn->idle_prev = conn->idle_next = nullptr;
  conn->idle = false;
  --list.count;
  total_.sub();
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

uint32_t backend_idle_limit_ms(const MessageHead& response) {
  std::string_view value;
  if (!response.find(FieldKind::kKeepAlive, &value)) return 0;
  // Keep-Alive: timeout=5, max=1000 (parameters in any order, spaces allowed around them).
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    if (item.size() < 8 || !equals_ignore_case(item.substr(0, 8), "timeout=")) continue;
    uint64_t seconds = 0;
    size_t i = 8;
    for (; i < item.size() && item[i] >= '0' && item[i] <= '9' && seconds < 1'000'000; ++i)
      seconds = seconds * 10 + static_cast<uint64_t>(item[i] - '0');
    if (i == 8) return 0;
    if (seconds == 0) return 1;  // closes at once: never worth pooling for long
    return static_cast<uint32_t>(seconds == 1 ? 500 : (seconds - 1) * 1000);
  }
  return 0;
}

}  // namespace sluice::core
