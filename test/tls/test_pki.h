// Keys and certificates for the TLS tests, made in memory with OpenSSL and written as PEM files
// into a temporary folder that goes away with the TestPki. Each TestPki is one CA; a second one
// is a CA that signed none of the first one's certificates.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <vector>

namespace sluice::test {

enum class KeyKind { kEc, kRsa };  // P-256, RSA 2048

// The PEM files of one certificate and its key.
struct PemFiles {
  std::string cert;  // the leaf, then any chain after it
  std::string key;
};

struct LeafSpec {
  // subjectAltName entries: DNS names, or IP addresses written as "IP:127.0.0.1". Empty: the
  // certificate has no subjectAltName at all.
  std::vector<std::string> names = {};
  std::string common_name = {};  // empty: the first name, or "sluice test leaf"
  KeyKind key = KeyKind::kEc;
  long not_before_s = -3600;       // from now
  long not_after_s = 90L * 86400;  // from now
  bool client = false;             // extendedKeyUsage clientAuth instead of serverAuth
  bool append_ca = false;          // the CA's certificate follows the leaf in the cert file
};

class TestPki {
 public:
  TestPki();
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  // The folder every file of this PKI lies in.
  const std::string& dir() const { return dir_; }
  // The CA's certificate (a PEM file), for trust stores and client_ca.
  const std::string& ca_cert() const { return ca_cert_path_; }
  X509* ca() const { return ca_; }

  // A certificate signed by this CA, as `spec` says.
  PemFiles issue(const LeafSpec& spec);
  // A server certificate for `names`, valid for 90 days.
  PemFiles leaf(const std::vector<std::string>& names, KeyKind key = KeyKind::kEc);
  // Valid from 30 days ago until yesterday.
  PemFiles expired_leaf(const std::vector<std::string>& names);
  // Valid from tomorrow on.
  PemFiles not_yet_valid_leaf(const std::vector<std::string>& names);
  // A client certificate (clientAuth) with `common_name` as its subject.
  PemFiles client_cert(const std::string& common_name);

  // A DER OCSP response from this CA saying `files`' certificate is good, written to a file;
  // returns its path.
  std::string ocsp_response(const PemFiles& files);

  // Writes `content` to a file of this PKI named `name`; returns its path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string next_stem();

  std::string dir_;
  EVP_PKEY* ca_key_ = nullptr;
  X509* ca_ = nullptr;
  std::string ca_cert_path_;
  int issued_ = 0;
};

}  // namespace sluice::test
