// Lazy deadlines over a single uv_timer_t.
#include "core/io/deadline.h"

namespace sluice::core {

void Deadline::init(uv_loop_t* loop, Callback on_expired, void* owner) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  on_expired_ = on_expired;
  owner_ = owner;
}

void Deadline::arm(uint64_t due) {
  const uint64_t now = uv_now(timer_.loop);
  uv_timer_start(&timer_, &Deadline::on_timer, due > now ? due - now : 0, 0);
  due_ = due;
}

void Deadline::set(uint64_t after_ms) {
  deadline_ = uv_now(timer_.loop) + after_ms;
  if (due_ == 0 || due_ > deadline_) arm(deadline_);
}

void Deadline::clear() {
  deadline_ = 0;
}

void Deadline::on_timer(uv_timer_t* timer) {
  auto* d = static_cast<Deadline*>(timer->data);
  d->due_ = 0;
  if (d->deadline_ == 0) return;
  if (uv_now(timer->loop) >= d->deadline_) {
    d->deadline_ = 0;
    d->on_expired_(d->owner_);
    return;
  }
  d->arm(d->deadline_);
}

void Deadline::close(void (*on_closed)(void* owner)) {
  on_closed_ = on_closed;
  deadline_ = 0;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    auto* d = static_cast<Deadline*>(h->data);
    d->on_closed_(d->owner_);
  });
}

}  // namespace sluice::core
