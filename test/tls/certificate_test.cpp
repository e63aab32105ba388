// Specification of certificate loading: a chain and its key are checked (readable, PEM, matching,
// valid now) before anything serves them, and every refusal names the file and the reason.
#include "tls/certificate.h"

#include <catch2/catch.hpp>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>

#include "test/tls/test_pki.h"

using namespace sluice::test;
using Catch::Contains;
using sluice::tls::Certificate;
using sluice::tls::days_left;
using sluice::tls::load_bundle;
using sluice::tls::load_certificate;

namespace {

std::unique_ptr<Certificate> load_ok(const PemFiles& files) {
  std::string error;
  std::unique_ptr<Certificate> cert = load_certificate(files.cert, files.key, &error);
  INFO("error: " << error);
  REQUIRE(cert != nullptr);
  return cert;
}

std::string load_error(const std::string& cert_path, const std::string& key_path) {
  std::string error;
  CHECK(load_certificate(cert_path, key_path, &error) == nullptr);
  CHECK_FALSE(error.empty());
  return error;
}

}  // namespace

TEST_CASE("a matching certificate and key load with their SAN names in lower case", "[tls]") {
  TestPki pki;
  const PemFiles files = pki.leaf({"WWW.Example.com", "api.example.COM", "*.Apps.Example.com"});
  std::unique_ptr<Certificate> cert = load_ok(files);
  CHECK(cert->leaf != nullptr);
  CHECK(cert->key != nullptr);
  CHECK(cert->cert_path == files.cert);
  CHECK(cert->names ==
        std::vector<std::string>{"www.example.com", "api.example.com", "*.apps.example.com"});
  CHECK(cert->not_after > std::time(nullptr));
}

TEST_CASE("an RSA certificate loads as an ECDSA one does", "[tls]") {
  TestPki pki;
  std::unique_ptr<Certificate> cert = load_ok(pki.leaf({"rsa.example.com"}, KeyKind::kRsa));
  CHECK(EVP_PKEY_get_base_id(cert->key.get()) == EVP_PKEY_RSA);
  CHECK(cert->names == std::vector<std::string>{"rsa.example.com"});
}

TEST_CASE("IP entries of the SAN are not taken as names", "[tls]") {
  TestPki pki;
  std::unique_ptr<Certificate> cert = load_ok(pki.leaf({"IP:127.0.0.1", "app.example.com"}));
  CHECK(cert->names == std::vector<std::string>{"app.example.com"});
}

TEST_CASE("a missing certificate file is refused, naming the file", "[tls]") {
  TestPki pki;
  const PemFiles files = pki.leaf({"example.com"});
  const std::string missing = pki.dir() + "/absent.crt";
  const std::string error = load_error(missing, files.key);
  CHECK_THAT(error, Contains("cannot read certificate \"" + missing + "\""));
  CHECK_THAT(error, Contains("No such file or directory"));
}

TEST_CASE("a missing key file is refused, naming the file", "[tls]") {
  TestPki pki;
  const PemFiles files = pki.leaf({"example.com"});
  const std::string missing = pki.dir() + "/absent.key";
  const std::string error = load_error(files.cert, missing);
  CHECK_THAT(error, Contains("cannot read key \"" + missing + "\""));
  CHECK_THAT(error, Contains("No such file or directory"));
}

TEST_CASE("a certificate file without a PEM certificate is refused, naming the file", "[tls]") {
  TestPki pki;
  const PemFiles files = pki.leaf({"example.com"});
  const std::string junk = pki.write("junk.crt", "this is not a certificate\n");
  const std::string error = load_error(junk, files.key);
  CHECK_THAT(error, Contains("no PEM certificate in \"" + junk + "\""));
}

TEST_CASE("a key file that holds a certificate, not a key, is refused, naming the file", "[tls]") {
  TestPki pki;
  const PemFiles files = pki.leaf({"example.com"});
  const std::string error = load_error(files.cert, files.cert);
  CHECK_THAT(error, Contains("no PEM private key in \"" + files.cert + "\""));
}

TEST_CASE("a key that does not match the certificate is refused, naming both files", "[tls]") {
  TestPki pki;
  const PemFiles a = pki.leaf({"a.example.com"});
  const PemFiles b = pki.leaf({"b.example.com"});
  const std::string error = load_error(a.cert, b.key);
  CHECK_THAT(error, Contains("the key \"" + b.key + "\" does not match the certificate \"" +
                             a.cert + "\""));
}

TEST_CASE("an expired certificate is refused as expired", "[tls]") {
  TestPki pki;
  const PemFiles files = pki.expired_leaf({"old.example.com"});
  const std::string error = load_error(files.cert, files.key);
  CHECK_THAT(error, Contains("the certificate \"" + files.cert + "\" has expired"));
}

TEST_CASE("a certificate that is not valid yet is refused as not valid yet", "[tls]") {
  TestPki pki;
  const PemFiles files = pki.not_yet_valid_leaf({"new.example.com"});
  const std::string error = load_error(files.cert, files.key);
  CHECK_THAT(error, Contains("the certificate \"" + files.cert + "\" is not valid yet"));
}

TEST_CASE("a certificate without a SAN is known by its CN, in lower case", "[tls]") {
  TestPki pki;
  std::unique_ptr<Certificate> cert = load_ok(pki.issue({.common_name = "Legacy.Example.COM"}));
  CHECK(cert->names == std::vector<std::string>{"legacy.example.com"});
}

TEST_CASE("certificates after the leaf are kept as its chain", "[tls]") {
  TestPki pki;
  std::unique_ptr<Certificate> cert =
      load_ok(pki.issue({.names = {"chained.example.com"}, .append_ca = true}));
  REQUIRE(sk_X509_num(cert->chain.get()) == 1);
  CHECK(X509_cmp(sk_X509_value(cert->chain.get(), 0), pki.ca()) == 0);
  CHECK(X509_cmp(cert->leaf.get(), pki.ca()) != 0);
}

TEST_CASE("a certificate file with only the leaf has an empty chain", "[tls]") {
  TestPki pki;
  std::unique_ptr<Certificate> cert = load_ok(pki.leaf({"alone.example.com"}));
  REQUIRE(cert->chain != nullptr);
  CHECK(sk_X509_num(cert->chain.get()) == 0);
}

TEST_CASE("days_left counts whole days until the certificate expires", "[tls]") {
  TestPki pki;
  std::unique_ptr<Certificate> ten =
      load_ok(pki.issue({.names = {"ten.example.com"}, .not_after_s = 10L * 86400 + 3600}));
  CHECK(days_left(*ten) == 10);
  std::unique_ptr<Certificate> almost =
      load_ok(pki.issue({.names = {"almost.example.com"}, .not_after_s = 2L * 86400 - 3600}));
  CHECK(days_left(*almost) == 1);
}

TEST_CASE("days_left is negative once a certificate has expired", "[tls]") {
  Certificate cert;
  cert.not_after = std::time(nullptr) - 3 * 86400 - 3600;
  CHECK(days_left(cert) == -3);
}

TEST_CASE("load_bundle reads every certificate of a PEM bundle in order", "[tls]") {
  TestPki pki;
  TestPki other;
  std::string ours, theirs;
  {
    std::ifstream a(pki.ca_cert()), b(other.ca_cert());
    ours.assign(std::istreambuf_iterator<char>(a), {});
    theirs.assign(std::istreambuf_iterator<char>(b), {});
  }
  const std::string bundle = pki.write("bundle.pem", ours + theirs);
  std::string error;
  const auto certs = load_bundle(bundle, &error);
  CHECK(error.empty());
  REQUIRE(certs.size() == 2);
  CHECK(X509_cmp(certs[0].get(), pki.ca()) == 0);
  CHECK(X509_cmp(certs[1].get(), other.ca()) == 0);
}

TEST_CASE("load_bundle of a missing file is empty with an error naming the file", "[tls]") {
  TestPki pki;
  const std::string missing = pki.dir() + "/absent-ca.pem";
  std::string error;
  CHECK(load_bundle(missing, &error).empty());
  CHECK_THAT(error, Contains("cannot read CA file \"" + missing + "\""));
}

TEST_CASE("load_bundle of a file without certificates is empty with an error naming the file",
          "[tls]") {
  TestPki pki;
  const std::string junk = pki.write("junk-ca.pem", "nothing here\n");
  std::string error;
  CHECK(load_bundle(junk, &error).empty());
  CHECK_THAT(error, Contains("no PEM certificate in CA file \"" + junk + "\""));
}
