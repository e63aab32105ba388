// The upstream schema beyond addresses and weights: hash keys, active health checks, passive
// outlier detection, slow start, DNS-discovered backends and the resolver. Each setting is read
// with its default when left out, and each bad value is refused with its path and line.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "conf/config.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::all_errors;
using test::config_text;
using test::kTopLine;
using test::kUpstreamLine;
using test::require_error;

Config parsed(const std::string& text) {
  ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  REQUIRE(result.config.has_value());
  return std::move(*result.config);
}

const UpstreamConfig& upstream_of(const Config& config) {
  return config.upstreams.at(0);
}

// A config whose upstream "app" has exactly the backend objects in `backends`, on line 4.
constexpr int kBackendsLine = 4;
std::string with_backends(const std::string& backends) {
  return "{\n"
         "\"listeners\": [ { \"address\": \"127.0.0.1:8080\" } ],\n"  // line 2
         "\"upstreams\": { \"app\": { \"backends\": [\n" +            // line 3
         backends +
         "\n" +  // line 4
         "] } },\n"
         "\"routes\": [ { \"upstream\": \"app\" } ]\n"
         "}\n";
}

// Like test::require_error, for a path that collects more than one error: some error at `path`
// on `line` must contain `fragment`.
void require_some_error(const std::string& text, std::string_view path, int line,
                        std::string_view fragment) {
  const ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  CHECK_FALSE(result.config.has_value());
  bool found = false;
  for (const ConfigError& e : result.errors)
    found = found ||
            (e.path == path && e.line == line && e.message.find(fragment) != std::string::npos);
  CHECK(found);
}

// --- hash_key ---

TEST_CASE("hash_key defaults to client_ip", "[conf][upstream]") {
  CHECK(upstream_of(parsed(config_text())).hash_key == "client_ip");
}

TEST_CASE("hash_key accepts client_ip, path, uri, header:NAME and cookie:NAME as written",
          "[conf][upstream]") {
  for (const std::string key : {"client_ip", "path", "uri", "header:X-User", "cookie:session"}) {
    INFO(key);
    CHECK(
        upstream_of(parsed(config_text({.upstream = "\"hash_key\": \"" + key + "\""}))).hash_key ==
        key);
  }
}

TEST_CASE("an unknown hash_key is rejected, listing the accepted forms", "[conf][validation]") {
  require_error(
      config_text({.upstream = "\"hash_key\": \"ip\""}), "/upstreams/app/hash_key", kUpstreamLine,
      {"expected one of \"client_ip\", \"path\", \"uri\", \"header:NAME\", \"cookie:NAME\"",
       "got \"ip\""});
}

TEST_CASE("a header or cookie hash_key without a name is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"hash_key\": \"header:\""}), "/upstreams/app/hash_key",
                kUpstreamLine, {"got \"header:\""});
  require_error(config_text({.upstream = "\"hash_key\": \"cookie:\""}), "/upstreams/app/hash_key",
                kUpstreamLine, {"got \"cookie:\""});
}

TEST_CASE("a hash_key that is not a string is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"hash_key\": 1"}), "/upstreams/app/hash_key",
                kUpstreamLine, {"expected a string, got 1"});
}

// --- health ---

TEST_CASE("without a health block an upstream has no active checks", "[conf][upstream]") {
  CHECK_FALSE(upstream_of(parsed(config_text())).health.enabled);
}

TEST_CASE("an empty health block enables checks with the documented defaults", "[conf][upstream]") {
  const HealthCheckConfig health =
      upstream_of(parsed(config_text({.upstream = "\"health\": {}"}))).health;
  CHECK(health.enabled);
  CHECK(health.path == "/health");
  CHECK(health.host.empty());
  CHECK(health.interval_ms == 2000);
  CHECK(health.timeout_ms == 1000);
  CHECK(health.rise == 2);
  CHECK(health.fall == 3);
  CHECK(health.expect_min == 200);
  CHECK(health.expect_max == 399);
}

TEST_CASE("every health key is read into the config", "[conf][upstream]") {
  const HealthCheckConfig health =
      upstream_of(
          parsed(config_text(
              {.upstream = "\"health\": { \"path\": \"/ready\", \"host\": \"app.test\", "
                           "\"interval_ms\": 500, \"timeout_ms\": 500, \"rise\": 5, \"fall\": 1, "
                           "\"expect\": \"204\" }"})))
          .health;
  CHECK(health.enabled);
  CHECK(health.path == "/ready");
  CHECK(health.host == "app.test");
  CHECK(health.interval_ms == 500);
  CHECK(health.timeout_ms == 500);
  CHECK(health.rise == 5);
  CHECK(health.fall == 1);
  CHECK(health.expect_min == 204);
  CHECK(health.expect_max == 204);
}

TEST_CASE("a health block that is not an object is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": true"}), "/upstreams/app/health",
                kUpstreamLine, {"expected an object, got true"});
}

TEST_CASE("a misspelt health key is rejected, listing the health keys", "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"intervall_ms\": 500 }"}),
                "/upstreams/app/health/intervall_ms", kUpstreamLine,
                {"unknown key \"intervall_ms\"", "path, host, expect, interval_ms, timeout_ms"});
}

TEST_CASE("a health interval_ms outside 100..86400000 is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"interval_ms\": 99 }"}),
                "/upstreams/app/health/interval_ms", kUpstreamLine,
                {"expected an integer 100..86400000, got 99"});
  require_error(config_text({.upstream = "\"health\": { \"interval_ms\": 86400001 }"}),
                "/upstreams/app/health/interval_ms", kUpstreamLine,
                {"expected an integer 100..86400000, got 86400001"});
}

TEST_CASE("a health timeout_ms below 10 is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"timeout_ms\": 9 }"}),
                "/upstreams/app/health/timeout_ms", kUpstreamLine,
                {"expected an integer 10..86400000, got 9"});
}

TEST_CASE("a health rise outside 1..100 is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"rise\": 0 }"}),
                "/upstreams/app/health/rise", kUpstreamLine, {"expected an integer 1..100, got 0"});
  require_error(config_text({.upstream = "\"health\": { \"rise\": 101 }"}),
                "/upstreams/app/health/rise", kUpstreamLine,
                {"expected an integer 1..100, got 101"});
}

TEST_CASE("a health fall outside 1..100 is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"fall\": 0 }"}),
                "/upstreams/app/health/fall", kUpstreamLine, {"expected an integer 1..100, got 0"});
  require_error(config_text({.upstream = "\"health\": { \"fall\": 101 }"}),
                "/upstreams/app/health/fall", kUpstreamLine,
                {"expected an integer 1..100, got 101"});
}

TEST_CASE("a health timeout_ms longer than interval_ms is rejected, naming the interval",
          "[conf][validation]") {
  require_error(
      config_text({.upstream = "\"health\": { \"interval_ms\": 1000, \"timeout_ms\": 1001 }"}),
      "/upstreams/app/health/timeout_ms", kUpstreamLine,
      {"the check timeout must not exceed interval_ms (1000)"});
}

TEST_CASE("a health timeout_ms equal to interval_ms is accepted", "[conf][upstream]") {
  const HealthCheckConfig health =
      upstream_of(parsed(config_text(
                      {.upstream = "\"health\": { \"interval_ms\": 1000, \"timeout_ms\": 1000 }"})))
          .health;
  CHECK(health.timeout_ms == 1000);
}

TEST_CASE("a health path not starting with / is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"path\": \"health\" }"}),
                "/upstreams/app/health/path", kUpstreamLine,
                {"expected a path starting with \"/\"", "got \"health\""});
}

TEST_CASE("a health path or host that could break the check request is rejected",
          "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"path\": \"/a b\" }"}),
                "/upstreams/app/health/path", kUpstreamLine, {"without spaces or line breaks"});
  require_error(config_text({.upstream = "\"health\": { \"host\": \"x\\r\\nX-Evil: 1\" }"}),
                "/upstreams/app/health/host", kUpstreamLine, {"without spaces or line breaks"});
}

TEST_CASE("a short health interval alone pulls the default timeout down to it",
          "[conf][upstream]") {
  const HealthCheckConfig health =
      upstream_of(parsed(config_text({.upstream = "\"health\": { \"interval_ms\": 500 }"}))).health;
  CHECK(health.interval_ms == 500);
  CHECK(health.timeout_ms == 500);
}

TEST_CASE("a health expect of one status passes exactly that status", "[conf][upstream]") {
  const HealthCheckConfig health =
      upstream_of(parsed(config_text({.upstream = "\"health\": { \"expect\": \"200\" }"}))).health;
  CHECK(health.expect_min == 200);
  CHECK(health.expect_max == 200);
}

TEST_CASE("a health expect range passes the statuses between its ends, inclusive",
          "[conf][upstream]") {
  const HealthCheckConfig health =
      upstream_of(parsed(config_text({.upstream = "\"health\": { \"expect\": \"200-299\" }"})))
          .health;
  CHECK(health.expect_min == 200);
  CHECK(health.expect_max == 299);
}

TEST_CASE("a health expect written as a class like 2xx is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"expect\": \"2xx\" }"}),
                "/upstreams/app/health/expect", kUpstreamLine,
                {"expected a status or status range such as \"200-399\", got \"2xx\""});
}

TEST_CASE("a health expect range whose ends are reversed is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"expect\": \"399-200\" }"}),
                "/upstreams/app/health/expect", kUpstreamLine, {"got \"399-200\""});
}

TEST_CASE("a health expect outside the statuses 100..599 is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"expect\": \"200-600\" }"}),
                "/upstreams/app/health/expect", kUpstreamLine, {"got \"200-600\""});
  require_error(config_text({.upstream = "\"health\": { \"expect\": \"099\" }"}),
                "/upstreams/app/health/expect", kUpstreamLine, {"got \"099\""});
}

TEST_CASE("a health expect given as a number instead of a string is rejected",
          "[conf][validation]") {
  require_error(config_text({.upstream = "\"health\": { \"expect\": 200 }"}),
                "/upstreams/app/health/expect", kUpstreamLine, {"expected a string, got 200"});
}

// --- passive ---

TEST_CASE("passive detection is on by default with the documented settings", "[conf][upstream]") {
  const PassiveHealthConfig passive = upstream_of(parsed(config_text())).passive;
  CHECK(passive.failures == 5);
  CHECK(passive.ejection_ms == 10000);
  CHECK(passive.max_ejection_ms == 300000);
}

TEST_CASE("every passive key is read into the config", "[conf][upstream]") {
  const PassiveHealthConfig passive =
      upstream_of(
          parsed(config_text({.upstream = "\"passive\": { \"failures\": 0, \"ejection_ms\": 100, "
                                          "\"max_ejection_ms\": 100 }"})))
          .passive;
  CHECK(passive.failures == 0);
  CHECK(passive.ejection_ms == 100);
  CHECK(passive.max_ejection_ms == 100);
}

TEST_CASE("passive failures above 1000 are rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"passive\": { \"failures\": 1001 }"}),
                "/upstreams/app/passive/failures", kUpstreamLine,
                {"expected an integer 0..1000, got 1001"});
}

TEST_CASE("a passive ejection_ms below 100 is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"passive\": { \"ejection_ms\": 99 }"}),
                "/upstreams/app/passive/ejection_ms", kUpstreamLine,
                {"expected an integer 100..86400000, got 99"});
}

TEST_CASE("a passive max_ejection_ms shorter than ejection_ms is rejected, naming ejection_ms",
          "[conf][validation]") {
  require_error(config_text({.upstream = "\"passive\": { \"ejection_ms\": 5000, "
                                         "\"max_ejection_ms\": 4999 }"}),
                "/upstreams/app/passive/max_ejection_ms", kUpstreamLine,
                {"must be at least ejection_ms (5000)"});
}

TEST_CASE("a misspelt passive key is rejected, listing the passive keys", "[conf][validation]") {
  require_error(config_text({.upstream = "\"passive\": { \"failure\": 3 }"}),
                "/upstreams/app/passive/failure", kUpstreamLine,
                {"unknown key \"failure\"", "failures, ejection_ms, max_ejection_ms"});
}

TEST_CASE("a passive block that is not an object is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"passive\": false"}), "/upstreams/app/passive",
                kUpstreamLine, {"expected an object, got false"});
}

// --- slow_start_ms ---

TEST_CASE("slow_start_ms defaults to 0, no ramp", "[conf][upstream]") {
  CHECK(upstream_of(parsed(config_text())).slow_start_ms == 0);
}

TEST_CASE("slow_start_ms is read into the config", "[conf][upstream]") {
  CHECK(upstream_of(parsed(config_text({.upstream = "\"slow_start_ms\": 30000"}))).slow_start_ms ==
        30000);
}

TEST_CASE("a slow_start_ms above a day is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"slow_start_ms\": 86400001"}),
                "/upstreams/app/slow_start_ms", kUpstreamLine,
                {"expected an integer 0..86400000, got 86400001"});
}

// --- DNS backends ---

TEST_CASE("a dns backend parses into a name and a port, refreshed every 10 s by default",
          "[conf][upstream]") {
  const Config config = parsed(with_backends(R"({ "dns": "app.internal:8080" })"));
  const BackendConfig& backend = upstream_of(config).backends.at(0);
  CHECK(backend.from_dns());
  CHECK(backend.dns_name == "app.internal");
  CHECK(backend.dns_port == 8080);
  CHECK(backend.refresh_s == 10);
  CHECK(backend.address.text.empty());
  CHECK(backend.weight == 1);
  CHECK_FALSE(backend.backup);
}

TEST_CASE("a dns backend reads refresh_s, weight and backup", "[conf][upstream]") {
  const Config config = parsed(with_backends(
      R"({ "address": "127.0.0.1:9001" }, { "dns": "app.internal:80", "refresh_s": 30, "weight": 4, "backup": true })"));
  const BackendConfig& backend = upstream_of(config).backends.at(1);
  CHECK(backend.refresh_s == 30);
  CHECK(backend.weight == 4);
  CHECK(backend.backup);
  CHECK_FALSE(upstream_of(config).backends.at(0).from_dns());
}

TEST_CASE("a dns backend without a port is rejected", "[conf][validation]") {
  require_error(
      with_backends(R"({ "dns": "no-port" })"), "/upstreams/app/backends/0/dns", kBackendsLine,
      {"expected a DNS name with a port, such as \"app.internal:8080\"", "got \"no-port\""});
}

TEST_CASE("a dns backend with port 0 is rejected", "[conf][validation]") {
  require_error(with_backends(R"({ "dns": "x:0" })"), "/upstreams/app/backends/0/dns",
                kBackendsLine, {"expected a DNS name with a port", "got \"x:0\""});
}

TEST_CASE("a dns backend with a port above 65535 is rejected", "[conf][validation]") {
  require_error(with_backends(R"({ "dns": "x:99999" })"), "/upstreams/app/backends/0/dns",
                kBackendsLine, {"expected a DNS name with a port", "got \"x:99999\""});
}

TEST_CASE("a dns backend naming an IPv6 address instead of a name is rejected",
          "[conf][validation]") {
  require_error(with_backends(R"({ "dns": "fe80::1:80" })"), "/upstreams/app/backends/0/dns",
                kBackendsLine, {"expected a DNS name with a port"});
}

TEST_CASE("a dns backend without a name is rejected", "[conf][validation]") {
  require_error(with_backends(R"({ "dns": ":8080" })"), "/upstreams/app/backends/0/dns",
                kBackendsLine, {"expected a DNS name with a port", "got \":8080\""});
}

TEST_CASE("a dns backend that is not a string is rejected", "[conf][validation]") {
  require_error(with_backends(R"({ "dns": true })"), "/upstreams/app/backends/0/dns", kBackendsLine,
                {"expected a string, got true"});
}

TEST_CASE("a backend with both address and dns is rejected", "[conf][validation]") {
  require_some_error(with_backends(R"({ "address": "127.0.0.1:9001", "dns": "app.internal:80" })"),
                     "/upstreams/app/backends/0/address", kBackendsLine,
                     "a backend has either \"address\" or \"dns\", not both");
}

TEST_CASE("a dns refresh_s outside 1..86400 is rejected", "[conf][validation]") {
  require_error(with_backends(R"({ "dns": "app.internal:80", "refresh_s": 0 })"),
                "/upstreams/app/backends/0/refresh_s", kBackendsLine,
                {"expected an integer 1..86400, got 0"});
  require_error(with_backends(R"({ "dns": "app.internal:80", "refresh_s": 86401 })"),
                "/upstreams/app/backends/0/refresh_s", kBackendsLine,
                {"expected an integer 1..86400, got 86401"});
}

TEST_CASE("a misspelt dns backend key is rejected, listing the dns backend keys",
          "[conf][validation]") {
  require_error(with_backends(R"({ "dns": "app.internal:80", "refresh": 5 })"),
                "/upstreams/app/backends/0/refresh", kBackendsLine,
                {"unknown key \"refresh\"", "expected one of: dns, refresh_s, weight, backup"});
}

TEST_CASE("refresh_s on an address backend is rejected as unknown", "[conf][validation]") {
  require_error(with_backends(R"({ "address": "127.0.0.1:9001", "refresh_s": 5 })"),
                "/upstreams/app/backends/0/refresh_s", kBackendsLine,
                {"unknown key \"refresh_s\""});
}

// --- resolver ---

TEST_CASE("without a resolver block DNS uses the system's nameservers", "[conf][upstream]") {
  const Config config = parsed(config_text());
  CHECK(config.resolver.nameservers.empty());
  CHECK(config.resolver.timeout_ms == 2000);
}

TEST_CASE("resolver nameservers keep their port, and one without a port gets port 53",
          "[conf][upstream]") {
  const Config config = parsed(config_text(
      {.top =
           R"("resolver": { "nameservers": [ "127.0.0.1:5353", "127.0.0.1", "[::1]:53", "::1" ] })"}));
  CHECK(config.resolver.nameservers ==
        std::vector<std::string>{"127.0.0.1:5353", "127.0.0.1:53", "[::1]:53", "[::1]:53"});
}

TEST_CASE("a resolver nameserver that is not a numeric address is rejected", "[conf][validation]") {
  require_error(
      config_text({.top = R"("resolver": { "nameservers": [ "127.0.0.1", "dns.local:53" ] })"}),
      "/resolver/nameservers/1", kTopLine,
      {"expected a numeric nameserver address such as \"127.0.0.1:53\"", "got \"dns.local:53\""});
}

TEST_CASE("resolver nameservers given as a string instead of an array are rejected",
          "[conf][validation]") {
  require_error(config_text({.top = R"("resolver": { "nameservers": "127.0.0.1" })"}),
                "/resolver/nameservers", kTopLine,
                {"expected an array of \"ip:port\" strings, got \"127.0.0.1\""});
}

TEST_CASE("the resolver timeout_ms is read into the config", "[conf][upstream]") {
  CHECK(parsed(config_text({.top = R"("resolver": { "timeout_ms": 500 })"})).resolver.timeout_ms ==
        500);
}

TEST_CASE("a resolver timeout_ms outside 10..60000 is rejected", "[conf][validation]") {
  require_error(config_text({.top = R"("resolver": { "timeout_ms": 9 })"}), "/resolver/timeout_ms",
                kTopLine, {"expected an integer 10..60000, got 9"});
  require_error(config_text({.top = R"("resolver": { "timeout_ms": 60001 })"}),
                "/resolver/timeout_ms", kTopLine, {"expected an integer 10..60000, got 60001"});
}

TEST_CASE("a misspelt resolver key is rejected, listing the resolver keys", "[conf][validation]") {
  require_error(config_text({.top = R"("resolver": { "nameserver": [] })"}), "/resolver/nameserver",
                kTopLine,
                {"unknown key \"nameserver\"", "expected one of: nameservers, timeout_ms"});
}

}  // namespace
}  // namespace sluice::conf
