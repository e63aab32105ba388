// Upstream attempts: pick a backend, borrow a pooled connection or open one, send the request,
// and when an attempt fails, retry where decide_retry() allows or answer the client.
#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "core/io/log.h"
#include "core/io/peer_address.h"
#include "core/io/proxy_protocol.h"
#include "core/proxy/balance_key.h"
#include "core/proxy/exchange.h"
#include "health/passive.h"

namespace sluice::core {
namespace {

// A connection that opens with a PROXY header speaks for one client: the backend takes every
// request on it as that client's. So it is pooled under the backend, the client's address and
// the address the client connected to, and reused only for requests that would send the same
// addresses (the source port is the first connection's: the key leaves it out, or each client
// connection would need backend connections of its own).
struct ProxiedTarget {
  std::string key;
  uint64_t key_hash = 0;
  bool known = false;  // the endpoints below were told; else the header names none
  sockaddr_storage source{};
  sockaddr_storage destination{};
};

void proxied_target(ClientSide& client, const balancer::Backend& backend, ProxiedTarget* out) {
  out->known = client.connection_endpoints(&out->source, &out->destination);
  out->key = backend.address;
  out->key += " for ";
  out->key += client.client_address();
  if (out->known) {
    char ip[INET6_ADDRSTRLEN];
    peer_address(out->destination, ip, sizeof ip);
    const bool v6 = out->destination.ss_family == AF_INET6;
    const uint16_t port =
        ntohs(v6 ? reinterpret_cast<const sockaddr_in6*>(&out->destination)->sin6_port
                 : reinterpret_cast<const sockaddr_in*>(&out->destination)->sin_port);
    out->key += v6 ? " at [" : " at ";
    out->key += ip;
    out->key += v6 ? "]:" : ":";
    out->key += std::to_string(port);
  }
  out->key_hash = balancer::hash_key(out->key);
}

// The header a new connection for `target` opens with; it names no client when the client's
// endpoints could not be told.
size_t proxy_header(conf::ProxyProtocolVersion version, const ProxiedTarget& target, char* out) {
  const auto* source = target.known ? reinterpret_cast<const sockaddr*>(&target.source) : nullptr;
  const auto* destination =
      target.known ? reinterpret_cast<const sockaddr*>(&target.destination) : nullptr;
  return version == conf::ProxyProtocolVersion::kV1 ? write_proxy_v1(source, destination, out)
                                                    : write_proxy_v2(source, destination, out);
}

}  // namespace

Exchange::Pick Exchange::pick_backend(uint64_t now_ms) {
  if (origin_) {  // one address, tried once (a stale pooled connection is retried on it)
    if (record_.attempts > 0) return Pick::kNone;
    record_.backend = 0;
    ++record_.attempts;
    return Pick::kPicked;
  }
  const conf::Upstream& up = upstream_config();
  balancer::PickRequest pick;
  pick.tried = &tried_;
  pick.now_ms = now_ms;
  if (generation_->needs_key[record_.upstream]) {
    std::string_view key;
    pick.has_key = balance_key(*request_, up.settings.hash_key, client_ip_, &key);
    if (pick.has_key) pick.key_hash = balancer::hash_key(key);
  }
  uncount_active();
  give_back_slot();
  const PoolRoom room(ctx_.backend_slots, up.pool, ctx_.worker_count);
  if (up.pool.limited) pick.room = &room;
  const int picked =
      balancer::pick_backend(up.pool, *generation_->policies[record_.upstream], pick);
  if (picked == balancer::kAllBusy) return Pick::kAllBusy;
  record_.backend = picked;
  if (picked < 0) return Pick::kNone;
  ++record_.attempts;
  tried_.add(picked);
  balancer::BackendState* state = up.pool.backends[picked].state.get();
  if (generation_->counts_active[record_.upstream]) {
    counted_ = state;
    counted_->active.fetch_add(1, std::memory_order_relaxed);
  }
  if (up.pool.backends[picked].max_connections > 0) {
    slot_ = state;
    ctx_.backend_slots.take(slot_);
  }
  return Pick::kPicked;
}

void Exchange::attempt(RetryWhere where) {
  const bool fresh = where == RetryWhere::kSameBackend;
  const uint64_t now_ms = uv_now(ctx_.loop);
  if (!fresh) {
    // Requests already waiting for this upstream go first (unless there is nothing to wait for).
    const balancer::Pool& pool = upstream_config().pool;
    if (pool.limited && ctx_.backend_slots.waiting(pool.name) > 0 &&
        std::any_of(pool.backends.begin(), pool.backends.end(),
                    [](const balancer::Backend& b) { return b.up(); }))
      return wait_for_room(now_ms);
    switch (pick_backend(now_ms)) {
      case Pick::kPicked:
        break;
      case Pick::kAllBusy:
        return wait_for_room(now_ms);
      case Pick::kNone: {
        const std::string detail =
            "no healthy backend in upstream '" + upstream_config().pool.name + "'";
        return reply_locally({503, detail, 1});
      }
    }
  }
  connect(fresh, now_ms);
}

// A pooled connection to the picked backend, or a new one.
void Exchange::connect(bool fresh, uint64_t now_ms) {
  const balancer::Backend& b = upstream_config().pool.backends[record_.backend];
  Connector& connector = origin_ ? *ctx_.connector : *generation_->connectors[record_.upstream];
  const conf::ProxyProtocolVersion proxy_protocol = upstream_config().settings.send_proxy_protocol;
  const bool plain = proxy_protocol == conf::ProxyProtocolVersion::kNone;
  std::optional<ProxiedTarget> proxied;  // constructed only for upstreams that send headers
  if (!plain) proxied_target(client_, b, &proxied.emplace());
  const std::string& key = plain ? b.address : proxied->key;
  const uint64_t key_hash = plain ? b.address_hash : proxied->key_hash;
  if (!fresh && !connect_) {  // a CONNECT tunnel takes a connection of its own
    // A request that could not be resent avoids a connection that idled long enough to be
    // closing at the backend's end.
    const uint64_t max_idle_ms = resendable(request_->framing != Framing::kNone, request_->method)
                                     ? UINT64_MAX
                                     : upstream_config().settings.non_retriable_max_idle_ms;
    if (UpstreamConnection* idle =
            ctx_.upstreams.take(key_hash, key, &connector, now_ms, max_idle_ms)) {
      upstream_ = idle;
      idle->attach(this);
      idle->count_exchange();
      ctx_.counters.upstream_reused.add();
      return send_request_head();
    }
  }
  char header[kProxyHeaderMaxWrite];
  const size_t header_length = plain ? 0 : proxy_header(proxy_protocol, *proxied, header);
  int error = 0;
  upstream_ = UpstreamConnection::open(ctx_, connector, key, key_hash,
                                       reinterpret_cast<const sockaddr*>(&b.sockaddr),
                                       std::string_view(header, header_length), this, &error);
  if (!upstream_) return attempt_failed(502, uv_strerror(error), AttemptFailure::kConnect);
  upstream_->count_exchange();
  ctx_.counters.upstream_opened.add();
  upstream_->deadline().set(timeouts().upstream_connect_ms);
}

// Only failures that the backend's side caused count: a connect that fails at once is a local
// error (no descriptor left, say), as libuv reports a refused connect through the callback.
void Exchange::report_backend(bool ok, const char* cause) {
  if (record_.backend < 0 || origin_) return;  // an origin is no farm's backend
  const conf::Upstream& up = upstream_config();
  const balancer::Backend& b = up.pool.backends[record_.backend];
  if (ok)
    health::record_success(b);
  else
    health::record_failure(b, up.settings.passive, uv_now(ctx_.loop), up.pool.name, cause);
}

void Exchange::on_upstream_connected(int status) {
  if (status < 0) {
    report_backend(false, uv_strerror(status));
    attempt_failed(502, uv_strerror(status), AttemptFailure::kConnect);
  } else if (connect_) {
    open_tunnel();
  } else {
    send_request_head();
  }
  client_.settle();
}

void Exchange::send_request_head() {
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
  if (r != 0) return attempt_failed(502, uv_strerror(r), AttemptFailure::kClosedEarly);
  upstream_->deadline().set(timeouts().upstream_response_ms);
  if (!request_done_) client_.resume_request();
}

void Exchange::send_body(const Slice& body) {
  if (upstream_ && upstream_->connected() && backlog_.empty()) {
    body_sent_ = true;
    if (upstream_->stream().write(&body, 1) != 0) return;  // the error comes as on_upstream_error
    if (!waiting_for_client_)  // the body moves, so the backend is not silent
      upstream_->deadline().set(timeouts().upstream_response_ms);
    if (upstream_->stream().queued_bytes() > kHighWater) {
      client_.pause_request();
      upstream_->stream().notify_drained();
    }
    return;
  }
  block_ref(body.block);
  backlog_.push_back(body);
  size_t queued = 0;
  for (const Slice& b : backlog_) queued += b.length;
  if (queued > kHighWater) client_.pause_request();
}

void Exchange::on_upstream_drained() {
  if (stage_ == Stage::kUpstream && !request_done_)  // the backend took the queued body
    upstream_->deadline().set(timeouts().upstream_response_ms);
  if (stage_ == Stage::kTunnel || (stage_ == Stage::kUpstream && !request_done_))
    client_.resume_request();
  client_.settle();
}

void Exchange::attempt_failed(int status, const char* detail, AttemptFailure failure) {
  const std::string where = upstream_ ? upstream_->key() : std::string("?");
  if (retry(failure)) return;
  log(LogLevel::kWarn, "backend %s: %d %s", where.c_str(), status, detail);
  const Outcome outcome = status == 504                                 ? Outcome::kUpstreamTimeout
                          : failure == AttemptFailure::kInvalidResponse ? Outcome::kBadResponse
                                                                        : Outcome::kUpstreamReset;
  if (response_started_) return abort(outcome);
  reply_locally({status, detail, 0, outcome});
}

bool Exchange::retry(AttemptFailure failure) {
  if (stage_ != Stage::kUpstream) return false;
  AttemptFacts facts;
  facts.failure = failure;
  facts.response_started = response_started_;
  facts.body_sent = body_sent_;
  facts.has_body = request_->framing != Framing::kNone;
  facts.idempotent = idempotent_method(request_->method);
  facts.reused_connection = upstream_ && upstream_->reused();
  facts.stale_retried = stale_retried_;
  facts.attempts = record_.attempts;
  facts.retries = static_cast<uint8_t>(upstream_config().settings.retries);
  const RetryDecision decision = decide_retry(facts);
  if (decision.where == RetryWhere::kNowhere) return false;
  stale_retried_ = stale_retried_ || decision.where == RetryWhere::kSameBackend;
  release_upstream(false);
  ctx_.counters.retries.add();
  attempt(decision.where);
  return true;
}

void Exchange::on_upstream_timeout() {
  if (stage_ == Stage::kTunnel) {
    abort(Outcome::kTunnelClosed);
    return client_.settle();
  }
  if (upstream_->connected() && !response_started_) {
    // A backend still taking the request body is not silent, even once all of it left here.
    const size_t unsent = upstream_->stream().unsent_bytes();
    // A client that asked for 100-continue waits for the backend before sending its body.
    const bool waits_for_100 = request_->expect_continue && !body_sent_;
    if (unsent == 0 && !request_done_ && !waits_for_100) {
      client_.refuse({408, "the request body stopped arriving", 0, Outcome::kBadRequest});
      return client_.settle();
    }
    if (unsent > 0 && unsent != body_unsent_seen_) {
      body_unsent_seen_ = unsent;
      return upstream_->deadline().set(timeouts().upstream_response_ms);
    }
  }
  report_backend(false, upstream_->connected() ? "no answer in time" : "connect timed out");
  if (!upstream_->connected())
    attempt_failed(504, "timed out connecting to the backend", AttemptFailure::kConnect);
  else
    attempt_failed(504, "the backend did not answer in time", AttemptFailure::kNoAnswer);
  client_.settle();
}

void Exchange::release_upstream(bool reusable) {
  if (!upstream_) return;
  UpstreamConnection* conn = upstream_;
  upstream_ = nullptr;
  if (!reusable || ctx_.draining) return conn->destroy();
  const conf::UpstreamConfig& settings = upstream_config().settings;
  conn->deadline().clear();
  conn->stream().read_start();
  // A backend with max_connections keeps no more idle connections than it may have busy ones.
  uint32_t keep = settings.keepalive;
  if (record_.backend >= 0) {
    const uint32_t limit = upstream_config().pool.backends[record_.backend].max_connections;
    if (limit > 0) keep = std::min(keep, worker_share(limit, ctx_.worker_count));
  }
  ctx_.upstreams.put(conn, keep, settings.keepalive_timeout_ms, uv_now(ctx_.loop));
}

}  // namespace sluice::core
