// A Listener accepts connections on one listening socket inside one worker. Each worker has its
// own socket for every configured address (SO_REUSEPORT), so the kernel spreads connections.
// Running out of file descriptors pauses accepting briefly instead of spinning on the error.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "core/io/transport.h"
#include "core/server/proxy_header_wait.h"

namespace sluice::core {

struct WorkerContext;

// Opens a non-blocking listening socket with SO_REUSEPORT; -1 with `error` set on failure.
int open_listening_socket(const conf::SocketAddress& address, std::string* error);

// A listening socket for one worker, with the id of the listener it belongs to (ListenerSet).
struct ListenSocket {
  int32_t id;
  int fd;
};
using ListenSockets = std::vector<ListenSocket>;

// One worker's part of limits.max_connections (`limit` > 0): an even share, rounded up.
uint32_t connection_share(uint32_t limit, uint32_t workers);

class Listener {
 public:
  // `id` is the listener's id (see ListenerSet: it stays while the listener is kept across
  // reloads), or kAdminListener.
  Listener(WorkerContext& ctx, Acceptor& acceptor, int fd, int32_t id);
  // Every connection starts with a PROXY header, from a peer in `from` (empty: any peer).
  // Called again, it only changes `from`, for connections accepted from then on.
  void read_proxy_headers(std::vector<conf::Cidr> from);
  // An intercept listener: each connection carries the destination the kernel redirected it
  // from (core/server/original_destination.h), where the exchange then takes it.
  void intercept(bool on) { intercept_ = on; }
  void close();  // stops accepting; the object frees itself once libuv lets go

 private:
  ~Listener() = default;
  static void on_readable(uv_poll_t* poll, int status, int events);
  static void on_resume(uv_timer_t* timer);
  static void on_closed(uv_handle_t* handle);
  void accept_batch();
  void open_client(int fd, const sockaddr_storage& peer);
  bool at_capacity();

  WorkerContext& ctx_;
  Acceptor& acceptor_;
  uv_poll_t poll_;
  uv_timer_t pause_;
  int fd_;
  int32_t id_;
  int open_handles_ = 2;
  std::unique_ptr<ProxyHeaderReader> proxy_headers_;  // set on a PROXY protocol listener
  bool intercept_ = false;
};

}  // namespace sluice::core
