// Where streams come from: an Acceptor turns a listener's accepted sockets into streams, a
// Connector opens streams to backends. Each belongs to one worker (its loop and buffer pools).
// Only core/server picks the concrete kind (TCP, later TLS with its settings), so nothing above
// io names a transport; pooled upstream connections are shared only within one Connector.
#pragma once

#include <sys/socket.h>

#include "core/io/stream.h"

namespace sluice::core {

class Acceptor {
 public:
  virtual ~Acceptor() = default;
  // Takes over an accepted, non-blocking socket; nullptr (the socket closed) on failure.
  virtual Stream* accept(int fd) = 0;
};

class Connector {
 public:
  virtual ~Connector() = default;
  // Starts connecting; `handler` gets on_connected() once. nullptr with *error on failure.
  virtual Stream* connect(const sockaddr* address, StreamHandler* handler, int* error) = 0;
};

}  // namespace sluice::core
