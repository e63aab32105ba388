// One validation rule per test: each bad value is refused with its JSON path, its line and a
// message saying what was expected and what was found.
#include <catch2/catch.hpp>
#include <string>

#include "balancer/policy.h"
#include "conf/config.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::config_text;
using test::kBackendLine;
using test::kTopLine;
using test::kUpstreamLine;
using test::require_error;

// config_text() with its backend's address replaced by `address`.
std::string with_backend_address(const std::string& address) {
  std::string text = config_text();
  return text.replace(text.find("127.0.0.1:9001"), 14, address);
}

// --- top level ---

TEST_CASE("a config that is not an object is rejected", "[conf][validation]") {
  require_error("[1, 2]", "", 1, {"expected the config to be an object, got an array"});
}

TEST_CASE("an unknown top-level key is rejected with its name and the known keys",
          "[conf][validation]") {
  require_error(config_text({.top = "\"worker\": 2"}), "/worker", kTopLine,
                {"unknown key \"worker\"", "workers", "listeners", "timeouts"});
}

TEST_CASE("a workers count above 1024 is rejected", "[conf][validation]") {
  require_error(config_text({.top = "\"workers\": 1025"}), "/workers", kTopLine,
                {"expected an integer 0..1024, got 1025"});
}

TEST_CASE("a negative workers count is rejected", "[conf][validation]") {
  require_error(config_text({.top = "\"workers\": -1"}), "/workers", kTopLine,
                {"expected an integer 0..1024, got -1"});
}

TEST_CASE("a fractional number where an integer is expected is rejected", "[conf][validation]") {
  require_error(config_text({.top = "\"workers\": 1.5"}), "/workers", kTopLine,
                {"expected an integer 0..1024, got 1.5"});
}

TEST_CASE("a string where an integer is expected is rejected, quoting the string",
          "[conf][validation]") {
  require_error(config_text({.top = "\"workers\": \"4\""}), "/workers", kTopLine,
                {"expected an integer 0..1024, got \"4\""});
}

TEST_CASE("shutdown_delay_ms is read as given", "[conf][validation]") {
  const ParseResult result = parse_config(config_text({.top = "\"shutdown_delay_ms\": 5000"}));
  REQUIRE(result.config.has_value());
  CHECK(result.config->shutdown_delay_ms == 5000);
}

TEST_CASE("a shutdown_delay_ms above ten minutes is rejected", "[conf][validation]") {
  require_error(config_text({.top = "\"shutdown_delay_ms\": 600001"}), "/shutdown_delay_ms",
                kTopLine, {"expected an integer 0..600000, got 600001"});
}

// --- listeners ---

TEST_CASE("a config without listeners is rejected on the line of the enclosing object",
          "[conf][validation]") {
  require_error(R"({
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners", 1, {"missing required key \"listeners\""});
}

TEST_CASE("an empty listeners array is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners", 2,
                {"expected an array of at least one listener, got an empty array"});
}

TEST_CASE("a listener without an address is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" },
                   {} ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners/1/address", 3, {"missing required key \"address\""});
}

TEST_CASE("a listener given as a string instead of an object is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ "127.0.0.1:8080" ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners/0", 2, {"expected an object, got \"127.0.0.1:8080\""});
}

TEST_CASE("a listener address with a host name is rejected with the reason", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "localhost:8080" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners/0/address", 2,
                {"expected a numeric address \"host:port\"", "got \"localhost:8080\"",
                 "not a numeric IPv4 address"});
}

TEST_CASE("a listener port of 0 is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:0" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners/0/address", 2,
                {"got \"127.0.0.1:0\"", "port must be a number 1..65535"});
}

TEST_CASE("a listener port above 65535 is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:65536" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners/0/address", 2, {"port must be a number 1..65535"});
}

TEST_CASE("a listener address without a port is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners/0/address", 2, {"missing \":port\""});
}

TEST_CASE("an IPv6 listener address without brackets is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "::1:8080" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners/0/address", 2, {"needs brackets"});
}

TEST_CASE("a listener address that is not a string is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": 8080 } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners/0/address", 2, {"expected a string, got 8080"});
}

TEST_CASE("a listener address used twice is rejected on the second use", "[conf][validation]") {
  require_error(R"({
    "listeners": [
      { "address": "127.0.0.1:8080" },
      { "address": "127.0.0.1:08080" }
    ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners/1/address", 4,
                {"duplicate listener address \"127.0.0.1:08080\"", "\"127.0.0.1:8080\""});
}

// --- upstreams ---

TEST_CASE("a config without upstreams is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "routes": [ { "upstream": "app" } ]
  })",
                "/upstreams", 1, {"missing required key \"upstreams\""});
}

TEST_CASE("upstreams given as an array are rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": [ { "backends": [ { "address": "127.0.0.1:9001" } ] } ],
    "routes": [ { "upstream": "app" } ]
  })",
                "/upstreams", 3, {"expected an object, got an array"});
}

TEST_CASE("an upstreams object holding only comments is rejected as empty", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": { "_off": { "backends": [] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/upstreams", 3, {"expected at least one upstream, got none"});
}

TEST_CASE("an upstream with an empty name is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": {
      "": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "" } ]
  })",
                "/upstreams/", 4, {"must not be empty"});
}

TEST_CASE("an upstream without backends is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": {
      "app": { "retries": 2 }
    },
    "routes": [ { "upstream": "app" } ]
  })",
                "/upstreams/app/backends", 4, {"missing required key \"backends\""});
}

TEST_CASE("an upstream with an empty backends array is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": {
      "app": {
        "backends": [] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/upstreams/app/backends", 5,
                {"expected an array of at least one backend, got an empty array"});
}

TEST_CASE("an unknown balance policy is rejected, listing the known ones", "[conf][validation]") {
  // The list is whatever balancer/registry.cpp registers, in its order.
  std::string known;
  for (std::string_view name : balancer::policy_names())
    known += (known.empty() ? "" : ", ") + std::string(name);
  require_error(config_text({.upstream = "\"balance\": \"fastest\""}), "/upstreams/app/balance",
                kUpstreamLine,
                {"expected a balancing policy (one of: " + known + ")", "got \"fastest\""});
}

TEST_CASE("a keepalive above 10000 is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"keepalive\": 10001"}), "/upstreams/app/keepalive",
                kUpstreamLine, {"expected an integer 0..10000, got 10001"});
}

TEST_CASE("a keepalive_timeout_ms of 0 is rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"keepalive_timeout_ms\": 0"}),
                "/upstreams/app/keepalive_timeout_ms", kUpstreamLine,
                {"expected an integer 1..86400000, got 0"});
}

TEST_CASE("retries above 10 are rejected", "[conf][validation]") {
  require_error(config_text({.upstream = "\"retries\": 11"}), "/upstreams/app/retries",
                kUpstreamLine, {"expected an integer 0..10, got 11"});
}

TEST_CASE("a misspelt upstream key is rejected, listing the upstream keys", "[conf][validation]") {
  require_error(config_text({.upstream = "\"helth\": {}"}), "/upstreams/app/helth", kUpstreamLine,
                {"unknown key \"helth\"",
                 "balance, hash_key, backends, keepalive, keepalive_timeout_ms, "
                 "non_retriable_max_idle_ms, retries, slow_start_ms, health, passive"});
}

// --- backends ---

TEST_CASE("a backend weight of 0 is rejected with its path and line", "[conf][validation]") {
  require_error(config_text({.backend = "\"weight\": 0"}), "/upstreams/app/backends/0/weight",
                kBackendLine, {"expected an integer 1..256, got 0"});
}

TEST_CASE("a backend weight above 256 is rejected", "[conf][validation]") {
  require_error(config_text({.backend = "\"weight\": 257"}), "/upstreams/app/backends/0/weight",
                kBackendLine, {"expected an integer 1..256, got 257"});
}

TEST_CASE("a backend backup flag that is not a boolean is rejected", "[conf][validation]") {
  require_error(config_text({.backend = "\"backup\": \"yes\""}), "/upstreams/app/backends/0/backup",
                kBackendLine, {"expected true or false, got \"yes\""});
}

TEST_CASE("a misspelt backend key is rejected, not ignored", "[conf][validation]") {
  require_error(config_text({.backend = "\"wieght\": 5"}), "/upstreams/app/backends/0/wieght",
                kBackendLine,
                {"unknown key \"wieght\"", "expected one of: address, dns, weight, backup"});
}

TEST_CASE("a backend address with a host name is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": { "app": { "backends": [
      { "address": "app.internal:80" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/upstreams/app/backends/0/address", 4,
                {"expected a numeric address", "got \"app.internal:80\""});
}

// --- admin ---

TEST_CASE("the admin listener is off unless configured, on 127.0.0.1:9901 by default",
          "[conf][validation]") {
  const ParseResult off = parse_config(config_text());
  REQUIRE(off.config);
  CHECK_FALSE(off.config->admin.enabled);
  const ParseResult on = parse_config(config_text({.top = "\"admin\": {}"}));
  REQUIRE(on.config);
  CHECK(on.config->admin.enabled);
  CHECK(on.config->admin.address.text == "127.0.0.1:9901");
}

TEST_CASE("an admin address that is also a listener's is rejected", "[conf][validation]") {
  require_error(config_text({.top = "\"admin\": { \"address\": \"127.0.0.1:8080\" }"}),
                "/admin/address", kTopLine,
                {"the admin address \"127.0.0.1:8080\" is also listener 0's address"});
}

TEST_CASE("a backend address with a host name points at the dns form", "[conf][validation]") {
  require_error(with_backend_address("app.internal:8080"), "/upstreams/app/backends/0/address",
                kBackendLine,
                {"a backend named by DNS is written {\"dns\": \"app.internal:8080\"}"});
}

TEST_CASE("a backend address that is a host name without a port points at the dns form",
          "[conf][validation]") {
  require_error(
      with_backend_address("app.internal"), "/upstreams/app/backends/0/address", kBackendLine,
      {"missing \":port\"", "a backend named by DNS is written {\"dns\": \"app.internal:PORT\"}"});
}

TEST_CASE("a listener address with a host name says a listener needs a numeric IP",
          "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "proxy.internal:8080" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                "/listeners/0/address", 2,
                {"a listener needs a numeric IP address: \"0.0.0.0:8080\" for every interface, "
                 "\"127.0.0.1:8080\" for this host only"});
}

TEST_CASE("a listener address with a host name is not pointed at the dns form",
          "[conf][validation]") {
  CHECK_THAT(test::message_at(R"({
    "listeners": [ { "address": "localhost:8080" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })",
                              "/listeners/0/address"),
             !Catch::Contains("dns"));
}

TEST_CASE("a numeric address that is out of range gets no host name hint", "[conf][validation]") {
  CHECK_THAT(
      test::message_at(with_backend_address("10.0.0.256:80"), "/upstreams/app/backends/0/address"),
      !Catch::Contains("named by DNS"));
}

TEST_CASE("a host name address whose port is wrong gets no host name hint", "[conf][validation]") {
  const std::string message = test::message_at(with_backend_address("app.internal:http"),
                                               "/upstreams/app/backends/0/address");
  CHECK_THAT(message, Catch::Contains("the port must be a number"));
  CHECK_THAT(message, !Catch::Contains("named by DNS"));
}

}  // namespace
}  // namespace sluice::conf
