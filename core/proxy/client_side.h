// What an exchange asks of the connection that carries its client. The HTTP/1 Downstream is
// one; an HTTP/2 stream will be another, so nothing here assumes a connection per exchange.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <string_view>

#include "core/io/buffer.h"
#include "core/io/stream.h"
#include "core/proxy/phases.h"

namespace sluice::core {

class UpstreamConnection;

class ClientSide {
 public:
  // Response bytes, batched until flush() so a head and its body leave in one write.
  virtual void send(const Slice* slices, size_t count) = 0;
  virtual void flush() = 0;
  // Drops what send() batched and flush() has not written yet.
  virtual void discard_unsent() = 0;
  // Over the high-water mark of bytes the client has not taken yet.
  virtual bool backlogged() const = 0;
  // The exchange stopped its backend's reads for a slow client: on_client_drained() follows
  // when the client catches up. When `bounded`, a client that takes nothing for
  // client_send_ms is cut off.
  virtual void wait_for_client(bool bounded) = 0;
  // A response that goes on past this event: no Nagle delay between its pieces.
  virtual void send_now() = 0;
  // Request body flow: pause while the backend is behind, resume when it catches up.
  virtual void pause_request() = 0;
  virtual void resume_request() = 0;
  // The request asked to switch protocols and the switch will not happen: parse on as HTTP.
  virtual void decline_upgrade() = 0;
  virtual bool keeps_alive() const = 0;  // another request may follow this one
  virtual void close_after() = 0;        // it may not: close once this response is out
  // The exchange is over: the connection finishes it and goes on (or closes).
  virtual void done() = 0;
  // The client is refused mid-request (a body that stopped arriving): answer, then close.
  virtual void refuse(const LocalReply& reply) = 0;
  // Close at once, whatever is in flight.
  virtual void abort(Outcome outcome) = 0;
  // A 101 was relayed: from now on bytes pass raw both ways through the exchange. Returns
  // client bytes that arrived after the request (written to the backend first).
  virtual Slice begin_tunnel() = 0;
  // Tunnelling: our FIN toward the client, after what is queued.
  virtual void half_close() = 0;
  // Acts on what done(), refuse() or abort() asked for. The exchange may be gone on return,
  // so an exchange calls it as the last thing it does when handling an upstream event.
  void settle() {
    if (ending_requested_) act_on_ending();
  }
  // The connection's client (after a PROXY header, where one was read), as text and as the
  // access tables match it. A request's own client may differ: see Exchange::resolve_client.
  virtual std::string_view client_address() const = 0;
  virtual const conf::IpAddress& client_ip_address() const = 0;
  virtual uint16_t client_port() const = 0;
  // Data bytes of the chunked request body read so far (what a body limit counts).
  virtual uint64_t request_payload_bytes() const = 0;
  // The id of the listener the client came in on (kept across reloads), or kAdminListener.
  virtual int32_t listener() const = 0;
  // The client connection's endpoints, for a PROXY protocol header toward a backend: the
  // client's address and port, and the address it connected to (after a PROXY header from a
  // balancer, those the header named). False when they cannot be told.
  virtual bool connection_endpoints(sockaddr_storage* source, sockaddr_storage* destination) = 0;
  // TLS facts of the client's connection (version, SNI, verified subject); null over plain TCP.
  virtual const TransportFacts* transport() const = 0;

 protected:
  ~ClientSide() = default;
  virtual void act_on_ending() = 0;
  bool ending_requested_ = false;  // done(), refuse() or abort() was called: settle() acts
};

}  // namespace sluice::core
