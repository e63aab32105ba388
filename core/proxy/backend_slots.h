// Admission to backends with max_connections, per worker: how many of this worker's requests are
// in flight to each such backend, and per upstream the queue of requests that wait for one of its
// backends to have room, each until its queue_timeout_ms. The limits are shared out by the
// workers (each takes its share, rounded up, at least 1), so nothing here locks or is atomic, and
// a slot that frees up wakes a waiter on the same loop.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "balancer/policy.h"

namespace sluice::core {

class BackendSlots;
struct WaitQueue;

// A request that may wait for room: the exchange. Its links belong to BackendSlots.
class SlotWaiter {
 public:
  // Out of its queue, as its queue's first: a backend of its upstream may have room now. Returns
  // false, having done nothing, when none has (it goes back to the head of its queue); true when
  // it went on (it may be gone on return).
  virtual bool on_room() = 0;
  // Its queue_timeout_ms passed; it is out of the queue already.
  virtual void on_queue_timeout() = 0;
  bool waiting() const { return queue_ != nullptr; }

 protected:
  ~SlotWaiter() = default;

 private:
  friend class BackendSlots;
  SlotWaiter* prev_ = nullptr;
  SlotWaiter* next_ = nullptr;
  WaitQueue* queue_ = nullptr;
  uint64_t deadline_ms_ = 0;
};

// The waiters of one upstream, first come first served.
struct WaitQueue {
  SlotWaiter* head = nullptr;
  SlotWaiter* tail = nullptr;
  uint32_t length = 0;
  uint64_t recheck_ms = 0;  // when the head next tries again anyway (health may have changed)
  bool wake = false;        // a slot freed up: the head tries again
  bool unordered = false;   // some deadline comes before an earlier waiter's
};

// One worker's share of a process-wide limit: rounded up, at least 1 (0 stays 0).
uint32_t worker_share(uint32_t limit, uint32_t workers);

class BackendSlots {
 public:
  // While requests wait, the first of each queue also tries again this often: backends that
  // went down meanwhile free no place, and their waiters get their 503 without waiting it out.
  static constexpr uint64_t kRecheckMs = 100;

  explicit BackendSlots(uv_loop_t* loop) : loop_(loop) {}
  ~BackendSlots();
  BackendSlots(const BackendSlots&) = delete;
  BackendSlots& operator=(const BackendSlots&) = delete;

  // Requests of this worker in flight to `backend`.
  uint32_t busy(const balancer::BackendState* backend) const;
  void take(const balancer::BackendState* backend);
  // A request is done with `backend` (of `upstream`): the upstream's first waiter tries again
  // on the next turn of the loop, not inside the caller's event.
  void give_back(const balancer::BackendState* backend, std::string_view upstream);

  // Requests of `upstream` waiting in this worker.
  uint32_t waiting(std::string_view upstream) const;
  // Queues `waiter` behind the others of `upstream` until `deadline_ms` (loop time); false when
  // `max` wait already.
  bool wait(SlotWaiter* waiter, std::string_view upstream, uint32_t max, uint64_t deadline_ms);
  // Takes `waiter` out of its queue, if it is in one.
  void leave(SlotWaiter* waiter);

 private:
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
  };

  static void on_timer(uv_timer_t* timer);
  void expire(uint64_t now_ms);
  void dispatch(WaitQueue& queue);
  void schedule();
  void sweep();

  static void link(WaitQueue& queue, SlotWaiter* waiter, bool at_head);
  static void unlink(SlotWaiter* waiter);

  uv_loop_t* loop_;
  // By BackendState: its address is stable while any exchange is in flight to it (the exchange
  // holds its generation, which holds the state). Entries at 0 may outlive their state, which
  // is harmless (a new state at that address starts at 0 too); sweep() drops them now and then.
  std::unordered_map<const balancer::BackendState*, uint32_t> busy_;
  size_t sweep_at_ = 64;
  // Never erased, so a queue stays put while its waiters are told.
  std::unordered_map<std::string, WaitQueue, NameHash, std::equal_to<>> queues_;
  WaitQueue expiring_;             // out of their queues, being told their time is up
  std::vector<WaitQueue*> woken_;  // queues whose head tries again, this turn
  uv_timer_t* timer_ = nullptr;    // made while anything waits, closed when nothing does
  uint64_t due_ = 0;               // when the timer fires (loop time); 0 when stopped
  bool in_timer_ = false;          // on_timer() is telling waiters: it schedules afterwards
};

// The room view a pick asks: a backend of `pool` has room while this worker's requests in
// flight to it are under its share of max_connections.
class PoolRoom final : public balancer::RoomView {
 public:
  PoolRoom(const BackendSlots& slots, const balancer::Pool& pool, uint32_t workers)
      : slots_(slots), pool_(pool), workers_(workers) {}
  bool has_room(int backend) const override;

 private:
  const BackendSlots& slots_;
  const balancer::Pool& pool_;
  uint32_t workers_;
};

}  // namespace sluice::core
