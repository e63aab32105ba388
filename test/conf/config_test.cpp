// parse_config and load_config_file as a whole: values read, defaults, comments, syntax errors,
// several errors at once, files. Rule-by-rule validation is in validation_test.cpp.
#include "conf/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::all_errors;
using test::error_at;

constexpr std::string_view kExample =
    R"({"workers": 2, "listeners": [ { "address": "127.0.0.1:8080" } ],
 "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" }, { "address": "127.0.0.1:9002" } ] } },
 "routes": [ { "upstream": "app" } ] })";

uint16_t port_of(const SocketAddress& address) {
  if (address.storage.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_port);
}

TEST_CASE("the example config parses with its values", "[conf]") {
  const ParseResult result = parse_config(kExample);
  INFO(all_errors(result));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config.has_value());
  const Config& config = *result.config;
  CHECK(config.workers == 2);
  REQUIRE(config.listeners.size() == 1);
  CHECK(config.listeners[0].address.text == "127.0.0.1:8080");
  CHECK(config.listeners[0].address.storage.ss_family == AF_INET);
  CHECK(config.listeners[0].address.length == sizeof(sockaddr_in));
  CHECK(port_of(config.listeners[0].address) == 8080);
  REQUIRE(config.upstreams.size() == 1);
  CHECK(config.upstreams[0].name == "app");
  REQUIRE(config.upstreams[0].backends.size() == 2);
  CHECK(config.upstreams[0].backends[0].address.text == "127.0.0.1:9001");
  CHECK(config.upstreams[0].backends[1].address.text == "127.0.0.1:9002");
  CHECK(port_of(config.upstreams[0].backends[1].address) == 9002);
  REQUIRE(config.routes.size() == 1);
  CHECK(config.routes[0].upstream == "app");
}

TEST_CASE("settings left out take their documented defaults", "[conf]") {
  const ParseResult result = parse_config(test::config_text());
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  const Config& config = *result.config;
  CHECK(config.workers == 0);  // one per core
  CHECK(config.shutdown_delay_ms == 0);
  CHECK(config.timeouts.client_header_ms == 10000);
  CHECK(config.timeouts.client_idle_ms == 60000);
  CHECK(config.timeouts.upstream_connect_ms == 2000);
  CHECK(config.timeouts.upstream_response_ms == 60000);
  CHECK(config.timeouts.client_send_ms == 60000);
  CHECK(config.timeouts.drain_ms == 30000);
  CHECK(config.limits.request_line_bytes == 8192);
  CHECK(config.limits.header_bytes == 32768);
  CHECK(config.limits.header_count == 100);
  const UpstreamConfig& upstream = config.upstreams.at(0);
  CHECK(upstream.balance == "round_robin");
  CHECK(upstream.keepalive == 64);
  CHECK(upstream.keepalive_timeout_ms == 60000);
  CHECK(upstream.non_retriable_max_idle_ms == 500);
  CHECK(upstream.retries == 1);
  CHECK(upstream.backends.at(0).weight == 1);
  CHECK_FALSE(upstream.backends.at(0).backup);
  CHECK(config.routes.at(0).host.empty());
  CHECK(config.routes.at(0).path_prefix == "/");
}

TEST_CASE("every accepted key is read into the config", "[conf]") {
  const ParseResult result = parse_config(R"({
    "workers": 8,
    "listeners": [ { "address": "0.0.0.0:80" }, { "address": "[::1]:8080" } ],
    "upstreams": {
      "app": {
        "balance": "round_robin", "keepalive": 0, "keepalive_timeout_ms": 5000, "retries": 3,
        "non_retriable_max_idle_ms": 0,
        "backends": [ { "address": "10.0.0.1:80", "weight": 256, "backup": true } ]
      }
    },
    "routes": [ { "host": "*.example.com", "path_prefix": "/api/", "upstream": "app" } ],
    "timeouts": { "client_header_ms": 1, "client_idle_ms": 2, "upstream_connect_ms": 3,
                  "upstream_response_ms": 4, "client_send_ms": 5, "drain_ms": 86400000 },
    "limits": { "request_line_bytes": 256, "header_bytes": 1048576, "header_count": 8 }
  })");
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  const Config& c = *result.config;
  CHECK(c.workers == 8);
  CHECK(c.listeners.size() == 2);
  const UpstreamConfig& u = c.upstreams.at(0);
  CHECK(u.keepalive == 0);
  CHECK(u.keepalive_timeout_ms == 5000);
  CHECK(u.non_retriable_max_idle_ms == 0);
  CHECK(u.retries == 3);
  CHECK(u.backends.at(0).weight == 256);
  CHECK(u.backends.at(0).backup);
  CHECK(c.routes.at(0).host == "*.example.com");
  CHECK(c.routes.at(0).path_prefix == "/api/");
  CHECK(c.timeouts.client_header_ms == 1);
  CHECK(c.timeouts.client_idle_ms == 2);
  CHECK(c.timeouts.upstream_connect_ms == 3);
  CHECK(c.timeouts.upstream_response_ms == 4);
  CHECK(c.timeouts.client_send_ms == 5);
  CHECK(c.timeouts.drain_ms == 86400000);
  CHECK(c.limits.request_line_bytes == 256);
  CHECK(c.limits.header_bytes == 1048576);
  CHECK(c.limits.header_count == 8);
}

TEST_CASE("keys starting with _ or # are comments and ignored at every level", "[conf]") {
  const ParseResult result = parse_config(R"({
    "_comment": "front door", "#": [1, 2, {"anything": "goes"}],
    "listeners": [ { "address": "127.0.0.1:8080", "_note": 1 } ],
    "upstreams": {
      "_disabled": { "backends": "not even valid" },
      "app": { "#todo": true, "backends": [ { "address": "127.0.0.1:9001", "_w": 0 } ] }
    },
    "routes": [ { "upstream": "app", "_why": "catch-all" } ],
    "timeouts": { "_": null }, "limits": { "#": null }
  })");
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  REQUIRE(result.config->upstreams.size() == 1);
  CHECK(result.config->upstreams[0].name == "app");
}

TEST_CASE("an IPv6 listener address parses into a sockaddr_in6", "[conf]") {
  const ParseResult result = parse_config(R"({
    "listeners": [ { "address": "[::1]:8443" } ],
    "upstreams": { "app": { "backends": [ { "address": "[2001:db8::7]:80" } ] } },
    "routes": [ { "upstream": "app" } ]
  })");
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  const SocketAddress& address = result.config->listeners.at(0).address;
  CHECK(address.text == "[::1]:8443");
  REQUIRE(address.storage.ss_family == AF_INET6);
  CHECK(address.length == sizeof(sockaddr_in6));
  CHECK(port_of(address) == 8443);
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  CHECK(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
}

TEST_CASE("upstreams keep the order they have in the file", "[conf]") {
  const ParseResult result = parse_config(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": {
      "zeta": { "backends": [ { "address": "127.0.0.1:9001" } ] },
      "alpha": { "backends": [ { "address": "127.0.0.1:9002" } ] }
    },
    "routes": [ { "upstream": "alpha" } ]
  })");
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  REQUIRE(result.config->upstreams.size() == 2);
  CHECK(result.config->upstreams[0].name == "zeta");
  CHECK(result.config->upstreams[1].name == "alpha");
}

TEST_CASE("a JSON syntax error reports its line and column", "[conf]") {
  const ParseResult result = parse_config("{\n  \"workers\": 2,\n  \"listeners\": [,]\n}");
  REQUIRE_FALSE(result.config.has_value());
  REQUIRE(result.errors.size() == 1);
  const ConfigError& error = result.errors[0];
  CHECK(error.line == 3);
  CHECK(error.column == 17);
  CHECK_THAT(error.message, Catch::StartsWith("invalid JSON: "));
  CHECK_THAT(error.message, Catch::Contains("unexpected ','"));
  CHECK_THAT(error.to_string(), Catch::StartsWith("line 3, column 17: invalid JSON: "));
}

TEST_CASE("a JSON syntax error's message does not repeat the column", "[conf]") {
  const ParseResult result = parse_config("{\n  \"workers\": 2,\n  \"listeners\": [,]\n}");
  REQUIRE(result.errors.size() == 1);
  CHECK_THAT(result.errors[0].message, !Catch::Contains("column"));
}

TEST_CASE("a JSON syntax error's column counts characters, not bytes", "[conf]") {
  const ParseResult result = parse_config("{\"_caf\xC3\xA9\": 1,,}");
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].column == 13);  // the second comma; "é" is two bytes
}

TEST_CASE("an unterminated config is a syntax error at its end", "[conf]") {
  const ParseResult result = parse_config("{\n  \"workers\": 2,\n");
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].line == 3);
  CHECK_THAT(result.errors[0].message, Catch::Contains("end of input"));
}

TEST_CASE("an empty text is a syntax error on line 1", "[conf]") {
  const ParseResult result = parse_config("");
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].line == 1);
  CHECK(result.errors[0].column == 1);
  CHECK_THAT(result.errors[0].message, Catch::StartsWith("invalid JSON: "));
}

TEST_CASE("a config nested deeper than 64 levels is rejected with its line and column", "[conf]") {
  // Deep nesting inside a comment, followed by another key: nlohmann would copy the deep value
  // recursively when the object grows, so this must be refused before nlohmann parses it.
  const int depth = 100000;
  const std::string text =
      "{\n\"_deep\":\n" + std::string(depth, '[') + std::string(depth, ']') + ",\n\"workers\": 1}";
  const ParseResult result = parse_config(text);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].line == 3);
  CHECK(result.errors[0].column == 64);
  CHECK(result.errors[0].message == "nested deeper than 64 levels");
}

TEST_CASE("every error in a file is reported, in line order", "[conf]") {
  const ParseResult result = parse_config(R"({
    "workers": -1,
    "listeners": [ { "address": "localhost:8080" } ],
    "upstreams": {
      "app": { "backends": [ { "address": "127.0.0.1:9001", "weight": 0 } ], "retries": 11 }
    },
    "routes": [ { "upstream": "missing", "path_prefix": "api" } ],
    "limits": { "header_count": 1 }
  })");
  INFO(all_errors(result));
  CHECK_FALSE(result.config.has_value());
  REQUIRE(result.errors.size() == 7);
  const std::vector<std::pair<std::string, int>> expected = {
      {"/workers", 2},
      {"/listeners/0/address", 3},
      {"/upstreams/app/retries", 5},
      {"/upstreams/app/backends/0/weight", 5},
      {"/routes/0/path_prefix", 7},
      {"/routes/0/upstream", 7},
      {"/limits/header_count", 8},
  };
  for (const auto& [path, line] : expected) {
    const ConfigError* error = error_at(result, path);
    INFO(path);
    REQUIRE(error != nullptr);
    CHECK(error->line == line);
  }
  for (size_t i = 1; i < result.errors.size(); ++i)
    CHECK(result.errors[i - 1].line <= result.errors[i].line);
}

TEST_CASE("an error message reads as line, column, path, then what was expected and found",
          "[conf]") {
  const std::string text = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": {
    "app": {
      "backends": [
        { "address": "127.0.0.1:9001" },
        {
          "address": "127.0.0.1:9002",
          "weight": 0
        }
      ]
    }
  },
  "routes": [ { "upstream": "app" } ]
})";
  const ParseResult result = parse_config(text);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].to_string() ==
        "line 9, column 21: /upstreams/app/backends/1/weight: expected an integer 1..256, got 0");
}

TEST_CASE("an error with no line or path prints only its message", "[conf]") {
  CHECK(ConfigError{"", 0, 0, "something broke"}.to_string() == "something broke");
}

TEST_CASE("an error with a line but no column prints only the line", "[conf]") {
  CHECK(ConfigError{"/workers", 2, 0, "bad"}.to_string() == "line 2: /workers: bad");
}

TEST_CASE("an error about a value has the column where the value starts", "[conf]") {
  const ParseResult result = parse_config(test::config_text({.backend = "\"weight\": 0"}));
  const ConfigError* error = error_at(result, "/upstreams/app/backends/0/weight");
  REQUIRE(error != nullptr);
  // Line 6 reads: "backends": [ { "address": "127.0.0.1:9001", "weight": 0 } ] } },
  CHECK(error->column == 56);
}

TEST_CASE("an unknown key's error has the line and column of the key, not of its value", "[conf]") {
  const ParseResult result = parse_config(test::config_text({.top = "  \"worker\":\n  2"}));
  INFO(all_errors(result));
  const ConfigError* error = error_at(result, "/worker");
  REQUIRE(error != nullptr);
  CHECK(error->line == test::kTopLine);
  CHECK(error->column == 3);
}

TEST_CASE("a missing key's error has the line and column of the object that lacks it", "[conf]") {
  const ParseResult result = parse_config(R"({
  "listeners": [ { "address": "127.0.0.1:8080" },   {} ],
  "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
  "routes": [ { "upstream": "app" } ]
})");
  const ConfigError* error = error_at(result, "/listeners/1/address");
  REQUIRE(error != nullptr);
  CHECK(error->line == 2);
  CHECK(error->column == 53);
}

TEST_CASE("errors on one line are listed by column", "[conf]") {
  const ParseResult result = parse_config(test::config_text(
      {.backend = "\"weight\": 0", .route = "\"path_prefix\": \"api\", \"host\": \"a:1\""}));
  INFO(all_errors(result));
  REQUIRE(result.errors.size() == 3);
  CHECK(result.errors[1].path == "/routes/0/path_prefix");
  CHECK(result.errors[2].path == "/routes/0/host");
  CHECK(result.errors[1].column < result.errors[2].column);
}

TEST_CASE("an error that is not about a place in the file has no line or column", "[conf]") {
  const ParseResult result = load_config_file("/nonexistent/sluice.json");
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].line == 0);
  CHECK(result.errors[0].column == 0);
}

TEST_CASE("upstream names are escaped as JSON pointer segments", "[conf]") {
  const ParseResult result = parse_config(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": { "a/b~c": { "backends": [ { "address": "127.0.0.1:9001", "weight": 0 } ] } },
    "routes": [ { "upstream": "a/b~c" } ]
  })");
  INFO(all_errors(result));
  const ConfigError* error = error_at(result, "/upstreams/a~1b~0c/backends/0/weight");
  REQUIRE(error != nullptr);
  CHECK(error->line == 3);
}

TEST_CASE("a key given twice in one object is an error naming both lines", "[conf]") {
  const ParseResult result =
      parse_config(test::config_text({.backend = "\n\"weight\": 2,\n\"weight\": 3"}));
  INFO(all_errors(result));
  CHECK_FALSE(result.config.has_value());
  const ConfigError* error = error_at(result, "/upstreams/app/backends/0/weight");
  REQUIRE(error != nullptr);
  CHECK(error->line == test::kBackendLine + 2);
  CHECK(error->column == 1);
  CHECK_THAT(error->message, Catch::Contains("duplicate key") && Catch::Contains("line 7"));
}

TEST_CASE("a comment key may be repeated in one object", "[conf]") {
  const ParseResult result =
      parse_config(test::config_text({.top = "\"_comment\": \"a\", \"_comment\": \"b\""}));
  INFO(all_errors(result));
  CHECK(result.config.has_value());
}

TEST_CASE("load_config_file reads and parses a file", "[conf]") {
  char path[] = "/tmp/sluice_conf_test_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path) << kExample;
  const ParseResult result = load_config_file(path);
  std::remove(path);
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  CHECK(result.config->workers == 2);
}

TEST_CASE("load_config_file on a missing file reports the file and the system error", "[conf]") {
  const ParseResult result = load_config_file("/nonexistent/sluice.json");
  CHECK_FALSE(result.config.has_value());
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].line == 0);
  CHECK_THAT(result.errors[0].message, Catch::Contains("/nonexistent/sluice.json") &&
                                           Catch::Contains("No such file or directory"));
}

TEST_CASE("load_config_file on a directory reports the system error", "[conf]") {
  const ParseResult result = load_config_file("/tmp");
  REQUIRE(result.errors.size() == 1);
  CHECK_THAT(result.errors[0].message, Catch::Contains("Is a directory"));
}

}  // namespace
}  // namespace sluice::conf

TEST_CASE("a number too large for a double is a config error, not a crash", "[conf]") {
  const sluice::conf::ParseResult result =
      sluice::conf::parse_config(R"({"workers": 1111111111E11110})");
  REQUIRE_FALSE(result.config);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].message.find("number overflow") != std::string::npos);
}
