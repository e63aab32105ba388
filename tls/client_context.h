// How Sluice speaks TLS to one upstream's backends: the trusted CAs, whether and against which
// name the backend's certificate is checked, a client certificate, the SNI sent. Built on the
// main thread, shared read-only by every worker; sessions to resume live per worker.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "tls/certificate.h"

namespace sluice::tls {

class ClientContext {
 public:
  // nullptr when a file fails to load; each error starts with `where` and names the file.
  static std::shared_ptr<const ClientContext> load(const conf::UpstreamTlsConfig& config,
                                                   const std::string& where,
                                                   std::vector<std::string>* errors);
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  // A client-side session that sends SNI and verifies `host` (a DNS name or an IP literal;
  // config's "sni" overrides it). nullptr when OpenSSL cannot make one.
  SSL* new_session(const std::string& host) const;
  const conf::UpstreamTlsConfig& config() const { return config_; }

  // The ex_data index where a connection keeps the slot its new sessions go to.
  static int session_slot_index();

 private:
  ClientContext() = default;
  static int on_new_session(SSL* ssl, SSL_SESSION* session);

  Owned<SSL_CTX> ctx_;
  conf::UpstreamTlsConfig config_;
};

// Where a backend's latest resumable session waits for the next connection to it. One worker
// owns each; OpenSSL fills it from a handshake on that worker's thread.
struct SessionSlot {
  SSL_SESSION* session = nullptr;
  ~SessionSlot() { SSL_SESSION_free(session); }
};

}  // namespace sluice::tls
