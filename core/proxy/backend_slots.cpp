// Per-worker slots and wait queues for backends with max_connections. One timer serves every
// queue of the worker: it fires at the earliest deadline, or on the next turn of the loop when a
// slot freed up, so a waiter is never told anything inside another exchange's event.
#include "core/proxy/backend_slots.h"

#include <algorithm>

namespace sluice::core {

uint32_t worker_share(uint32_t limit, uint32_t workers) {
  if (limit == 0) return 0;
  const uint32_t w = std::max<uint32_t>(1, workers);
  return std::max<uint32_t>(1, limit / w + (limit % w != 0));
}

bool PoolRoom::has_room(int backend) const {
  const balancer::Backend& b = pool_.backends[backend];
  return b.max_connections == 0 ||
         slots_.busy(b.state.get()) < worker_share(b.max_connections, workers_);
}

BackendSlots::~BackendSlots() {
  if (timer_)
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

uint32_t BackendSlots::busy(const balancer::BackendState* backend) const {
  auto it = busy_.find(backend);
  return it == busy_.end() ? 0 : it->second;
}

void BackendSlots::take(const balancer::BackendState* backend) {
  auto [it, added] = busy_.try_emplace(backend, 0);
  ++it->second;
  if (added && busy_.size() > sweep_at_) sweep();
}

void BackendSlots::sweep() {
  std::erase_if(busy_, [](const auto& entry) { return entry.second == 0; });
  sweep_at_ = std::max<size_t>(64, 2 * busy_.size());
}

void BackendSlots::give_back(const balancer::BackendState* backend, std::string_view upstream) {
  auto it = busy_.find(backend);
  if (it != busy_.end() && it->second > 0) --it->second;
  auto queue = queues_.find(upstream);
  if (queue == queues_.end() || !queue->second.head) return;
  queue->second.wake = true;
  schedule();
}

uint32_t BackendSlots::waiting(std::string_view upstream) const {
  auto it = queues_.find(upstream);
  return it == queues_.end() ? 0 : it->second.length;
}

bool BackendSlots::wait(SlotWaiter* waiter, std::string_view upstream, uint32_t max,
                        uint64_t deadline_ms) {
  auto it = queues_.find(upstream);
  if (it == queues_.end()) it = queues_.emplace(std::string(upstream), WaitQueue{}).first;
  WaitQueue& queue = it->second;
  if (queue.length >= max) return false;
  waiter->deadline_ms_ = deadline_ms;
  // A waiter whose time runs out before an earlier one's (it waited before, in a retry, or a
  // reload changed queue_timeout_ms): expiry must look past the head from now on.
  if (queue.tail && deadline_ms < queue.tail->deadline_ms_) queue.unordered = true;
  if (!queue.head) queue.recheck_ms = uv_now(loop_) + kRecheckMs;
  link(queue, waiter, false);
  schedule();
  return true;
}

void BackendSlots::leave(SlotWaiter* waiter) {
  if (!waiter->queue_) return;
  unlink(waiter);
  schedule();
}

void BackendSlots::link(WaitQueue& queue, SlotWaiter* waiter, bool at_head) {
  waiter->queue_ = &queue;
  if (at_head) {
    waiter->prev_ = nullptr;
    waiter->next_ = queue.head;
    if (queue.head) queue.head->prev_ = waiter;
    queue.head = waiter;
    if (!queue.tail) queue.tail = waiter;
  } else {
    waiter->next_ = nullptr;
    waiter->prev_ = queue.tail;
    if (queue.tail) queue.tail->next_ = waiter;
    queue.tail = waiter;
    if (!queue.head) queue.head = waiter;
  }
  ++queue.length;
}

void BackendSlots::unlink(SlotWaiter* waiter) {
  WaitQueue& queue = *waiter->queue_;
  if (waiter->prev_)
    waiter->prev_->next_ = waiter->next_;
  else
    queue.head = waiter->next_;
  if (waiter->next_)
    waiter->next_->prev_ = waiter->prev_;
  else
    queue.tail = waiter->prev_;
  waiter->prev_ = waiter->next_ = nullptr;
  waiter->queue_ = nullptr;
  --queue.length;
  if (queue.length == 0) queue.unordered = false;
}

// Arms the timer for the earliest thing due, or closes it when nothing waits.
void BackendSlots::schedule() {
  if (in_timer_) return;  // on_timer() schedules once it is done
  const uint64_t now = uv_now(loop_);
  uint64_t due = UINT64_MAX;
  for (auto& [name, queue] : queues_) {
    if (!queue.head) {
      queue.wake = false;
      continue;
    }
    due = std::min(due, queue.wake ? now : queue.recheck_ms);
    for (const SlotWaiter* w = queue.head; w; w = queue.unordered ? w->next_ : nullptr)
      due = std::min(due, w->deadline_ms_);
  }
  if (due == UINT64_MAX) {
    if (timer_)
      uv_close(reinterpret_cast<uv_handle_t*>(timer_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
    due_ = 0;
    return;
  }
  if (!timer_) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
    due_ = 0;
  }
  if (due == due_) return;
  due_ = due;
  uv_timer_start(timer_, &BackendSlots::on_timer, due > now ? due - now : 0, 0);
}

void BackendSlots::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<BackendSlots*>(timer->data);
  self->due_ = 0;
  self->in_timer_ = true;
  self->expire(uv_now(self->loop_));
  // Waiters' callbacks may add queues (a pipelined request of another upstream): walk a list.
  const uint64_t now = uv_now(self->loop_);
  self->woken_.clear();
  for (auto& [name, queue] : self->queues_) {
    if (queue.head && queue.recheck_ms <= now) queue.wake = true;
    if (queue.wake && queue.head) {
      self->woken_.push_back(&queue);
      queue.recheck_ms = now + kRecheckMs;
    }
    queue.wake = false;
  }
  for (WaitQueue* queue : self->woken_) self->dispatch(*queue);
  self->in_timer_ = false;
  self->schedule();
}

// Waiters whose time is up leave their queues first, then are told one by one; one that goes
// away meanwhile (its client closed) leaves the expiring list as it would have left its queue.
void BackendSlots::expire(uint64_t now_ms) {
  for (auto& [name, queue] : queues_) {
    for (SlotWaiter* w = queue.head; w;) {
      SlotWaiter* next = w->next_;
      if (w->deadline_ms_ <= now_ms) {
        unlink(w);
        link(expiring_, w, false);
      } else if (!queue.unordered) {
        break;
      }
      w = next;
    }
  }
  while (SlotWaiter* w = expiring_.head) {
    unlink(w);
    w->on_queue_timeout();
  }
}

void BackendSlots::dispatch(WaitQueue& queue) {
  while (SlotWaiter* w = queue.head) {
    unlink(w);
    if (w->on_room()) continue;
    link(queue, w, true);
    return;
  }
}

}  // namespace sluice::core
