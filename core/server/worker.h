// A Worker is one thread with its own libuv loop, listening sockets, connection pools and
// buffer pools; a request never leaves its worker. The main thread talks to it only through
// publish() (a new runtime: config snapshot, TLS contexts, the sockets of listeners a reload
// added) and drain() (at shutdown, or when a reload lowers the worker count), both woken with
// uv_async_send; finished() tells it when the thread is done and may be joined.
#pragma once

#include <uv.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "core/io/transport.h"
#include "core/server/listener.h"
#include "core/server/runtime.h"
#include "tls/tls_transport.h"

namespace sluice::admin {
struct ProcessInfo;
class Pages;
}  // namespace sluice::admin
namespace sluice::metrics {
class Registry;
struct WorkerPart;
}  // namespace sluice::metrics
namespace sluice::accesslog {
class WorkerLog;
}
namespace sluice::forward {
class ForwardOrigins;
}

namespace sluice::core {

struct WorkerContext;
struct Generation;
class WorkerListeners;

class Worker {
 public:
  // `sockets`: one for each of the runtime's listeners, by id.
  Worker(ListenSockets sockets, std::shared_ptr<const Runtime> runtime);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves the admin pages on `fd` and counts metrics into `part` (before start()).
  // `fd` is -1 while the config has no admin listener; metrics are counted only while it has.
  void enable_admin(int fd, admin::ProcessInfo* info, metrics::Registry* registry,
                    metrics::WorkerPart* part);
  void start();
  // Any thread. `added`: this worker's sockets for the listeners the runtime adds.
  void publish(std::shared_ptr<const Runtime> runtime, ListenSockets added = {});
  // Any thread, after publishing the runtime whose admin address `fd` listens on: the admin
  // listener moves to `fd`, or closes for good with -1 (the admin object was removed).
  void replace_admin(int fd);
  void drain();  // any thread
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  void join();
  metrics::WorkerPart* metrics_part() const { return metrics_part_; }

 private:
  void run();
  static void on_wake(uv_async_t* async);
  static void on_drain_tick(uv_timer_t* timer);
  void begin_drain();
  void adopt(const Runtime& runtime, ListenSockets added);
  void count_metrics(Generation& generation);
  void wire_caches(Generation& generation, const Runtime& runtime) const;
  void arm_cache_timer();
  static void on_cache_tick(uv_timer_t* timer);
  void close_admin();
  void open_admin(int fd);
  void wire_access_log();
  static constexpr int kNoAdminChange = -2;

  std::thread thread_;
  uv_loop_t loop_;
  uv_async_t wake_;
  std::shared_ptr<cache::WorkerWake> cache_wake_;  // wakes this loop for cache waiters
  uv_timer_t cache_timer_;                         // ends waits past collapse_wait_ms
  uv_timer_t drain_timer_;
  std::unique_ptr<WorkerContext> ctx_;
  std::unique_ptr<forward::ForwardOrigins> origins_;  // forward listeners' destinations
  std::unique_ptr<Acceptor> acceptor_;  // turns this worker's accepted sockets into streams
  std::unique_ptr<WorkerListeners> listeners_;
  // One per upstream TLS context ever adopted: pooled connections are keyed by connector, so
  // an unchanged context keeps its pool across reloads.
  std::map<const tls::ClientContext*, std::unique_ptr<tls::TlsConnector>> tls_connectors_;
  // The admin listener stays open while the worker drains (readiness says 503 then).
  int admin_fd_ = -1;
  Listener* admin_listener_ = nullptr;
  std::unique_ptr<admin::Pages> pages_;
  metrics::Registry* metrics_ = nullptr;
  metrics::WorkerPart* metrics_part_ = nullptr;
  std::unique_ptr<accesslog::WorkerLog> access_log_;  // this worker's lines, on their way out
  uint64_t drain_deadline_ = 0;
  bool draining_ = false;
  std::atomic<bool> finished_{false};

  std::mutex mutex_;  // guards the three fields below, written by the main thread
  std::shared_ptr<const Runtime> next_runtime_;
  ListenSockets next_sockets_;          // every publish's, until the worker takes them
  int next_admin_fd_ = kNoAdminChange;  // replace_admin's socket, until the worker takes it
  bool drain_requested_ = false;
};

// A route's cache on a worker as wire_caches made it (it alone fills Generation::caches on a
// worker): the cache's own type, for what the proxy's interface has no need of. Null where
// the route has no cache.
cache::WorkerCache* worker_cache(const Generation& generation, size_t route);

// POST /cache/purge: drops from every cached route of `generation` the responses stored under
// `key` (all its variants), or with `prefix` those under any key that starts with it. A cache
// two routes share is purged once. Returns how many responses went.
size_t purge_caches(const Generation& generation, std::string_view key, bool prefix);

}  // namespace sluice::core
