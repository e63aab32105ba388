// The test PKI: a CA per TestPki, leaves signed with SHA-256. EC keys are cheap and made fresh
// for every certificate; the one RSA key is made once per process and shared by RSA leaves.
#include "test/tls/test_pki.h"

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace sluice::test {
namespace {

EVP_PKEY* make_key(KeyKind kind) {
  if (kind == KeyKind::kEc) return EVP_EC_gen("P-256");
  static EVP_PKEY* const rsa = EVP_RSA_gen(2048);  // reachable for the process's life
  REQUIRE(rsa != nullptr);
  EVP_PKEY_up_ref(rsa);
  return rsa;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  REQUIRE(ext != nullptr);
  REQUIRE(X509_add_ext(cert, ext, -1) == 1);
  X509_EXTENSION_free(ext);
}

void set_name(X509_NAME* name, const std::string& common_name) {
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Sluice tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
}

// An unsigned certificate for `key` with a random serial and the given validity window.
X509* new_cert(EVP_PKEY* key, const std::string& common_name, long not_before_s, long not_after_s) {
  X509* cert = X509_new();
  REQUIRE(cert != nullptr);
  X509_set_version(cert, 2);  // v3
  unsigned char serial[8];
  REQUIRE(RAND_bytes(serial, sizeof serial) == 1);
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), not_after_s);
  REQUIRE(X509_set_pubkey(cert, key) == 1);
  set_name(X509_get_subject_name(cert), common_name);
  return cert;
}

std::string pem_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string pem_of(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

}  // namespace

TestPki::TestPki() {
  char pattern[] = "/tmp/sluice-tls-test-XXXXXX";
  REQUIRE(mkdtemp(pattern) != nullptr);
  dir_ = pattern;
  ca_key_ = make_key(KeyKind::kEc);
  REQUIRE(ca_key_ != nullptr);
  ca_ = new_cert(ca_key_, "Sluice test CA " + dir_.substr(dir_.size() - 6), -86400, 3650L * 86400);
  X509_set_issuer_name(ca_, X509_get_subject_name(ca_));
  add_ext(ca_, ca_, NID_basic_constraints, "critical,CA:TRUE");
  add_ext(ca_, ca_, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(ca_, ca_, NID_subject_key_identifier, "hash");
  REQUIRE(X509_sign(ca_, ca_key_, EVP_sha256()) > 0);
  ca_cert_path_ = write("ca.crt", pem_of(ca_));
}

TestPki::~TestPki() {
  X509_free(ca_);
  EVP_PKEY_free(ca_key_);
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string TestPki::write(const std::string& name, const std::string& content) const {
  const std::string path = dir_ + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  REQUIRE(out.good());
  return path;
}

std::string TestPki::next_stem() {
  return "cert" + std::to_string(++issued_);
}

PemFiles TestPki::issue(const LeafSpec& spec) {
  EVP_PKEY* key = make_key(spec.key);
  REQUIRE(key != nullptr);
  std::string common_name = spec.common_name;
  if (common_name.empty()) common_name = spec.names.empty() ? "sluice test leaf" : spec.names[0];
  X509* cert = new_cert(key, common_name, spec.not_before_s, spec.not_after_s);
  X509_set_issuer_name(cert, X509_get_subject_name(ca_));
  add_ext(cert, ca_, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert, ca_, NID_key_usage,
          spec.key == KeyKind::kEc ? "critical,digitalSignature"
                                   : "critical,digitalSignature,keyEncipherment");
  add_ext(cert, ca_, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
  add_ext(cert, ca_, NID_subject_key_identifier, "hash");
  add_ext(cert, ca_, NID_authority_key_identifier, "keyid:always");
  if (!spec.names.empty()) {
    std::string san;
    for (const std::string& name : spec.names) {
      if (!san.empty()) san += ",";
      san += name.starts_with("IP:") ? name : "DNS:" + name;
    }
    add_ext(cert, ca_, NID_subject_alt_name, san);
  }
  REQUIRE(X509_sign(cert, ca_key_, EVP_sha256()) > 0);
  const std::string stem = next_stem();
  PemFiles files;
  files.cert = write(stem + ".crt", pem_of(cert) + (spec.append_ca ? pem_of(ca_) : ""));
  files.key = write(stem + ".key", pem_of(key));
  X509_free(cert);
  EVP_PKEY_free(key);
  return files;
}

std::string TestPki::ocsp_response(const PemFiles& files) {
  BIO* in = BIO_new_file(files.cert.c_str(), "r");
  REQUIRE(in != nullptr);
  X509* cert = PEM_read_bio_X509(in, nullptr, nullptr, nullptr);
  BIO_free(in);
  REQUIRE(cert != nullptr);
  OCSP_CERTID* id = OCSP_cert_to_id(EVP_sha1(), cert, ca_);
  OCSP_BASICRESP* basic = OCSP_BASICRESP_new();
  ASN1_TIME* now = X509_gmtime_adj(nullptr, 0);
  ASN1_TIME* next = X509_gmtime_adj(nullptr, 7L * 86400);
  REQUIRE(OCSP_basic_add1_status(basic, id, V_OCSP_CERTSTATUS_GOOD, 0, nullptr, now, next) !=
          nullptr);
  REQUIRE(OCSP_basic_sign(basic, ca_, ca_key_, EVP_sha256(), nullptr, 0) == 1);
  OCSP_RESPONSE* response = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic);
  REQUIRE(response != nullptr);
  unsigned char* der = nullptr;
  const int length = i2d_OCSP_RESPONSE(response, &der);
  REQUIRE(length > 0);
  const std::string path =
      write(next_stem() + ".ocsp", std::string(reinterpret_cast<char*>(der), length));
  OPENSSL_free(der);
  OCSP_RESPONSE_free(response);
  ASN1_TIME_free(next);
  ASN1_TIME_free(now);
  OCSP_BASICRESP_free(basic);
  OCSP_CERTID_free(id);
  X509_free(cert);
  return path;
}

PemFiles TestPki::leaf(const std::vector<std::string>& names, KeyKind key) {
  return issue({.names = names, .key = key});
}

PemFiles TestPki::expired_leaf(const std::vector<std::string>& names) {
  return issue({.names = names, .not_before_s = -30L * 86400, .not_after_s = -86400});
}

PemFiles TestPki::not_yet_valid_leaf(const std::vector<std::string>& names) {
  return issue({.names = names, .not_before_s = 86400, .not_after_s = 90L * 86400});
}

PemFiles TestPki::client_cert(const std::string& common_name) {
  return issue({.common_name = common_name, .client = true});
}

}  // namespace sluice::test
