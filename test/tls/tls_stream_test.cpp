// Specification of the TLS stream's server side, over an in-memory transport: the handshake and
// what it reports, then reading (records to the handler in order, read_stop and read_start, odd
// transport reads). TlsStream::accept over a MemoryStream; the test plays the client with an
// OpenSSL SSL on memory BIOs, and the loop runs in steps, as a worker's does.
#include "tls/tls_stream.h"

#include <openssl/ssl.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "test/tls/tls_stream_fixture.h"

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::tls_stream;
using Catch::Contains;

// --- handshake ---

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

// --- reading ---

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
