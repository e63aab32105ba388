// Snapshots: pools built from config, routes matched by host and path, and backend state that
// survives a reload only when the upstream name and backend address both stay.
#include "conf/snapshot.h"

#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

Config parsed(const std::string& text) {
  ParseResult result = parse_config(text);
  INFO(test::all_errors(result));
  REQUIRE(result.config.has_value());
  return std::move(*result.config);
}

// Routes in this order: exact host, wildcard, path prefix under any host, catch-all.
const std::string kRouting = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": {
    "exact": { "backends": [ { "address": "127.0.0.1:9001" } ] },
    "wild": { "backends": [ { "address": "127.0.0.1:9002" } ] },
    "api": { "backends": [ { "address": "127.0.0.1:9003" } ] },
    "rest": { "backends": [ { "address": "127.0.0.1:9004" } ] },
    "v6": { "backends": [ { "address": "127.0.0.1:9005" } ] }
  },
  "routes": [
    { "host": "Example.com", "upstream": "exact" },
    { "host": "*.example.com", "path_prefix": "/static/", "upstream": "wild" },
    { "host": "[::1]", "upstream": "v6" },
    { "path_prefix": "/api", "upstream": "api" },
    { "host": "", "path_prefix": "/", "upstream": "rest" }
  ]
})";

// Name of the upstream a request goes to, or "" when no route matches.
std::string route_for(const Snapshot& snapshot, std::string_view host, std::string_view path) {
  const Route* route = snapshot.match(host, path);
  if (route == nullptr) return "";
  return snapshot.upstreams.at(route->upstream).settings.name;
}

TEST_CASE("a route host matches regardless of letter case", "[conf][snapshot]") {
  const auto snapshot = build_snapshot(parsed(kRouting), nullptr);
  CHECK(route_for(*snapshot, "example.com", "/") == "exact");
  CHECK(route_for(*snapshot, "EXAMPLE.COM", "/x") == "exact");
}

TEST_CASE("the port in the request's host is ignored", "[conf][snapshot]") {
  const auto snapshot = build_snapshot(parsed(kRouting), nullptr);
  CHECK(route_for(*snapshot, "example.com:8080", "/") == "exact");
  CHECK(route_for(*snapshot, "[::1]:8080", "/") == "v6");
  CHECK(route_for(*snapshot, "[::1]", "/") == "v6");
}

TEST_CASE("a trailing dot in the request's host names the same host", "[conf][snapshot]") {
  const auto snapshot = build_snapshot(parsed(kRouting), nullptr);
  CHECK(route_for(*snapshot, "example.com.:80", "/") == "exact");
}

TEST_CASE("a wildcard host matches any subdomain but not the domain itself", "[conf][snapshot]") {
  const auto snapshot = build_snapshot(parsed(kRouting), nullptr);
  CHECK(route_for(*snapshot, "www.example.com", "/static/a.css") == "wild");
  CHECK(route_for(*snapshot, "a.b.Example.COM:443", "/static/") == "wild");
  CHECK(route_for(*snapshot, "example.com", "/static/a.css") == "exact");
  CHECK(route_for(*snapshot, "badexample.com", "/static/a.css") == "rest");
}

TEST_CASE("a path prefix is a plain prefix of the request path", "[conf][snapshot]") {
  const auto snapshot = build_snapshot(parsed(kRouting), nullptr);
  CHECK(route_for(*snapshot, "other.org", "/api") == "api");
  CHECK(route_for(*snapshot, "other.org", "/api/v1/users") == "api");
  CHECK(route_for(*snapshot, "other.org", "/apiary") == "api");
  CHECK(route_for(*snapshot, "other.org", "/ap") == "rest");
  CHECK(route_for(*snapshot, "www.example.com", "/static") == "rest");
}

TEST_CASE("the first matching route in config order wins", "[conf][snapshot]") {
  const auto snapshot = build_snapshot(parsed(kRouting), nullptr);
  // Both "exact" and "api" match; "exact" is listed first.
  CHECK(route_for(*snapshot, "example.com", "/api") == "exact");
  // Both "wild" and "api" would match other paths; here only "api" and "rest" do.
  CHECK(route_for(*snapshot, "www.example.com", "/api") == "api");
}

TEST_CASE("a route with an empty host matches requests without a host", "[conf][snapshot]") {
  const auto snapshot = build_snapshot(parsed(kRouting), nullptr);
  CHECK(route_for(*snapshot, "", "/") == "rest");
}

TEST_CASE("a request that no route matches gets nullptr", "[conf][snapshot]") {
  const auto snapshot = build_snapshot(
      parsed(test::config_text({.route = "\"host\": \"a.test\", \"path_prefix\": \"/x\""})),
      nullptr);
  CHECK(snapshot->match("a.test", "/x/1") != nullptr);
  CHECK(snapshot->match("b.test", "/x/1") == nullptr);
  CHECK(snapshot->match("a.test", "/y") == nullptr);
}

TEST_CASE("each upstream becomes a pool with its policy and backends", "[conf][snapshot]") {
  const auto snapshot = build_snapshot(parsed(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": { "app": { "balance": "round_robin", "retries": 4, "backends": [
      { "address": "127.0.0.1:9001", "weight": 7 },
      { "address": "[::1]:9002", "backup": true } ] } },
    "routes": [ { "upstream": "app" } ]
  })"),
                                       nullptr);
  REQUIRE(snapshot->upstreams.size() == 1);
  const Upstream& upstream = snapshot->upstreams[0];
  CHECK(upstream.settings.retries == 4);
  CHECK(upstream.pool.name == "app");
  CHECK(upstream.pool.policy == "round_robin");
  REQUIRE(upstream.pool.backends.size() == 2);
  const balancer::Backend& first = upstream.pool.backends[0];
  CHECK(first.address == "127.0.0.1:9001");
  CHECK(first.weight == 7);
  CHECK_FALSE(first.backup);
  CHECK(first.sockaddr.ss_family == AF_INET);
  CHECK(first.sockaddr_len == sizeof(sockaddr_in));
  CHECK(ntohs(reinterpret_cast<const sockaddr_in*>(&first.sockaddr)->sin_port) == 9001);
  const balancer::Backend& second = upstream.pool.backends[1];
  CHECK(second.backup);
  CHECK(second.sockaddr.ss_family == AF_INET6);
  CHECK(second.sockaddr_len == sizeof(sockaddr_in6));
  CHECK(first.state != second.state);
  CHECK(upstream.pool.table == nullptr);  // round robin keeps no shared table
  REQUIRE(snapshot->routes.size() == 1);
  CHECK(snapshot->routes[0].upstream == 0);
}

TEST_CASE("the first snapshot is generation 1 and each rebuild adds one", "[conf][snapshot]") {
  const auto first = build_snapshot(parsed(test::config_text()), nullptr);
  const auto second = build_snapshot(parsed(test::config_text()), first.get());
  const auto third = build_snapshot(parsed(test::config_text()), second.get());
  CHECK(first->generation == 1);
  CHECK(second->generation == 2);
  CHECK(third->generation == 3);
}

const std::string kTwoBackends = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": { "app": { "backends": [
    { "address": "127.0.0.1:9001" }, { "address": "127.0.0.1:9002" } ] } },
  "routes": [ { "upstream": "app" } ]
})";

TEST_CASE("a backend keeps its live state across a rebuild when name and address stay",
          "[conf][snapshot]") {
  const auto before = build_snapshot(parsed(kTwoBackends), nullptr);
  before->upstreams[0].pool.backends[1].state->up = false;
  before->upstreams[0].pool.backends[1].state->active = 3;
  // Reordered and reweighted: identity is the upstream name plus the address text.
  const auto after = build_snapshot(parsed(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": { "app": { "backends": [
      { "address": "127.0.0.1:9002", "weight": 9 }, { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "upstream": "app" } ]
  })"),
                                    before.get());
  const auto& old_backends = before->upstreams[0].pool.backends;
  const auto& new_backends = after->upstreams[0].pool.backends;
  CHECK(new_backends[0].state == old_backends[1].state);
  CHECK(new_backends[1].state == old_backends[0].state);
  CHECK_FALSE(new_backends[0].up());
  CHECK(new_backends[0].state->active == 3);
}

TEST_CASE("a backend whose address changed starts with fresh state", "[conf][snapshot]") {
  const auto before = build_snapshot(parsed(kTwoBackends), nullptr);
  before->upstreams[0].pool.backends[1].state->up = false;
  std::string changed = kTwoBackends;
  changed.replace(changed.find("9002"), 4, "9003");
  const auto after = build_snapshot(parsed(changed), before.get());
  const auto& new_backends = after->upstreams[0].pool.backends;
  CHECK(new_backends[0].state == before->upstreams[0].pool.backends[0].state);
  CHECK(new_backends[1].state != before->upstreams[0].pool.backends[1].state);
  CHECK(new_backends[1].up());
}

TEST_CASE("a backend moved to a renamed upstream starts with fresh state", "[conf][snapshot]") {
  const auto before = build_snapshot(parsed(kTwoBackends), nullptr);
  std::string renamed = kTwoBackends;
  renamed.replace(renamed.find("\"app\": {"), 5, "\"web\"");
  renamed.replace(renamed.find("\"upstream\": \"app\""), 17, "\"upstream\": \"web\"");
  const auto after = build_snapshot(parsed(renamed), before.get());
  CHECK(after->upstreams[0].pool.name == "web");
  CHECK(after->upstreams[0].pool.backends[0].state != before->upstreams[0].pool.backends[0].state);
}

// --- DNS-discovered backends ---

SocketAddress address(const std::string& text) {
  std::optional<SocketAddress> parsed_address = parse_socket_address(text);
  REQUIRE(parsed_address.has_value());
  return *parsed_address;
}

// Upstream "app": one static backend, then a DNS entry; `upstream_extra` adds upstream keys.
std::string dns_config(const std::string& upstream_extra = "") {
  return R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": { "app": { )" +
         upstream_extra + R"( "backends": [
      { "address": "127.0.0.1:9001" },
      { "dns": "app.internal:8080", "weight": 3, "backup": true } ] } },
    "routes": [ { "upstream": "app" } ]
  })";
}

DnsAnswers answers_for(const Config& config, std::vector<std::string> addresses) {
  DnsAnswers answers;
  std::vector<SocketAddress>& list = answers[dns_key(config.upstreams.at(0).backends.at(1))];
  for (const std::string& text : addresses) list.push_back(address(text));
  return answers;
}

TEST_CASE("a dns backend's key is its name and port as configured", "[conf][snapshot]") {
  const Config config = parsed(dns_config());
  CHECK(dns_key(config.upstreams.at(0).backends.at(1)) == "app.internal:8080");
}

TEST_CASE("a dns entry becomes one backend per resolved address, with the entry's settings",
          "[conf][snapshot]") {
  Config config = parsed(dns_config());
  const DnsAnswers answers = answers_for(config, {"10.0.0.1:8080", "[2001:db8::2]:8080"});
  const auto snapshot = build_snapshot(std::move(config), nullptr, &answers);
  const auto& backends = snapshot->upstreams.at(0).pool.backends;
  REQUIRE(backends.size() == 3);
  CHECK(backends[0].address == "127.0.0.1:9001");
  CHECK_FALSE(backends[0].from_dns);
  CHECK(backends[1].address == "10.0.0.1:8080");
  CHECK(backends[2].address == "[2001:db8::2]:8080");
  for (size_t i = 1; i < 3; ++i) {
    INFO(backends[i].address);
    CHECK(backends[i].from_dns);
    CHECK(backends[i].weight == 3);
    CHECK(backends[i].backup);
    CHECK(backends[i].up());
  }
  CHECK(backends[1].sockaddr.ss_family == AF_INET);
  CHECK(ntohs(reinterpret_cast<const sockaddr_in*>(&backends[1].sockaddr)->sin_port) == 8080);
  CHECK(backends[2].sockaddr.ss_family == AF_INET6);
  CHECK(backends[2].sockaddr_len == sizeof(sockaddr_in6));
  CHECK(backends[1].state != backends[2].state);
}

TEST_CASE("a dns entry that has not resolved yet contributes no backends", "[conf][snapshot]") {
  const auto without_answers = build_snapshot(parsed(dns_config()), nullptr);
  REQUIRE(without_answers->upstreams.at(0).pool.backends.size() == 1);
  CHECK(without_answers->upstreams.at(0).pool.backends[0].address == "127.0.0.1:9001");
  const DnsAnswers other_name{{"other.internal:8080", {address("10.0.0.9:8080")}}};
  const auto other = build_snapshot(parsed(dns_config()), nullptr, &other_name);
  CHECK(other->upstreams.at(0).pool.backends.size() == 1);
}

TEST_CASE("a dns entry whose name resolved to no address contributes no backends",
          "[conf][snapshot]") {
  Config config = parsed(dns_config());
  const DnsAnswers answers = answers_for(config, {});
  const auto snapshot = build_snapshot(std::move(config), nullptr, &answers);
  CHECK(snapshot->upstreams.at(0).pool.backends.size() == 1);
}

TEST_CASE("a dns address new on a later snapshot of a checked upstream waits for a check",
          "[conf][snapshot]") {
  const std::string text = dns_config(R"("health": {},)");
  Config first_config = parsed(text);
  const DnsAnswers first_answers = answers_for(first_config, {"10.0.0.1:8080"});
  const auto before = build_snapshot(std::move(first_config), nullptr, &first_answers);
  Config second_config = parsed(text);
  const DnsAnswers second_answers = answers_for(second_config, {"10.0.0.1:8080", "10.0.0.2:8080"});
  const auto after = build_snapshot(std::move(second_config), before.get(), &second_answers);
  const auto& old_backends = before->upstreams.at(0).pool.backends;
  const auto& new_backends = after->upstreams.at(0).pool.backends;
  REQUIRE(new_backends.size() == 3);
  // Known before: same state, still up.
  CHECK(new_backends[1].state == old_backends[1].state);
  CHECK(new_backends[1].up());
  // New: down until its first passing check.
  CHECK(new_backends[2].address == "10.0.0.2:8080");
  CHECK_FALSE(new_backends[2].state->up);
  CHECK_FALSE(new_backends[2].up());
  // The static backend is untouched.
  CHECK(new_backends[0].state == old_backends[0].state);
  CHECK(new_backends[0].up());
}

TEST_CASE("a dns address known before keeps its state, down or up, on a later snapshot",
          "[conf][snapshot]") {
  const std::string text = dns_config(R"("health": {},)");
  Config first_config = parsed(text);
  const DnsAnswers answers = answers_for(first_config, {"10.0.0.1:8080", "10.0.0.2:8080"});
  const auto before = build_snapshot(std::move(first_config), nullptr, &answers);
  before->upstreams.at(0).pool.backends[2].state->up = false;
  before->upstreams.at(0).pool.backends[1].state->active = 2;
  const auto after = build_snapshot(parsed(text), before.get(), &answers);
  const auto& new_backends = after->upstreams.at(0).pool.backends;
  REQUIRE(new_backends.size() == 3);
  CHECK(new_backends[1].state == before->upstreams.at(0).pool.backends[1].state);
  CHECK(new_backends[1].up());
  CHECK(new_backends[1].state->active == 2);
  CHECK(new_backends[2].state == before->upstreams.at(0).pool.backends[2].state);
  CHECK_FALSE(new_backends[2].up());
}

TEST_CASE("a dns address new on a later snapshot of an unchecked upstream is up at once",
          "[conf][snapshot]") {
  Config first_config = parsed(dns_config());
  const auto before = build_snapshot(std::move(first_config), nullptr);
  Config second_config = parsed(dns_config());
  const DnsAnswers answers = answers_for(second_config, {"10.0.0.2:8080"});
  const auto after = build_snapshot(std::move(second_config), before.get(), &answers);
  const auto& new_backends = after->upstreams.at(0).pool.backends;
  REQUIRE(new_backends.size() == 2);
  CHECK(new_backends[1].up());
}

TEST_CASE("dns addresses on the first snapshot start up, like every backend", "[conf][snapshot]") {
  Config config = parsed(dns_config(R"("health": {},)"));
  const DnsAnswers answers = answers_for(config, {"10.0.0.1:8080"});
  const auto snapshot = build_snapshot(std::move(config), nullptr, &answers);
  REQUIRE(snapshot->upstreams.at(0).pool.backends.size() == 2);
  CHECK(snapshot->upstreams.at(0).pool.backends[1].up());
}

TEST_CASE("a pool takes its upstream's slow_start_ms", "[conf][snapshot]") {
  const auto snapshot =
      build_snapshot(parsed(test::config_text({.upstream = "\"slow_start_ms\": 15000"})), nullptr);
  CHECK(snapshot->upstreams.at(0).pool.slow_start_ms == 15000);
  CHECK(build_snapshot(parsed(test::config_text()), nullptr)->upstreams.at(0).pool.slow_start_ms ==
        0);
}

TEST_CASE("a hand-built config naming an unknown policy is refused", "[conf][snapshot]") {
  Config config = parsed(test::config_text());
  config.upstreams[0].balance = "nope";
  CHECK_THROWS_AS(build_snapshot(std::move(config), nullptr), std::invalid_argument);
}

TEST_CASE("a hand-built config whose route names no upstream is refused", "[conf][snapshot]") {
  Config config = parsed(test::config_text());
  config.routes[0].upstream = "nowhere";
  CHECK_THROWS_AS(build_snapshot(std::move(config), nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace sluice::conf
