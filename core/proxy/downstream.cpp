// The client's side of the proxy: parsing, pipelining, deadlines, batching writes and closing.
// Every exchange this connection carries starts in begin_exchange() and ends in end_exchange().
#include "core/proxy/downstream.h"

#include <cstring>

#include "core/io/log.h"
#include "core/io/peer_address.h"

namespace sluice::core {
namespace {
constexpr uint32_t kLingerMs = 2000;  // how long a closing connection waits for the client's FIN

template <typename Endpoint>
void keep_endpoint(const sockaddr_storage& address, Endpoint* out) {
  if (address.ss_family == AF_INET) std::memcpy(out, &address, sizeof(sockaddr_in));
  if (address.ss_family == AF_INET6) std::memcpy(out, &address, sizeof(sockaddr_in6));
}

template <typename Endpoint>
void give_endpoint(const Endpoint& endpoint, sockaddr_storage* out) {
  *out = sockaddr_storage{};
  std::memcpy(out, &endpoint, sizeof endpoint);
}
}  // namespace

Downstream::Downstream(WorkerContext& ctx, Stream* stream)
    : ctx_(ctx),
      stream_(stream),
      parser_(HttpParser::Kind::kRequest, ctx.heads, ctx.current->limits) {
  deadline_.init(ctx.loop, &Downstream::on_deadline, this);
  out_.reserve(4);  // a response head and body slices: one allocation, never regrown
}

void Downstream::open(WorkerContext& ctx, Stream* stream, const sockaddr_storage& peer,
                      int32_t listener, const sockaddr_storage* destination) {
  char ip[sizeof client_ip_];
  peer_address(peer, ip, sizeof ip);
  const conf::IpAddress address = conf::ip_address(peer);
  if (!ctx.current->chains.connection_gates.empty()) {
    const ConnectionInput input{ip, address, ctx.current->index_of_listener(listener)};
    for (const ConnectionGate* gate : ctx.current->chains.connection_gates) {
      if (gate->admit(input) == Admission::kRefuse) {
        ctx.counters.clients_refused.add();
        return stream->close();
      }
    }
  }
  auto* c = new Downstream(ctx, stream);
  std::memcpy(c->client_ip_, ip, sizeof ip);
  c->client_port_ =
      ntohs(peer.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(peer).sin6_port
                                       : reinterpret_cast<const sockaddr_in&>(peer).sin_port);
  c->listener_ = listener;
  const int32_t index = ctx.current->index_of_listener(listener);
  if (index >= 0 &&
      ctx.current->snapshot->config.listeners[index].mode == conf::ListenerMode::kForward)
    c->parser_.allow_connect(true);
  keep_endpoint(peer, &c->client_);
  c->client_address_ = address;
  if (destination) keep_endpoint(*destination, &c->local_);
  c->next = ctx.clients;
  if (ctx.clients) ctx.clients->prev = c;
  ctx.clients = c;
  ++ctx.client_count;
  if (listener >= 0 && static_cast<size_t>(listener) < ctx.open_by_listener.size())
    ++ctx.open_by_listener[listener];
  ctx.counters.clients_accepted.add();
  stream->set_handler(c);
  stream->read_start();
  c->wait_for(Wait::kHeader, c->timeouts().client_header_ms);
}

bool Downstream::connection_endpoints(sockaddr_storage* source, sockaddr_storage* destination) {
  if (client_.any.sa_family == AF_UNSPEC) return false;
  if (local_.any.sa_family == AF_UNSPEC) {  // asked once, by the first backend that needs it
    sockaddr_storage local;
    if (closed_ || !stream_->local_address(&local)) return false;
    keep_endpoint(local, &local_);
    if (local_.any.sa_family == AF_UNSPEC) return false;
  }
  give_endpoint(client_, source);
  give_endpoint(local_, destination);
  return true;
}

void Downstream::wait_for(Wait wait, uint32_t ms) {
  wait_ = wait;
  deadline_.set(ms);
}

void Downstream::on_read(Block* block, const char* data, size_t length) {
  switch (phase_) {
    case Phase::kTunnel:
      exchange_->on_request_body(block, data, length);
      return settle();
    case Phase::kClosing:
      return;  // draining what the client still sends before it sees our FIN
    case Phase::kExchange:
      if (exchange_->request_done()) return stash(block, data, length);
      return consume(block, data, length);
    case Phase::kWaiting:
      return consume(block, data, length);
  }
}

void Downstream::consume(Block* block, const char* data, size_t length) {
  for (;;) {
    const ParseStep step = parser_.execute(data, length);
    switch (step.event) {
      case ParseEvent::kError:
        return reject({parser_.error_status(), parser_.error_reason(), 0, Outcome::kBadRequest});
      case ParseEvent::kNeedMore:
        if (parser_.in_body()) {
          if (phase_ != Phase::kExchange || length == 0) return;
          exchange_->on_request_body(block, data, length);
          return settle();
        }
        if (!parser_.between_messages() && wait_ != Wait::kHeader)
          wait_for(Wait::kHeader, timeouts().client_header_ms);
        return;
      case ParseEvent::kHead:
        data += step.consumed;
        length -= step.consumed;
        begin_exchange(parser_.release_head());
        if (phase_ == Phase::kClosing) return;
        continue;
      case ParseEvent::kEnd:
      case ParseEvent::kUpgrade:
        if (!request_ended(block, data, length, step.consumed)) return;
        data += step.consumed;
        length -= step.consumed;
        continue;
    }
  }
}

// Returns true when parsing should go on with the bytes after this request.
bool Downstream::request_ended(Block* block, const char* data, size_t length, size_t consumed) {
  if (phase_ != Phase::kExchange) return false;
  if (consumed > 0) {
    exchange_->on_request_body(block, data, consumed);
    settle();
    if (phase_ != Phase::kExchange) return false;
  }
  exchange_->on_request_end();
  if (exchange_->answered_locally()) {  // answered already; the next request may follow at once
    end_exchange(Outcome::kLocalReply);
    wait_for(Wait::kIdle, timeouts().client_idle_ms);
    if (!hold_for_client()) return true;
  }
  if (length > consumed) stash(block, data + consumed, length - consumed);
  return false;
}

void Downstream::begin_exchange(std::unique_ptr<MessageHead> request) {
  phase_ = Phase::kExchange;
  wait_ = Wait::kNone;
  deadline_.clear();
  keep_alive_ = keep_alive_ && request->keep_alive && !ctx_.draining;
  exchange_.emplace(ctx_, *this, std::move(request), backlog_);
  exchange_->start();
  settle();
}

void Downstream::end_exchange(Outcome fallback) {
  if (!exchange_) return;
  exchange_->finish(fallback);
  exchange_.reset();
  if (phase_ == Phase::kExchange) phase_ = Phase::kWaiting;
}

void Downstream::stash(Block* block, const char* data, size_t length) {
  if (pending_.block) {  // rare: a second read arrived before reading stopped
    Block* merged = ctx_.blocks.acquire(pending_.length + length);
    std::memcpy(merged->data(), pending_.data, pending_.length);
    std::memcpy(merged->data() + pending_.length, data, length);
    block_unref(pending_.block);
    pending_ = Slice{merged, merged->data(), pending_.length + length};
  } else if (block->size > ctx_.blocks.block_size()) {  // do not pin a bulk block for a tail
    Block* copy = ctx_.blocks.acquire(length);
    std::memcpy(copy->data(), data, length);
    pending_ = Slice{copy, copy->data(), length};
  } else {
    block_ref(block);
    pending_ = Slice{block, data, length};
  }
  stream_->read_stop();
}

// The exchange asked to end, to refuse its client or to abort: act on it now that the exchange
// has returned.
void Downstream::act_on_ending() {
  const Ending ending = ending_;
  ending_ = Ending::kNone;
  ending_requested_ = false;
  switch (ending) {
    case Ending::kNone:
      return;
    case Ending::kDone:
      end_exchange(Outcome::kOk);
      return resume();
    case Ending::kRefuse:
      return reject(refusal_);
    case Ending::kAbort:
      return destroy();
  }
}

void Downstream::done() {
  if (ending_ == Ending::kNone) ending_ = Ending::kDone;
  ending_requested_ = true;
}

void Downstream::refuse(const LocalReply& reply) {
  if (ending_ == Ending::kAbort) return;
  refusal_ = reply;
  ending_ = Ending::kRefuse;
  ending_requested_ = true;
}

void Downstream::abort(Outcome outcome) {
  abort_outcome_ = outcome;
  ending_ = Ending::kAbort;
  ending_requested_ = true;
}

void Downstream::resume() {
  if (closed_) return;
  if (!keep_alive_ || (eof_ && !pending_.block)) return close_gracefully();
  stream_->send_immediately();
  parser_.set_limits(ctx_.current->limits);  // a reload's new limits apply from the next request
  wait_for(Wait::kIdle, timeouts().client_idle_ms);
  if (hold_for_client()) return;
  if (pending_.block) {
    Slice p = pending_;
    pending_ = Slice{};
    consume(p.block, p.data, p.length);
    block_unref(p.block);
  }
  if (phase_ != Phase::kClosing && !pending_.block && !eof_) stream_->read_start();
}

// A client that pipelines requests without reading the answers would make us hold every answer
// it has not taken. While an answer waits in our queue, the next request waits unparsed and the
// client unread, so one connection holds at most its read block and one answer's bytes.
bool Downstream::hold_for_client() {
  if (stream_->queued_bytes() == 0) return false;
  held_ = true;
  stream_->read_stop();
  stream_->notify_drained();
  send_unsent_seen_ = stream_->unsent_bytes();
  wait_for(Wait::kSend, timeouts().client_send_ms);
  return true;
}

void Downstream::resume_request() {
  if (closed_ || pending_.block) return;
  if (phase_ == Phase::kExchange || phase_ == Phase::kTunnel) stream_->read_start();
}

// The one way a client is refused: the exchange (a headless one when the head never completed)
// answers through its local-reply path, then the connection closes.
void Downstream::reject(const LocalReply& reply) {
  log(LogLevel::kInfo, "client %s: %d %.*s", client_ip_, reply.status,
      static_cast<int>(reply.detail.size()), reply.detail.data());
  abort_outcome_ = reply.outcome;
  if (exchange_ && exchange_->response_started()) return destroy();
  keep_alive_ = false;
  local_error_ = true;
  if (!exchange_) exchange_.emplace(ctx_, *this, nullptr, backlog_);
  exchange_->reply_locally(reply);
  if (ending_ == Ending::kDone) {  // the reply asked to end: closing does that
    ending_ = Ending::kNone;
    ending_requested_ = false;
  }
  close_gracefully();
}

Slice Downstream::begin_tunnel() {
  phase_ = Phase::kTunnel;
  Slice early = pending_;
  pending_ = Slice{};
  if (!closed_) stream_->read_start();
  return early;
}

// Response bytes produced while handling one event leave together: a response's head and body
// go out in one writev instead of one write each.
void Downstream::send(const Slice* slices, size_t count) {
  if (closed_) return;
  for (size_t i = 0; i < count; ++i) {
    block_ref(slices[i].block);
    out_.push_back(slices[i]);
  }
}

void Downstream::flush() {
  if (out_.empty()) return;
  const int r = closed_ ? 0 : stream_->write(out_.data(), out_.size());
  for (Slice& s : out_) block_unref(s.block);
  out_.clear();
  if (r != 0) abort(Outcome::kClientAbort);
}

void Downstream::discard_unsent() {
  for (Slice& s : out_) block_unref(s.block);
  out_.clear();
}

void Downstream::wait_for_client(bool bounded) {
  stream_->notify_drained();
  if (!bounded) return;
  // Kernel buffers included: a slow reader's progress shows there long before in our queue.
  send_unsent_seen_ = stream_->unsent_bytes();
  wait_for(Wait::kSend, timeouts().client_send_ms);
}

void Downstream::close_gracefully() {
  if (phase_ == Phase::kClosing) return;
  flush();  // the last response goes out before the FIN
  if (ending_ == Ending::kAbort) {
    ending_ = Ending::kNone;
    ending_requested_ = false;
    return destroy();
  }
  if (closed_) return;
  // Lingering (our FIN, then waiting for the client's) is needed only while the client may still
  // be sending: closing over unread input makes the kernel answer with a reset, which can
  // destroy the response still on its way. Between requests, with nothing pending, close at once.
  const bool quiet = parser_.between_messages() && !pending_.block && !local_error_;
  end_exchange(Outcome::kClientAbort);
  phase_ = Phase::kClosing;
  if (eof_ || quiet) {
    stream_->end_cleanly();
    if (stream_->queued_bytes() == 0) return destroy();
    close_when_drained_ = true;
    stream_->notify_drained();
  } else {
    stream_->shutdown_write();  // FIN after the queued bytes; then wait for the client's FIN
    stream_->read_start();
  }
  wait_for(Wait::kLinger, kLingerMs);
}

void Downstream::on_eof() {
  eof_ = true;
  switch (phase_) {
    case Phase::kClosing:
      if (stream_->queued_bytes() == 0)
        destroy();
      else
        stream_->notify_drained();
      return;
    case Phase::kTunnel:
      exchange_->on_client_eof();
      return settle();
    case Phase::kWaiting:
      if (held_) return;  // requests it sent before its FIN are still answered, once it reads
      return close_gracefully();
    case Phase::kExchange:
      if (!exchange_->request_done()) return destroy();  // cut short: nothing to answer
      keep_alive_ = false;                               // answer, then close
      return;
  }
}

void Downstream::on_error(int) {
  destroy();
}

void Downstream::on_drained() {
  if (phase_ == Phase::kClosing) {
    if (eof_ || close_when_drained_) destroy();
    return;
  }
  if (held_ && phase_ == Phase::kWaiting) {
    held_ = false;
    return resume();
  }
  if (!exchange_ || (phase_ != Phase::kExchange && phase_ != Phase::kTunnel)) return;
  if (wait_ == Wait::kSend) {
    wait_ = Wait::kNone;
    deadline_.clear();
  }
  exchange_->on_client_drained();
  settle();
}

void Downstream::on_deadline(void* self) {
  auto* c = static_cast<Downstream*>(self);
  switch (c->wait_) {
    case Wait::kHeader:
      if (c->phase_ != Phase::kWaiting) return;
      if (c->parser_.between_messages() && !c->pending_.block) return c->destroy();
      return c->reject({408, "the request head did not arrive in time", 0, Outcome::kBadRequest});
    case Wait::kIdle:
      if (c->phase_ != Phase::kWaiting) return;
      c->stream_->end_cleanly();  // an idle close is orderly: TLS says so with close_notify
      return c->destroy();
    case Wait::kSend: {
      if (c->phase_ != Phase::kExchange && !(c->held_ && c->phase_ == Phase::kWaiting)) return;
      const size_t unsent = c->stream_->unsent_bytes();
      if (unsent != c->send_unsent_seen_) {  // the client took some bytes since the last look
        c->send_unsent_seen_ = unsent;
        return c->deadline_.set(c->timeouts().client_send_ms);
      }
      log(LogLevel::kInfo, "client %s: took no response bytes in time", c->client_ip_);
      c->abort_outcome_ = Outcome::kClientAbort;
      return c->destroy();
    }
    case Wait::kLinger:
      return c->destroy();
    case Wait::kNone:
      return;
  }
}

void Downstream::begin_drain() {
  keep_alive_ = false;
  if (phase_ == Phase::kWaiting && parser_.between_messages() && !pending_.block)
    close_gracefully();
}

void Downstream::destroy() {
  if (closed_) return;
  closed_ = true;
  end_exchange(abort_outcome_);
  phase_ = Phase::kClosing;
  if (pending_.block) block_unref(pending_.block);
  pending_ = Slice{};
  for (Slice& s : out_) block_unref(s.block);
  out_.clear();
  stream_->close();
  if (prev)
    prev->next = next;
  else
    ctx_.clients = next;
  if (next) next->prev = prev;
  --ctx_.client_count;
  if (listener_ >= 0 && static_cast<size_t>(listener_) < ctx_.open_by_listener.size())
    --ctx_.open_by_listener[listener_];
  ctx_.counters.clients_closed.add();
  deadline_.close([](void* self) { delete static_cast<Downstream*>(self); });
}

}  // namespace sluice::core
