// Specification of a listener's TLS context, part one: what load() refuses and warns about, and,
// by real handshakes in memory against sessions it makes, which certificate each client gets (SNI,
// key type) and the OCSP response stapled with it.
#include "tls/server_context.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "test/tls/server_context_fixture.h"

using namespace sluice::test;
using namespace sluice::test::listener_tls;
using Catch::Contains;
using Catch::StartsWith;
using sluice::conf::ListenerTlsConfig;
using sluice::tls::Owned;
using sluice::tls::ServerContext;

namespace {

int served_key_type(const SslEnd& client) {
  X509* peer = SSL_get0_peer_certificate(client.ssl());
  return peer ? EVP_PKEY_get_base_id(X509_get0_pubkey(peer)) : EVP_PKEY_NONE;
}

// The name served to a client that sends `sni`.
std::string name_served_for(const ServerContext& context, const std::string& ca_file,
                            const std::string& sni) {
  Owned<SSL_CTX> ctx = client_context(ca_file);
  auto client = client_of(ctx.get(), sni);
  auto server = server_of(context);
  const bool shook = shake_hands(*client, *server);
  INFO("client: " << client->error() << "; server: " << server->error());
  REQUIRE(shook);
  return served_name(*client);
}

// Three listener certificates: the default first, an exact name, a wildcard.
struct SniSetup {
  TestPki pki;
  std::shared_ptr<const ServerContext> context;
  SniSetup() {
    context = load_ok(config_of({pki.leaf({"default.example.com"}), pki.leaf({"www.example.com"}),
                                 pki.leaf({"*.apps.example.com"})}));
  }
  std::string served_for(const std::string& sni) {
    return name_served_for(*context, pki.ca_cert(), sni);
  }
};

// The OCSP response stapled to the handshake of a client that asked for one ("" for none).
std::string staple_for(const ServerContext& context, SSL_CTX* ctx, const char* sigalgs) {
  auto client = client_of(ctx, "a.example.com");
  SSL_set_tlsext_status_type(client->ssl(), TLSEXT_STATUSTYPE_ocsp);
  if (sigalgs) REQUIRE(SSL_set1_sigalgs_list(client->ssl(), sigalgs) == 1);
  auto server = server_of(context);
  REQUIRE(shake_hands(*client, *server));
  const unsigned char* der = nullptr;
  const long length = SSL_get_tlsext_status_ocsp_resp(client->ssl(), &der);
  return length > 0 && der ? std::string(reinterpret_cast<const char*>(der), length) : "";
}

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

// --- load ---

TEST_CASE("a listener context loads every certificate and keeps its settings", "[tls]") {
  TestPki pki;
  ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"}), pki.leaf({"b.example.com"})});
  config.handshake_timeout_ms = 1234;
  auto context = load_ok(config);
  CHECK(context->handshake_timeout_ms() == 1234);
  CHECK_FALSE(context->verifies_clients());
}

TEST_CASE("a certificate that fails to load is refused with its JSON path and file", "[tls]") {
  TestPki pki;
  ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"}), pki.leaf({"b.example.com"})});
  config.certificates[1].cert = pki.dir() + "/absent.crt";
  const std::vector<std::string> errors = load_errors(config);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/certificates/1: "));
  CHECK_THAT(errors[0], Contains("\"" + pki.dir() + "/absent.crt\""));
}

TEST_CASE("every certificate that fails to load is reported, each with its index", "[tls]") {
  TestPki pki;
  const PemFiles good = pki.leaf({"good.example.com"});
  const PemFiles expired = pki.expired_leaf({"old.example.com"});
  const PemFiles other = pki.leaf({"other.example.com"});
  ListenerTlsConfig config = config_of({expired, good, {other.cert, good.key}});
  const std::vector<std::string> errors = load_errors(config);
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/certificates/0: "));
  CHECK_THAT(errors[0], Contains("\"" + expired.cert + "\" has expired"));
  CHECK_THAT(errors[1], StartsWith(std::string(kWhere) + "/certificates/2: "));
  CHECK_THAT(errors[1], Contains("\"" + good.key + "\" does not match"));
}

TEST_CASE("a certificate that expires within 14 days loads with a warning", "[tls]") {
  TestPki pki;
  const PemFiles soon =
      pki.issue({.names = {"soon.example.com"}, .not_after_s = 5L * 86400 + 3600});
  std::vector<std::string> warnings;
  load_ok(config_of({pki.leaf({"later.example.com"}), soon}), &warnings);
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], StartsWith(std::string(kWhere) + "/certificates/1: "));
  CHECK_THAT(warnings[0], Contains("\"" + soon.cert + "\" expires in 5 days"));
}

TEST_CASE("a certificate valid for 14 days or more loads without a warning", "[tls]") {
  TestPki pki;
  std::vector<std::string> warnings;
  load_ok(config_of({pki.issue({.names = {"ok.example.com"}, .not_after_s = 15L * 86400})}),
          &warnings);
  CHECK(warnings.empty());
}

TEST_CASE("a cipher list with no usable cipher is refused", "[tls]") {
  TestPki pki;
  ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"})});
  config.ciphers = "NOT-A-CIPHER";
  const std::vector<std::string> errors = load_errors(config);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/"));
  CHECK_THAT(errors[0], Contains("no usable cipher in \"NOT-A-CIPHER\""));
}

TEST_CASE("a client_ca file that cannot be read is refused, naming the file", "[tls]") {
  TestPki pki;
  ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"})});
  config.client_ca = pki.dir() + "/absent-ca.pem";
  const std::vector<std::string> errors = load_errors(config);
  REQUIRE_FALSE(errors.empty());
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/"));
  CHECK_THAT(errors[0], Contains("cannot read CA file \"" + config.client_ca + "\""));
}

TEST_CASE("an OCSP file that is not a DER OCSP response is refused, naming the file", "[tls]") {
  TestPki pki;
  ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"})});
  config.certificates[0].ocsp = pki.write("bad.ocsp", "not DER at all");
  const std::vector<std::string> errors = load_errors(config);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/certificates/0: "));
  CHECK_THAT(errors[0], Contains("\"" + config.certificates[0].ocsp + "\""));
}

TEST_CASE("a missing OCSP file is refused, naming the file", "[tls]") {
  TestPki pki;
  ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"})});
  config.certificates[0].ocsp = pki.dir() + "/absent.ocsp";
  const std::vector<std::string> errors = load_errors(config);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/certificates/0: "));
  CHECK_THAT(errors[0], Contains("cannot read OCSP response \"" + config.certificates[0].ocsp));
}

TEST_CASE("a cipher list with no usable cipher is reported once, at its own JSON path", "[tls]") {
  TestPki pki;
  ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"}), pki.leaf({"b.example.com"})});
  config.ciphers = "NOT-A-CIPHER";
  const std::vector<std::string> errors = load_errors(config);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/ciphers: "));
}

TEST_CASE("a client_ca file that cannot be read is reported once, at its own JSON path", "[tls]") {
  TestPki pki;
  ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"}), pki.leaf({"b.example.com"})});
  config.client_ca = pki.dir() + "/absent-ca.pem";
  const std::vector<std::string> errors = load_errors(config);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/client_ca: "));
}

// --- which certificate a client gets ---

TEST_CASE("SNI naming a certificate exactly gets that certificate", "[tls][sni]") {
  SniSetup s;
  CHECK(s.served_for("www.example.com") == "www.example.com");
}

TEST_CASE("SNI is matched without regard to case", "[tls][sni]") {
  SniSetup s;
  CHECK(s.served_for("WWW.Example.COM") == "www.example.com");
}

TEST_CASE("SNI under a wildcard's domain gets the wildcard certificate", "[tls][sni]") {
  SniSetup s;
  CHECK(s.served_for("x.apps.example.com") == "*.apps.example.com");
}

TEST_CASE("a wildcard covers one label only, not the bare domain or deeper names", "[tls][sni]") {
  SniSetup s;
  CHECK(s.served_for("apps.example.com") == "default.example.com");
  CHECK(s.served_for("a.b.apps.example.com") == "default.example.com");
}

TEST_CASE("SNI naming no certificate gets the first certificate", "[tls][sni]") {
  SniSetup s;
  CHECK(s.served_for("unknown.example.org") == "default.example.com");
}

TEST_CASE("a client without SNI gets the first certificate", "[tls][sni]") {
  SniSetup s;
  CHECK(s.served_for("") == "default.example.com");
}

TEST_CASE("an exact name wins over a wildcard that also covers it", "[tls][sni]") {
  TestPki pki;
  auto context = load_ok(
      config_of({pki.leaf({"*.example.com"}), pki.leaf({"www.example.com", "example.com"})}));
  CHECK(name_served_for(*context, pki.ca_cert(), "www.example.com") == "www.example.com");
  CHECK(name_served_for(*context, pki.ca_cert(), "api.example.com") == "*.example.com");
}

TEST_CASE(
    "an ECDSA and an RSA certificate for the same names each go to the client that can "
    "use it",
    "[tls][sni]") {
  TestPki pki;
  auto context = load_ok(
      config_of({pki.leaf({"default.example.com"}), pki.leaf({"dual.example.com"}, KeyKind::kEc),
                 pki.leaf({"dual.example.com"}, KeyKind::kRsa)}));
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  {
    auto client = client_of(ctx.get(), "dual.example.com");
    REQUIRE(SSL_set1_sigalgs_list(client->ssl(), "ECDSA+SHA256") == 1);
    auto server = server_of(*context);
    REQUIRE(shake_hands(*client, *server));
    CHECK(served_name(*client) == "dual.example.com");
    CHECK(served_key_type(*client) == EVP_PKEY_EC);
  }
  {
    auto client = client_of(ctx.get(), "dual.example.com");
    REQUIRE(SSL_set1_sigalgs_list(client->ssl(), "RSA-PSS+SHA256:RSA+SHA256") == 1);
    auto server = server_of(*context);
    const bool shook = shake_hands(*client, *server);
    INFO("client: " << client->error() << "; server: " << server->error());
    REQUIRE(shook);
    CHECK(served_name(*client) == "dual.example.com");
    CHECK(served_key_type(*client) == EVP_PKEY_RSA);
  }
}

TEST_CASE("an ECDSA and an RSA certificate for the same names are both served under TLS 1.2",
          "[tls][sni]") {
  TestPki pki;
  auto context = load_ok(config_of({pki.leaf({"dual.example.com"}, KeyKind::kRsa),
                                    pki.leaf({"dual.example.com"}, KeyKind::kEc)}));
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_2_VERSION);
  for (const auto& [ciphers, type] : {std::pair{"ECDHE-ECDSA-AES128-GCM-SHA256", EVP_PKEY_EC},
                                      std::pair{"ECDHE-RSA-AES128-GCM-SHA256", EVP_PKEY_RSA}}) {
    INFO(ciphers);
    auto client = client_of(ctx.get(), "dual.example.com");
    REQUIRE(SSL_set_cipher_list(client->ssl(), ciphers) == 1);
    auto server = server_of(*context);
    REQUIRE(shake_hands(*client, *server));
    CHECK(served_key_type(*client) == type);
  }
}

// --- OCSP stapling ---

TEST_CASE("a certificate's OCSP response is stapled for a client that asks", "[tls][ocsp]") {
  TestPki pki;
  const PemFiles leaf = pki.leaf({"a.example.com"});
  ListenerTlsConfig config = config_of({leaf});
  config.certificates[0].ocsp = pki.ocsp_response(leaf);
  auto context = load_ok(config);
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  CHECK(staple_for(*context, ctx.get(), nullptr) == file_text(config.certificates[0].ocsp));
}

TEST_CASE("an OCSP response is stapled only with the certificate it belongs to", "[tls][ocsp]") {
  TestPki pki;
  const PemFiles ec = pki.leaf({"a.example.com"}, KeyKind::kEc);
  const PemFiles rsa = pki.leaf({"a.example.com"}, KeyKind::kRsa);
  ListenerTlsConfig config = config_of({ec, rsa});
  config.certificates[1].ocsp = pki.ocsp_response(rsa);
  auto context = load_ok(config);
  Owned<SSL_CTX> ctx = client_context(pki.ca_cert());
  CHECK(staple_for(*context, ctx.get(), "RSA-PSS+SHA256:RSA+SHA256") ==
        file_text(config.certificates[1].ocsp));
  CHECK(staple_for(*context, ctx.get(), "ECDSA+SHA256").empty());
}
