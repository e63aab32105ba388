// Upstream side of an exchange: routing and picking a backend, borrowing or opening an upstream
// connection, relaying the response (1xx, 101 tunnels, de-chunking for HTTP/1.0), retries that
// are safe, and handing the connection back to the pool.
#include <llhttp.h>

#include "core/proxy/balance_key.h"
#include "core/proxy/client.h"
#include "core/http/head_writer.h"
#include "core/io/log.h"
#include "health/passive.h"

namespace sluice::core {
namespace {
bool idempotent(uint8_t method) {
  switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_PUT:
    case HTTP_DELETE:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
      return true;
    default:
      return false;
  }
}
}  // namespace

void ClientConnection::start_exchange() {
  request_ = parser_.release_head();
  phase_ = Phase::kExchange;
  wait_ = Wait::kNone;
  deadline_.clear();
  request_done_ = body_sent_ = response_started_ = local_response_ = false;
  interim_ = tunnel_pending_ = dechunk_ = stale_retried_ = false;
  attempts_ = 0;
  body_unsent_seen_ = 0;
  tried_.clear();
  backend_ = -1;
  keep_alive_ = keep_alive_ && request_->keep_alive && !ctx_.draining;
  generation_ = ctx_.hold();
  std::string_view host;
  const bool has_host = request_->find(FieldKind::kHost, &host);
  const conf::Route* route = generation_->snapshot->match(host, request_->path());
  if (!route) return respond_locally(404, "no route for this host and path");
  upstream_index_ = route->upstream;
  RequestRewrite how{client_ip_, "http", request_->upgrade};
  if (!has_host) how.host_if_missing = upstream_config().pool.name;  // as nginx's $proxy_host
  request_head_ = write_request_head(ctx_.blocks, *request_, how);
  connect_upstream(false);
}

void ClientConnection::respond_locally(int status, const char* detail, int retry_after_s) {
  // With the request body still arriving there is no safe place for the next request to start.
  if (!request_done_ && request_->framing != Framing::kNone) keep_alive_ = false;
  if (request_->upgrade) parser_.decline_upgrade();  // no switch: the next bytes are HTTP again
  release_upstream(false);
  send_local(status, detail, retry_after_s);
  response_started_ = true;
  if (!keep_alive_) return close_gracefully();
  if (request_done_) resume_after_exchange();
}

void ClientConnection::connect_upstream(bool fresh) {
  const conf::Upstream& up = upstream_config();
  if (!fresh) {
    balancer::PickRequest pick;
    pick.tried = &tried_;
    pick.now_ms = uv_now(ctx_.loop);
    if (generation_->needs_key[upstream_index_]) {
      std::string_view key;
      pick.has_key = balance_key(*request_, up.settings.hash_key, client_ip_, &key);
      if (pick.has_key) pick.key_hash = balancer::hash_key(key);
    }
    uncount_active();
    backend_ = balancer::pick_backend(up.pool, *generation_->policies[upstream_index_], pick);
    if (backend_ < 0) {
      std::string detail = "no healthy backend in upstream '" + up.pool.name + "'";
      return respond_locally(503, detail.c_str(), 1);
    }
    ++attempts_;
    tried_.add(backend_);
    if (generation_->counts_active[upstream_index_]) {
      counted_ = up.pool.backends[backend_].state.get();
      counted_->active.fetch_add(1, std::memory_order_relaxed);
    }
  }
  const balancer::Backend& b = up.pool.backends[backend_];
  if (!fresh) {
    if (UpstreamConnection* idle = ctx_.upstreams.take(b.address_hash, b.address)) {
      upstream_ = idle;
      idle->attach(this);
      idle->count_exchange();
      return send_request_head();
    }
  }
  int error = 0;
  upstream_ =
      UpstreamConnection::open(ctx_, b.address, b.address_hash,
                               reinterpret_cast<const sockaddr*>(&b.sockaddr), this, &error);
  if (!upstream_) return upstream_failed(502, uv_strerror(error), Retry::kOtherBackend);
  upstream_->count_exchange();
  upstream_->deadline().set(timeouts().upstream_connect_ms);
}

// Only failures that the backend's side caused count: a connect that fails at once is a local
// error (no descriptor left, say), as libuv reports a refused connect through the callback.
void ClientConnection::report_backend(bool ok, const char* cause) {
  if (backend_ < 0 || !generation_) return;
  const conf::Upstream& up = upstream_config();
  const balancer::Backend& b = up.pool.backends[backend_];
  if (ok)
    health::record_success(b);
  else
    health::record_failure(b, up.settings.passive, uv_now(ctx_.loop), up.pool.name, cause);
}

void ClientConnection::uncount_active() {
  if (counted_) counted_->active.fetch_sub(1, std::memory_order_relaxed);
  counted_ = nullptr;
}

void ClientConnection::on_upstream_connected(int status) {
  if (status < 0) {
    report_backend(false, uv_strerror(status));
    return upstream_failed(502, uv_strerror(status), Retry::kOtherBackend);
  }
  send_request_head();
}

void ClientConnection::send_request_head() {
  if (request_->method == HTTP_HEAD) upstream_->parser().expect_no_body();
  // Head and any body that waited for the connection leave in one writev. Without a body
  // waiting (the common case) the head goes alone, and the backlog never allocates.
  int r;
  if (backlog_.empty()) {
    r = upstream_->stream().write(&request_head_, 1);
  } else {
    block_ref(request_head_.block);
    backlog_.insert(backlog_.begin(), request_head_);
    r = upstream_->stream().write(backlog_.data(), backlog_.size());
    body_sent_ = true;
    for (Slice& s : backlog_) block_unref(s.block);
    backlog_.clear();
  }
  if (r != 0) return upstream_failed(502, uv_strerror(r), Retry::kFreshConnection);
  upstream_->deadline().set(timeouts().upstream_response_ms);
  if (!request_done_ && !pending_.block && phase_ == Phase::kExchange) client_->read_start();
}

void ClientConnection::forward_request_body(Block* block, const char* data, size_t length) {
  if (length == 0 || local_response_ || phase_ != Phase::kExchange) return;
  Slice s{block, data, length};
  if (upstream_ && upstream_->connected() && backlog_.empty()) {
    body_sent_ = true;
    if (upstream_->stream().write(&s, 1) != 0) return;  // the error arrives as on_upstream_error
    if (wait_ != Wait::kSend)  // the body moves, so the backend is not silent
      upstream_->deadline().set(timeouts().upstream_response_ms);
    if (upstream_->stream().queued_bytes() > kHighWater) {
      client_->read_stop();
      upstream_->stream().notify_drained();
    }
    return;
  }
  block_ref(block);
  backlog_.push_back(s);
  size_t queued = 0;
  for (const Slice& b : backlog_) queued += b.length;
  if (queued > kHighWater) client_->read_stop();
}

void ClientConnection::on_upstream_read(Block* block, const char* data, size_t length) {
  // The exchange may end in this event and a pipelined one start on another connection.
  UpstreamConnection* const reading = upstream_;
  if (phase_ == Phase::kTunnel) {
    Slice s{block, data, length};
    write_client(&s, 1);
  } else {
    upstream_->deadline().set(timeouts().upstream_response_ms);
    relay_block_ = block;
    relay_response(block, data, length);
    relay_block_ = nullptr;
  }
  flush_client();
  // A response that goes on past this event must not wait on Nagle between its pieces.
  if (!closed_ && response_started_ && (phase_ == Phase::kExchange || phase_ == Phase::kTunnel))
    client_->send_immediately();
  // Backpressure: a client that reads slowly stops the reads from its backend until it drains.
  if (!closed_ && upstream_ && upstream_ == reading && client_->queued_bytes() > kHighWater) {
    upstream_->stream().read_stop();
    if (phase_ == Phase::kExchange) {  // the backend is not silent: the client is slow
      upstream_->deadline().clear();
      send_unsent_seen_ = client_->unsent_bytes();
      wait_for(Wait::kSend, timeouts().client_send_ms);
    }
    client_->notify_drained();
  }
}

bool ClientConnection::relay_response(Block* block, const char* data, size_t length) {
  for (;;) {
    if (phase_ != Phase::kExchange || !upstream_) return false;
    const ParseStep step = upstream_->parser().execute(data, length);
    switch (step.event) {
      case ParseEvent::kError:
        log(LogLevel::kWarn, "backend %s: invalid response: %s", upstream_->key().c_str(),
            upstream_->parser().error_reason());
        upstream_failed(502, "invalid response from the backend", Retry::kNo);
        return false;
      case ParseEvent::kNeedMore:
        if (upstream_->parser().in_body()) relay_body(block, data, length);
        return true;
      case ParseEvent::kHead:
        data += step.consumed;
        length -= step.consumed;
        on_response_head();
        continue;
      case ParseEvent::kEnd:
      case ParseEvent::kUpgrade:
        relay_body(block, data, step.consumed);
        data += step.consumed;
        length -= step.consumed;
        if (interim_) {
          interim_ = false;
          continue;
        }
        if (tunnel_pending_) {
          enter_tunnel(block, data, length);
          return false;
        }
        if (!closed_) finish_exchange(length == 0);
        return false;
    }
  }
}

void ClientConnection::on_response_head() {
  MessageHead& head = *upstream_->parser().head();
  if (request_head_.block) block_unref(request_head_.block);
  request_head_ = Slice{};
  const bool http10 = request_->version_major == 1 && request_->version_minor == 0;
  if (head.status < 200) {
    if (head.status == 101) {
      if (!request_->upgrade)
        return upstream_failed(502, "unrequested protocol switch", Retry::kNo);
      tunnel_pending_ = true;
    } else {
      interim_ = true;
      if (http10) return;  // HTTP/1.0 clients do not understand interim responses
    }
    ResponseRewrite how{true, false, head.status == 101, false};
    Slice s = write_response_head(ctx_.blocks, head, how);
    response_started_ = response_started_ || head.status == 101;
    write_client(&s, 1);
    block_unref(s.block);
    return;
  }
  report_backend(head.status < 500, "a 5xx answer");
  if (request_->upgrade) parser_.decline_upgrade();  // no 101: the next bytes are HTTP again
  if (!request_done_ || head.framing == Framing::kUntilClose) keep_alive_ = false;
  dechunk_ = http10 && head.framing == Framing::kChunked;
  if (dechunk_) {
    keep_alive_ = false;
    upstream_->parser().set_body_sink(&ClientConnection::dechunked_body, this);
  }
  ResponseRewrite how{keep_alive_, http10, false, dechunk_};
  Slice s = write_response_head(ctx_.blocks, head, how);
  response_started_ = true;
  write_client(&s, 1);
  block_unref(s.block);
}

void ClientConnection::dechunked_body(void* self, const char* data, size_t length) {
  auto* c = static_cast<ClientConnection*>(self);
  Slice s{c->relay_block_, data, length};
  c->write_client(&s, 1);
}

void ClientConnection::relay_body(Block* block, const char* data, size_t length) {
  if (length == 0 || dechunk_ || closed_) return;  // de-chunked bytes go by dechunked_body()
  Slice s{block, data, length};
  write_client(&s, 1);
}

void ClientConnection::finish_exchange(bool reusable) {
  const MessageHead* head = upstream_ ? upstream_->parser().head() : nullptr;
  release_upstream(reusable && head && head->keep_alive && request_done_);
  resume_after_exchange();
}

void ClientConnection::upstream_failed(int status, const char* detail, Retry retry) {
  const std::string where = upstream_ ? upstream_->key() : std::string("?");
  if (retry_upstream(retry)) return;
  log(LogLevel::kWarn, "backend %s: %d %s", where.c_str(), status, detail);
  if (response_started_) return abort();
  respond_locally(status, detail);
}

// A retry must not make a backend act on a request twice. After a failed connect nothing was
// sent, so another backend may be tried (up to `retries`). After a reset or close before any
// response byte, only an idempotent request without a body is resent: on a fresh connection to
// the same backend when a reused keep-alive connection had gone stale, else to another backend.
bool ClientConnection::retry_upstream(Retry retry) {
  if (response_started_ || retry == Retry::kNo || phase_ != Phase::kExchange) return false;
  const bool retries_left = attempts_ <= upstream_config().settings.retries;
  if (retry == Retry::kOtherBackend) {
    if (!retries_left) return false;
    release_upstream(false);
    connect_upstream(false);
    return true;
  }
  if (body_sent_ || request_->framing != Framing::kNone || !idempotent(request_->method))
    return false;
  const bool stale = upstream_ && upstream_->reused() && !stale_retried_;
  if (!stale && !retries_left) return false;
  stale_retried_ = stale_retried_ || stale;
  release_upstream(false);
  connect_upstream(stale);
  return true;
}

void ClientConnection::on_upstream_eof() {
  if (phase_ == Phase::kTunnel) {
    upstream_eof_ = true;
    client_->shutdown_write();
    if (client_eof_) destroy();
    return;
  }
  HttpParser& parser = upstream_->parser();
  if (response_started_ && parser.in_body()) {
    if (parser.finish().event == ParseEvent::kEnd) return finish_exchange(false);
    log(LogLevel::kWarn, "backend %s: closed in the middle of a response",
        upstream_->key().c_str());
    return abort();
  }
  upstream_failed(502, "the backend closed the connection without a response",
                  Retry::kFreshConnection);
}

void ClientConnection::on_upstream_error(int uv_error) {
  if (phase_ == Phase::kTunnel) return destroy();
  upstream_failed(502, uv_strerror(uv_error), Retry::kFreshConnection);
}

void ClientConnection::on_upstream_drained() {
  if (phase_ == Phase::kExchange && !request_done_)  // the backend took the queued body
    upstream_->deadline().set(timeouts().upstream_response_ms);
  if (phase_ == Phase::kTunnel || (phase_ == Phase::kExchange && !request_done_)) {
    if (!pending_.block) client_->read_start();
  }
}

void ClientConnection::on_upstream_timeout() {
  if (phase_ == Phase::kTunnel) return destroy();
  if (upstream_->connected() && !response_started_) {
    // A backend still taking the request body is not silent, even once all of it left here.
    const size_t unsent = upstream_->stream().unsent_bytes();
    // A client that asked for 100-continue waits for the backend before sending its body.
    const bool waits_for_100 = request_->expect_continue && !body_sent_;
    if (unsent == 0 && !request_done_ && !waits_for_100)
      return reject(408, "the request body stopped arriving");
    if (unsent > 0 && unsent != body_unsent_seen_) {
      body_unsent_seen_ = unsent;
      return upstream_->deadline().set(timeouts().upstream_response_ms);
    }
  }
  report_backend(false, upstream_->connected() ? "no answer in time" : "connect timed out");
  if (!upstream_->connected())
    return upstream_failed(504, "timed out connecting to the backend", Retry::kOtherBackend);
  upstream_failed(504, "the backend did not answer in time", Retry::kNo);
}

void ClientConnection::enter_tunnel(Block* block, const char* data, size_t length) {
  phase_ = Phase::kTunnel;
  upstream_->deadline().clear();
  if (length > 0) {
    Slice s{block, data, length};
    write_client(&s, 1);
  }
  if (pending_.block && !closed_) {
    upstream_->stream().write(&pending_, 1);
    block_unref(pending_.block);
    pending_ = Slice{};
  }
  if (!closed_) client_->read_start();
}

void ClientConnection::release_upstream(bool reusable) {
  if (!upstream_) return;
  UpstreamConnection* conn = upstream_;
  upstream_ = nullptr;
  if (!reusable || ctx_.draining || !generation_) return conn->destroy();
  const conf::UpstreamConfig& settings = upstream_config().settings;
  conn->deadline().clear();
  conn->stream().read_start();
  ctx_.upstreams.put(conn, settings.keepalive, settings.keepalive_timeout_ms);
}

void ClientConnection::end_exchange_state() {
  uncount_active();
  if (request_) ctx_.heads.release(std::move(request_));
  if (request_head_.block) block_unref(request_head_.block);
  request_head_ = Slice{};
  for (Slice& s : backlog_) block_unref(s.block);
  backlog_.clear();
  if (generation_) ctx_.release(generation_);
  generation_ = nullptr;
  if (phase_ == Phase::kExchange) phase_ = Phase::kWaiting;
}

}  // namespace sluice::core
