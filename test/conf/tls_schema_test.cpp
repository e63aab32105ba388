// The "tls" objects of listeners and upstreams: each key read with its default when left out,
// file paths taken from the config file's folder when relative, and each bad value refused with
// its JSON path and line. Whether the files hold usable certificates is tls/'s to say.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "conf/config.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::all_errors;
using test::config_text;
using test::kUpstreamLine;
using test::require_error;

// A config whose only listener has the tls object `tls`, on line 2.
constexpr int kListenerLine = 2;
std::string with_listener_tls(const std::string& tls) {
  return "{\n"
         "\"listeners\": [ { \"address\": \"127.0.0.1:8443\", \"tls\": " +
         tls +
         " } ],\n"  // line 2
         "\"upstreams\": { \"app\": { \"backends\": [ { \"address\": \"127.0.0.1:9001\" } ] } },\n"
         "\"routes\": [ { \"upstream\": \"app\" } ]\n"
         "}\n";
}

// A config whose upstream "app" has the tls object `tls`, on kUpstreamLine.
std::string with_upstream_tls(const std::string& tls) {
  return config_text({.upstream = "\"tls\": " + tls});
}

const std::string kOneCert = R"("certificates": [ { "cert": "/srv/a.crt", "key": "/srv/a.key" } ])";

Config parsed(const std::string& text, std::string_view base_dir = {}) {
  ParseResult result = parse_config(text, base_dir);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  REQUIRE(result.config.has_value());
  return std::move(*result.config);
}

ListenerTlsConfig listener_tls(const std::string& tls, std::string_view base_dir = {}) {
  const Config config = parsed(with_listener_tls(tls), base_dir);
  REQUIRE(config.listeners.size() == 1);
  REQUIRE(config.listeners[0].tls.has_value());
  return *config.listeners[0].tls;
}

UpstreamTlsConfig upstream_tls(const std::string& tls, std::string_view base_dir = {}) {
  const Config config = parsed(with_upstream_tls(tls), base_dir);
  REQUIRE(config.upstreams.size() == 1);
  REQUIRE(config.upstreams[0].tls.has_value());
  return *config.upstreams[0].tls;
}

}  // namespace

// --- what is read ---

TEST_CASE("a listener or upstream without a tls object speaks plain TCP", "[conf][tls]") {
  const Config config = parsed(config_text());
  CHECK_FALSE(config.listeners.at(0).tls.has_value());
  CHECK_FALSE(config.upstreams.at(0).tls.has_value());
}

TEST_CASE("a listener tls object with only certificates takes every default", "[conf][tls]") {
  const ListenerTlsConfig tls = listener_tls("{ " + kOneCert + " }");
  REQUIRE(tls.certificates.size() == 1);
  CHECK(tls.certificates[0].cert == "/srv/a.crt");
  CHECK(tls.certificates[0].key == "/srv/a.key");
  CHECK(tls.certificates[0].ocsp.empty());
  CHECK(tls.min_version == "1.2");
  CHECK(tls.ciphers.empty());
  CHECK(tls.alpn == std::vector<std::string>{"http/1.1"});
  CHECK(tls.session_tickets);
  CHECK(tls.client_ca.empty());
  CHECK(tls.handshake_timeout_ms == 10000);
}

TEST_CASE("every listener tls key is read into the config", "[conf][tls]") {
  const ListenerTlsConfig tls = listener_tls(
      R"({ "certificates": [ { "cert": "/srv/a.crt", "key": "/srv/a.key", "ocsp": "/srv/a.ocsp" },
                             { "cert": "/srv/b.crt", "key": "/srv/b.key" } ],
           "min_version": "1.3", "ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256",
           "alpn": ["http/1.1"], "session_tickets": false, "client_ca": "/srv/clients.pem",
           "handshake_timeout_ms": 2500 })");
  REQUIRE(tls.certificates.size() == 2);
  CHECK(tls.certificates[0].ocsp == "/srv/a.ocsp");
  CHECK(tls.certificates[1].cert == "/srv/b.crt");
  CHECK(tls.certificates[1].key == "/srv/b.key");
  CHECK(tls.min_version == "1.3");
  CHECK(tls.ciphers == "ECDHE-ECDSA-AES128-GCM-SHA256");
  CHECK(tls.alpn == std::vector<std::string>{"http/1.1"});
  CHECK_FALSE(tls.session_tickets);
  CHECK(tls.client_ca == "/srv/clients.pem");
  CHECK(tls.handshake_timeout_ms == 2500);
}

TEST_CASE("an empty upstream tls object takes every default", "[conf][tls]") {
  const UpstreamTlsConfig tls = upstream_tls("{}");
  CHECK(tls.verify);
  CHECK(tls.ca.empty());
  CHECK(tls.sni.empty());
  CHECK(tls.client_cert.empty());
  CHECK(tls.client_key.empty());
}

TEST_CASE("every upstream tls key is read into the config", "[conf][tls]") {
  const UpstreamTlsConfig tls = upstream_tls(
      R"({ "verify": false, "ca": "/srv/ca.pem", "sni": "app.internal",
           "client_cert": "/srv/me.crt", "client_key": "/srv/me.key" })");
  CHECK_FALSE(tls.verify);
  CHECK(tls.ca == "/srv/ca.pem");
  CHECK(tls.sni == "app.internal");
  CHECK(tls.client_cert == "/srv/me.crt");
  CHECK(tls.client_key == "/srv/me.key");
}

// --- file paths ---

TEST_CASE("relative listener paths are taken from the base dir and absolute ones kept",
          "[conf][tls]") {
  const ListenerTlsConfig tls = listener_tls(
      R"({ "certificates": [ { "cert": "certs/a.crt", "key": "/keys/a.key", "ocsp": "a.ocsp" } ],
           "client_ca": "ca/clients.pem" })",
      "/etc/sluice");
  CHECK(tls.certificates[0].cert == "/etc/sluice/certs/a.crt");
  CHECK(tls.certificates[0].key == "/keys/a.key");
  CHECK(tls.certificates[0].ocsp == "/etc/sluice/a.ocsp");
  CHECK(tls.client_ca == "/etc/sluice/ca/clients.pem");
}

TEST_CASE("relative upstream paths are taken from the base dir and absolute ones kept",
          "[conf][tls]") {
  const UpstreamTlsConfig tls = upstream_tls(
      R"({ "ca": "ca.pem", "client_cert": "/srv/me.crt", "client_key": "keys/me.key" })",
      "/etc/sluice");
  CHECK(tls.ca == "/etc/sluice/ca.pem");
  CHECK(tls.client_cert == "/srv/me.crt");
  CHECK(tls.client_key == "/etc/sluice/keys/me.key");
}

TEST_CASE("without a base dir relative paths stay as written", "[conf][tls]") {
  const ListenerTlsConfig tls =
      listener_tls(R"({ "certificates": [ { "cert": "a.crt", "key": "keys/a.key" } ] })");
  CHECK(tls.certificates[0].cert == "a.crt");
  CHECK(tls.certificates[0].key == "keys/a.key");
}

TEST_CASE("a config file's relative paths are taken from the file's folder", "[conf][tls]") {
  char pattern[] = "/tmp/sluice-conf-test-XXXXXX";
  REQUIRE(mkdtemp(pattern) != nullptr);
  const std::string dir = pattern;
  {
    std::ofstream out(dir + "/sluice.json");
    out << with_listener_tls(R"({ "certificates": [ { "cert": "a.crt", "key": "k/a.key" } ] })");
  }
  const ParseResult result = load_config_file(dir + "/sluice.json");
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  const ListenerTlsConfig& tls = *result.config->listeners.at(0).tls;
  CHECK(tls.certificates[0].cert == dir + "/a.crt");
  CHECK(tls.certificates[0].key == dir + "/k/a.key");
}

// --- listener errors ---

TEST_CASE("a listener tls object that is not an object is rejected", "[conf][tls]") {
  require_error(with_listener_tls("true"), "/listeners/0/tls", kListenerLine,
                {"expected an object, got true"});
}

TEST_CASE("a listener tls object without certificates is rejected", "[conf][tls]") {
  require_error(with_listener_tls(R"({ "min_version": "1.2" })"), "/listeners/0/tls/certificates",
                kListenerLine, {"missing required key \"certificates\""});
}

TEST_CASE("an empty certificates array is rejected", "[conf][tls]") {
  require_error(with_listener_tls(R"({ "certificates": [] })"), "/listeners/0/tls/certificates",
                kListenerLine, {"expected an array of at least one {\"cert\", \"key\"} object"});
}

TEST_CASE("certificates that are not an array are rejected", "[conf][tls]") {
  require_error(with_listener_tls(R"({ "certificates": { "cert": "a", "key": "b" } })"),
                "/listeners/0/tls/certificates", kListenerLine,
                {"expected an array of at least one"});
}

TEST_CASE("a certificate without its key is rejected", "[conf][tls]") {
  require_error(with_listener_tls(R"({ "certificates": [ { "cert": "/srv/a.crt" } ] })"),
                "/listeners/0/tls/certificates/0/key", kListenerLine,
                {"missing required key \"key\""});
}

TEST_CASE("a key without its certificate is rejected", "[conf][tls]") {
  require_error(with_listener_tls(R"({ "certificates": [ { "key": "/srv/a.key" } ] })"),
                "/listeners/0/tls/certificates/0/cert", kListenerLine,
                {"missing required key \"cert\""});
}

TEST_CASE("an empty certificate path is rejected", "[conf][tls]") {
  require_error(with_listener_tls(R"({ "certificates": [ { "cert": "", "key": "/srv/a.key" } ] })"),
                "/listeners/0/tls/certificates/0/cert", kListenerLine,
                {"expected a file path, got \"\""});
}

TEST_CASE("an unknown key in a certificate is rejected", "[conf][tls]") {
  require_error(
      with_listener_tls(
          R"({ "certificates": [ { "cert": "/a.crt", "key": "/a.key", "chain": "/c.pem" } ] })"),
      "/listeners/0/tls/certificates/0/chain", kListenerLine,
      {"unknown key \"chain\"", "cert, key, ocsp"});
}

TEST_CASE("an unknown key in a listener tls object is rejected, listing the known ones",
          "[conf][tls]") {
  require_error(
      with_listener_tls("{ " + kOneCert + R"(, "protocols": ["TLSv1.3"] })"),
      "/listeners/0/tls/protocols", kListenerLine,
      {"unknown key \"protocols\"", "certificates", "min_version", "handshake_timeout_ms"});
}

TEST_CASE("min_version 1.1 is rejected: older versions are not offered", "[conf][tls]") {
  require_error(with_listener_tls("{ " + kOneCert + R"(, "min_version": "1.1" })"),
                "/listeners/0/tls/min_version", kListenerLine,
                {"expected \"1.2\" or \"1.3\"", "got \"1.1\""});
}

TEST_CASE("a min_version that is not a string is rejected", "[conf][tls]") {
  require_error(with_listener_tls("{ " + kOneCert + R"(, "min_version": 1.3 })"),
                "/listeners/0/tls/min_version", kListenerLine, {"expected a string"});
}

TEST_CASE("alpn offering only h2 is rejected", "[conf][tls]") {
  require_error(with_listener_tls("{ " + kOneCert + R"(, "alpn": ["h2"] })"),
                "/listeners/0/tls/alpn/0", kListenerLine, {"expected \"http/1.1\"", "got \"h2\""});
}

TEST_CASE("an empty alpn array is rejected", "[conf][tls]") {
  require_error(with_listener_tls("{ " + kOneCert + R"(, "alpn": [] })"), "/listeners/0/tls/alpn",
                kListenerLine, {"expected an array of protocol names"});
}

TEST_CASE("an empty ciphers string is rejected", "[conf][tls]") {
  require_error(with_listener_tls("{ " + kOneCert + R"(, "ciphers": "" })"),
                "/listeners/0/tls/ciphers", kListenerLine,
                {"expected an OpenSSL cipher list", "got \"\""});
}

TEST_CASE("handshake_timeout_ms 0 is rejected", "[conf][tls]") {
  require_error(with_listener_tls("{ " + kOneCert + R"(, "handshake_timeout_ms": 0 })"),
                "/listeners/0/tls/handshake_timeout_ms", kListenerLine,
                {"expected an integer 1..86400000, got 0"});
}

TEST_CASE("a session_tickets that is not a boolean is rejected", "[conf][tls]") {
  require_error(with_listener_tls("{ " + kOneCert + R"(, "session_tickets": "yes" })"),
                "/listeners/0/tls/session_tickets", kListenerLine,
                {"expected true or false, got \"yes\""});
}

TEST_CASE("every listener tls error is reported, not just the first", "[conf][tls]") {
  const ParseResult result = parse_config(with_listener_tls(
      R"({ "certificates": [ { "cert": "/a.crt" } ], "min_version": "1.0", "ciphers": "" })"));
  INFO(all_errors(result));
  CHECK_FALSE(result.config.has_value());
  CHECK(test::error_at(result, "/listeners/0/tls/certificates/0/key") != nullptr);
  CHECK(test::error_at(result, "/listeners/0/tls/min_version") != nullptr);
  CHECK(test::error_at(result, "/listeners/0/tls/ciphers") != nullptr);
}

// --- upstream errors ---

TEST_CASE("an upstream client_cert without client_key is rejected", "[conf][tls]") {
  require_error(with_upstream_tls(R"({ "client_cert": "/srv/me.crt" })"),
                "/upstreams/app/tls/client_cert", kUpstreamLine,
                {"client_cert and client_key go together"});
}

TEST_CASE("an upstream client_key without client_cert is rejected", "[conf][tls]") {
  require_error(with_upstream_tls(R"({ "client_key": "/srv/me.key" })"),
                "/upstreams/app/tls/client_key", kUpstreamLine,
                {"client_cert and client_key go together"});
}

TEST_CASE("an upstream sni with a slash is rejected", "[conf][tls]") {
  require_error(with_upstream_tls(R"({ "sni": "app.internal/x" })"), "/upstreams/app/tls/sni",
                kUpstreamLine, {"expected a host name", "got \"app.internal/x\""});
}

TEST_CASE("an upstream sni with a port or a space, or an empty one, is rejected", "[conf][tls]") {
  for (const std::string sni : {"app.internal:443", "app internal", ""}) {
    INFO(sni);
    require_error(with_upstream_tls(R"({ "sni": ")" + sni + "\" }"), "/upstreams/app/tls/sni",
                  kUpstreamLine, {"expected a host name"});
  }
}

TEST_CASE("an unknown key in an upstream tls object is rejected", "[conf][tls]") {
  require_error(with_upstream_tls(R"({ "verify_depth": 3 })"), "/upstreams/app/tls/verify_depth",
                kUpstreamLine, {"unknown key \"verify_depth\"", "verify, ca, sni"});
}

TEST_CASE("an upstream verify that is not a boolean is rejected", "[conf][tls]") {
  require_error(with_upstream_tls(R"({ "verify": "no" })"), "/upstreams/app/tls/verify",
                kUpstreamLine, {"expected true or false"});
}

TEST_CASE("an upstream tls object that is not an object is rejected", "[conf][tls]") {
  require_error(with_upstream_tls("[]"), "/upstreams/app/tls", kUpstreamLine,
                {"expected an object"});
}

}  // namespace sluice::conf
