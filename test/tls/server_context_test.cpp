// Specification of a listener's TLS context: what load() refuses and warns about, and, by real
// handshakes in memory against sessions it makes, which certificate each client gets (SNI, key
// type), ALPN, protocol versions, client certificates and session tickets.
#include "tls/server_context.h"

#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "test/tls/ssl_end.h"
#include "test/tls/test_pki.h"
#include "tls/ticket_keys.h"

using namespace sluice::test;
using Catch::Contains;
using Catch::StartsWith;
using sluice::conf::CertificateFiles;
using sluice::conf::ListenerTlsConfig;
using sluice::tls::Owned;
using sluice::tls::ServerContext;
using sluice::tls::TicketKeys;

namespace {

constexpr const char* kWhere = "/listeners/0/tls";

ListenerTlsConfig config_of(const std::vector<PemFiles>& certs) {
  ListenerTlsConfig config;
  for (const PemFiles& files : certs) config.certificates.push_back({files.cert, files.key, ""});
  return config;
}

std::shared_ptr<const ServerContext> load_ok(const ListenerTlsConfig& config,
                                             std::vector<std::string>* warnings = nullptr) {
  std::vector<std::string> errors, ignored;
  auto context = ServerContext::load(config, kWhere, &errors, warnings ? warnings : &ignored);
  std::string all;
  for (const std::string& e : errors) all += e + "\n";
  INFO("errors:\n" << all);
  REQUIRE(context != nullptr);
  REQUIRE(errors.empty());
  return context;
}

std::vector<std::string> load_errors(const ListenerTlsConfig& config) {
  std::vector<std::string> errors, warnings;
  CHECK(ServerContext::load(config, kWhere, &errors, &warnings) == nullptr);
  CHECK_FALSE(errors.empty());
  return errors;
}

// The CN of the certificate the server presented (TestPki sets it to the first name).
std::string served_name(const SslEnd& client) {
  X509* peer = SSL_get0_peer_certificate(client.ssl());
  if (!peer) return "";
  char cn[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
  return cn;
}

int served_key_type(const SslEnd& client) {
  X509* peer = SSL_get0_peer_certificate(client.ssl());
  return peer ? EVP_PKEY_get_base_id(X509_get0_pubkey(peer)) : EVP_PKEY_NONE;
}

// A client of `ctx` sending `sni` (none when empty).
std::unique_ptr<SslEnd> client_of(SSL_CTX* ctx, const std::string& sni = "") {
  auto end = std::make_unique<SslEnd>(SSL_new(ctx), Role::kClient);
  if (!sni.empty()) SSL_set_tlsext_host_name(end->ssl(), sni.c_str());
  return end;
}

std::unique_ptr<SslEnd> server_of(const ServerContext& context) {
  return std::make_unique<SslEnd>(context.new_session(), Role::kServer);
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

// A session the client got from `context`, for resuming; fails the test when there is none.
SSL_SESSION* session_from(const ServerContext& context, SSL_CTX* client_ctx) {
  auto client = client_of(client_ctx, "www.example.com");
  auto server = server_of(context);
  REQUIRE(shake_hands(*client, *server));
  SSL_SESSION* session = SSL_get1_session(client->ssl());
  REQUIRE(session != nullptr);
  client->shutdown();  // a connection freed without it marks its session unfit to resume
  return session;
}

// Whether a client offering `session` resumes it with `context` (both ends must agree).
bool resumes(const ServerContext& context, SSL_CTX* client_ctx, SSL_SESSION* session) {
  auto client = client_of(client_ctx, "www.example.com");
  REQUIRE(SSL_set_session(client->ssl(), session) == 1);
  auto server = server_of(context);
  REQUIRE(shake_hands(*client, *server));
  CHECK(SSL_session_reused(client->ssl()) == SSL_session_reused(server->ssl()));
  client->shutdown();
  return SSL_session_reused(server->ssl()) == 1;
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

namespace {

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

}  // namespace

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

struct MutualSetup {
  TestPki pki;
  std::shared_ptr<const ServerContext> context;
  MutualSetup() {
    ListenerTlsConfig config = config_of({pki.leaf({"a.example.com"})});
    config.client_ca = pki.ca_cert();
    context = load_ok(config);
  }
};

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

// --- session tickets ---

struct TicketSetup {
  TestPki pki;
  ListenerTlsConfig config;
  std::shared_ptr<const ServerContext> context;
  Owned<SSL_CTX> client_ctx;
  TicketSetup() {
    config = config_of({pki.leaf({"www.example.com"})});
    context = load_ok(config);
    client_ctx = client_context(pki.ca_cert());
  }
};

TEST_CASE("a ticket from one context resumes on another loaded from the same config",
          "[tls][tickets]") {
  TicketSetup s;
  auto other = load_ok(s.config);  // as another worker, or after a reload
  SSL_SESSION* session = session_from(*s.context, s.client_ctx.get());
  CHECK(SSL_SESSION_has_ticket(session) == 1);
  CHECK(resumes(*other, s.client_ctx.get(), session));
  SSL_SESSION_free(session);
}

TEST_CASE("a TLS 1.2 ticket from one context resumes on another", "[tls][tickets]") {
  TicketSetup s;
  SSL_CTX_set_max_proto_version(s.client_ctx.get(), TLS1_2_VERSION);
  auto other = load_ok(s.config);
  SSL_SESSION* session = session_from(*s.context, s.client_ctx.get());
  CHECK(SSL_SESSION_has_ticket(session) == 1);
  CHECK(resumes(*other, s.client_ctx.get(), session));
  SSL_SESSION_free(session);
}

TEST_CASE("a ticket still resumes after one and after two key rotations", "[tls][tickets]") {
  TicketSetup s;
  SSL_SESSION* session = session_from(*s.context, s.client_ctx.get());
  TicketKeys::process().rotate();
  CHECK(resumes(*s.context, s.client_ctx.get(), session));
  TicketKeys::process().rotate();
  CHECK(resumes(*s.context, s.client_ctx.get(), session));
  SSL_SESSION_free(session);
}

TEST_CASE("a ticket no longer resumes after kKept key rotations", "[tls][tickets]") {
  TicketSetup s;
  SSL_SESSION* session = session_from(*s.context, s.client_ctx.get());
  CHECK(SSL_SESSION_is_resumable(session) == 1);
  for (size_t i = 0; i < TicketKeys::kKept; ++i) TicketKeys::process().rotate();
  CHECK_FALSE(resumes(*s.context, s.client_ctx.get(), session));
  SSL_SESSION_free(session);
}

TEST_CASE("rotation keeps kKept keys, the newest first", "[tls][tickets]") {
  const auto before = TicketKeys::process().keys();
  TicketKeys::process().rotate();
  const auto after = TicketKeys::process().keys();
  REQUIRE_FALSE(after->empty());
  CHECK(after->size() <= TicketKeys::kKept);
  CHECK(after->front().name != before->front().name);
  REQUIRE(after->size() >= 2);
  CHECK((*after)[1].name == before->front().name);
  for (size_t i = 0; i < TicketKeys::kKept; ++i) TicketKeys::process().rotate();
  CHECK(TicketKeys::process().keys()->size() == TicketKeys::kKept);
}

TEST_CASE("with session_tickets false no ticket is issued and nothing resumes", "[tls][tickets]") {
  TicketSetup s;
  s.config.session_tickets = false;
  auto context = load_ok(s.config);
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    INFO("version " << std::hex << version);
    SSL_CTX_set_max_proto_version(s.client_ctx.get(), version);
    SSL_SESSION* session = session_from(*context, s.client_ctx.get());
    CHECK(SSL_SESSION_has_ticket(session) == 0);
    CHECK_FALSE(resumes(*context, s.client_ctx.get(), session));
    SSL_SESSION_free(session);
  }
}
