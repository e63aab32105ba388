// What the listener TLS context tests share: a config of certificates, loading it (to succeed or
// to fail), and the two ends of a handshake in memory against a session the context makes, with
// the name on the certificate the client was served.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "test/tls/ssl_end.h"
#include "test/tls/test_pki.h"
#include "tls/server_context.h"

namespace sluice::test::listener_tls {

inline constexpr const char* kWhere = "/listeners/0/tls";

inline conf::ListenerTlsConfig config_of(const std::vector<PemFiles>& certs) {
  conf::ListenerTlsConfig config;
  for (const PemFiles& files : certs) config.certificates.push_back({files.cert, files.key, ""});
  return config;
}

inline std::shared_ptr<const tls::ServerContext> load_ok(
    const conf::ListenerTlsConfig& config, std::vector<std::string>* warnings = nullptr) {
  std::vector<std::string> errors, ignored;
  auto context = tls::ServerContext::load(config, kWhere, &errors, warnings ? warnings : &ignored);
  std::string all;
  for (const std::string& e : errors) all += e + "\n";
  INFO("errors:\n" << all);
  REQUIRE(context != nullptr);
  REQUIRE(errors.empty());
  return context;
}

inline std::vector<std::string> load_errors(const conf::ListenerTlsConfig& config) {
  std::vector<std::string> errors, warnings;
  CHECK(tls::ServerContext::load(config, kWhere, &errors, &warnings) == nullptr);
  CHECK_FALSE(errors.empty());
  return errors;
}

// The CN of the certificate the server presented (TestPki sets it to the first name).
inline std::string served_name(const SslEnd& client) {
  X509* peer = SSL_get0_peer_certificate(client.ssl());
  if (!peer) return "";
  char cn[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
  return cn;
}

// A client of `ctx` sending `sni` (none when empty).
inline std::unique_ptr<SslEnd> client_of(SSL_CTX* ctx, const std::string& sni = "") {
  auto end = std::make_unique<SslEnd>(SSL_new(ctx), Role::kClient);
  if (!sni.empty()) SSL_set_tlsext_host_name(end->ssl(), sni.c_str());
  return end;
}

inline std::unique_ptr<SslEnd> server_of(const tls::ServerContext& context) {
  return std::make_unique<SslEnd>(context.new_session(), Role::kServer);
}

}  // namespace sluice::test::listener_tls
