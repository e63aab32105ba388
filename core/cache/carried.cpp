// A fetch can outlive the exchange that made it: when requests wait on it and that exchange's
// client goes away in the middle of the body, or when it is a stale-while-revalidate refresh
// whose client has its answer, the Fill takes the backend connection and reads the rest itself,
// so the waiting requests (on any worker) get the whole response, and it is stored.
#include "core/cache/fill.h"
#include "core/proxy/worker_context.h"

namespace sluice::core::cache {

bool Fill::carry_on(UpstreamConnection* conn, WorkerContext& ctx, Generation* generation,
                    uint32_t response_timeout_ms, const char* unread, size_t unread_length) {
  if (!stored_ || ended_) return false;
  // A refresh is what stale-while-revalidate promised; a miss goes on only for those waiting.
  if (mode_ != Mode::kRefresh) {
    if (!flight_) return false;
    std::lock_guard<std::mutex> hold(flight_->lock);
    if (flight_->watchers.empty()) return false;  // nobody waits: no reason to read on
  }
  conn_ = conn;
  ctx_ = &ctx;
  generation_ = generation;
  ++generation_->users;  // its WorkerCache is this fill's, and must outlive it
  response_timeout_ms_ = response_timeout_ms;
  cache_.wake()->carry(this);
  conn->attach(this);
  conn->parser().set_body_sink(&Fill::carried_body, this);
  conn->stream().read_start();  // the client may have held it back
  conn->deadline().set(response_timeout_ms_);
  if (unread_length > 0) on_upstream_read(nullptr, unread, unread_length);  // may end it
  return true;
}

void Fill::carried_body(void* self, const char* data, size_t length) {
  static_cast<Fill*>(self)->on_body(data, length);
}

void Fill::on_upstream_read(Block*, const char* data, size_t length) {
  conn_->deadline().set(response_timeout_ms_);
  while (length > 0) {
    const ParseStep step = conn_->parser().execute(data, length);
    switch (step.event) {
      case ParseEvent::kNeedMore:
        return;
      case ParseEvent::kEnd:
        return end_carried(true);
      default:  // an error, or something other than the rest of this body
        return end_carried(false);
    }
  }
}

void Fill::on_upstream_eof() {
  end_carried(conn_->parser().finish().event == ParseEvent::kEnd);
}

// The end of a carried fetch: the connection closes (what follows on it answers nobody), the
// response is stored if whole, and the fill lets go of its generation and itself.
void Fill::end_carried(bool complete) {
  conn_->destroy();
  conn_ = nullptr;
  cache_.wake()->uncarry(this);
  on_end(complete);
  WorkerContext* ctx = ctx_;
  Generation* generation = generation_;
  delete this;
  ctx->release(generation);
}

}  // namespace sluice::core::cache
