// One timer per connection, re-armed lazily: moving a deadline later is a plain store, and the
// timer re-arms itself for the remainder when it fires early. This keeps timer work off the
// per-request path (no heap operation per read or per keep-alive request).
#pragma once

#include <uv.h>

#include <cstdint>

namespace sluice::core {

class Deadline {
 public:
  using Callback = void (*)(void* owner);

  void init(uv_loop_t* loop, Callback on_expired, void* owner);
  void set(uint64_t after_ms);  // expire `after_ms` from now
  void clear();                 // no deadline
  bool armed() const { return deadline_ != 0; }
  // Closes the timer; `on_closed(owner)` runs once libuv releases it.
  void close(void (*on_closed)(void* owner));

 private:
  static void on_timer(uv_timer_t* timer);
  void arm(uint64_t due);

  uv_timer_t timer_;
  Callback on_expired_ = nullptr;
  void* owner_ = nullptr;
  void (*on_closed_)(void*) = nullptr;
  uint64_t deadline_ = 0;  // loop time in ms; 0 means none
  uint64_t due_ = 0;       // when the libuv timer fires; 0 when not running
};

}  // namespace sluice::core
