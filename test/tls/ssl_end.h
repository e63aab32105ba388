// One end of a TLS connection that a test drives by hand: an OpenSSL SSL on memory BIOs, whose
// ciphertext the test carries to and from the other end (another SslEnd, or a MemoryPeer).
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

#include "tls/certificate.h"

namespace sluice::test {

// A client context that verifies the server's chain against `ca_file` (no host name check);
// empty: no verification at all.
tls::Owned<SSL_CTX> client_context(const std::string& ca_file);

enum class Role { kClient, kServer };

class SslEnd {
 public:
  SslEnd(SSL* ssl, Role role);  // takes `ssl`, gives it memory BIOs
  ~SslEnd();
  SslEnd(const SslEnd&) = delete;
  SslEnd& operator=(const SslEnd&) = delete;

  SSL* ssl() const { return ssl_; }
  // Ciphertext from the other end.
  void feed(std::string_view bytes);
  // Ciphertext for the other end, written since the last call.
  std::string drain();

  // Steps the handshake: 1 finished, 0 waiting for the other end, -1 failed.
  int handshake();
  // Every plaintext byte available now. Also takes post-handshake messages (tickets) and the
  // peer's close_notify (got_close_notify()).
  std::string read();
  // Encrypts `bytes` (as records of at most 16 KiB) for drain().
  void write(std::string_view bytes);
  // Sends close_notify.
  void shutdown();

  bool done() const { return done_; }
  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }  // OpenSSL's reason once failed
  bool got_close_notify() const { return (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0; }

 private:
  void fail(const char* what);

  SSL* ssl_;
  BIO* in_;   // owned by ssl_
  BIO* out_;  // owned by ssl_
  bool done_ = false;
  bool failed_ = false;
  std::string error_;
};

// Carries bytes between a client and a server end until both finished the handshake or either
// failed; then lets the client take what the server sent after its handshake (tickets). Returns
// whether both finished.
bool shake_hands(SslEnd& client, SslEnd& server);

}  // namespace sluice::test
