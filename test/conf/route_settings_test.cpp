// Validation of routes and of the global timeouts and limits: each bad value is refused with
// its JSON path, its line and what was expected.
#include <catch2/catch.hpp>
#include <string>

#include "conf/config.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::config_text;
using test::kRouteLine;
using test::kTopLine;
using test::require_error;

// --- routes ---

TEST_CASE("a config without routes is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } }
  })",
                "/routes", 1, {"missing required key \"routes\""});
}

TEST_CASE("an empty routes array is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": []
  })",
                "/routes", 4, {"expected an array of at least one route"});
}

TEST_CASE("a route without an upstream is rejected", "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [
      { "path_prefix": "/" } ]
  })",
                "/routes/0/upstream", 5, {"missing required key \"upstream\""});
}

TEST_CASE("a route naming an unknown upstream is rejected, listing the upstreams",
          "[conf][validation]") {
  require_error(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": {
      "app": { "backends": [ { "address": "127.0.0.1:9001" } ] },
      "static": { "backends": [ { "address": "127.0.0.1:9002" } ] }
    },
    "routes": [
      { "upstream": "app" },
      { "upstream": "ap" }
    ]
  })",
                "/routes/1/upstream", 9,
                {"expected the name of an upstream (one of: app, static)", "got \"ap\""});
}

TEST_CASE("a route to an upstream that has errors of its own is not also rejected",
          "[conf][validation]") {
  const ParseResult result = parse_config(config_text({.backend = "\"weight\": 0"}));
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].path == "/upstreams/app/backends/0/weight");
}

TEST_CASE("a path_prefix not starting with a slash is rejected", "[conf][validation]") {
  require_error(config_text({.route = "\"path_prefix\": \"api\""}), "/routes/0/path_prefix",
                kRouteLine, {"expected a path starting with \"/\", got \"api\""});
}

TEST_CASE("a route host with a port is rejected", "[conf][validation]") {
  require_error(config_text({.route = "\"host\": \"example.com:8080\""}), "/routes/0/host",
                kRouteLine, {"without a port", "got \"example.com:8080\""});
}

TEST_CASE("a wildcard anywhere but the first label of a route host is rejected",
          "[conf][validation]") {
  for (const char* host : {"www.*.com", "*example.com", "*.", "*.*.example.com"}) {
    INFO(host);
    require_error(config_text({.route = std::string("\"host\": \"") + host + "\""}),
                  "/routes/0/host", kRouteLine, {"\"*.example.com\""});
  }
}

TEST_CASE("an unknown route key is rejected", "[conf][validation]") {
  require_error(config_text({.route = "\"prefix\": \"/\""}), "/routes/0/prefix", kRouteLine,
                {"unknown key \"prefix\"", "host, path_prefix, upstream"});
}

// --- timeouts and limits ---

TEST_CASE("each timeout rejects 0 and anything above one day", "[conf][validation]") {
  for (const char* key : {"client_header_ms", "client_idle_ms", "upstream_connect_ms",
                          "upstream_response_ms", "client_send_ms", "drain_ms"}) {
    for (const char* value : {"0", "86400001"}) {
      INFO(key << " = " << value);
      require_error(
          config_text({.top = std::string("\"timeouts\": { \"") + key + "\": " + value + " }"}),
          std::string("/timeouts/") + key, kTopLine,
          {std::string("expected an integer 1..86400000, got ") + value});
    }
  }
}

TEST_CASE("timeouts given as a number are rejected", "[conf][validation]") {
  require_error(config_text({.top = "\"timeouts\": 5000"}), "/timeouts", kTopLine,
                {"expected an object, got 5000"});
}

TEST_CASE("an unknown timeout key is rejected, listing the known ones", "[conf][validation]") {
  require_error(config_text({.top = "\"timeouts\": { \"connect_ms\": 5 }"}), "/timeouts/connect_ms",
                kTopLine, {"unknown key \"connect_ms\"", "upstream_connect_ms", "drain_ms"});
}

TEST_CASE("each limit rejects values outside its range", "[conf][validation]") {
  struct Case {
    const char* key;
    const char* value;
    const char* range;
  };
  for (const Case& c :
       {Case{"request_line_bytes", "255", "256..1048576"},
        Case{"request_line_bytes", "1048577", "256..1048576"},
        Case{"header_bytes", "1023", "1024..1048576"},
        Case{"header_bytes", "1048577", "1024..1048576"}, Case{"header_count", "7", "8..10000"},
        Case{"header_count", "10001", "8..10000"}}) {
    INFO(c.key << " = " << c.value);
    require_error(
        config_text({.top = std::string("\"limits\": { \"") + c.key + "\": " + c.value + " }"}),
        std::string("/limits/") + c.key, kTopLine,
        {std::string("expected an integer ") + c.range + ", got " + c.value});
  }
}

TEST_CASE("an unknown limit key is rejected", "[conf][validation]") {
  require_error(config_text({.top = "\"limits\": { \"body_bytes\": 5 }"}), "/limits/body_bytes",
                kTopLine, {"unknown key \"body_bytes\""});
}

}  // namespace
}  // namespace sluice::conf
