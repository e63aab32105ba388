// Client side of a connection: reading and parsing requests, pipelining, client timeouts, the
// proxy's own error answers and closing without losing queued response bytes.
#include "core/proxy/client.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cstring>

#include "core/http/head_writer.h"
#include "core/io/log.h"
#include "core/io/peer_address.h"
#include "core/io/tcp_stream.h"

namespace sluice::core {
namespace {
constexpr uint32_t kLingerMs = 2000;  // how long a closing connection waits for the client's FIN
}  // namespace

ClientConnection::ClientConnection(WorkerContext& ctx, Stream* stream)
    : ctx_(ctx),
      client_(stream),
      parser_(HttpParser::Kind::kRequest, ctx.heads, ctx.current->limits) {
  deadline_.init(ctx.loop, &ClientConnection::on_deadline, this);
  client_out_.reserve(4);  // a response head and body slices: one allocation, never regrown
}

void ClientConnection::accept(WorkerContext& ctx, int fd, const sockaddr_storage& peer) {
  TcpStream* stream = TcpStream::adopt(ctx.loop, ctx.blocks, fd);
  if (!stream) {
    ::close(fd);
    return;
  }
  stream->use_bulk_blocks(&ctx.bulk_blocks);  // uploads
  auto* c = new ClientConnection(ctx, stream);
  peer_address(peer, c->client_ip_, sizeof c->client_ip_);
  c->next = ctx.clients;
  if (ctx.clients) ctx.clients->prev = c;
  ctx.clients = c;
  ++ctx.client_count;
  stream->set_handler(c);
  stream->read_start();
  c->wait_for(Wait::kHeader, ctx.current->snapshot->config.timeouts.client_header_ms);
}

void ClientConnection::wait_for(Wait wait, uint32_t ms) {
  wait_ = wait;
  deadline_.set(ms);
}

void ClientConnection::on_read(Block* block, const char* data, size_t length) {
  switch (phase_) {
    case Phase::kTunnel: {
      Slice s{block, data, length};
      if (!upstream_ || upstream_->stream().write(&s, 1) != 0) return abort();
      if (upstream_->stream().queued_bytes() > kHighWater) {
        client_->read_stop();
        upstream_->stream().notify_drained();
      }
      return;
    }
    case Phase::kClosing:
      return;  // draining what the client still sends before it sees our FIN
    case Phase::kExchange:
      if (request_done_) return stash(block, data, length);
      return consume(block, data, length);
    case Phase::kWaiting:
      return consume(block, data, length);
  }
}

void ClientConnection::consume(Block* block, const char* data, size_t length) {
  for (;;) {
    const ParseStep step = parser_.execute(data, length);
    switch (step.event) {
      case ParseEvent::kError:
        return reject(parser_.error_status(), parser_.error_reason());
      case ParseEvent::kNeedMore:
        if (parser_.in_body()) return forward_request_body(block, data, length);
        if (!parser_.between_messages() && wait_ != Wait::kHeader)
          wait_for(Wait::kHeader, timeouts().client_header_ms);
        return;
      case ParseEvent::kHead:
        data += step.consumed;
        length -= step.consumed;
        start_exchange();
        if (phase_ == Phase::kClosing) return;
        continue;
      case ParseEvent::kEnd:
      case ParseEvent::kUpgrade:
        if (!handle_request_end(block, data, length, step.consumed)) return;
        data += step.consumed;
        length -= step.consumed;
        continue;
    }
  }
}

// Returns true when parsing should go on with the bytes after this request.
bool ClientConnection::handle_request_end(Block* block, const char* data, size_t length,
                                          size_t consumed) {
  forward_request_body(block, data, consumed);
  request_done_ = true;
  if (phase_ != Phase::kExchange) return false;
  if (local_response_) {  // answered already; the next request may follow at once
    end_exchange_state();
    wait_for(Wait::kIdle, timeouts().client_idle_ms);
    return true;
  }
  if (length > consumed) stash(block, data + consumed, length - consumed);
  return false;
}

void ClientConnection::stash(Block* block, const char* data, size_t length) {
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
  client_->read_stop();
}

void ClientConnection::resume_after_exchange() {
  end_exchange_state();
  if (!keep_alive_ || (client_eof_ && !pending_.block)) return close_gracefully();
  client_->send_immediately();
  parser_.set_limits(ctx_.current->limits);  // a reload's new limits apply from the next request
  wait_for(Wait::kIdle, timeouts().client_idle_ms);
  if (pending_.block) {
    Slice p = pending_;
    pending_ = Slice{};
    consume(p.block, p.data, p.length);
    block_unref(p.block);
  }
  if (phase_ != Phase::kClosing && !pending_.block && !client_eof_) client_->read_start();
}

void ClientConnection::reject(int status, const char* detail) {
  log(LogLevel::kInfo, "client %s: %d %s", client_ip_, status, detail);
  if (response_started_) return abort();
  release_upstream(false);
  keep_alive_ = false;
  local_error_ = true;
  send_local(status, detail);
  close_gracefully();
}

void ClientConnection::send_local(int status, const char* detail, int retry_after_s) {
  Slice s = write_error_response(ctx_.blocks, status, detail, keep_alive_, retry_after_s);
  local_response_ = true;
  write_client(&s, 1);
  block_unref(s.block);
  flush_client();
}

// Response bytes produced while handling one event leave together: a response's head and body
// go out in one writev instead of one write each.
void ClientConnection::write_client(const Slice* slices, size_t count) {
  if (closed_) return;
  for (size_t i = 0; i < count; ++i) {
    block_ref(slices[i].block);
    client_out_.push_back(slices[i]);
  }
}

void ClientConnection::flush_client() {
  if (client_out_.empty()) return;
  const int r = closed_ ? 0 : client_->write(client_out_.data(), client_out_.size());
  for (Slice& s : client_out_) block_unref(s.block);
  client_out_.clear();
  if (r != 0) abort();
}

void ClientConnection::close_gracefully() {
  if (phase_ == Phase::kClosing) return;
  flush_client();  // the last response goes out before the FIN
  if (closed_) return;
  // Lingering (our FIN, then waiting for the client's) is needed only while the client may still
  // be sending: closing over unread input makes the kernel answer with a reset, which can
  // destroy the response still on its way. Between requests, with nothing pending, close at once.
  const bool quiet = parser_.between_messages() && !pending_.block && !local_error_;
  release_upstream(false);
  end_exchange_state();
  phase_ = Phase::kClosing;
  if (client_eof_ || quiet) {
    if (client_->queued_bytes() == 0) return destroy();
    close_when_drained_ = true;
    client_->notify_drained();
  } else {
    client_->shutdown_write();  // FIN after the queued bytes; then wait for the client's FIN
    client_->read_start();
  }
  wait_for(Wait::kLinger, kLingerMs);
}

void ClientConnection::on_eof() {
  client_eof_ = true;
  switch (phase_) {
    case Phase::kClosing:
      if (client_->queued_bytes() == 0)
        destroy();
      else
        client_->notify_drained();
      return;
    case Phase::kTunnel:
      if (upstream_) upstream_->stream().shutdown_write();
      if (upstream_eof_) destroy();
      return;
    case Phase::kWaiting:
      return close_gracefully();
    case Phase::kExchange:
      if (!request_done_) return abort();  // the request was cut short: nothing to answer
      keep_alive_ = false;                 // answer, then close
      return;
  }
}

void ClientConnection::on_error(int) {
  abort();
}

void ClientConnection::on_drained() {
  if (phase_ == Phase::kClosing) {
    if (client_eof_ || close_when_drained_) destroy();
    return;
  }
  if (!upstream_ || (phase_ != Phase::kExchange && phase_ != Phase::kTunnel)) return;
  upstream_->stream().read_start();
  if (wait_ == Wait::kSend) {  // the client caught up: the backend's silence counts again
    wait_ = Wait::kNone;
    deadline_.clear();
    upstream_->deadline().set(timeouts().upstream_response_ms);
  }
}

void ClientConnection::on_deadline(void* self) {
  auto* c = static_cast<ClientConnection*>(self);
  switch (c->wait_) {
    case Wait::kHeader:
      if (c->phase_ != Phase::kWaiting) return;
      if (c->parser_.between_messages() && !c->pending_.block) return c->destroy();
      return c->reject(408, "the request head did not arrive in time");
    case Wait::kIdle:
      if (c->phase_ == Phase::kWaiting) c->destroy();
      return;
    case Wait::kSend: {
      if (c->phase_ != Phase::kExchange) return;
      // Kernel buffers included: a slow reader's progress shows there long before in our queue.
      const size_t unsent = c->client_->unsent_bytes();
      if (unsent != c->send_unsent_seen_) {  // the client took some bytes since the last look
        c->send_unsent_seen_ = unsent;
        return c->deadline_.set(c->timeouts().client_send_ms);
      }
      log(LogLevel::kInfo, "client %s: took no response bytes in time", c->client_ip_);
      return c->abort();
    }
    case Wait::kLinger:
      return c->destroy();
    case Wait::kNone:
      return;
  }
}

void ClientConnection::begin_drain() {
  keep_alive_ = false;
  if (phase_ == Phase::kWaiting && parser_.between_messages() && !pending_.block)
    close_gracefully();
}

void ClientConnection::abort() {
  if (closed_) return;
  release_upstream(false);
  destroy();
}

void ClientConnection::destroy() {
  if (closed_) return;
  closed_ = true;
  release_upstream(false);
  end_exchange_state();
  phase_ = Phase::kClosing;
  if (pending_.block) block_unref(pending_.block);
  pending_ = Slice{};
  for (Slice& s : client_out_) block_unref(s.block);
  client_out_.clear();
  client_->close();
  if (prev)
    prev->next = next;
  else
    ctx_.clients = next;
  if (next) next->prev = prev;
  --ctx_.client_count;
  deadline_.close([](void* self) { delete static_cast<ClientConnection*>(self); });
}

}  // namespace sluice::core
