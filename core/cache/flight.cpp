// Waking workers for a flight: a copy of the watchers is taken under the lock and woken after
// it, so a worker's wake-up never waits on the fetching worker's appends.
#include "core/cache/flight.h"

#include <algorithm>

#include "core/cache/fill.h"

namespace sluice::core::cache {

void WorkerWake::wake() {
  std::lock_guard<std::mutex> hold(lock_);
  if (send_) send_();
}

void WorkerWake::close() {
  std::lock_guard<std::mutex> hold(lock_);
  send_ = nullptr;
}

void WorkerWake::add(Wait* wait) {
  waits_.push_back(wait);
  if (arm_) arm_();
}

void WorkerWake::expire() {
  const std::vector<Wait*> now = waits_;
  for (Wait* w : now)
    if (std::find(waits_.begin(), waits_.end(), w) != waits_.end()) w->expire();
}

void WorkerWake::uncarry(Fill* fill) {
  std::erase(carried_, fill);
}

void WorkerWake::abandon_carried() {
  while (!carried_.empty()) carried_.back()->abandon();  // each leaves the list as it ends
}

void WorkerWake::remove(Wait* wait) {
  std::erase(waits_, wait);
}

// A request may end (and leave the list) while it advances, or end another's.
void WorkerWake::advance() {
  const std::vector<Wait*> now = waits_;
  for (Wait* w : now)
    if (std::find(waits_.begin(), waits_.end(), w) != waits_.end()) w->advance();
}

void Flight::watch(const std::shared_ptr<WorkerWake>& wake) {
  std::lock_guard<std::mutex> hold(lock);
  if (std::find(watchers.begin(), watchers.end(), wake) == watchers.end()) watchers.push_back(wake);
}

void Flight::wake_all() {
  std::vector<std::shared_ptr<WorkerWake>> now;
  {
    std::lock_guard<std::mutex> hold(lock);
    if (watchers.empty()) return;
    now = watchers;
  }
  for (const auto& w : now) w->wake();
}

}  // namespace sluice::core::cache
