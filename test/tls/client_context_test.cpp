// Specification of an upstream's TLS context: what load() refuses, each error under the JSON
// path of the setting at fault and naming the file.
#include "tls/client_context.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "test/tls/test_pki.h"

using namespace sluice::test;
using Catch::Contains;
using Catch::StartsWith;
using sluice::conf::UpstreamTlsConfig;
using sluice::tls::ClientContext;

namespace {

constexpr const char* kWhere = "/upstreams/app/tls";

}  // namespace

TEST_CASE("an upstream context loads with a CA file and a client certificate", "[tls]") {
  TestPki pki;
  const PemFiles mine = pki.client_cert("sluice");
  UpstreamTlsConfig config;
  config.ca = pki.ca_cert();
  config.client_cert = mine.cert;
  config.client_key = mine.key;
  std::vector<std::string> errors;
  CHECK(ClientContext::load(config, kWhere, &errors) != nullptr);
  CHECK(errors.empty());
}

TEST_CASE("an upstream context without a CA file loads with the system's store", "[tls]") {
  std::vector<std::string> errors;
  CHECK(ClientContext::load(UpstreamTlsConfig{}, kWhere, &errors) != nullptr);
  CHECK(errors.empty());
}

TEST_CASE("a CA file that cannot be read is refused at /ca, naming the file", "[tls]") {
  TestPki pki;
  UpstreamTlsConfig config;
  config.ca = pki.dir() + "/absent-ca.pem";
  std::vector<std::string> errors;
  CHECK(ClientContext::load(config, kWhere, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/ca: "));
  CHECK_THAT(errors[0], Contains("\"" + config.ca + "\""));
}

TEST_CASE("a client certificate that fails to load is refused at /client_cert", "[tls]") {
  TestPki pki;
  const PemFiles a = pki.client_cert("a");
  const PemFiles b = pki.client_cert("b");
  UpstreamTlsConfig config;
  config.ca = pki.ca_cert();
  config.client_cert = a.cert;
  config.client_key = b.key;
  std::vector<std::string> errors;
  CHECK(ClientContext::load(config, kWhere, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/client_cert: "));
  CHECK_THAT(errors[0], Contains("does not match"));
}

TEST_CASE("a bad CA file and a bad client certificate are both reported", "[tls]") {
  TestPki pki;
  UpstreamTlsConfig config;
  config.ca = pki.write("junk-ca.pem", "junk\n");
  config.client_cert = pki.dir() + "/absent.crt";
  config.client_key = pki.dir() + "/absent.key";
  std::vector<std::string> errors;
  CHECK(ClientContext::load(config, kWhere, &errors) == nullptr);
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0], StartsWith(std::string(kWhere) + "/ca: "));
  CHECK_THAT(errors[1], StartsWith(std::string(kWhere) + "/client_cert: "));
}

TEST_CASE("a client session sends the configured sni, or the host when it is a name", "[tls]") {
  UpstreamTlsConfig config;
  std::vector<std::string> errors;
  auto plain = ClientContext::load(config, kWhere, &errors);
  config.sni = "app.internal";
  auto named = ClientContext::load(config, kWhere, &errors);
  REQUIRE(plain != nullptr);
  REQUIRE(named != nullptr);
  const auto sni_of = [](SSL* ssl) {
    REQUIRE(ssl != nullptr);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    std::string out = name ? name : "(none)";
    SSL_free(ssl);
    return out;
  };
  CHECK(sni_of(plain->new_session("backend.example.com")) == "backend.example.com");
  CHECK(sni_of(plain->new_session("10.0.0.1")) == "(none)");  // RFC 6066: never an address
  CHECK(sni_of(plain->new_session("fd00::1")) == "(none)");
  CHECK(sni_of(named->new_session("10.0.0.1")) == "app.internal");
}
