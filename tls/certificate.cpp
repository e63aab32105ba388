// Loading checks the same things at start, on reload and in `sluice --check`, so a file that
// would fail to serve is refused before the old certificates are let go.
#include "tls/certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sluice::tls {
namespace {

Owned<BIO> open_file(const std::string& path, const char* what, std::string* error) {
  errno = 0;
  Owned<BIO> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    *error = std::string("cannot read ") + what + " \"" + path +
             "\": " + (errno ? std::strerror(errno) : "cannot open");
  }
  return bio;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::vector<std::string> names_of(X509* cert) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    names.push_back(lower(
        std::string(reinterpret_cast<const char*>(dns->data), static_cast<size_t>(dns->length))));
  }
  GENERAL_NAMES_free(sans);
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0)
      names.push_back(lower(cn));
  }
  return names;
}

std::time_t to_time(const ASN1_TIME* t) {
  struct tm parts {};
  if (ASN1_TIME_to_tm(t, &parts) != 1) return 0;
  return timegm(&parts);
}

}  // namespace

std::string openssl_reason(const char* fallback) {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  const char* reason = ERR_reason_error_string(code);
  return reason ? reason : fallback;
}

std::unique_ptr<Certificate> load_certificate(const std::string& cert_path,
                                              const std::string& key_path, std::string* error) {
  auto cert = std::make_unique<Certificate>();
  cert->cert_path = cert_path;
  Owned<BIO> bio = open_file(cert_path, "certificate", error);
  if (!bio) return nullptr;
  cert->leaf.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert->leaf) {
    *error = "no PEM certificate in \"" + cert_path + "\" (" + openssl_reason("unreadable") + ")";
    return nullptr;
  }
  cert->chain.reset(sk_X509_new_null());
  while (X509* more = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
    sk_X509_push(cert->chain.get(), more);
  ERR_clear_error();  // the loop ends on "no start line"
  Owned<BIO> key_bio = open_file(key_path, "key", error);
  if (!key_bio) return nullptr;
  // No passphrase prompt: a reload must never wait on a terminal.
  bool encrypted = false;
  cert->key.reset(PEM_read_bio_PrivateKey(
      key_bio.get(), nullptr,
      [](char*, int, int, void* flag) {
        *static_cast<bool*>(flag) = true;
        return 0;
      },
      &encrypted));
  if (!cert->key) {
    ERR_clear_error();
    *error = encrypted
                 ? "the key \"" + key_path + "\" is encrypted; Sluice reads only unencrypted keys"
                 : "no PEM private key in \"" + key_path + "\"";
    return nullptr;
  }
  if (X509_check_private_key(cert->leaf.get(), cert->key.get()) != 1) {
    ERR_clear_error();
    *error = "the key \"" + key_path + "\" does not match the certificate \"" + cert_path + "\"";
    return nullptr;
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert->leaf.get())) > 0) {
    *error = "the certificate \"" + cert_path + "\" is not valid yet";
    return nullptr;
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert->leaf.get())) < 0) {
    *error = "the certificate \"" + cert_path + "\" has expired";
    return nullptr;
  }
  cert->not_after = to_time(X509_get0_notAfter(cert->leaf.get()));
  cert->names = names_of(cert->leaf.get());
  return cert;
}

std::vector<Owned<X509>> load_bundle(const std::string& path, std::string* error) {
  std::vector<Owned<X509>> certs;
  Owned<BIO> bio = open_file(path, "CA file", error);
  if (!bio) return certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
    certs.emplace_back(cert);
  ERR_clear_error();
  if (certs.empty()) *error = "no PEM certificate in CA file \"" + path + "\"";
  return certs;
}

long days_left(const Certificate& cert) {
  return static_cast<long>((cert.not_after - std::time(nullptr)) / 86400);
}

}  // namespace sluice::tls
