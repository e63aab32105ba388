// Specification of a listener's TLS context, part two, by real handshakes in memory against
// sessions it makes: ALPN, protocol versions and ciphers, and client certificates (client_ca).
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "test/tls/server_context_fixture.h"
#include "tls/server_context.h"

using namespace sluice::test;
using namespace sluice::test::listener_tls;
using Catch::Contains;
using sluice::conf::ListenerTlsConfig;
using sluice::tls::Owned;
using sluice::tls::ServerContext;

// --- ALPN and versions ---

TEST_CASE("ALPN selects http/1.1 from a client that offers it", "[tls][alpn]") {
  TestPki pki;
  auto context = load_ok(config_of({pki.leaf({"a.example.com"})}));
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  auto client = client_of(ctx.get(), "a.example.com");
  static constexpr unsigned char kOffer[] = "\x02h2\x08http/1.1";
  SSL_set_alpn_protos(client->ssl(), kOffer, sizeof kOffer - 1);
  auto server = server_of(*context);
  REQUIRE(shake_hands(*client, *server));
  const unsigned char* chosen = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(client->ssl(), &chosen, &length);
  CHECK(std::string(reinterpret_cast<const char*>(chosen), length) == "http/1.1");
}

TEST_CASE("a client that offers only h2 is refused", "[tls][alpn]") {
  TestPki pki;
  auto context = load_ok(config_of({pki.leaf({"a.example.com"})}));
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  auto client = client_of(ctx.get(), "a.example.com");
  static constexpr unsigned char kOffer[] = "\x02h2";
  SSL_set_alpn_protos(client->ssl(), kOffer, sizeof kOffer - 1);
  auto server = server_of(*context);
  CHECK_FALSE(shake_hands(*client, *server));
  CHECK(server->failed());
  CHECK(client->failed());  // it got the no_application_protocol alert
}

TEST_CASE("a client that offers no ALPN is served without a protocol", "[tls][alpn]") {
  TestPki pki;
  auto context = load_ok(config_of({pki.leaf({"a.example.com"})}));
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  auto client = client_of(ctx.get(), "a.example.com");
  auto server = server_of(*context);
  REQUIRE(shake_hands(*client, *server));
  const unsigned char* chosen = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(server->ssl(), &chosen, &length);
  CHECK(length == 0);
}

TEST_CASE("by default TLS 1.3 is chosen and a TLS 1.2 client is served", "[tls][version]") {
  TestPki pki;
  auto context = load_ok(config_of({pki.leaf({"a.example.com"})}));
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  {
    auto client = client_of(ctx.get(), "a.example.com");
    auto server = server_of(*context);
    REQUIRE(shake_hands(*client, *server));
    CHECK(SSL_version(server->ssl()) == TLS1_3_VERSION);
  }
  {
    auto client = client_of(ctx.get(), "a.example.com");
    SSL_set_max_proto_version(client->ssl(), TLS1_2_VERSION);
    auto server = server_of(*context);
    REQUIRE(shake_hands(*client, *server));
    CHECK(SSL_version(server->ssl()) == TLS1_2_VERSION);
  }
}

TEST_CASE("min_version 1.3 refuses a client limited to TLS 1.2", "[tls][version]") {
  TestPki pki;
  ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"})});
  config.min_version = "1.3";
  auto context = load_ok(config);
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  auto client = client_of(ctx.get(), "a.example.com");
  SSL_set_max_proto_version(client->ssl(), TLS1_2_VERSION);
  auto server = server_of(*context);
  CHECK_FALSE(shake_hands(*client, *server));
  CHECK(server->failed());
}

TEST_CASE("a client limited to TLS 1.1 is refused", "[tls][version]") {
  TestPki pki;
  auto context = load_ok(config_of({pki.leaf({"a.example.com"})}));
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  auto client = client_of(ctx.get(), "a.example.com");
  // The client would speak TLS 1.1 if the server did (OpenSSL 3 needs security level 0 for it).
  SSL_set_security_level(client->ssl(), 0);
  REQUIRE(SSL_set_cipher_list(client->ssl(), "DEFAULT:@SECLEVEL=0") == 1);
  SSL_set_min_proto_version(client->ssl(), TLS1_1_VERSION);
  SSL_set_max_proto_version(client->ssl(), TLS1_1_VERSION);
  auto server = server_of(*context);
  CHECK_FALSE(shake_hands(*client, *server));
  CHECK(server->failed());  // the server saw the ClientHello and refused it
  CHECK_THAT(server->error(), Contains("unsupported protocol"));
}

TEST_CASE("a configured cipher list limits the TLS 1.2 ciphers", "[tls][version]") {
  TestPki pki;
  ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"})});
  config.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
  auto context = load_ok(config);
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_2_VERSION);
  {
    auto client = client_of(ctx.get(), "a.example.com");
    REQUIRE(SSL_set_cipher_list(client->ssl(), "ECDHE-ECDSA-AES128-GCM-SHA256") == 1);
    auto server = server_of(*context);
    CHECK_FALSE(shake_hands(*client, *server));
  }
  {
    auto client = client_of(ctx.get(), "a.example.com");
    auto server = server_of(*context);
    REQUIRE(shake_hands(*client, *server));
    CHECK(std::string(SSL_get_cipher_name(server->ssl())) == "ECDHE-ECDSA-AES256-GCM-SHA384");
  }
}

// --- client certificates ---

namespace {

struct MutualSetup {
  TestPki pki;
  std::shared_ptr<const ServerContext> context;
  MutualSetup() {
    ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"})});
    config.client_ca = pki.ca_cert();
    context = load_ok(config);
  }
};

}  // namespace

TEST_CASE("a context with client_ca verifies clients", "[tls][mtls]") {
  MutualSetup s;
  CHECK(s.context->verifies_clients());
}

TEST_CASE("a client_ca context refuses a client without a certificate", "[tls][mtls]") {
  MutualSetup s;
  Owned<SSL_CTX> ctx = client_context(s.pki.ca_cert());
  auto client = client_of(ctx.get(), "a.example.com");
  auto server = server_of(*s.context);
  CHECK_FALSE(shake_hands(*client, *server));
  CHECK(server->failed());
}

TEST_CASE("a client_ca context accepts a client whose certificate its CA signed", "[tls][mtls]") {
  MutualSetup s;
  const PemFiles mine = s.pki.client_cert("client one");
  Owned<SSL_CTX> ctx = client_context(s.pki.ca_cert());
  REQUIRE(SSL_CTX_use_certificate_file(ctx.get(), mine.cert.c_str(), SSL_FILETYPE_PEM) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey_file(ctx.get(), mine.key.c_str(), SSL_FILETYPE_PEM) == 1);
  auto client = client_of(ctx.get(), "a.example.com");
  auto server = server_of(*s.context);
  const bool shook = shake_hands(*client, *server);
  INFO("client: " << client->error() << "; server: " << server->error());
  REQUIRE(shook);
  CHECK(SSL_get0_peer_certificate(server->ssl()) != nullptr);
  CHECK(SSL_get_verify_result(server->ssl()) == X509_V_OK);
}

TEST_CASE("a client_ca context refuses a client certificate another CA signed", "[tls][mtls]") {
  MutualSetup s;
  TestPki stranger;
  const PemFiles theirs = stranger.client_cert("intruder");
  Owned<SSL_CTX> ctx = client_context(s.pki.ca_cert());
  REQUIRE(SSL_CTX_use_certificate_file(ctx.get(), theirs.cert.c_str(), SSL_FILETYPE_PEM) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey_file(ctx.get(), theirs.key.c_str(), SSL_FILETYPE_PEM) == 1);
  auto client = client_of(ctx.get(), "a.example.com");
  auto server = server_of(*s.context);
  CHECK_FALSE(shake_hands(*client, *server));
  CHECK(server->failed());
}

TEST_CASE("client certificates are verified whichever certificate SNI picked", "[tls][mtls]") {
  TestPki pki;
  ListenerTlsConfig config =
      config_of({pki.leaf({"default.example.com"}), pki.leaf({"b.example.com"})});
  config.client_ca = pki.ca_cert();
  auto context = load_ok(config);
  const PemFiles mine = pki.client_cert("client two");
  Owned<SSL_CTX> with_cert = client_context(pki.ca_cert());
  REQUIRE(SSL_CTX_use_certificate_file(with_cert.get(), mine.cert.c_str(), SSL_FILETYPE_PEM) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey_file(with_cert.get(), mine.key.c_str(), SSL_FILETYPE_PEM) == 1);
  Owned<SSL_CTX> without = client_context(pki.ca_cert());
  {
    auto client = client_of(with_cert.get(), "b.example.com");
    auto server = server_of(*context);
    REQUIRE(shake_hands(*client, *server));
    CHECK(served_name(*client) == "b.example.com");
    CHECK(SSL_get_verify_result(server->ssl()) == X509_V_OK);
  }
  {
    auto client = client_of(without.get(), "b.example.com");
    auto server = server_of(*context);
    CHECK_FALSE(shake_hands(*client, *server));
    CHECK(server->failed());
  }
}
