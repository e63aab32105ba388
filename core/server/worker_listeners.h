// One worker's proxy listeners, by id (ListenerSet), as the runtimes it adopts name them. A
// listener the new runtime keeps keeps its socket and gets the new TLS context and PROXY allow
// list; one it adds opens on the socket the main thread handed over; one it drops stops
// accepting, and the connections that came in on it drain: each finishes its exchange and
// closes, and whatever is still open at the drain deadline (tunnels, long downloads) is closed.
// Connections on the other listeners are not touched. Worker thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <vector>

#include "core/io/transport.h"
#include "core/server/listener.h"
#include "core/server/runtime.h"
#include "tls/tls_transport.h"

namespace sluice::core {

struct WorkerContext;

class WorkerListeners {
 public:
  // `plain` turns accepted sockets into TCP streams (TLS listeners build on it).
  WorkerListeners(WorkerContext& ctx, Acceptor& plain);
  WorkerListeners(const WorkerListeners&) = delete;
  WorkerListeners& operator=(const WorkerListeners&) = delete;

  // Makes the open listeners those of `runtime`, whose snapshot the worker serves now. New ones
  // take their socket from `sockets`; a socket nobody names any more is closed.
  void adopt(const Runtime& runtime, ListenSockets sockets);
  // The worker drains as a whole: every listener closes (the worker's own drain takes over
  // their connections). The loop may end once this is called.
  void close_all();

 private:
  struct Open {
    int32_t id;
    Listener* listener;                     // frees itself once closed
    std::unique_ptr<tls::TlsAcceptor> tls;  // for a TLS listener
  };
  struct Draining {
    int32_t id;
    uint64_t deadline;  // loop time
  };
  void open(int32_t id, int fd, const conf::ListenerConfig& config,
            std::shared_ptr<const tls::ServerContext> tls);
  void close(Open& listener);
  static void on_tick(uv_timer_t* timer);
  size_t open_connections(int32_t id) const;

  WorkerContext& ctx_;
  Acceptor& plain_;
  std::vector<Open> open_;
  std::vector<Draining> draining_;  // removed listeners whose connections are still open
  uv_timer_t tick_;
  bool closed_ = false;
};

}  // namespace sluice::core
