// Specification of how a server-side TLS stream ends and refuses: close_notify both ways,
// shutdown_write, end_cleanly and close; plain HTTP, garbage, stalled or cut handshakes; and, as
// one worker thread serves many connections, a failing one leaves OpenSSL's per-thread error
// queue clean for the others.
#include <openssl/err.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "test/tls/tls_stream_fixture.h"
#include "tls/tls_stream.h"

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::tls_stream;
using Catch::Contains;
using Catch::StartsWith;

namespace {

const std::string kPlainRequest = "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n";

}  // namespace

// --- endings ---

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

// --- refusals ---

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

}  // namespace

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
