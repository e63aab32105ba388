// The phases of an exchange in the order they run (core/proxy/phases.h), and its one end.
#include "core/proxy/exchange.h"

#include <uv.h>

#include "core/http/head_writer.h"
#include "core/io/log.h"
#include "core/proxy/forwarding.h"

namespace sluice::core {

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kLocalReply:
      return "local_reply";
    case Outcome::kBadRequest:
      return "bad_request";
    case Outcome::kClientAbort:
      return "client_abort";
    case Outcome::kUpstreamReset:
      return "upstream_reset";
    case Outcome::kUpstreamTimeout:
      return "upstream_timeout";
    case Outcome::kBadResponse:
      return "bad_response";
    case Outcome::kTunnelClosed:
      return "tunnel_closed";
    case Outcome::kQueueFull:
      return "queue_full";
    case Outcome::kQueueTimeout:
      return "queue_timeout";
    case Outcome::kDenied:
      return "denied";
    case Outcome::kRateLimited:
      return "rate_limited";
  }
  return "?";
}

Exchange::Exchange(WorkerContext& ctx, ClientSide& client, std::unique_ptr<MessageHead> request,
                   std::vector<Slice>& backlog)
    : ctx_(ctx),
      client_(client),
      generation_(ctx.hold()),
      request_(std::move(request)),
      backlog_(backlog),
      client_ip_(client.client_address()) {
  record_.start_ms = uv_now(ctx.loop);
}

Exchange::~Exchange() {
  // A fetch others wait on goes on without this exchange's client, if the ticket can carry it.
  if (cache_ && upstream_ && !cache_served_ && response_started_ && upstream_->parser().in_body())
    hand_over_fetch("", 0);
  cache_.reset();  // it may end a fetch others wait on, while its generation is still held
  if (finding_origin_) ctx_.origins->cancel(this);
  ctx_.backend_slots.leave(this);
  release_upstream(false);
  uncount_active();
  give_back_slot();
  if (request_) ctx_.heads.release(std::move(request_));
  if (request_head_.block) block_unref(request_head_.block);
  for (Slice& s : backlog_) block_unref(s.block);
  backlog_.clear();
  ctx_.release(generation_);
}

// The request's ID, before anything can answer it, so every response and log line carries it.
void Exchange::name_request() {
  const conf::RequestIdMode mode = generation_->snapshot->config.request_id;
  if (mode == conf::RequestIdMode::kOff) return;
  std::string_view theirs;
  if (mode == conf::RequestIdMode::kKeep && request_->find(FieldKind::kXRequestId, &theirs) &&
      acceptable_request_id(theirs)) {
    record_.request_id = theirs;
    return;
  }
  ctx_.request_ids.next(request_id_);
  record_.request_id = std::string_view(request_id_, sizeof request_id_);
  replace_request_id_ = true;
}

void Exchange::start() {
  const conf::Snapshot& snapshot = *generation_->snapshot;
  name_request();
  if (client_.listener() == kAdminListener) return serve_page();
  const int32_t listener = generation_->index_of_listener(client_.listener());
  const bool forward =
      listener >= 0 && snapshot.config.listeners[listener].mode != conf::ListenerMode::kReverse;
  // The authority of an absolute-form target, else the Host field (RFC 9112 3.2.2).
  const conf::Route* route = forward ? nullptr : snapshot.match(request_->host(), request_->path());
  if (route) record_.route = static_cast<int32_t>(route - snapshot.routes.data());
  // The route's body limit, else the global one. A declared length over it is refused before
  // any byte of the body is read, and before a gate could wait for one.
  max_body_ = route && route->config.max_request_body_bytes ? *route->config.max_request_body_bytes
                                                            : generation_->max_body;
  if (max_body_ && request_->framing == Framing::kLength && request_->content_length > max_body_)
    return reply_locally({413, "the request body is larger than this proxy accepts"});
  if (forward) return start_forward(snapshot.config.listeners[listener]);
  if (!pass_gates()) return;
  if (!route) return reply_locally({404, "no route for this host and path"});
  record_.upstream = static_cast<int32_t>(route->upstream);
  forwarded_ = forwarded_mode(route->config.forwarded);  // the response's Via needs it too
  if (ResponseCache* cache = generation_->cache_of(record_.route); cache && !consult_cache(*cache))
    return;
  send_upstream();
}

// Phase 6 for the request, then phase 5: the rewritten head goes to a backend of the upstream
// (or to the origin).
void Exchange::send_upstream() {
  const std::string_view host = request_->host();
  RequestRewrite how{client_ip_, client_.transport() ? "https" : "http", request_->upgrade};
  how.drop_proxy_authorization = forward_;
  how.forwarded = forwarded_;
  how.forwarded_field = named_client_.field;
  how.forwarded_start = named_client_.start;
  if (replace_request_id_) how.request_id = record_.request_id;
  if (cache_) {  // a revalidation sends the stored response's validators, not the client's
    how.extra_fields = cache_->request_fields();
    how.drop_conditionals = !how.extra_fields.empty();
  }
  std::string_view field;
  if (host.empty() && !request_->absolute_form() && !request_->find(FieldKind::kHost, &field))
    how.host_if_missing = upstream_config().pool.name;  // as nginx's $proxy_host
  request_head_ = write_request_head(ctx_.blocks, *request_, how);
  stage_ = Stage::kUpstream;
  attempt(RetryWhere::kOtherBackend);
}

// trusted_proxies: a request whose connection comes from a trusted proxy is the client's that
// its X-Forwarded-For names. Sets client_ip_ and named_client_; true when the client changed.
bool Exchange::resolve_client() {
  const conf::PrefixTree& trusted = generation_->snapshot->access.trusted_proxies;
  if (trusted.empty() || !trusted.contains(client_.client_ip_address())) return false;
  if (!forwarded_client(*request_, trusted, &named_client_)) return false;
  client_ip_ = named_client_.text;
  return true;
}

// Phase 3, after the client is known. False when a gate answered the request.
bool Exchange::pass_gates() {
  const bool forwarded = resolve_client();
  const std::vector<const RequestGate*>& gates = generation_->chains.request_gates;
  if (gates.empty()) return true;
  const conf::IpAddress& address = forwarded ? named_client_.address : client_.client_ip_address();
  const GateInput input{*request_, client_ip_, address, record_.route,
                        generation_->index_of_listener(client_.listener())};
  LocalReply reply;
  for (const RequestGate* gate : gates) {
    if (gate->check(input, &reply) == GateVerdict::kAnswer) {
      reply_locally(reply);
      return false;
    }
  }
  return true;
}

// The admin listener's pages, made by the PageSource core/server wired in, which says what
// methods each path takes (GET and HEAD; POST on /cache/purge).
void Exchange::serve_page() {
  if (!ctx_.pages) return reply_locally({404, "no pages here"});
  LocalPage page;
  ctx_.pages->serve(*request_, client_.client_ip_address(), &page);
  if (request_->method == HTTP_HEAD) page.body.clear();
  prepare_local_answer();
  answer_locally(write_local_response(ctx_.blocks, page.status, page.content_type, page.body,
                                      client_.keeps_alive(), record_.request_id),
                 page.status, Outcome::kLocalReply);
}

void Exchange::prepare_local_answer() {
  if (finding_origin_) {  // answered before its origin was found: that answer is not wanted
    ctx_.origins->cancel(this);
    finding_origin_ = false;
  }
  // With the request body still arriving there is no safe place for the next request to start.
  if (!request_done_ && request_ && request_->framing != Framing::kNone) client_.close_after();
  if (request_ && request_->upgrade) client_.decline_upgrade();  // the next bytes are HTTP
  ctx_.backend_slots.leave(this);
  release_upstream(false);
  give_back_slot();
}

void Exchange::reply_locally(const LocalReply& reply) {
  if (refreshing_) return end_refresh();  // the client has its answer: nothing more goes out
  if (reply.status >= 500 && cache_ && cache_error()) return;
  prepare_local_answer();
  answer_locally(
      write_error_response(ctx_.blocks, reply.status, reply.detail, client_.keeps_alive(),
                           reply.retry_after_s, record_.request_id, reply.header),
      reply.status, reply.outcome);
}

void Exchange::answer_locally(Slice s, int status, Outcome outcome) {
  record_.status = static_cast<uint16_t>(status);
  record_.local = true;
  record_.response_bytes += s.length;
  record_.outcome = outcome;
  outcome_set_ = true;
  stage_ = Stage::kAnswered;
  client_.send(&s, 1);
  block_unref(s.block);
  client_.flush();
  response_started_ = true;
  // The rest of the request is read and dropped; the exchange ends with it.
  if (!client_.keeps_alive() || request_done_) client_.done();
}

void Exchange::on_request_body(Block* block, const char* data, size_t length) {
  if (stage_ == Stage::kTunnel) return tunnel_to_backend(block, data, length);
  // While a forward proxy's origin is being found (DNS), the body waits in the backlog as it
  // does for a connection: the head that follows it says how long it is.
  if (length == 0 || (stage_ != Stage::kUpstream && !finding_origin_)) return;
  record_.request_bytes += length;
  // A chunked body is measured as it streams; what already went to the backend is lost to it.
  if (max_body_ && request_->framing == Framing::kChunked &&
      client_.request_payload_bytes() > max_body_)
    return body_too_large();
  send_body(Slice{block, data, length});
}

void Exchange::body_too_large() {
  if (response_started_) {
    client_.abort(Outcome::kBadRequest);
    return;
  }
  client_.close_after();
  reply_locally(
      {413, "the request body is larger than this proxy accepts", 0, Outcome::kBadRequest});
}

void Exchange::on_client_drained() {
  if (!upstream_ || (stage_ != Stage::kUpstream && stage_ != Stage::kTunnel)) return;
  upstream_->stream().read_start();
  if (waiting_for_client_) {  // the client caught up: the backend's silence counts again
    waiting_for_client_ = false;
    upstream_->deadline().set(timeouts().upstream_response_ms);
  }
}

void Exchange::finish(Outcome fallback) {
  if (stage_ == Stage::kFinished) return;
  stage_ = Stage::kFinished;
  const std::vector<ExchangeObserver*>& observers = generation_->chains.observers;
  if (observers.empty()) return;  // nobody reads the record: no need to close it
  if (!outcome_set_) record_.outcome = fallback;
  record_.end_ms = uv_now(ctx_.loop);
  record_.tls = client_.transport();
  record_.client_ip = client_ip_;
  record_.client_port = client_.client_port();
  record_.listener = client_.listener();
  if (cache_) record_.cache = cache_->outcome();
  for (ExchangeObserver* observer : observers) observer->on_finish(record_, request_.get());
}

void Exchange::abort(Outcome outcome) {
  if (refreshing_) return end_refresh();
  // A backend that failed mid-response is not read on by anyone (a cache ticket would).
  if (outcome == Outcome::kUpstreamReset || outcome == Outcome::kUpstreamTimeout ||
      outcome == Outcome::kBadResponse)
    release_upstream(false);
  if (!outcome_set_) {
    record_.outcome = outcome;
    outcome_set_ = true;
  }
  client_.abort(outcome);
}

}  // namespace sluice::core
