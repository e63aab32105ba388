// The response relay: parse the backend's response, rewrite its head, pass 1xx answers on,
// switch to a tunnel after a 101, de-chunk for HTTP/1.0 clients, and hand the connection back
// to the pool when the response ends cleanly.
#include <uv.h>

#include "core/http/head_writer.h"
#include "core/io/log.h"
#include "core/proxy/exchange.h"

namespace sluice::core {

void Exchange::on_upstream_read(Block* block, const char* data, size_t length) {
  relay(block, data, length);
  client_.settle();
}

void Exchange::relay(Block* block, const char* data, size_t length) {
  if (stage_ == Stage::kTunnel) return tunnel_to_client(block, data, length);
  // The exchange may end in this event: keep the connection it read from apart.
  UpstreamConnection* const reading = upstream_;
  upstream_->deadline().set(timeouts().upstream_response_ms);
  relay_block_ = block;
  relay_response(block, data, length);
  relay_block_ = nullptr;
  client_.flush();
  response_on_wire_ = response_started_;
  if (stage_ != Stage::kUpstream || upstream_ != reading) return;
  // A response that goes on past this event must not wait on Nagle between its pieces.
  if (response_started_) client_.send_now();
  if (client_.backlogged()) throttle_for_client();
}

// Backpressure: a client that reads slowly stops the reads from its backend until it drains,
// and while it does the backend's silence is not the backend's fault.
void Exchange::throttle_for_client() {
  upstream_->stream().read_stop();
  upstream_->deadline().clear();
  waiting_for_client_ = true;
  client_.wait_for_client(true);
}

void Exchange::relay_response(Block* block, const char* data, size_t length) {
  for (;;) {
    if (stage_ != Stage::kUpstream || !upstream_) return;
    const ParseStep step = upstream_->parser().execute(data, length);
    switch (step.event) {
      case ParseEvent::kError:
        log(LogLevel::kWarn, "backend %s: invalid response: %s", upstream_->key().c_str(),
            upstream_->parser().error_reason());
        if (response_started_ && !response_on_wire_ && stage_ == Stage::kUpstream) {
          // Nothing of this response left yet: the client gets a clean 502 instead of a cut.
          client_.discard_unsent();
          response_started_ = false;
          record_.response_bytes = 0;
        }
        return attempt_failed(502, "invalid response from the backend",
                              AttemptFailure::kInvalidResponse);
      case ParseEvent::kNeedMore:
        if (upstream_->parser().in_body()) relay_body(block, data, length);
        return;
      case ParseEvent::kHead:
        data += step.consumed;
        length -= step.consumed;
        on_response_head();
        if (refreshing_ && hand_over_refresh(data, length)) return;
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
        if (tunnel_pending_) return enter_tunnel(block, data, length);
        return complete(length == 0);
    }
  }
}

void Exchange::on_response_head() {
  MessageHead& head = *upstream_->parser().head();
  // After an interim answer the request may still be resent: its head is kept until then.
  if (head.status < 200) return relay_interim(head);
  if (request_head_.block) block_unref(request_head_.block);
  request_head_ = Slice{};
  record_.first_byte_ms = uv_now(ctx_.loop);
  if (!refreshing_) record_.status = head.status;  // a refresh's client had its answer
  // A backend names its idle limit on every answer; reading the first one per connection is enough.
  if (!upstream_->reused()) upstream_->set_backend_idle_limit_ms(backend_idle_limit_ms(head));
  report_backend(head.status < 500, "a 5xx answer");
  if (request_->upgrade) client_.decline_upgrade();  // no 101: the next bytes are HTTP again
  if (!refreshing_ && (!request_done_ || head.framing == Framing::kUntilClose))
    client_.close_after();
  std::string_view cache_fields;
  if (cache_ && !cache_head(head, &cache_fields)) return;  // the cache answered instead
  const bool http10 = request_->version_major == 1 && request_->version_minor == 0;
  dechunk_ = http10 && head.framing == Framing::kChunked;
  if (dechunk_) client_.close_after();
  if (dechunk_ || cache_) upstream_->parser().set_body_sink(&Exchange::response_body, this);
  ResponseRewrite how{client_.keeps_alive(), http10, false, dechunk_, record_.request_id};
  how.forwarded = forwarded_;
  how.extra_fields = cache_fields;
  Slice s = write_response_head(ctx_.blocks, head, how);
  response_started_ = true;
  record_.response_bytes += s.length;
  client_.send(&s, 1);
  block_unref(s.block);
}

void Exchange::relay_interim(const MessageHead& head) {
  if (head.status == 101) {
    if (!request_->upgrade)
      return attempt_failed(502, "unrequested protocol switch", AttemptFailure::kInvalidResponse);
    tunnel_pending_ = true;
    record_.status = 101;
    record_.first_byte_ms = uv_now(ctx_.loop);
  } else {
    interim_ = true;
    // HTTP/1.0 clients do not understand interim responses, and a client whose answer came
    // from the cache has the whole of it already.
    if (request_->version_major == 1 && request_->version_minor == 0) return;
    if (refreshing_ || cache_served_) return;
  }
  ResponseRewrite how{true, false, head.status == 101, false, record_.request_id};
  how.forwarded = forwarded_;
  Slice s = write_response_head(ctx_.blocks, head, how);
  response_started_ = response_started_ || head.status == 101;
  record_.response_bytes += s.length;
  client_.send(&s, 1);
  block_unref(s.block);
}

// The body without its chunk framing: for an HTTP/1.0 client, and for a cache storing it.
void Exchange::response_body(void* self, const char* data, size_t length) {
  auto* e = static_cast<Exchange*>(self);
  if (e->cache_) e->cache_->on_body(data, length);
  if (!e->dechunk_) return;
  Slice s{e->relay_block_, data, length};
  e->record_.response_bytes += length;
  e->client_.send(&s, 1);
}

void Exchange::relay_body(Block* block, const char* data, size_t length) {
  // De-chunked bytes go by response_body(); a response the cache replaced goes nowhere.
  if (length == 0 || dechunk_ || cache_served_) return;
  Slice s{block, data, length};
  record_.response_bytes += length;
  client_.send(&s, 1);
}

void Exchange::complete(bool reusable) {
  const MessageHead* head = upstream_ ? upstream_->parser().head() : nullptr;
  if (cache_) cache_->on_end(true);
  release_upstream(reusable && head && head->keep_alive && request_done_);
  give_back_slot();
  record_.outcome = Outcome::kOk;
  outcome_set_ = true;
  stage_ = Stage::kDone;
  client_.done();
}

void Exchange::on_upstream_eof() {
  if (stage_ == Stage::kTunnel) {
    on_tunnel_eof();
    return client_.settle();
  }
  HttpParser& parser = upstream_->parser();
  if (response_started_ && parser.in_body()) {
    if (parser.finish().event == ParseEvent::kEnd) {
      complete(false);
    } else {
      log(LogLevel::kWarn, "backend %s: closed in the middle of a response",
          upstream_->key().c_str());
      abort(Outcome::kUpstreamReset);
    }
    return client_.settle();
  }
  attempt_failed(502, "the backend closed the connection without a response",
                 AttemptFailure::kClosedEarly);
  client_.settle();
}

void Exchange::on_upstream_error(int uv_error) {
  if (stage_ == Stage::kTunnel)
    abort(Outcome::kTunnelClosed);
  else
    attempt_failed(502, uv_strerror(uv_error), AttemptFailure::kClosedEarly);
  client_.settle();
}

}  // namespace sluice::core
