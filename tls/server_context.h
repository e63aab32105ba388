// What a TLS listener serves: its certificates grouped by the names they cover (an RSA and an
// ECDSA one for the same names share a group, and OpenSSL gives each client the one it can use),
// picked by SNI, with ALPN, OCSP staples, tickets and client verification. Immutable once loaded;
// a reload loads a new one and connections in flight keep the one they started with.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "tls/certificate.h"

namespace sluice::tls {

class ServerContext {
 public:
  // Loads and checks every file of `config`. nullptr when any fails; each error starts with
  // `where` (the JSON path of the listener's tls object) and names the file. `warnings` gets a
  // line for each certificate that expires within two weeks.
  static std::shared_ptr<const ServerContext> load(const conf::ListenerTlsConfig& config,
                                                   const std::string& where,
                                                   std::vector<std::string>* errors,
                                                   std::vector<std::string>* warnings);
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // A server-side session for one accepted connection; nullptr when OpenSSL cannot make one.
  SSL* new_session() const { return SSL_new(contexts_.front().get()); }
  uint32_t handshake_timeout_ms() const { return handshake_timeout_ms_; }
  bool verifies_clients() const { return verifies_clients_; }

 private:
  ServerContext() = default;
  bool add(std::unique_ptr<Certificate> cert, const conf::ListenerTlsConfig& config,
           std::string* error);
  bool configure(SSL_CTX* ctx, const conf::ListenerTlsConfig& config, std::string* error);
  bool read_ocsp(const Certificate& cert, const std::string& path, std::string* error);
  SSL_CTX* pick(std::string_view server_name) const;
  static int on_server_name(SSL* ssl, int* alert, void* arg);
  static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* out_length,
                     const unsigned char* in, unsigned int in_length, void* arg);
  static int on_status(SSL* ssl, void* arg);

  struct Group {
    std::vector<std::string> names;  // sorted
    std::vector<int> key_types;      // EVP_PKEY_RSA, EVP_PKEY_EC, ...
    std::vector<std::string> paths;  // the certificate files, in key_types' order
    SSL_CTX* ctx;
  };
  std::vector<Owned<SSL_CTX>> contexts_;  // one per group; the first is the default
  std::vector<Group> groups_;
  std::unordered_map<std::string, SSL_CTX*> exact_;        // "www.example.com"
  std::unordered_map<std::string, SSL_CTX*> wildcard_;     // "example.com" for "*.example.com"
  std::vector<std::pair<Owned<X509>, std::string>> ocsp_;  // leaf, DER response
  std::string alpn_;                                       // wire format: length-prefixed names
  std::vector<Owned<X509>> client_cas_;                    // client_ca's certificates, if any
  uint32_t handshake_timeout_ms_ = 10000;
  bool verifies_clients_ = false;
};

}  // namespace sluice::tls
