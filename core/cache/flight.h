// A fetch for the cache in flight, as every worker sees it: the response as far as it has come,
// behind a lock, and the workers to wake as more of it comes. The worker fetching writes it;
// requests for the same response on any worker wait on it and send what it holds so far, so
// concurrent misses make one backend request and are served while the body still streams.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/cache/stored_response.h"

namespace sluice::core::cache {

class Fill;
class Wait;

// One per worker: wakes its loop from any thread, and holds the worker's waiting requests,
// which its loop advances when woken.
class WorkerWake {
 public:
  // `send` wakes the loop (any thread); `arm` asks the loop to call expire() every so often
  // while requests wait (loop thread).
  explicit WorkerWake(std::function<void()> send, std::function<void()> arm = {})
      : send_(std::move(send)), arm_(std::move(arm)) {}
  void wake();   // any thread; nothing once closed
  void close();  // the worker's wake-up handle is going away
  // Loop thread only.
  void add(Wait* wait);
  void remove(Wait* wait);
  void advance();  // each waiting request sends what has come since it last looked
  void expire();   // requests that waited too long with nothing sent fetch for themselves
  bool waiting() const { return !waits_.empty(); }
  // Fetches this worker carries on after their clients left, ended when the worker stops.
  void carry(Fill* fill) { carried_.push_back(fill); }
  bool carrying() const { return !carried_.empty(); }
  void uncarry(Fill* fill);
  void abandon_carried();

 private:
  std::mutex lock_;
  std::function<void()> send_;
  std::function<void()> arm_;
  std::vector<Wait*> waits_;
  std::vector<Fill*> carried_;
};

struct Flight {
  // Under `lock`: what the waiters read. `response` is set at the head when it may be stored;
  // its head does not change after that and its body only grows, up to `published` bytes.
  std::mutex lock;
  std::shared_ptr<StoredResponse> response;
  int64_t length = -1;     // the declared length, -1 when unknown
  uint64_t published = 0;  // body bytes that may be read
  bool head = false;       // the head came (and `response` says whether it is shared)
  bool dropped = false;    // nothing will be stored: waiters fetch, or break off if answered
  bool ended = false;
  bool complete = false;  // ended with the whole body
  std::vector<std::shared_ptr<WorkerWake>> watchers;

  void watch(const std::shared_ptr<WorkerWake>& wake);
  void wake_all();
};

}  // namespace sluice::core::cache
