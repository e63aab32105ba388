// An exchange and its upstream's max_connections: holding a slot at a limited backend while a
// request is in flight to it, and waiting in the upstream's queue while every usable backend is
// full, until one has room (the request goes on) or queue_timeout_ms passes (503).
#include <uv.h>

#include <string>

#include "core/proxy/exchange.h"

namespace sluice::core {

void Exchange::give_back_slot() {
  if (!slot_) return;
  ctx_.backend_slots.give_back(slot_, upstream_config().pool.name);
  slot_ = nullptr;
}

// Behind the requests already waiting, for what is left of queue_timeout_ms; a full queue is
// answered at once.
void Exchange::wait_for_room(uint64_t now_ms) {
  uncount_active();  // a retry holds no place while it waits
  give_back_slot();
  const conf::Upstream& up = upstream_config();
  const uint32_t timeout_ms = up.settings.queue_timeout_ms;
  const uint32_t max = worker_share(up.settings.queue_max, ctx_.worker_count);
  if (queued_ms_ < timeout_ms &&
      ctx_.backend_slots.wait(this, up.pool.name, max, now_ms + (timeout_ms - queued_ms_))) {
    queued_since_ms_ = now_ms;
    return;
  }
  const std::string detail =
      queued_ms_ < timeout_ms
          ? "every backend of upstream '" + up.pool.name +
                "' is at max_connections and its queue is full"
          : "no backend of upstream '" + up.pool.name + "' had room within queue_timeout_ms";
  reply_locally(
      {503, detail, 1, queued_ms_ < timeout_ms ? Outcome::kQueueFull : Outcome::kQueueTimeout});
}

bool Exchange::on_room() {
  const uint64_t now_ms = uv_now(ctx_.loop);
  const Pick pick = pick_backend(now_ms);
  if (pick == Pick::kAllBusy) return false;
  queued_ms_ += static_cast<uint32_t>(now_ms - queued_since_ms_);
  if (pick == Pick::kPicked) {
    connect(false, now_ms);
  } else {
    const std::string detail =
        "no healthy backend in upstream '" + upstream_config().pool.name + "'";
    reply_locally({503, detail, 1});
  }
  client_.settle();
  return true;
}

void Exchange::on_queue_timeout() {
  queued_ms_ = upstream_config().settings.queue_timeout_ms;
  const std::string detail = "no backend of upstream '" + upstream_config().pool.name +
                             "' had room within queue_timeout_ms";
  reply_locally({503, detail, 1, Outcome::kQueueTimeout});
  client_.settle();
}

}  // namespace sluice::core
