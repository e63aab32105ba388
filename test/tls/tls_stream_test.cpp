// Specification of the TLS stream over an in-memory transport. Server side: TlsStream::accept
// over a MemoryStream while the test plays the client with an OpenSSL SSL on memory BIOs.
// Client side: TlsStream::connect through a TlsConnector over a MemoryConnector while the test
// plays the backend with a session of a ServerContext. The loop runs in steps, as a worker's does.
#include "tls/tls_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/io/log.h"
#include "test/core/proxy/memory_stream.h"
#include "test/tls/ssl_end.h"
#include "test/tls/test_pki.h"
#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls/tls_transport.h"

using namespace sluice;
using namespace sluice::test;
using Catch::Contains;
using Catch::StartsWith;
using tls::Owned;
using tls::TlsStream;

namespace {

// A libuv loop and the block pool streams draw from. Whatever the test leaves open must be
// closed before this goes: the destructor lets the loop release it and checks nothing is left.
class Loop {
 public:
  Loop() {
    core::set_log_level(core::LogLevel::kError);  // refusals and failures are what tests do
    uv_loop_init(&loop_);
  }
  ~Loop() {
    for (int i = 0; i < 100 && uv_loop_alive(&loop_); ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&loop_) == 0);
    core::set_log_level(core::LogLevel::kInfo);
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* get() { return &loop_; }
  core::BlockPool& pool() { return pool_; }

  // Runs what is due now (deferred reads, connects), without waiting.
  void pump() {
    for (int i = 0; i < 16; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  }
  // Runs the loop, timers included, until `done` holds or `limit_ms` pass. Returns done().
  bool run_until(const std::function<bool()>& done, uint64_t limit_ms = 2000) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
    for (;;) {
      pump();
      if (done()) return true;
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

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
                 const std::vector<std::string>& parts) {
  std::vector<core::Slice> slices;
  for (const std::string& part : parts) {
    core::Block* block = pool.acquire(part.size());
    std::memcpy(block->data(), part.data(), part.size());
    slices.push_back(core::Slice{block, block->data(), part.size()});
  }
  const int r = stream.write(slices.data(), slices.size());
  for (core::Slice& s : slices) core::block_unref(s.block);
  return r;
}

// The TLS records in `wire`: their content types, in order.
std::vector<int> record_types(const std::string& wire) {
  std::vector<int> types;
  size_t at = 0;
  while (at + 5 <= wire.size()) {
    types.push_back(static_cast<unsigned char>(wire[at]));
    const size_t length =
        (static_cast<unsigned char>(wire[at + 3]) << 8) | static_cast<unsigned char>(wire[at + 4]);
    at += 5 + length;
  }
  CHECK(at == wire.size());
  return types;
}

std::string pattern(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  return out;
}

const std::string kPlainRequest = "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n";

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

// --- server side ---

struct AcceptSetup {
  uint32_t timeout_ms = 10000;
  bool client_ca = false;    // the listener asks for client certificates its CA signed
  bool read_at_once = true;  // the handler reads from the start, as Downstream does
  bool breakable = false;    // the transport is a BreakableStream over the MemoryStream
};

// A TlsStream accepted over a MemoryStream, and the test's client against it.
class Accepted {
 public:
  explicit Accepted(const AcceptSetup& setup = {}) {
    conf::ListenerTlsConfig config;
    config.certificates.push_back({leaf_.cert, leaf_.key, ""});
    config.handshake_timeout_ms = setup.timeout_ms;
    if (setup.client_ca) config.client_ca = pki_.ca_cert();
    std::vector<std::string> errors, warnings;
    context_ = tls::ServerContext::load(config, "/listeners/0/tls", &errors, &warnings);
    REQUIRE(context_ != nullptr);
    core::Stream* transport = MemoryStream::make(loop.get(), loop.pool(), &peer_);
    if (setup.breakable) transport = breakable = new BreakableStream(transport);
    stream = TlsStream::accept(loop.get(), loop.pool(), transport, context_->new_session(),
                               context_, context_->handshake_timeout_ms());
    REQUIRE(stream != nullptr);
    stream->set_handler(&handler);
    if (setup.read_at_once) stream->read_start();
    client_ctx_ = client_context(pki_.ca_cert());
    client = std::make_unique<SslEnd>(SSL_new(client_ctx_.get()), Role::kClient);
    SSL_set_tlsext_host_name(client->ssl(), "app.test");
    static constexpr unsigned char kAlpn[] = "\x08http/1.1";
    SSL_set_alpn_protos(client->ssl(), kAlpn, sizeof kAlpn - 1);
  }
  ~Accepted() {
    if (stream) stream->close();
  }

  MemoryPeer& peer() { return *peer_; }
  TestPki& pki() { return pki_; }
  SSL_CTX* client_ctx() { return client_ctx_.get(); }

  // Carries bytes both ways until neither side has more.
  void exchange() {
    for (int i = 0; i < 100; ++i) {
      const std::string out = client->drain();
      if (!out.empty()) peer_->send(out);
      loop.pump();
      const std::string in = peer_->take_received();
      client->feed(in);
      if (out.empty() && in.empty()) return;
    }
    FAIL("bytes kept flowing");
  }
  // The client's handshake, then what the server sends after it (tickets) taken.
  void handshake() {
    for (int i = 0; i < 10 && client->handshake() == 0; ++i) exchange();
    INFO("client: " << client->error());
    REQUIRE(client->done());
    exchange();
    CHECK(client->read().empty());
    exchange();
    REQUIRE(stream->transport() != nullptr);
    REQUIRE_FALSE(stream->transport()->version.empty());
  }
  // Carries the client's flights until it has finished its handshake, keeping its last flight
  // (Finished) unsent, so that what it writes next travels with it.
  void client_done_but_finished_unsent() {
    for (int i = 0; i < 10 && client->handshake() == 0; ++i) {
      const std::string out = client->drain();
      if (!out.empty()) peer_->send(out);
      loop.pump();
      client->feed(peer_->take_received());
    }
    REQUIRE(client->done());
  }
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
  TlsStream* stream = nullptr;
  BreakableStream* breakable = nullptr;  // with AcceptSetup::breakable; owned by the stream
  std::unique_ptr<SslEnd> client;

 private:
  std::shared_ptr<const tls::ServerContext> context_;
  std::shared_ptr<MemoryPeer> peer_;
  Owned<SSL_CTX> client_ctx_;
};

}  // namespace

TEST_CASE("an accepted TLS stream completes the handshake and reports version, SNI and ALPN",
          "[tls][stream]") {
  Accepted s;
  s.handshake();
  const core::TransportFacts* facts = s.stream->transport();
  CHECK(facts->version == "TLSv1.3");
  CHECK(facts->server_name == "app.test");
  CHECK(facts->alpn == "http/1.1");
  CHECK(facts->client_subject.empty());
  CHECK(s.handler.errors.empty());
}

TEST_CASE("a TLS 1.2 client is reported as TLSv1.2", "[tls][stream]") {
  Accepted s;
  SSL_set_max_proto_version(s.client->ssl(), TLS1_2_VERSION);
  s.handshake();
  CHECK(s.stream->transport()->version == "TLSv1.2");
}

TEST_CASE("a verified client certificate's subject is reported", "[tls][stream]") {
  Accepted s({.client_ca = true});
  const PemFiles mine = s.pki().client_cert("client one");
  REQUIRE(SSL_use_certificate_file(s.client->ssl(), mine.cert.c_str(), SSL_FILETYPE_PEM) == 1);
  REQUIRE(SSL_use_PrivateKey_file(s.client->ssl(), mine.key.c_str(), SSL_FILETYPE_PEM) == 1);
  s.handshake();
  CHECK_THAT(std::string(s.stream->transport()->client_subject), Contains("CN=client one"));
  CHECK(s.handler.errors.empty());
}

TEST_CASE("application bytes reach the handler in order", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.client_sends("first ");
  CHECK(s.handler.data == "first ");
  s.client->write("second ");
  s.client->write("third");  // two records in one transport read
  s.exchange();
  CHECK(s.handler.data == "first second third");
  CHECK(s.handler.errors.empty());
}

TEST_CASE("1 MiB sent as many records reaches the handler byte for byte", "[tls][stream]") {
  Accepted s;
  s.handshake();
  const std::string big = pattern(1 << 20);
  s.client_sends(big);
  REQUIRE(s.handler.data.size() == big.size());
  CHECK(s.handler.data == big);
  CHECK(s.handler.reads > 1);
}

TEST_CASE("bytes the client sends right behind its Finished reach a reading handler",
          "[tls][stream]") {
  Accepted s;
  s.client_done_but_finished_unsent();
  s.client_sends("early bytes");  // one transport read: Finished, then the data
  CHECK(s.handler.data == "early bytes");
}

TEST_CASE("bytes that came with the handshake wait for read_start and then arrive from the loop",
          "[tls][stream]") {
  Accepted s({.read_at_once = false});
  s.client_done_but_finished_unsent();
  s.client_sends("waiting bytes");
  CHECK(s.handler.reads == 0);
  s.stream->read_start();
  CHECK(s.handler.reads == 0);  // not inside read_start
  s.loop.pump();
  CHECK(s.handler.data == "waiting bytes");
}

TEST_CASE("several small slices written at once leave as one record", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.peer().take_received();
  REQUIRE(write_slices(*s.stream, s.loop.pool(),
                       {"HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n\r\n", "hello"}) == 0);
  const std::string wire = s.peer().take_received();
  CHECK(record_types(wire) == std::vector<int>{0x17});
  s.client->feed(wire);
  CHECK(s.client->read() == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
}

TEST_CASE("a 1 MiB write arrives intact", "[tls][stream]") {
  Accepted s;
  s.handshake();
  const std::string big = pattern(1 << 20);
  REQUIRE(write_slices(*s.stream, s.loop.pool(), {big}) == 0);
  const std::string got = s.client_reads();
  REQUIRE(got.size() == big.size());
  CHECK(got == big);
}

TEST_CASE("several slices larger together than a record arrive intact and in order",
          "[tls][stream]") {
  Accepted s;
  s.handshake();
  const std::string a(10000, 'a'), b = pattern(70000), c(3, 'c');
  REQUIRE(write_slices(*s.stream, s.loop.pool(), {a, b, c}) == 0);
  CHECK(s.client_reads() == a + b + c);
}

TEST_CASE("many writes in a row arrive intact and in order", "[tls][stream]") {
  Accepted s;
  s.handshake();
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    const std::string part = "part " + std::to_string(i) + " " + std::string(i * 37, 'x') + "\n";
    REQUIRE(write_slices(*s.stream, s.loop.pool(), {part}) == 0);
    expected += part;
  }
  CHECK(s.client_reads() == expected);
}

TEST_CASE("backpressure passes through: queued ciphertext counts and drained is reported",
          "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.peer().hold();
  REQUIRE(write_slices(*s.stream, s.loop.pool(), {pattern(200 * 1024)}) == 0);
  CHECK(s.stream->queued_bytes() > 200 * 1024);  // records, with their overhead
  s.stream->notify_drained();
  CHECK(s.handler.drains == 0);
  s.peer().release();
  CHECK(s.stream->queued_bytes() == 0);
  CHECK(s.handler.drains == 1);
  CHECK(s.client_reads() == pattern(200 * 1024));
}

TEST_CASE("a key update from the client is answered and bytes flow on both ways", "[tls][stream]") {
  Accepted s;
  s.handshake();
  REQUIRE(SSL_key_update(s.client->ssl(), SSL_KEY_UPDATE_REQUESTED) == 1);
  s.client_sends("after the update");
  CHECK(s.handler.data == "after the update");
  REQUIRE(write_slices(*s.stream, s.loop.pool(), {"answer"}) == 0);
  CHECK(s.client_reads() == "answer");
  CHECK_FALSE(s.client->failed());
  CHECK(s.handler.errors.empty());
}

TEST_CASE("a record that fails its integrity check gets on_error(UV_EPROTO)", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.client->write("tampered");
  std::string wire = s.client->drain();
  wire.back() = static_cast<char>(wire.back() ^ 1);
  s.peer().send(wire);
  s.loop.pump();
  CHECK(s.handler.data.empty());
  CHECK(s.handler.errors == std::vector<int>{UV_EPROTO});
}

TEST_CASE(
    "read_stop inside on_read holds further bytes until read_start, which delivers them "
    "from the loop",
    "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.handler.after_read = [&] {
    s.stream->read_stop();
    s.handler.after_read = nullptr;
  };
  const std::string big = pattern(200 * 1024);
  s.client_sends(big);
  s.loop.pump();
  REQUIRE(s.handler.reads == 1);
  REQUIRE(s.handler.data.size() < big.size());
  CHECK(s.handler.data == big.substr(0, s.handler.data.size()));
  CHECK_FALSE(s.stream->reading());
  s.stream->read_start();
  CHECK(s.handler.reads == 1);  // not inside read_start
  s.loop.pump();
  CHECK(s.handler.data == big);
}

TEST_CASE("a handler that does not read gets nothing until it reads again", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.stream->read_stop();
  s.client_sends("later");
  s.loop.pump();
  CHECK(s.handler.reads == 0);
  s.stream->read_start();
  s.loop.pump();
  CHECK(s.handler.data == "later");
}

TEST_CASE("a handshake and data that arrive one byte per read still get through", "[tls][stream]") {
  Accepted s;
  for (int i = 0; i < 10 && s.client->handshake() == 0; ++i) {
    for (const char byte : s.client->drain()) s.peer().send(std::string_view(&byte, 1));
    s.loop.pump();
    s.client->feed(s.peer().take_received());
  }
  REQUIRE(s.client->done());
  s.client->write("byte by byte");
  for (const char byte : s.client->drain()) s.peer().send(std::string_view(&byte, 1));
  s.loop.pump();
  CHECK(s.handler.data == "byte by byte");
  CHECK(s.handler.errors.empty());
}

TEST_CASE("a handler may close the stream inside on_read", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.handler.after_read = [&] { s.close_stream(); };
  s.client_sends(pattern(300 * 1024));
  s.loop.pump();
  CHECK(s.handler.reads == 1);
  CHECK(s.peer().closed());
}

TEST_CASE("data and close_notify in one read arrive as the data, then on_eof", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.client->write("goodbye");
  s.client->shutdown();
  s.exchange();
  CHECK(s.handler.data == "goodbye");
  CHECK(s.handler.eofs == 1);
}

TEST_CASE("close_notify from the client reaches the handler as on_eof", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.client_sends("last words");
  s.client->shutdown();
  s.exchange();
  CHECK(s.handler.data == "last words");
  CHECK(s.handler.eofs == 1);
  CHECK(s.handler.errors.empty());
}

TEST_CASE("the transport ending without close_notify reaches the handler as on_eof",
          "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.client_sends("cut");
  s.peer().send_eof();
  s.loop.pump();
  CHECK(s.handler.data == "cut");
  CHECK(s.handler.eofs == 1);
  CHECK(s.handler.errors.empty());
}

TEST_CASE("shutdown_write sends a close_notify and half-closes the transport", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.stream->shutdown_write();
  CHECK(s.client_reads().empty());
  CHECK(s.client->got_close_notify());
  CHECK(s.peer().shut_down());
}

TEST_CASE("after shutdown_write the stream still reads what the client sends", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.stream->shutdown_write();
  s.client_sends("late request bytes");
  CHECK(s.handler.data == "late request bytes");
  CHECK(s.handler.errors.empty());
}

TEST_CASE("end_cleanly sends a close_notify and leaves the transport open", "[tls][stream]") {
  Accepted s;
  s.handshake();
  REQUIRE(write_slices(*s.stream, s.loop.pool(), {"the end"}) == 0);
  s.stream->end_cleanly();
  CHECK(s.client_reads() == "the end");
  CHECK(s.client->got_close_notify());
  CHECK_FALSE(s.peer().shut_down());
}

TEST_CASE("close alone sends no close_notify", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.close_stream();
  s.loop.pump();
  CHECK(s.client_reads().empty());
  CHECK_FALSE(s.client->got_close_notify());
  CHECK_FALSE(s.client->failed());
  CHECK(s.peer().closed());
}

TEST_CASE("plain HTTP on a TLS port gets a plain-text 400 and the transport shut down",
          "[tls][stream]") {
  Accepted s;
  s.peer().send(kPlainRequest);
  const std::string reply = s.peer().received();
  CHECK_THAT(reply, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  CHECK_THAT(reply, Contains("Content-Type: text/plain\r\n"));
  CHECK_THAT(reply, Contains("Connection: close\r\n"));
  const size_t body = reply.find("\r\n\r\n");
  REQUIRE(body != std::string::npos);
  CHECK_THAT(reply, Contains("Content-Length: " + std::to_string(reply.size() - body - 4)));
  CHECK(s.peer().shut_down());
  CHECK(s.handler.errors.empty());
}

TEST_CASE("after refusing plain HTTP the stream reports on_error when the client closes",
          "[tls][stream]") {
  Accepted s;
  s.peer().send(kPlainRequest);
  s.peer().send("more plain bytes\r\n");  // read and dropped
  s.loop.pump();
  CHECK(s.handler.errors.empty());
  s.peer().send_eof();
  s.loop.pump();
  CHECK(s.handler.errors == std::vector<int>{UV_ECONNRESET});
}

TEST_CASE("bytes that are neither TLS nor HTTP get on_error and no reply", "[tls][stream]") {
  Accepted s;
  s.peer().send(std::string("\x01\x02\x03 not tls", 11));
  s.loop.pump();
  CHECK(s.handler.errors == std::vector<int>{UV_EPROTO});
  CHECK(s.peer().received().empty());
}

TEST_CASE("a malformed TLS handshake gets on_error", "[tls][stream]") {
  Accepted s;
  s.peer().send(std::string("\x16\x03\x01\x00\x05hello", 10));
  s.loop.pump();
  CHECK(s.handler.errors == std::vector<int>{UV_EPROTO});
}

TEST_CASE("a stalled handshake gets on_error(UV_ETIMEDOUT) after the handshake timeout",
          "[tls][stream]") {
  Accepted s({.timeout_ms = 30});
  s.client->handshake();
  const std::string hello = s.client->drain();
  s.peer().send(hello.substr(0, hello.size() / 2));  // half a ClientHello, then nothing
  s.loop.pump();
  CHECK(s.handler.errors.empty());
  REQUIRE(s.loop.run_until([&] { return !s.handler.errors.empty(); }));
  CHECK(s.handler.errors == std::vector<int>{UV_ETIMEDOUT});
}

TEST_CASE("a finished handshake is not cut by the handshake timeout", "[tls][stream]") {
  Accepted s({.timeout_ms = 300});
  s.handshake();
  s.loop.run_until([] { return false; }, 400);
  CHECK(s.handler.errors.empty());
  s.client_sends("still here");
  CHECK(s.handler.data == "still here");
}

TEST_CASE("a client that closes during the handshake gets on_error", "[tls][stream]") {
  Accepted s;
  s.client->handshake();
  s.peer().send(s.client->drain());
  s.peer().send_eof();
  s.loop.pump();
  CHECK(s.handler.errors == std::vector<int>{UV_ECONNRESET});
}

TEST_CASE("a write before the handshake finished returns UV_ENOTCONN", "[tls][stream]") {
  Accepted s;
  CHECK(write_slices(*s.stream, s.loop.pool(), {"too soon"}) == UV_ENOTCONN);
  s.client->handshake();
  s.peer().send(s.client->drain());
  CHECK(write_slices(*s.stream, s.loop.pool(), {"still too soon"}) == UV_ENOTCONN);
}

// --- client side ---

namespace {

sockaddr_in backend_address(const char* ip = "127.0.0.1", uint16_t port = 9443) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, ip, &address.sin_addr);
  return address;
}

struct ConnectSetup {
  std::string sni = "backend.test";
  std::vector<std::string> backend_names = {"backend.test"};
  bool trust_other_ca = false;  // the client trusts a CA that did not sign the backend's cert
  bool client_cert = false;     // the upstream is configured with a client certificate
  bool backend_asks = false;    // the backend requires a client certificate from its CA
  bool verify = true;
  std::string address = "127.0.0.1";
  uint32_t timeout_ms = 5000;
};

// A TlsConnector over a MemoryConnector, and the backend the test plays with a server session.
class Connecting {
 public:
  explicit Connecting(const ConnectSetup& setup = {})
      : address_(setup.address),
        backend_leaf_(pki_.leaf(setup.backend_names)),
        memory_(loop.get(), loop.pool()) {
    conf::ListenerTlsConfig server_config;
    server_config.certificates.push_back({backend_leaf_.cert, backend_leaf_.key, ""});
    if (setup.backend_asks) server_config.client_ca = pki_.ca_cert();
    std::vector<std::string> errors, warnings;
    server_ = tls::ServerContext::load(server_config, "/backend", &errors, &warnings);
    REQUIRE(server_ != nullptr);
    conf::UpstreamTlsConfig client_config;
    client_config.ca = setup.trust_other_ca ? other_.ca_cert() : pki_.ca_cert();
    client_config.sni = setup.sni;
    client_config.verify = setup.verify;
    if (setup.client_cert) {
      const PemFiles mine = pki_.client_cert("sluice upstream");
      client_config.client_cert = mine.cert;
      client_config.client_key = mine.key;
    }
    client_context_ = tls::ClientContext::load(client_config, "/upstreams/app/tls", &errors);
    INFO("errors: " << (errors.empty() ? std::string() : errors[0]));
    REQUIRE(client_context_ != nullptr);
    connector = std::make_unique<tls::TlsConnector>(loop.get(), loop.pool(), memory_,
                                                    client_context_, setup.timeout_ms);
  }
  ~Connecting() {
    for (core::Stream* s : streams)
      if (s) s->close();
  }

  // Opens connection n (0 first); the transport connects on the next loop turn.
  core::Stream* connect(Recorder& handler) {
    sockaddr_storage address{};
    if (address_.find(':') == std::string::npos) {
      auto* in = reinterpret_cast<sockaddr_in*>(&address);
      *in = backend_address(address_.c_str());
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(9443);
      REQUIRE(inet_pton(AF_INET6, address_.c_str(), &in6->sin6_addr) == 1);
    }
    int error = -1;
    core::Stream* s =
        connector->connect(reinterpret_cast<const sockaddr*>(&address), {}, &handler, &error);
    CHECK(error == 0);
    REQUIRE(s != nullptr);
    streams.push_back(s);
    backends.push_back(std::make_unique<SslEnd>(server_->new_session(), Role::kServer));
    return s;
  }
  MemoryConnector& memory() { return memory_; }
  MemoryPeer& wire(size_t n) {
    REQUIRE(n < memory_.made().size());
    return *memory_.made()[n];
  }
  // Carries bytes between connection n and its backend until neither side has more.
  void exchange(size_t n) {
    SslEnd& backend = *backends.at(n);
    for (int i = 0; i < 100; ++i) {
      loop.pump();
      const std::string in = wire(n).take_received();
      backend.feed(in);
      if (!backend.done()) backend.handshake();
      const std::string out = backend.drain();
      if (!out.empty()) wire(n).send(out);
      if (in.empty() && out.empty()) return;
    }
    FAIL("bytes kept flowing");
  }
  // One backend step: it answers what connection n sent, but the answer is not delivered yet.
  std::string backend_answer(size_t n) {
    loop.pump();
    SslEnd& backend = *backends.at(n);
    backend.feed(wire(n).take_received());
    backend.handshake();
    return backend.drain();
  }

 private:
  std::string address_;
  TestPki pki_;
  TestPki other_;
  PemFiles backend_leaf_;

 public:
  Loop loop;

 private:
  MemoryConnector memory_;
  std::shared_ptr<const tls::ServerContext> server_;
  std::shared_ptr<const tls::ClientContext> client_context_;

 public:
  std::unique_ptr<tls::TlsConnector> connector;
  std::vector<core::Stream*> streams;
  std::vector<std::unique_ptr<SslEnd>> backends;
};

}  // namespace

TEST_CASE("a TLS connect reports on_connected(0) only after the handshake", "[tls][stream]") {
  Connecting c;
  Recorder handler;
  core::Stream* s = c.connect(handler);
  const std::string answer = c.backend_answer(0);  // the ServerHello flight, held back
  REQUIRE_FALSE(answer.empty());
  CHECK(handler.connects.empty());  // the transport is up, the handshake is not
  c.wire(0).send(answer);
  c.loop.pump();
  CHECK(handler.connects == std::vector<int>{0});
  c.exchange(0);
  CHECK(c.backends[0]->done());
  CHECK(s->transport()->version == "TLSv1.3");
  CHECK(std::string(SSL_get_servername(c.backends[0]->ssl(), TLSEXT_NAMETYPE_host_name)) ==
        "backend.test");
}

TEST_CASE("bytes flow both ways over a TLS connection to a backend", "[tls][stream]") {
  Connecting c;
  Recorder handler;
  core::Stream* s = c.connect(handler);
  c.exchange(0);
  REQUIRE(handler.connects == std::vector<int>{0});
  s->read_start();
  REQUIRE(write_slices(*s, c.loop.pool(), {"GET / HTTP/1.1\r\n", "Host: b\r\n\r\n"}) == 0);
  c.exchange(0);
  CHECK(c.backends[0]->read() == "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
  c.backends[0]->write("HTTP/1.1 204 No Content\r\n\r\n");
  c.wire(0).send(c.backends[0]->drain());
  c.loop.pump();
  CHECK(handler.data == "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST_CASE(
    "a TLS connect reports on_connected(error) when the backend's certificate fails "
    "verification",
    "[tls][stream]") {
  Connecting c({.trust_other_ca = true});
  Recorder handler;
  c.connect(handler);
  c.exchange(0);
  REQUIRE(handler.connects.size() == 1);
  CHECK(handler.connects[0] == UV_EPROTO);
  CHECK(handler.errors.empty());
}

TEST_CASE(
    "a TLS connect reports on_connected(error) when the backend's certificate names "
    "another host",
    "[tls][stream]") {
  Connecting c({.sni = "other.test"});
  Recorder handler;
  c.connect(handler);
  c.exchange(0);
  REQUIRE(handler.connects.size() == 1);
  CHECK(handler.connects[0] != 0);
}

TEST_CASE("without sni the backend's address is verified against the certificate's IP SAN",
          "[tls][stream]") {
  {
    Connecting c({.sni = "", .backend_names = {"IP:127.0.0.1"}});
    Recorder handler;
    c.connect(handler);
    c.exchange(0);
    CHECK(handler.connects == std::vector<int>{0});
    CHECK(SSL_get_servername(c.backends[0]->ssl(), TLSEXT_NAMETYPE_host_name) == nullptr);
  }
  {
    Connecting c({.sni = "", .backend_names = {"IP:127.0.0.2"}});
    Recorder handler;
    c.connect(handler);
    c.exchange(0);
    REQUIRE(handler.connects.size() == 1);
    CHECK(handler.connects[0] != 0);
  }
}

TEST_CASE("a backend that asks for a client certificate gets the configured one", "[tls][stream]") {
  Connecting c({.client_cert = true, .backend_asks = true});
  Recorder handler;
  c.connect(handler);
  c.exchange(0);
  CHECK(handler.connects == std::vector<int>{0});
  REQUIRE(c.backends[0]->done());
  X509* presented = SSL_get0_peer_certificate(c.backends[0]->ssl());
  REQUIRE(presented != nullptr);
  char cn[64] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(presented), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn) == "sluice upstream");
}

TEST_CASE(
    "a backend that refuses the connection for want of a client certificate reaches the "
    "handler as an error",
    "[tls][stream]") {
  Connecting c({.backend_asks = true});
  Recorder handler;
  core::Stream* s = c.connect(handler);
  c.exchange(0);
  // Under TLS 1.3 the client finishes first; the backend's alert comes after.
  REQUIRE(handler.connects == std::vector<int>{0});
  s->read_start();
  c.loop.pump();
  CHECK(c.backends[0]->failed());
  CHECK(handler.errors == std::vector<int>{UV_EPROTO});
}

TEST_CASE("with verify false a backend's untrusted certificate is accepted", "[tls][stream]") {
  Connecting c({.sni = "other.test", .trust_other_ca = true, .verify = false});
  Recorder handler;
  c.connect(handler);
  c.exchange(0);
  CHECK(handler.connects == std::vector<int>{0});
}

TEST_CASE("an IPv6 backend address is verified against the certificate's IPv6 SAN",
          "[tls][stream]") {
  Connecting c({.sni = "", .backend_names = {"IP:::1"}, .address = "::1"});
  Recorder handler;
  c.connect(handler);
  c.exchange(0);
  CHECK(handler.connects == std::vector<int>{0});
  CHECK(c.wire(0).address() == "[::1]:9443");
}

TEST_CASE("a backend that closes during the handshake reaches on_connected as an error",
          "[tls][stream]") {
  Connecting c;
  Recorder handler;
  c.connect(handler);
  c.backend_answer(0);  // the ClientHello was sent
  c.wire(0).send_eof();
  c.loop.pump();
  CHECK(handler.connects == std::vector<int>{UV_ECONNRESET});
  CHECK(handler.errors.empty());
}

TEST_CASE("a TLS connect whose transport fails reports on_connected with that error",
          "[tls][stream]") {
  Connecting c;
  c.memory().finish_connects_by_hand();
  Recorder handler;
  c.connect(handler);
  c.wire(0).finish_connect(UV_ECONNREFUSED);
  c.loop.pump();
  CHECK(handler.connects == std::vector<int>{UV_ECONNREFUSED});
}

TEST_CASE("a TLS connect whose transport cannot start returns no stream and the error",
          "[tls][stream]") {
  Connecting c;
  c.memory().fail_next_connect(UV_EADDRNOTAVAIL);
  Recorder handler;
  const sockaddr_in address = backend_address();
  int error = 0;
  CHECK(c.connector->connect(reinterpret_cast<const sockaddr*>(&address), {}, &handler, &error) ==
        nullptr);
  CHECK(error == UV_EADDRNOTAVAIL);
  c.loop.pump();
  CHECK(handler.connects.empty());
}

TEST_CASE("a TLS connect whose backend never answers reports on_connected(UV_ETIMEDOUT)",
          "[tls][stream]") {
  Connecting c({.timeout_ms = 30});
  Recorder handler;
  c.connect(handler);
  REQUIRE(c.loop.run_until([&] { return !handler.connects.empty(); }));
  CHECK(handler.connects == std::vector<int>{UV_ETIMEDOUT});
}

TEST_CASE("a second connection through the same TlsConnector resumes the session",
          "[tls][stream]") {
  Connecting c;
  Recorder first, second;
  core::Stream* one = c.connect(first);
  one->read_start();  // the ticket comes after the handshake, as response bytes do
  c.exchange(0);
  REQUIRE(first.connects == std::vector<int>{0});
  CHECK(SSL_session_reused(c.backends[0]->ssl()) == 0);
  c.connect(second);
  c.exchange(1);
  REQUIRE(second.connects == std::vector<int>{0});
  CHECK(SSL_session_reused(c.backends[1]->ssl()) == 1);
}

TEST_CASE("a TLS 1.2 connection through the same TlsConnector resumes too", "[tls][stream]") {
  Connecting c;
  Recorder first, second;
  c.connect(first);
  SSL_set_max_proto_version(c.backends[0]->ssl(), TLS1_2_VERSION);
  c.exchange(0);
  REQUIRE(first.connects == std::vector<int>{0});
  c.connect(second);
  SSL_set_max_proto_version(c.backends[1]->ssl(), TLS1_2_VERSION);
  c.exchange(1);
  REQUIRE(second.connects == std::vector<int>{0});
  CHECK(SSL_session_reused(c.backends[1]->ssl()) == 1);
}

TEST_CASE("a write the transport refuses returns the transport's error", "[tls][stream]") {
  Accepted s({.breakable = true});
  s.handshake();
  s.breakable->break_writes = true;
  CHECK(write_slices(*s.stream, s.loop.pool(), {"nowhere to go"}) == UV_EPIPE);
}

TEST_CASE("a handshake whose answer cannot be sent fails with the transport's error",
          "[tls][stream]") {
  Accepted s({.breakable = true});
  s.breakable->break_writes = true;
  s.client->handshake();
  s.peer().send(s.client->drain());
  CHECK(s.handler.errors == std::vector<int>{UV_EPIPE});
}

// --- one worker thread, many connections: OpenSSL's error queue is per thread ---

namespace {

// A connection past its handshake, and the ciphertext of one record its client wrote but has
// not sent yet: the next connection's failure happens in between.
struct Bystander {
  Accepted s;
  std::string wire;
  Bystander() {
    s.handshake();
    s.client->write("split record");
    wire = s.client->drain();
  }
  // The record arrives in two reads, as TCP may deliver it; nothing else runs in between.
  void receive_split_record() {
    s.peer().send(wire.substr(0, 3));
    s.peer().send(wire.substr(3));
  }
};

TEST_CASE("a handshake that fails while its alert cannot be sent does not break other connections",
          "[tls][stream]") {
  Bystander other;
  Accepted broken({.breakable = true});
  broken.breakable->break_writes = true;
  broken.peer().send(std::string("\x16\x03\x01\x00\x05hello", 10));
  REQUIRE(broken.handler.errors.size() == 1);
  CHECK(ERR_peek_error() == 0);
  other.receive_split_record();
  CHECK(other.s.handler.errors.empty());
  CHECK(other.s.handler.data == "split record");
}

TEST_CASE("a bad record whose alert cannot be sent does not break other connections",
          "[tls][stream]") {
  Bystander other;
  Accepted broken({.breakable = true});
  broken.handshake();
  broken.client->write("tampered");
  std::string tampered = broken.client->drain();
  tampered.back() = static_cast<char>(tampered.back() ^ 1);
  broken.breakable->break_writes = true;
  broken.peer().send(tampered);
  REQUIRE(broken.handler.errors.size() == 1);
  CHECK(ERR_peek_error() == 0);
  other.receive_split_record();
  CHECK(other.s.handler.errors.empty());
  CHECK(other.s.handler.data == "split record");
}

TEST_CASE(
    "a handler that closes inside on_read, with a bad record behind its bytes, does not "
    "break other connections",
    "[tls][stream]") {
  Bystander other;
  Accepted broken;
  broken.handshake();
  broken.client->write("good");
  std::string wire = broken.client->drain();
  broken.client->write("tampered");
  std::string tampered = broken.client->drain();
  tampered.back() = static_cast<char>(tampered.back() ^ 1);
  broken.handler.after_read = [&] { broken.close_stream(); };
  broken.peer().send(wire + tampered);
  REQUIRE(broken.handler.data == "good");
  CHECK(ERR_peek_error() == 0);
  other.receive_split_record();
  CHECK(other.s.handler.errors.empty());
  CHECK(other.s.handler.data == "split record");
}

}  // namespace

TEST_CASE("a handshake that fails with its alert sent does not break other connections",
          "[tls][stream]") {
  Bystander other;
  Accepted broken;
  broken.peer().send(std::string("\x16\x03\x01\x00\x05hello", 10));
  REQUIRE(broken.handler.errors == std::vector<int>{UV_EPROTO});
  other.receive_split_record();
  CHECK(other.s.handler.errors.empty());
  CHECK(other.s.handler.data == "split record");
}
