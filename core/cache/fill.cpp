// Fetching for the cache: storing what may be stored, refreshing on 304, standing in stale for
// errors, and streaming to the requests that wait on this fetch.
#include "core/cache/fill.h"

#include <llhttp.h>

#include <algorithm>
#include <cstdio>

#include "core/cache/answer.h"
#include "core/cache/freshness.h"
#include "core/cache/http_date.h"
#include "core/http/head_writer.h"

namespace sluice::core::cache {

namespace {

bool never_stored(const MessageHead& head, size_t i) {
  const FieldKind kind = head.kind(i);
  // Age is computed per answer; X-Request-Id a backend echoed names the request that filled
  // the entry, not the one answered; RFC 9111 3.1 keeps the Proxy-Authenticate fields out.
  const std::string_view name = head.name(i);
  return is_hop_by_hop(head, i) || kind == FieldKind::kTransferEncoding ||
         kind == FieldKind::kContentLength || kind == FieldKind::kXRequestId ||
         equals_ignore_case(name, "Age") || equals_ignore_case(name, "Proxy-Authenticate") ||
         equals_ignore_case(name, "Proxy-Authentication-Info");
}

void append_field(MessageHead* to, std::string_view name, std::string_view value) {
  to->append_name(name.data(), name.size(), true);
  to->append_value(value.data(), value.size(), true);
}

// The head a stored response is served with: `from`'s fields less hop-by-hop ones, framing and
// Age, each replaced by `update`'s where it has one (RFC 9111 3.2), and a Date if none came.
void store_head(const MessageHead& from, const MessageHead* update, int64_t now, MessageHead* to) {
  to->clear();
  to->status = from.status;
  to->version_major = 1;
  to->version_minor = 1;
  const std::string_view reason = from.reason();
  to->append_target(reason.data(), reason.size());
  bool date = false;
  std::string_view ignored;
  for (size_t i = 0; i < from.field_count(); ++i) {
    if (never_stored(from, i)) continue;
    if (update && update->find(from.name(i), &ignored)) continue;
    // An update without a Date was made now (RFC 9110 6.6.1), not when the stored one was.
    if (update && equals_ignore_case(from.name(i), "Date")) continue;
    date = date || equals_ignore_case(from.name(i), "Date");
    append_field(to, from.name(i), from.value(i));
  }
  for (size_t i = 0; update && i < update->field_count(); ++i) {
    if (never_stored(*update, i)) continue;
    date = date || equals_ignore_case(update->name(i), "Date");
    append_field(to, update->name(i), update->value(i));
  }
  if (!date) {
    char text[kHttpDateLength];
    format_http_date(now, text);
    append_field(to, "Date", std::string_view(text, sizeof text));
  }
  to->finalize();
}

uint64_t head_bytes(const MessageHead& head) {
  return sizeof(StoredResponse) + head.capacity_bytes() + head.field_count() * 24;
}

}  // namespace

Fill::Fill(WorkerCache& cache, const CacheQuery& query, ClientSide& client, std::string key,
           const CacheControl& request_cc, std::shared_ptr<const StoredResponse> stale, Mode mode)
    : cache_(cache),
      query_(query),
      client_(client),
      key_(std::move(key)),
      request_cc_(request_cc),
      stale_(std::move(stale)),
      mode_(mode),
      request_time_(wall_seconds()) {
  if (mode_ != Mode::kMiss && stale_) {
    if (!stale_->etag.empty())
      validators_.append("If-None-Match: ").append(stale_->etag).append("\r\n");
    if (!stale_->last_modified.empty())
      validators_.append("If-Modified-Since: ").append(stale_->last_modified).append("\r\n");
  }
  if (mode_ == Mode::kMiss) flight_ = cache_.shared().start_flight(key_);
  outcome_ = mode_ == Mode::kMiss ? "miss" : mode_ == Mode::kRevalidate ? "revalidated" : "stale";
}

Fill::~Fill() {
  if (!ended_) on_end(false);
}

// Waiters learn that nothing will be shared, and later misses start fetches of their own.
void Fill::drop_flight() {
  if (!flight_) return;
  {
    std::lock_guard<std::mutex> hold(flight_->lock);
    flight_->dropped = true;
    flight_->response.reset();
  }
  cache_.shared().end_flight(key_, flight_.get());
  flight_->wake_all();
  flight_.reset();
}

TapStep Fill::on_not_modified(const MessageHead& response, CachedAnswer* answer, int64_t now) {
  auto merged = std::make_shared<StoredResponse>();
  merged->key = stale_->key;
  merged->body = stale_->body;
  merged->vary = stale_->vary;
  store_head(stale_->head, &response, now, &merged->head);
  note_freshness(response, cache_control_of(merged->head), cache_.shared().config, request_time_,
                 now, merged.get());
  merged->bytes = head_bytes(merged->head) + merged->body->allocated();
  std::shared_ptr<const StoredResponse> fresh = merged;
  // The merged fields are stored only if they may be (a 304 may bring Set-Cookie or private);
  // this client is answered from them all the same.
  const CacheControl merged_cc = cache_control_of(merged->head);
  if (unshareable(query_.request, request_cc_, merged->head, merged_cc))
    cache_.shared().store.erase(key_);
  else
    cache_.shared().store.put(fresh);
  cache_.shared().counters.revalidated.fetch_add(1, std::memory_order_relaxed);
  if (mode_ == Mode::kRefresh) return TapStep::kServed;
  *answer = cache::answer(fresh, query_, client_,
                          request_cc_.no_cache ? "sluice; fwd=request; fwd-status=304"
                                               : "sluice; fwd=stale; fwd-status=304",
                          now);
  return TapStep::kServed;
}

bool Fill::serve_stale_for_error(int status, CachedAnswer* answer, int64_t now) {
  if (!stale_ || stale_->must_revalidate || stale_->no_cache) return false;
  const int64_t staleness = stale_->current_age(now) - stale_->freshness_lifetime;
  if (stale_->stale_if_error <= 0 || staleness > stale_->stale_if_error) return false;
  cache_.shared().counters.stale.fetch_add(1, std::memory_order_relaxed);
  outcome_ = "stale";
  if (mode_ == Mode::kRefresh) return true;  // the client has its answer already
  char text[96];
  if (status > 0)
    std::snprintf(text, sizeof text, "sluice; fwd=stale; fwd-status=%d; detail=stale-if-error",
                  status);
  else
    std::snprintf(text, sizeof text, "sluice; fwd=stale; detail=stale-if-error");
  *answer = cache::answer(stale_, query_, client_, text, now);
  return true;
}

TapStep Fill::on_response_head(const MessageHead& response, std::string_view* extra,
                               CachedAnswer* answer) {
  const int64_t now = wall_seconds();
  if (stale_ && response.status == 304 && mode_ != Mode::kMiss)
    return on_not_modified(response, answer, now);
  if (response.status >= 500 && serve_stale_for_error(response.status, answer, now)) {
    drop_flight();
    return TapStep::kServed;
  }
  const CacheControl response_cc = cache_control_of(response);
  const SharedCache& shared = cache_.shared();
  const char* why =
      unstorable(query_.request, request_cc_, response, response_cc, shared.config, now);
  const char* fwd = mode_ == Mode::kMiss   ? (stale_ ? "stale" : "uri-miss")
                    : request_cc_.no_cache ? "request"
                                           : "stale";
  if (request_cc_.no_cache && mode_ == Mode::kMiss) fwd = "request";
  char text[128];
  std::snprintf(text, sizeof text, "Cache-Status: sluice; fwd=%s; fwd-status=%d%s\r\n", fwd,
                response.status, why ? "" : "; stored");
  extra_ = text;
  *extra = extra_;
  if (why) {
    drop_flight();
    return mode_ == Mode::kRefresh ? TapStep::kServed : TapStep::kRelay;
  }
  make_stored(response, response_cc, now);
  if (flight_) {
    {
      std::lock_guard<std::mutex> hold(flight_->lock);
      flight_->response = stored_;
      flight_->length = length_;
      flight_->head = true;
    }
    flight_->wake_all();
  }
  return mode_ == Mode::kRefresh ? TapStep::kServed : TapStep::kRelay;
}

void Fill::make_stored(const MessageHead& response, const CacheControl& response_cc, int64_t now) {
  stored_ = std::make_shared<StoredResponse>();
  stored_->key = key_;
  store_head(response, nullptr, now, &stored_->head);
  length_ = response.framing == Framing::kLength ? static_cast<int64_t>(response.content_length)
            : response.framing == Framing::kNone ? 0
                                                 : -1;
  stored_->body = std::make_shared<Body>(length_ > 0 ? static_cast<uint64_t>(length_) : 0);
  for (size_t i = 0; i < response.field_count(); ++i) {  // every Vary line counts
    if (!equals_ignore_case(response.name(i), "Vary")) continue;
    std::string_view vary = response.value(i), item;
    while (next_list_item(&vary, &item)) {
      if (item.empty()) continue;
      VaryField field;
      field.name.assign(item);
      for (char& c : field.name)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      field.present = vary_value(query_.request, field.name, &field.value);
      stored_->vary.push_back(std::move(field));
    }
  }
  note_freshness(response, response_cc, cache_.shared().config, request_time_, now, stored_.get());
}

void Fill::on_body(const char* data, size_t length) {
  if (!stored_ || length == 0) return;
  if (stored_->body->size() + length > cache_.shared().config.max_object_bytes) {
    stored_.reset();  // too large to keep: it streams through, and waiters must fetch it
    drop_flight();
    return;
  }
  if (!flight_) return stored_->body->append(data, length);
  {
    std::lock_guard<std::mutex> hold(flight_->lock);  // waiters read the blocks under it
    stored_->body->append(data, length);
    flight_->published = stored_->body->size();
  }
  flight_->wake_all();
}

void Fill::on_end(bool complete) {
  if (ended_) return;
  ended_ = true;
  const bool whole = complete && stored_ &&
                     (length_ < 0 || stored_->body->size() == static_cast<uint64_t>(length_));
  if (whole) {
    stored_->bytes = head_bytes(stored_->head) + stored_->body->allocated();
    cache_.shared().store.put(stored_);  // before the flight ends: later misses find it stored
  } else if (mode_ == Mode::kRefresh && stale_) {
    stale_->refreshing.store(false);  // nothing came of it: the next stale hit tries again
  }
  if (flight_) {
    {
      std::lock_guard<std::mutex> hold(flight_->lock);
      flight_->ended = true;
      flight_->complete = whole;
    }
    cache_.shared().end_flight(key_, flight_.get());
    flight_->wake_all();
    flight_.reset();
  }
  stored_.reset();
}

bool Fill::on_error(CachedAnswer* answer) {
  drop_flight();
  return serve_stale_for_error(0, answer, wall_seconds());
}

}  // namespace sluice::core::cache
