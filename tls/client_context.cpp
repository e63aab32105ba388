// Upstream contexts. Verification defaults on: a proxy that does not check its backends lets
// anyone on the path between them read the traffic.
#include "tls/client_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace sluice::tls {
namespace {

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

int ClientContext::session_slot_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::shared_ptr<const ClientContext> ClientContext::load(const conf::UpstreamTlsConfig& config,
                                                         const std::string& where,
                                                         std::vector<std::string>* errors) {
  std::shared_ptr<ClientContext> client(new ClientContext());
  client->config_ = config;
  client->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = client->ctx_.get();
  if (!ctx) {
    errors->push_back(where + ": " + openssl_reason("cannot make a TLS context"));
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &ClientContext::on_new_session);
  bool ok = true;
  std::string error;
  if (config.ca.empty()) {
    SSL_CTX_set_default_verify_paths(ctx);
  } else {
    std::vector<Owned<X509>> cas = load_bundle(config.ca, &error);
    if (cas.empty()) {
      errors->push_back(where + "/ca: " + error);
      ok = false;
    }
    for (const Owned<X509>& ca : cas) X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca.get());
  }
  if (!config.client_cert.empty()) {
    std::unique_ptr<Certificate> cert =
        load_certificate(config.client_cert, config.client_key, &error);
    if (!cert) {
      errors->push_back(where + "/client_cert: " + error);
      ok = false;
    } else if (SSL_CTX_use_cert_and_key(ctx, cert->leaf.get(), cert->key.get(), cert->chain.get(),
                                        1) != 1) {
      errors->push_back(where + "/client_cert: " + openssl_reason("rejected"));
      ok = false;
    }
  }
  SSL_CTX_set_verify(ctx, config.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  return ok ? client : nullptr;
}

SSL* ClientContext::new_session(const std::string& host) const {
  SSL* ssl = SSL_new(ctx_.get());
  if (!ssl) return nullptr;
  const std::string& name = config_.sni.empty() ? host : config_.sni;
  const bool ip = is_ip_literal(name);
  if (!ip) SSL_set_tlsext_host_name(ssl, name.c_str());  // RFC 6066: never an address
  if (config_.verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                       : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (set != 1) {
      SSL_free(ssl);
      return nullptr;
    }
  }
  return ssl;
}

int ClientContext::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<SessionSlot*>(SSL_get_ex_data(ssl, session_slot_index()));
  if (!slot) return 0;
  SSL_SESSION_free(slot->session);
  slot->session = session;
  return 1;  // the slot keeps the reference OpenSSL handed over
}

}  // namespace sluice::tls
