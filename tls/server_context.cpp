// Listener contexts. Every group context gets the same settings, so switching to a group's
// context on SNI changes only the certificates a client sees.
#include "tls/server_context.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "tls/ticket_keys.h"

namespace sluice::tls {
namespace {

// Forward secrecy and AEAD only, ECDSA first (Mozilla's "intermediate" list without DHE).
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";
// TLS 1.3 suites, AES-128 first (Mozilla's order): as strong as needed, and cheaper per record.
constexpr const char* kSuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr unsigned char kSessionContext[] = "sluice";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Why a stapled response would mislead clients, or "" when it is fit to staple: it must speak of
// this certificate (by serial) and not be past its next update.
std::string ocsp_problem(OCSP_RESPONSE* response, const Certificate& cert) {
  OCSP_BASICRESP* basic = OCSP_response_get1_basic(response);
  if (!basic) return "holds no basic response";
  std::string problem = "is not about \"" + cert.cert_path + "\" (no serial matches)";
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.leaf.get());
  for (int i = 0; i < OCSP_resp_count(basic); ++i) {
    OCSP_SINGLERESP* single = OCSP_resp_get0(basic, i);
    ASN1_INTEGER* about = nullptr;
    OCSP_id_get0_info(nullptr, nullptr, nullptr, &about,
                      const_cast<OCSP_CERTID*>(OCSP_SINGLERESP_get0_id(single)));
    if (!about || ASN1_INTEGER_cmp(about, serial) != 0) continue;
    int reason = 0;
    ASN1_GENERALIZEDTIME *revoked = nullptr, *this_update = nullptr, *next_update = nullptr;
    const int status =
        OCSP_single_get0_status(single, &reason, &revoked, &this_update, &next_update);
    if (status != V_OCSP_CERTSTATUS_GOOD)
      problem = "does not say the certificate is good";
    else if (next_update && X509_cmp_current_time(next_update) < 0)
      problem = "is past its next update; fetch a fresh one";
    else
      problem.clear();
    break;
  }
  OCSP_BASICRESP_free(basic);
  return problem;
}

}  // namespace

std::shared_ptr<const ServerContext> ServerContext::load(const conf::ListenerTlsConfig& config,
                                                         const std::string& where,
                                                         std::vector<std::string>* errors,
                                                         std::vector<std::string>* warnings) {
  std::shared_ptr<ServerContext> server(new ServerContext());
  server->handshake_timeout_ms_ = config.handshake_timeout_ms;
  for (const std::string& protocol : config.alpn) {
    server->alpn_.push_back(static_cast<char>(protocol.size()));
    server->alpn_ += protocol;
  }
  const size_t errors_before = errors->size();
  if (!config.ciphers.empty()) {
    Owned<SSL_CTX> probe(SSL_CTX_new(TLS_server_method()));
    if (!probe || SSL_CTX_set_cipher_list(probe.get(), config.ciphers.c_str()) != 1) {
      ERR_clear_error();
      errors->push_back(where + "/ciphers: no usable cipher in \"" + config.ciphers + "\"");
      return nullptr;
    }
  }
  // Settings of the whole listener are checked once, and reported at their own keys.
  if (!config.client_ca.empty()) {
    std::string error;
    server->client_cas_ = load_bundle(config.client_ca, &error);
    if (server->client_cas_.empty()) {
      errors->push_back(where + "/client_ca: " + error);
      return nullptr;
    }
  }
  for (size_t i = 0; i < config.certificates.size(); ++i) {
    const conf::CertificateFiles& files = config.certificates[i];
    const std::string at = where + "/certificates/" + std::to_string(i);
    std::string error;
    std::unique_ptr<Certificate> cert = load_certificate(files.cert, files.key, &error);
    if (cert && days_left(*cert) < 14)
      warnings->push_back(at + ": the certificate \"" + files.cert + "\" expires in " +
                          std::to_string(days_left(*cert)) + " days");
    if (cert && !files.ocsp.empty() && !server->read_ocsp(*cert, files.ocsp, &error)) cert.reset();
    if (!cert || !server->add(std::move(cert), config, &error))
      errors->push_back(at + ": " + error);
  }
  if (errors->size() != errors_before) return nullptr;
  return server;
}

bool ServerContext::add(std::unique_ptr<Certificate> cert, const conf::ListenerTlsConfig& config,
                        std::string* error) {
  std::vector<std::string> names = cert->names;
  std::sort(names.begin(), names.end());
  const int key_type = EVP_PKEY_get_base_id(cert->key.get());
  Group* group = nullptr;
  for (Group& g : groups_) {
    if (g.names != names) continue;
    if (std::find(g.key_types.begin(), g.key_types.end(), key_type) != g.key_types.end()) {
      *error = "\"" + cert->cert_path +
               "\" has the names and key type of an earlier certificate (" + g.paths.front() +
               "); only one of them could ever be served";
      return false;
    }
    group = &g;
  }
  if (!group) {
    Owned<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx || !configure(ctx.get(), config, error)) {
      if (error->empty()) *error = openssl_reason("cannot make a TLS context");
      return false;
    }
    groups_.push_back(Group{names, {}, {}, ctx.get()});
    contexts_.push_back(std::move(ctx));
    group = &groups_.back();
    for (const std::string& name : names) {
      auto& table = name.starts_with("*.") ? wildcard_ : exact_;
      table.emplace(name.starts_with("*.") ? name.substr(2) : name, group->ctx);  // first wins
    }
  }
  if (SSL_CTX_use_cert_and_key(group->ctx, cert->leaf.get(), cert->key.get(), cert->chain.get(),
                               1) != 1) {
    *error = "cannot serve \"" + cert->cert_path + "\": " + openssl_reason("rejected");
    return false;
  }
  group->key_types.push_back(key_type);
  group->paths.push_back(cert->cert_path);
  return true;
}

bool ServerContext::configure(SSL_CTX* ctx, const conf::ListenerTlsConfig& config,
                              std::string* error) {
  SSL_CTX_set_min_proto_version(ctx, config.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  const std::string ciphers = config.ciphers.empty() ? kDefaultCiphers : config.ciphers;
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
    *error = "no usable cipher in \"" + ciphers + "\"";
    ERR_clear_error();
    return false;
  }
  SSL_CTX_set1_groups_list(ctx, kGroups);
  SSL_CTX_set_ciphersuites(ctx, kSuites);
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  // Only stateless tickets resume sessions: a per-context cache would not span workers anyway.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (config.session_tickets) {
    TicketKeys::attach(ctx);
    SSL_CTX_set_num_tickets(ctx, 1);
  } else {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  if (!client_cas_.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    for (const Owned<X509>& ca : client_cas_) {
      X509_STORE_add_cert(store, ca.get());
      sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca.get())));
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    verifies_clients_ = true;
  }
  SSL_CTX_set_tlsext_servername_callback(ctx, &ServerContext::on_server_name);
  SSL_CTX_set_tlsext_servername_arg(ctx, this);
  SSL_CTX_set_alpn_select_cb(ctx, &ServerContext::on_alpn, this);
  SSL_CTX_set_tlsext_status_cb(ctx, &ServerContext::on_status);
  SSL_CTX_set_tlsext_status_arg(ctx, this);
  return true;
}

bool ServerContext::read_ocsp(const Certificate& cert, const std::string& path,
                              std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read OCSP response \"" + path + "\": " + std::strerror(errno);
    return false;
  }
  std::string der((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  OCSP_RESPONSE* response = d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size()));
  const bool ok = response && OCSP_response_status(response) == OCSP_RESPONSE_STATUS_SUCCESSFUL;
  const std::string problem = ok ? ocsp_problem(response, cert) : "";
  OCSP_RESPONSE_free(response);
  ERR_clear_error();
  if (!ok) {
    *error = "\"" + path + "\" is not a successful DER OCSP response";
    return false;
  }
  if (!problem.empty()) {
    *error = "the OCSP response \"" + path + "\" " + problem;
    return false;
  }
  X509_up_ref(cert.leaf.get());
  ocsp_.emplace_back(Owned<X509>(cert.leaf.get()), std::move(der));
  return true;
}

SSL_CTX* ServerContext::pick(std::string_view server_name) const {
  const std::string name = lower(server_name);
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  const size_t dot = name.find('.');
  if (dot != std::string::npos && dot > 0) {
    if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) return it->second;
  }
  return contexts_.front().get();
}

int ServerContext::on_server_name(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr || self->contexts_.size() == 1) return SSL_TLSEXT_ERR_OK;
  SSL_CTX* ctx = self->pick(name);
  if (ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::on_alpn(SSL*, const unsigned char** out, unsigned char* out_length,
                           const unsigned char* in, unsigned int in_length, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  unsigned char* chosen = nullptr;
  const auto* ours = reinterpret_cast<const unsigned char*>(self->alpn_.data());
  if (SSL_select_next_proto(&chosen, out_length, ours, static_cast<unsigned>(self->alpn_.size()),
                            in, in_length) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // RFC 7301: no protocol in common
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::on_status(SSL* ssl, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  X509* leaf = SSL_get_certificate(ssl);
  for (const auto& [cert, der] : self->ocsp_) {
    if (cert.get() != leaf) continue;
    auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(der.data(), der.size()));
    if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(der.size()));
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace sluice::tls
