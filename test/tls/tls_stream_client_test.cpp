// Specification of the TLS stream's client side: TlsStream::connect through a TlsConnector over
// a MemoryConnector while the test plays the backend with a session of a ServerContext. Covers
// when on_connected comes, verification of the backend (names, IP SANs, verify false), client
// certificates, failed and stalled connects, and session resumption.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "test/core/proxy/memory_stream.h"
#include "test/tls/ssl_end.h"
#include "test/tls/test_pki.h"
#include "test/tls/tls_stream_fixture.h"
#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls/tls_stream.h"
#include "tls/tls_transport.h"

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::tls_stream;

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
