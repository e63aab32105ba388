// The Stream seam: a byte stream that the proxy reads and writes without knowing whether TCP or
// TLS carries it. Reads arrive as pooled Blocks; writes take Slices and hold their Blocks until
// the bytes are on the wire. A Stream deletes itself after close() once the loop lets it go.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <string_view>

#include "core/io/buffer.h"

namespace sluice::core {

// What the transport under a stream knows about the connection: set by TLS, absent for TCP.
struct TransportFacts {
  std::string_view version;         // "TLSv1.3"
  std::string_view server_name;     // SNI the client sent
  std::string_view alpn;            // the protocol agreed
  std::string_view client_subject;  // a verified client certificate's subject
};

class StreamHandler {
 public:
  // An outgoing stream is ready to carry bytes (status 0) or failed to get there (a uv error):
  // after the TCP connect, or after the TLS handshake on top of it.
  virtual void on_connected(int /*status*/) {}
  // `data` lies inside `block`; the handler takes a reference (block_ref) to keep any of it.
  virtual void on_read(Block* block, const char* data, size_t length) = 0;
  virtual void on_eof() = 0;
  virtual void on_error(int uv_error) = 0;  // read or write failure; the stream is unusable
  virtual void on_drained() {}              // queued writes fell to zero after notify_drained()

 protected:
  ~StreamHandler() = default;
};

class Stream {
 public:
  virtual ~Stream() = default;

  void set_handler(StreamHandler* handler) { handler_ = handler; }
  virtual void read_start() = 0;
  virtual void read_stop() = 0;
  virtual bool reading() const = 0;
  // Queues slices in order; the stream takes its own references. Returns 0 or a uv error.
  virtual int write(const Slice* slices, size_t count) = 0;
  virtual size_t queued_bytes() const = 0;
  // Bytes written but not yet taken by the peer: queued here or still in the kernel's send
  // buffer. A system call: for deadlines, not for every write.
  virtual size_t unsent_bytes() const = 0;
  // Asks for one on_drained() call once every queued byte has been written.
  virtual void notify_drained() = 0;
  // Sends small writes at once instead of coalescing them (Nagle off). Connections that carry
  // one request and close never need it, so it is switched on only when a connection goes on.
  virtual void send_immediately() = 0;
  // Half-closes the write side after queued writes (TLS: with a close_notify first).
  virtual void shutdown_write() = 0;
  // The data sent is complete as intended: TLS sends its close_notify, so the peer can tell a
  // clean end from a cut; TCP needs nothing. Not called when a connection is cut short.
  virtual void end_cleanly() {}
  // Stops all callbacks; queued writes are abandoned and the object frees itself.
  virtual void close() = 0;
  // Transport facts, or nullptr when the transport has none (plain TCP).
  virtual const TransportFacts* transport() const { return nullptr; }
  // The connection's local address (a system call: asked once, when a PROXY header toward a
  // backend needs it). False when the stream cannot tell.
  virtual bool local_address(sockaddr_storage* /*out*/) const { return false; }

 protected:
  StreamHandler* handler_ = nullptr;
};

}  // namespace sluice::core
