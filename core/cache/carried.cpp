// A fetch can outlive the exchange that made it: when requests wait on it and that exchange's
// client goes away in the middle of the body, or when it is a stale-while-revalidate refresh
// whose client has its answer, the Fill takes the backend connection and reads the rest itself,
// so the waiting requests (on any worker) get the whole response, and it is stored.
#include "balancer/backend.h"
#include "core/cache/fill.h"
#include "core/proxy/worker_context.h"

namespace sluice::core::cache {

bool Fill::carry_on(const CarriedFetch& fetch) {
  if (!stored_ || ended_) return false;
  // A refresh is what stale-while-revalidate promised; a miss goes on only for those waiting.
  if (mode_ != Mode::kRefresh) {
    if (!flight_) return false;
    std::lock_guard<std::mutex> hold(flight_->lock);
    if (flight_->watchers.empty()) return false;  // nobody waits: no reason to read on
  }
  conn_ = fetch.connection;
  ctx_ = &fetch.ctx;
  generation_ = fetch.generation;
  ++generation_->users;  // its WorkerCache is this fill's, and must outlive it
  response_timeout_ms_ = fetch.response_timeout_ms;
  counted_ = fetch.counted;
  slot_ = fetch.slot;
  upstream_ = fetch.upstream;
  cache_.wake()->carry(this);
  conn_->attach(this);
  conn_->parser().set_body_sink(&Fill::carried_body, this);
  conn_->stream().read_start();  // the client may have held it back
  // The bytes after the head, even none: an empty body ends at the parser's next step.
  on_upstream_read(nullptr, fetch.unread, fetch.unread_length);  // may end it
  return true;
}

void Fill::carried_body(void* self, const char* data, size_t length) {
  static_cast<Fill*>(self)->on_body(data, length);
}

void Fill::on_upstream_read(Block*, const char* data, size_t length) {
  conn_->deadline().set(response_timeout_ms_);
  const ParseStep step = conn_->parser().execute(data, length);
  if (step.event == ParseEvent::kEnd) return end_carried(true);
  // An error, something other than the rest of this body, or a body past max_object_bytes
  // (nothing will be stored: no reason to read on).
  if (step.event != ParseEvent::kNeedMore || !stored_) return end_carried(false);
}

void Fill::on_upstream_eof() {
  end_carried(conn_->parser().finish().event == ParseEvent::kEnd);
}

// The end of a carried fetch: the connection closes (what follows on it answers nobody), the
// backend's place is given back, the response is stored if whole, and the fill lets go of its
// generation and itself.
void Fill::end_carried(bool complete) {
  conn_->destroy();
  conn_ = nullptr;
  if (counted_) counted_->active.fetch_sub(1, std::memory_order_relaxed);
  if (slot_) ctx_->backend_slots.give_back(slot_, upstream_);
  cache_.wake()->uncarry(this);
  on_end(complete);
  WorkerContext* ctx = ctx_;
  Generation* generation = generation_;
  delete this;
  ctx->release(generation);
}

}  // namespace sluice::core::cache
