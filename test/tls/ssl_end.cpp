// Hand-driven TLS ends for the tests.
#include "test/tls/ssl_end.h"

#include <openssl/err.h>

#include <catch2/catch.hpp>

namespace sluice::test {

tls::Owned<SSL_CTX> client_context(const std::string& ca_file) {
  tls::Owned<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()));
  REQUIRE(ctx != nullptr);
  if (!ca_file.empty()) {
    REQUIRE(SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) == 1);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

SslEnd::SslEnd(SSL* ssl, Role role) : ssl_(ssl) {
  REQUIRE(ssl_ != nullptr);
  if (role == Role::kServer)
    SSL_set_accept_state(ssl_);
  else
    SSL_set_connect_state(ssl_);
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in_, -1);  // empty means "more later", not the end
  SSL_set_bio(ssl_, in_, out_);
}

SslEnd::~SslEnd() {
  SSL_free(ssl_);
}

void SslEnd::feed(std::string_view bytes) {
  if (!bytes.empty()) BIO_write(in_, bytes.data(), static_cast<int>(bytes.size()));
}

std::string SslEnd::drain() {
  std::string out;
  char buffer[16384];
  for (;;) {
    const int n = BIO_read(out_, buffer, sizeof buffer);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

void SslEnd::fail(const char* what) {
  failed_ = true;
  const unsigned long code = ERR_peek_last_error();
  char text[256] = "";
  if (code != 0) ERR_error_string_n(code, text, sizeof text);
  error_ = std::string(what) + ": " + text;
  ERR_clear_error();
}

int SslEnd::handshake() {
  if (failed_) return -1;
  if (done_) return 1;
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    done_ = true;
    return 1;
  }
  const int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  fail("handshake");
  return -1;
}

std::string SslEnd::read() {
  std::string out;
  char buffer[16384];
  while (!failed_) {
    ERR_clear_error();
    const int n = SSL_read(ssl_, buffer, sizeof buffer);
    if (n > 0) {
      out.append(buffer, static_cast<size_t>(n));
      continue;
    }
    const int e = SSL_get_error(ssl_, n);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_ZERO_RETURN) fail("read");
    break;
  }
  return out;
}

void SslEnd::write(std::string_view bytes) {
  while (!bytes.empty()) {
    ERR_clear_error();
    const int n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
    REQUIRE(n > 0);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void SslEnd::shutdown() {
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

bool shake_hands(SslEnd& client, SslEnd& server) {
  for (int round = 0; round < 20; ++round) {
    const int c = client.handshake();
    server.feed(client.drain());
    const int s = server.handshake();
    client.feed(server.drain());
    if (c < 0 || s < 0) {
      client.read();  // the alert that ended it, if any
      server.feed(client.drain());
      server.read();
      return false;
    }
    if (c == 1 && s == 1) {
      client.read();  // tickets the server sent after its handshake
      server.feed(client.drain());
      return !client.failed();
    }
  }
  FAIL("the handshake made no progress");
  return false;
}

}  // namespace sluice::test
