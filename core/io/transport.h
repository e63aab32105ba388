// Where streams come from: an Acceptor turns a listener's accepted sockets into streams, a
// Connector opens streams to backends. Each belongs to one worker (its loop and buffer pools).
// Only core/server picks the concrete kind (TCP, later TLS with its settings), so nothing above
// io names a transport; pooled upstream connections are shared only within one Connector.
#pragma once

#include <sys/socket.h>

#include <string_view>

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
  // `preface` (may be empty) is written first, ahead of every byte the stream carries, its
  // own included (a TLS ClientHello): a PROXY protocol header naming the client. It belongs to
  // the TCP connection, so the connector at the bottom (TCP) writes it and every connector
  // above passes it down; the caller builds it, so connectors stay shared by all clients.
  virtual Stream* connect(const sockaddr* address, std::string_view preface, StreamHandler* handler,
                          int* error) = 0;
};

}  // namespace sluice::core
