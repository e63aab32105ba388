// An exchange on a route with a cache: asking the cache first, answering from it, waiting on
// another exchange's fetch, and letting the cache tap (or replace) the backend's response.
#include <uv.h>

#include "core/proxy/exchange.h"

namespace sluice::core {

// Phase 5 from the cache. False when the request needs nothing more from the backend now.
bool Exchange::consult_cache(ResponseCache& cache) {
  const bool http10 = request_->version_major == 1 && request_->version_minor == 0;
  ResponseRewrite how{client_.keeps_alive(), http10, false, false, record_.request_id};
  how.forwarded = forwarded_;
  const CacheQuery query{*request_, client_.transport() ? "https" : "http", how, ctx_.blocks};
  CachedAnswer answer;
  switch (cache.begin(query, client_, this, &cache_, &answer)) {
    case CacheStep::kAnswered:
      answered_from_cache(answer);
      return false;
    case CacheStep::kRefresh:  // the stale answer goes now; the backend refreshes it after
      record_.status = answer.status;
      record_.response_bytes += answer.bytes;
      record_.outcome = Outcome::kOk;
      outcome_set_ = true;
      response_started_ = true;
      cache_served_ = true;
      refreshing_ = true;
      client_.flush();
      return true;
    case CacheStep::kWait:
      return false;
    case CacheStep::kFetch:
    case CacheStep::kBypass:
      return true;
  }
  return true;
}

void Exchange::answered_from_cache(const CachedAnswer& answer) {
  ctx_.backend_slots.leave(this);
  release_upstream(false);
  give_back_slot();
  record_.status = answer.status;
  record_.response_bytes += answer.bytes;
  record_.cache = answer.outcome;
  record_.outcome = Outcome::kOk;
  outcome_set_ = true;
  stage_ = Stage::kAnswered;
  client_.flush();
  response_started_ = true;
  // The rest of the request is read and dropped; the exchange ends with it.
  if (!client_.keeps_alive() || request_done_) client_.done();
}

// The backend's response head, shown to the cache. False when the cache answered in its place
// (a 304 refreshed what it holds, or a stale answer stands in for a 5xx): its body is dropped.
bool Exchange::cache_head(const MessageHead& head, std::string_view* extra) {
  CachedAnswer answer;
  if (cache_->on_response_head(head, extra, &answer) == TapStep::kRelay) return true;
  cache_served_ = true;
  upstream_->parser().set_body_sink(&Exchange::response_body, this);  // the cache may store it
  if (refreshing_) return false;
  record_.status = answer.status;
  record_.response_bytes += answer.bytes;
  response_started_ = true;
  return false;
}

// The backend failed: a stale response may answer in place of the error. True when one did.
bool Exchange::cache_error() {
  if (response_started_) return false;
  CachedAnswer answer;
  if (!cache_->on_error(&answer)) return false;
  prepare_local_answer();
  answered_from_cache(answer);
  record_.cache = cache_->outcome();
  return true;
}

// A background refresh that ends, well or not: the client had its whole answer long ago.
void Exchange::end_refresh() {
  refreshing_ = false;
  if (stage_ == Stage::kDone || stage_ == Stage::kFinished) return;
  ctx_.backend_slots.leave(this);
  release_upstream(false);
  give_back_slot();
  stage_ = Stage::kDone;
  client_.done();
}

// A refresh whose response has a body: the ticket reads it on its own, from the bytes after the
// head, and the client's connection is free at once for its next request.
bool Exchange::hand_over_refresh(const char* unread, size_t length) {
  if (!cache_ || !upstream_ || !upstream_->parser().in_body()) return false;
  record_.cache = cache_->outcome();  // the ticket is gone by the time the record closes
  if (!hand_over_fetch(unread, length)) return false;
  end_refresh();
  return true;
}

// The ticket reads the rest of the response on its own: the connection, the backend's
// in-flight count and its max_connections slot go with it.
bool Exchange::hand_over_fetch(const char* unread, size_t length) {
  CarriedFetch fetch{upstream_, ctx_, generation_, timeouts().upstream_response_ms, unread, length};
  fetch.counted = counted_;
  fetch.slot = slot_;
  if (slot_) fetch.upstream = upstream_config().pool.name;
  if (!cache_->carry_on(fetch)) return false;
  cache_.release();  // it ends itself with the fetch
  upstream_ = nullptr;
  counted_ = nullptr;
  slot_ = nullptr;
  return true;
}

void Exchange::on_cache_head(const CachedAnswer& answer) {
  record_.status = answer.status;
  record_.response_bytes += answer.bytes;
  record_.first_byte_ms = uv_now(ctx_.loop);
  response_started_ = true;
  client_.flush();
}

void Exchange::on_cache_body(uint64_t bytes) {
  record_.response_bytes += bytes;
  client_.flush();
  client_.send_now();
}

void Exchange::on_cache_end(bool complete) {
  if (!complete) {
    abort(Outcome::kUpstreamReset);
    return client_.settle();
  }
  record_.outcome = Outcome::kOk;
  outcome_set_ = true;
  stage_ = Stage::kAnswered;
  client_.flush();
  if (!client_.keeps_alive() || request_done_) client_.done();
  client_.settle();
}

void Exchange::on_cache_fetch() {
  send_upstream();
  client_.settle();
}

}  // namespace sluice::core
