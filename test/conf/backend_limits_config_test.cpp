// max_connections, queue_max and queue_timeout_ms: their defaults, their ranges, and how a
// backend's own max_connections and its upstream's combine in a snapshot (DNS sets included).
#include <catch2/catch.hpp>
#include <string>

#include "conf/snapshot.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::config_text;
using test::kBackendLine;
using test::kUpstreamLine;
using test::require_error;

Config parsed(const std::string& text) {
  ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << test::all_errors(result));
  REQUIRE(result.config.has_value());
  return std::move(*result.config);
}

TEST_CASE("without the keys there is no limit and the queue takes its defaults", "[conf][limits]") {
  const Config config = parsed(config_text());
  const UpstreamConfig& up = config.upstreams.at(0);
  CHECK(up.max_connections == 0);
  CHECK(up.queue_max == 1024);
  CHECK(up.queue_timeout_ms == 5000);
  CHECK_FALSE(up.backends.at(0).max_connections.has_value());
  const auto snapshot = build_snapshot(config, nullptr);
  CHECK(snapshot->upstreams.at(0).pool.backends.at(0).max_connections == 0);
  CHECK_FALSE(snapshot->upstreams.at(0).pool.limited);
}

TEST_CASE("an upstream's limit and queue are read", "[conf][limits]") {
  const Config config = parsed(config_text(
      {.upstream = R"("max_connections": 2, "queue_max": 10, "queue_timeout_ms": 250)"}));
  const UpstreamConfig& up = config.upstreams.at(0);
  CHECK(up.max_connections == 2);
  CHECK(up.queue_max == 10);
  CHECK(up.queue_timeout_ms == 250);
}

TEST_CASE("queue_max 0 is allowed: no waiting", "[conf][limits]") {
  CHECK(parsed(config_text({.upstream = R"("queue_max": 0)"})).upstreams.at(0).queue_max == 0);
}

TEST_CASE("a backend's own max_connections is read, 0 included", "[conf][limits]") {
  CHECK(parsed(config_text({.backend = R"("max_connections": 7)"}))
            .upstreams.at(0)
            .backends.at(0)
            .max_connections == 7u);
  CHECK(parsed(config_text({.backend = R"("max_connections": 0)"}))
            .upstreams.at(0)
            .backends.at(0)
            .max_connections == 0u);
}

TEST_CASE("limits out of range are refused with their path and line", "[conf][limits]") {
  require_error(config_text({.upstream = R"("max_connections": -1)"}),
                "/upstreams/app/max_connections", kUpstreamLine, {"expected an integer 0.."});
  require_error(config_text({.upstream = R"("queue_timeout_ms": 0)"}),
                "/upstreams/app/queue_timeout_ms", kUpstreamLine,
                {"expected an integer 1..86400000, got 0"});
  require_error(config_text({.upstream = R"("queue_max": "many")"}), "/upstreams/app/queue_max",
                kUpstreamLine, {"expected an integer 0..1000000"});
  require_error(config_text({.backend = R"("max_connections": 1000001)"}),
                "/upstreams/app/backends/0/max_connections", kBackendLine,
                {"expected an integer 0..1000000, got 1000001"});
}

TEST_CASE("a misspelt limit key is refused with a suggestion", "[conf][limits]") {
  require_error(config_text({.backend = R"("max_connection": 2)"}),
                "/upstreams/app/backends/0/max_connection", kBackendLine,
                {"(did you mean \"max_connections\"?)"});
  require_error(config_text({.upstream = R"("queue_timout_ms": 2)"}),
                "/upstreams/app/queue_timout_ms", kUpstreamLine,
                {"(did you mean \"queue_timeout_ms\"?)"});
}

const std::string kMixed = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": { "app": { "max_connections": 4, "backends": [
    { "address": "127.0.0.1:9001" },
    { "address": "127.0.0.1:9002", "max_connections": 1 },
    { "address": "127.0.0.1:9003", "max_connections": 0 },
    { "dns": "app.internal:8080", "max_connections": 2 },
    { "dns": "other.internal:8080" } ] } },
  "routes": [ { "upstream": "app" } ]
})";

TEST_CASE("each backend takes its own max_connections, else its upstream's", "[conf][limits]") {
  Config config = parsed(kMixed);
  DnsAnswers answers;
  answers["app.internal:8080"] = {*parse_socket_address("10.0.0.1:8080"),
                                  *parse_socket_address("10.0.0.2:8080")};
  answers["other.internal:8080"] = {*parse_socket_address("10.0.1.1:8080")};
  const auto snapshot = build_snapshot(config, nullptr, &answers);
  const balancer::Pool& pool = snapshot->upstreams.at(0).pool;
  REQUIRE(pool.backends.size() == 6);
  CHECK(pool.backends[0].max_connections == 4);  // the upstream's
  CHECK(pool.backends[1].max_connections == 1);  // its own
  CHECK(pool.backends[2].max_connections == 0);  // its own: no limit
  CHECK(pool.backends[3].max_connections == 2);  // each address of a DNS set
  CHECK(pool.backends[4].max_connections == 2);
  CHECK(pool.backends[5].max_connections == 4);  // a DNS set without its own
  CHECK(pool.limited);
}

TEST_CASE("an upstream whose backends all lift the limit is not limited", "[conf][limits]") {
  const auto snapshot = build_snapshot(parsed(config_text({.upstream = R"("max_connections": 3)",
                                                           .backend = R"("max_connections": 0)"})),
                                       nullptr);
  CHECK_FALSE(snapshot->upstreams.at(0).pool.limited);
}

}  // namespace
}  // namespace sluice::conf
