// What the TLS stream tests share: a libuv loop run in steps, a handler that records what it is
// told, a transport whose writes can be broken, and an accepted TlsStream over a MemoryStream
// with the test's client (an SslEnd) against it.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/buffer.h"
#include "core/io/stream.h"
#include "test/core/proxy/memory_stream.h"
#include "test/tls/ssl_end.h"
#include "test/tls/test_pki.h"
#include "tls/server_context.h"
#include "tls/tls_stream.h"

namespace sluice::test::tls_stream {

// A libuv loop and the block pool streams draw from. Whatever the test leaves open must be
// closed before this goes: the destructor lets the loop release it and checks nothing is left.
class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* get() { return &loop_; }
  core::BlockPool& pool() { return pool_; }

  // Runs what is due now (deferred reads, connects), without waiting.
  void pump() {
    for (int i = 0; i < 16; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  }
  // Runs the loop, timers included, until `done` holds or `limit_ms` pass. Returns done().
  bool run_until(const std::function<bool()>& done, uint64_t limit_ms = 2000);

 private:
  uv_loop_t loop_;
  core::BlockPool pool_;
};

// What a stream told its handler.
class Recorder final : public core::StreamHandler {
 public:
  std::string data;
  int reads = 0;
  int eofs = 0;
  std::vector<int> errors;
  std::vector<int> connects;
  int drains = 0;
  std::function<void()> after_read;  // runs inside on_read, after the bytes are recorded

  void on_connected(int status) override { connects.push_back(status); }
  void on_read(core::Block*, const char* bytes, size_t length) override {
    data.append(bytes, length);
    ++reads;
    if (after_read) after_read();
  }
  void on_eof() override { ++eofs; }
  void on_error(int uv_error) override { errors.push_back(uv_error); }
  void on_drained() override { ++drains; }
};

// Writes `parts` as one write() of that many slices, each in a block of its own.
int write_slices(core::Stream& stream, core::BlockPool& pool,
                 const std::vector<std::string>& parts);

// `size` bytes that repeat only rarely, so that a byte out of place shows.
std::string pattern(size_t size);

// A transport whose writes can be made to fail, as a socket's do once its peer has reset;
// everything else passes through to the stream under it.
class BreakableStream final : public core::Stream, private core::StreamHandler {
 public:
  explicit BreakableStream(core::Stream* inner) : inner_(inner) { inner_->set_handler(this); }
  bool break_writes = false;

  void read_start() override { inner_->read_start(); }
  void read_stop() override { inner_->read_stop(); }
  bool reading() const override { return inner_->reading(); }
  int write(const core::Slice* slices, size_t count) override {
    return break_writes ? UV_EPIPE : inner_->write(slices, count);
  }
  size_t queued_bytes() const override { return inner_->queued_bytes(); }
  size_t unsent_bytes() const override { return inner_->unsent_bytes(); }
  void notify_drained() override { inner_->notify_drained(); }
  void send_immediately() override { inner_->send_immediately(); }
  void shutdown_write() override { inner_->shutdown_write(); }
  void close() override {
    inner_->close();  // no callbacks come after this
    delete this;
  }

 private:
  void on_connected(int status) override {
    if (handler_) handler_->on_connected(status);
  }
  void on_read(core::Block* block, const char* data, size_t length) override {
    if (handler_) handler_->on_read(block, data, length);
  }
  void on_eof() override {
    if (handler_) handler_->on_eof();
  }
  void on_error(int uv_error) override {
    if (handler_) handler_->on_error(uv_error);
  }
  void on_drained() override {
    if (handler_) handler_->on_drained();
  }

  core::Stream* inner_;
};

struct AcceptSetup {
  uint32_t timeout_ms = 10000;
  bool client_ca = false;    // the listener asks for client certificates its CA signed
  bool read_at_once = true;  // the handler reads from the start, as Downstream does
  bool breakable = false;    // the transport is a BreakableStream over the MemoryStream
};

// A TlsStream accepted over a MemoryStream, and the test's client against it.
class Accepted {
 public:
  explicit Accepted(const AcceptSetup& setup = {});
  ~Accepted() {
    if (stream) stream->close();
  }

  MemoryPeer& peer() { return *peer_; }
  TestPki& pki() { return pki_; }
  SSL_CTX* client_ctx() { return client_ctx_.get(); }

  // Carries bytes both ways until neither side has more.
  void exchange();
  // The client's handshake, then what the server sends after it (tickets) taken.
  void handshake();
  // Carries the client's flights until it has finished its handshake, keeping its last flight
  // (Finished) unsent, so that what it writes next travels with it.
  void client_done_but_finished_unsent();
  // The client sends `text` as TLS records; the stream reads it.
  void client_sends(std::string_view text) {
    client->write(text);
    exchange();
  }
  // What the client got as plaintext since the last call.
  std::string client_reads() {
    client->feed(peer_->take_received());
    return client->read();
  }
  // Closes the stream (the fixture no longer does).
  void close_stream() {
    stream->close();
    stream = nullptr;
  }

 private:
  TestPki pki_;  // before the loop: files outlive nothing that reads them late
  PemFiles leaf_ = pki_.leaf({"app.test"});

 public:
  Loop loop;
  Recorder handler;
  tls::TlsStream* stream = nullptr;
  BreakableStream* breakable = nullptr;  // with AcceptSetup::breakable; owned by the stream
  std::unique_ptr<SslEnd> client;

 private:
  std::shared_ptr<const tls::ServerContext> context_;
  std::shared_ptr<MemoryPeer> peer_;
  tls::Owned<SSL_CTX> client_ctx_;
};

}  // namespace sluice::test::tls_stream
