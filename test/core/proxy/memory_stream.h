// An in-memory Stream for unit tests: the proxy reads and writes it as it would a TCP stream,
// and the test plays the other end through a MemoryPeer. A peer outlives its stream, so a test
// can still read what was written after the proxy closed the stream (which frees itself, as a
// TcpStream does, once the loop lets its handle go).
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/stream.h"
#include "core/io/transport.h"

namespace sluice::test {

class MemoryStream;

// The far end of one MemoryStream, as the test sees and drives it.
class MemoryPeer {
 public:
  // Bytes for the proxy: delivered at once while the stream reads, else when it reads again.
  void send(std::string_view bytes);
  // The peer half-closes: on_eof() after any bytes still waiting for the stream to read, and
  // again whenever the stream starts reading after that, as a socket at its end does.
  void send_eof();
  // The connection fails (a reset): on_error() at once.
  void fail(int uv_error = UV_ECONNRESET);
  // An outgoing stream's connect finishes: 0 for success, or an error such as UV_ECONNREFUSED.
  void finish_connect(int status = 0);

  // The peer stops reading: writes stay queued (queued_bytes() and unsent_bytes() grow).
  void hold();
  // A held peer takes up to `bytes` of what is queued, and stays held.
  void take(size_t bytes);
  // The peer takes everything queued and reads on. As with TCP, on_drained() follows when the
  // stream asked for it and the queue went from some bytes to none.
  void release();

  // What the proxy wrote and the peer took, from the start.
  const std::string& received() const { return received_; }
  // Takes what arrived since the last call.
  std::string take_received();
  size_t queued_bytes() const;
  bool reading() const;
  bool shut_down() const { return shut_down_; }  // the proxy half-closed its write side
  bool closed() const { return closed_; }        // the proxy closed the stream
  // Where an outgoing stream connects to ("127.0.0.1:9001"); empty for an accepted one.
  const std::string& address() const { return address_; }

 private:
  friend class MemoryStream;
  friend class MemoryConnector;

  MemoryStream* event();

  MemoryStream* stream_ = nullptr;  // null once the stream is closed
  std::string received_;
  size_t taken_ = 0;  // how much of received_ take_received() returned
  std::string address_;
  bool shut_down_ = false;
  bool closed_ = false;
};

class MemoryStream final : public core::Stream {
 public:
  // A stream and the peer that drives it. Blocks for reads come from `pool`.
  static MemoryStream* make(uv_loop_t* loop, core::BlockPool& pool,
                            std::shared_ptr<MemoryPeer>* peer);

  void read_start() override;
  void read_stop() override { reading_ = false; }
  bool reading() const override { return reading_; }
  int write(const core::Slice* slices, size_t count) override;
  size_t queued_bytes() const override { return queued_bytes_; }
  size_t unsent_bytes() const override { return queued_bytes_; }  // no kernel buffer here
  void notify_drained() override { want_drained_ = true; }
  void send_immediately() override {}
  void shutdown_write() override;
  void close() override;

 private:
  friend class MemoryPeer;
  friend class MemoryConnector;

  static constexpr int kNoConnectDue = 1;  // not a uv status: no connect result is waiting

  MemoryStream(uv_loop_t* loop, core::BlockPool& pool, std::shared_ptr<MemoryPeer> peer);
  ~MemoryStream() override;
  static void on_wake(uv_idle_t* idle);
  void wake();
  void deliver();
  void connect_done(int status);
  void drain(size_t limit);

  uv_idle_t wake_;  // runs deferred work on the next loop turn; closing it frees the stream
  core::BlockPool& pool_;
  std::shared_ptr<MemoryPeer> peer_;
  std::string inbox_;            // bytes for the handler, waiting for reads
  std::deque<core::Slice> out_;  // written, not yet taken by a held peer
  size_t queued_bytes_ = 0;
  int connect_status_ = kNoConnectDue;  // the result of a connect, due on the next turn
  bool inbox_eof_ = false;              // the peer half-closed: reads end there
  bool reading_ = false;
  bool held_ = false;
  bool want_drained_ = false;
  bool failed_ = false;  // the peer reset the connection
  bool closing_ = false;
};

// Opens MemoryStreams instead of sockets: each connect() is one backend connection, kept in
// made() in the order they were opened. A connect finishes on the next loop turn unless the
// test asked to finish connects itself.
class MemoryConnector final : public core::Connector {
 public:
  MemoryConnector(uv_loop_t* loop, core::BlockPool& pool) : loop_(loop), pool_(pool) {}
  // The preface counts as written by the proxy: the peer has received it first.
  core::Stream* connect(const sockaddr* address, std::string_view preface,
                        core::StreamHandler* handler, int* error) override;

  // Connects wait for MemoryPeer::finish_connect() instead of succeeding by themselves.
  void finish_connects_by_hand() { by_hand_ = true; }
  // The next connect() fails at once with `uv_error` (no stream is made).
  void fail_next_connect(int uv_error) { fail_next_ = uv_error; }

  const std::vector<std::shared_ptr<MemoryPeer>>& made() const { return made_; }

 private:
  uv_loop_t* loop_;
  core::BlockPool& pool_;
  std::vector<std::shared_ptr<MemoryPeer>> made_;
  int fail_next_ = 0;
  bool by_hand_ = false;
};

}  // namespace sluice::test
