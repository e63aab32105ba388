// PROXY protocol on a listener: the header a balancer puts first on every connection is read
// at the socket, before the socket becomes a Stream (and so before TLS). The accepted socket is
// polled in the worker's loop until readable; the header is looked at with MSG_PEEK and then
// taken with reads of exactly its bytes, so nothing after it is consumed and the socket goes on
// to the listener's Acceptor untouched. The address the header names then stands for the
// client's everywhere (Downstream::open): X-Forwarded-For, the client_ip hash key, the logs.
//
// A peer outside `proxy_protocol_from` is closed at once; a header that is invalid, or not
// complete within timeouts.client_header_ms, closes the connection without a reply (logged at
// debug level). LOCAL (v2) and UNKNOWN (v1) headers keep the socket's own addresses.
#pragma once

#include <sys/socket.h>

#include <vector>

#include "conf/config.h"
#include "core/io/transport.h"

namespace sluice::core {

struct WorkerContext;
class HeaderWait;

// One listener's reader of PROXY headers; belongs to the listener and its worker's loop.
class ProxyHeaderReader {
 public:
  // `from`: the networks whose peers may send headers; empty admits any peer. `listener`: the
  // listener's id, for the connections it hands over.
  ProxyHeaderReader(WorkerContext& ctx, Acceptor& acceptor, std::vector<conf::Cidr> from,
                    int32_t listener);
  ~ProxyHeaderReader() { close_all(); }
  ProxyHeaderReader(const ProxyHeaderReader&) = delete;
  ProxyHeaderReader& operator=(const ProxyHeaderReader&) = delete;

  // Takes an accepted, non-blocking socket from `peer`: reads its header (at once when it is
  // there, else as it arrives), then hands the socket to the acceptor; or closes it.
  void take(int fd, const sockaddr_storage& peer);
  // A reload changed proxy_protocol_from: peers accepted from now on are checked against `from`.
  void admit_from(std::vector<conf::Cidr> from) { from_ = std::move(from); }
  // Closes every connection still waiting for its header (the listener is closing).
  void close_all();
  size_t waiting() const { return waiting_count_; }

 private:
  friend class HeaderWait;

  WorkerContext& ctx_;
  Acceptor& acceptor_;
  std::vector<conf::Cidr> from_;
  int32_t listener_;
  HeaderWait* waiting_ = nullptr;  // connections whose header has not arrived whole yet
  size_t waiting_count_ = 0;
};

}  // namespace sluice::core
