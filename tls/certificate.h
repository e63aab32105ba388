// A certificate chain and its private key read from PEM files and checked before anything serves
// them: readable, parseable, the key matches, valid now. Errors name the file and the reason.
#pragma once

#include <openssl/ssl.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace sluice::tls {

struct OpenSslFree {
  void operator()(X509* x) const { X509_free(x); }
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  void operator()(BIO* b) const { BIO_free(b); }
};
template <typename T>
using Owned = std::unique_ptr<T, OpenSslFree>;

struct Certificate {
  Owned<X509> leaf;
  Owned<STACK_OF(X509)> chain;  // the intermediates after the leaf, maybe empty
  Owned<EVP_PKEY> key;
  std::vector<std::string> names;  // DNS names of the SAN (or the CN without one), lower case
  std::time_t not_after = 0;
  std::string cert_path;
};

// Reads `cert_path` (leaf first, then its chain) and `key_path`. nullptr with `error` set when a
// file is missing or unreadable, holds no certificate or key, the key does not match, or the
// certificate is expired or not yet valid.
std::unique_ptr<Certificate> load_certificate(const std::string& cert_path,
                                              const std::string& key_path, std::string* error);

// Every certificate in a PEM bundle (CA files); empty with `error` set when there is none.
std::vector<Owned<X509>> load_bundle(const std::string& path, std::string* error);

// Whole days until `cert` expires (negative once it has).
long days_left(const Certificate& cert);

// The reason of the last OpenSSL error on this thread, cleared; `fallback` when there is none.
std::string openssl_reason(const char* fallback);

}  // namespace sluice::tls
