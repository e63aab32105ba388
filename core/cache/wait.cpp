// Requests that wait on another request's fetch: each looks at the flight when its worker is
// woken, sends what came since it last looked (the head first), and ends with the flight, or
// goes to the backend itself when the flight will share nothing.
#include <llhttp.h>

#include "core/cache/answer.h"
#include "core/cache/clock.h"
#include "core/cache/fill.h"

namespace sluice::core::cache {

Wait::Wait(WorkerCache& cache, std::shared_ptr<Flight> flight, const CacheQuery& query,
           ClientSide& client, CacheWaiter* waiter)
    : flight_(std::move(flight)),
      wake_(cache.wake()),
      query_(query),
      client_(client),
      waiter_(waiter),
      deadline_ns_(steady_ns() + uint64_t{cache.shared().config.collapse_wait_ms} * 1'000'000) {
  flight_->watch(wake_);
  wake_->add(this);
  cache.shared().counters.collapsed.fetch_add(1, std::memory_order_relaxed);
}

void Wait::expire() {
  if (!flight_ || stored_ || steady_ns() < deadline_ns_) return;
  leave();
  fetched_ = true;
  waiter_->on_cache_fetch();
}

Wait::~Wait() {
  leave();
}

void Wait::leave() {
  if (!flight_) return;
  wake_->remove(this);
  flight_.reset();
}

void Wait::advance() {
  if (!flight_) return;
  std::shared_ptr<StoredResponse> response;
  int64_t length;
  bool head, dropped, ended, complete;
  uint64_t sent = 0;
  {
    std::lock_guard<std::mutex> hold(flight_->lock);
    response = flight_->response;
    length = flight_->length;
    head = flight_->head;
    dropped = flight_->dropped;
    ended = flight_->ended;
    complete = flight_->complete;
    if (stored_ && response == stored_ && query_.request.method != HTTP_HEAD &&
        flight_->published > sent_) {
      // The blocks are read under the lock the fetching worker appends under.
      sent = answer_body(stored_, sent_, flight_->published, chunked_, client_, query_.blocks);
      sent_ = flight_->published;
    }
  }
  if (!stored_) {
    if (dropped || (ended && (!response || !complete))) {  // nothing to share: fetch it ourselves
      leave();
      fetched_ = true;
      return waiter_->on_cache_fetch();
    }
    if (!head || !response) return;                  // not yet
    if (!vary_matches(*response, query_.request)) {  // an answer for another request
      leave();
      fetched_ = true;
      return waiter_->on_cache_fetch();
    }
    stored_ = response;
    const CachedAnswer answer =
        answer_head(*stored_, query_, client_, "sluice; fwd=uri-miss; collapsed", length,
                    wall_seconds(), &chunked_);
    waiter_->on_cache_head(answer);
    return advance();  // and the body so far
  }
  if (sent > 0) waiter_->on_cache_body(sent);
  if (dropped && !ended) {  // too large to share after all: this answer cannot be finished
    leave();
    return waiter_->on_cache_end(false);
  }
  if (!ended) return;
  if (complete && chunked_) answer_last_chunk(client_, query_.blocks);
  leave();
  waiter_->on_cache_end(complete);
}

}  // namespace sluice::core::cache
