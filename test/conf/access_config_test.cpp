// Access-control settings: "access" on a listener and a route, the top-level "trusted_proxies",
// each mistake refused with its path and line, and the access lists the snapshot builds from
// them (allow only, deny only, both, a tie, IPv4 and IPv6).
#include <catch2/catch.hpp>
#include <string>

#include "conf/access_list.h"
#include "conf/config.h"
#include "conf/snapshot.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::all_errors;
using test::config_text;
using test::kRouteLine;
using test::kTopLine;
using test::require_error;
using test::Slots;

// A config whose only listener has the extra members `extra`, on line 2.
constexpr int kListenerLine = 2;
std::string with_listener(const std::string& extra, const std::string& top = "") {
  return "{\n"
         "\"listeners\": [ { \"address\": \"127.0.0.1:8080\", " +
         extra +
         " } ],\n"  // line 2
         "\"upstreams\": { \"app\": { \"backends\": [ { \"address\": \"127.0.0.1:9001\" } ] } },\n"
         "\"routes\": [ { \"upstream\": \"app\" } ]" +
         (top.empty() ? "" : ",\n" + top) + "\n}\n";
}

Config parsed(const std::string& text) {
  ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  REQUIRE(result.config.has_value());
  return std::move(*result.config);
}

IpAddress ip(const char* text) {
  IpAddress out;
  INFO(text);
  REQUIRE(parse_ip_address(text, &out));
  return out;
}

// The access list of the only route of a config whose route has `access`.
AccessList route_list(const std::string& access) {
  return build_snapshot(parsed(config_text(Slots{.route = "\"access\": " + access})), nullptr)
      ->access.routes.at(0);
}

}  // namespace

TEST_CASE("access: absent, nothing is checked", "[conf][access]") {
  const auto snapshot = build_snapshot(parsed(config_text()), nullptr);
  CHECK_FALSE(snapshot->config.routes.at(0).access.has_value());
  CHECK_FALSE(snapshot->config.listeners.at(0).access.has_value());
  CHECK(snapshot->config.trusted_proxies.empty());
  CHECK_FALSE(snapshot->access.any_listener);
  CHECK_FALSE(snapshot->access.any_route);
  CHECK(snapshot->access.trusted_proxies.empty());
  CHECK(snapshot->access.routes.at(0).allows(ip("203.0.113.1")));
}

TEST_CASE("access: read on a route and on a listener", "[conf][access]") {
  Config config = parsed(config_text(Slots{
      .route = "\"access\": {\"allow\": [\"10.0.0.0/8\", \"::1\"], \"deny\": [\"10.0.5.0/24\"]}"}));
  const AccessConfig& access = config.routes.at(0).access.value();
  REQUIRE(access.allow.size() == 2);
  CHECK(access.allow[0].text == "10.0.0.0/8");
  CHECK(access.allow[1].prefix == 128);
  REQUIRE(access.deny.size() == 1);
  CHECK(access.deny[0].prefix == 24);

  config = parsed(with_listener("\"access\": {\"deny\": [\"192.0.2.0/24\"]}"));
  REQUIRE(config.listeners.at(0).access.has_value());
  CHECK(config.listeners.at(0).access->allow.empty());
  CHECK(config.listeners.at(0).access->deny.size() == 1);
  const auto snapshot = build_snapshot(std::move(config), nullptr);
  CHECK(snapshot->access.any_listener);
  CHECK_FALSE(snapshot->access.any_route);
}

TEST_CASE("access: the most specific network across both lists decides", "[conf][access]") {
  const AccessList both =
      route_list("{\"allow\": [\"10.0.0.0/8\", \"::1\"], \"deny\": [\"10.0.5.0/24\"]}");
  CHECK(both.configured());
  CHECK(both.allows(ip("10.1.2.3")));
  CHECK_FALSE(both.allows(ip("10.0.5.9")));  // the /24 deny inside the /8 allow
  CHECK(both.allows(ip("::1")));
  CHECK_FALSE(both.allows(ip("127.0.0.1")));  // in neither list, with an allow list: refused
  CHECK_FALSE(both.allows(ip("2001:db8::1")));
  CHECK(both.allows(ip("::ffff:10.9.9.9")));  // IPv4-mapped: matched as IPv4
  CHECK_FALSE(both.allows(ip("::ffff:10.0.5.1")));

  // A more specific allow inside a deny lets that part in again.
  const AccessList hole = route_list("{\"allow\": [\"10.0.5.7\"], \"deny\": [\"10.0.0.0/8\"]}");
  CHECK(hole.allows(ip("10.0.5.7")));
  CHECK_FALSE(hole.allows(ip("10.0.5.8")));
  CHECK_FALSE(hole.allows(ip("192.0.2.1")));  // an allow list is given: the rest is refused
}

TEST_CASE("access: allow only, deny only, and a tie", "[conf][access]") {
  const AccessList allow = route_list("{\"allow\": [\"127.0.0.1\", \"::1\"]}");
  CHECK(allow.allows(ip("127.0.0.1")));
  CHECK(allow.allows(ip("::1")));
  CHECK_FALSE(allow.allows(ip("127.0.0.2")));
  CHECK_FALSE(allow.allows(ip("::2")));
  CHECK_FALSE(allow.allows(IpAddress{}));  // an address of no family is in no list

  const AccessList deny = route_list("{\"deny\": [\"127.0.0.1\", \"2001:db8::/32\"]}");
  CHECK_FALSE(deny.allows(ip("127.0.0.1")));
  CHECK(deny.allows(ip("127.0.0.2")));
  CHECK(deny.allows(ip("::1")));
  CHECK_FALSE(deny.allows(ip("2001:db8:ffff::1")));

  const AccessList tie = route_list("{\"allow\": [\"10.0.0.0/8\"], \"deny\": [\"10.0.0.0/8\"]}");
  CHECK_FALSE(tie.allows(ip("10.1.1.1")));  // the same network in both: deny

  const AccessList everyone = route_list("{\"deny\": [\"0.0.0.0/0\", \"::/0\"]}");
  CHECK_FALSE(everyone.allows(ip("8.8.8.8")));
  CHECK_FALSE(everyone.allows(ip("::1")));
}

TEST_CASE("access: mistakes are refused with their path and line", "[conf][access]") {
  require_error(config_text(Slots{.route = "\"access\": {}"}), "/routes/0/access", kRouteLine,
                {"expected \"allow\", \"deny\" or both"});
  require_error(config_text(Slots{.route = "\"access\": [\"10.0.0.0/8\"]"}), "/routes/0/access",
                kRouteLine, {"expected an object"});
  require_error(config_text(Slots{.route = "\"access\": {\"allow\": []}"}),
                "/routes/0/access/allow", kRouteLine,
                {"expected an array of at least one network", "an empty array"});
  require_error(config_text(Slots{.route = "\"access\": {\"deny\": \"10.0.0.0/8\"}"}),
                "/routes/0/access/deny", kRouteLine, {"expected an array of at least one network"});
  require_error(config_text(Slots{.route = "\"access\": {\"allow\": [\"10.0.0.1/8\"]}"}),
                "/routes/0/access/allow/0", kRouteLine,
                {"\"10.0.0.1/8\"", "bits are set past the /8 prefix; the network is 10.0.0.0/8"});
  require_error(
      config_text(Slots{.route = "\"access\": {\"deny\": [\"::1\", \"2001:db8::/129\"]}"}),
      "/routes/0/access/deny/1", kRouteLine,
      {"the prefix length must be a number 0..128 for an IPv6 address"});
  require_error(config_text(Slots{.route = "\"access\": {\"allow\": [\"localhost\"]}"}),
                "/routes/0/access/allow/0", kRouteLine,
                {"\"localhost\" is not a numeric IPv4 or IPv6 address"});
  require_error(config_text(Slots{.route = "\"access\": {\"allow\": [10]}"}),
                "/routes/0/access/allow/0", kRouteLine, {"expected a string"});
  require_error(config_text(Slots{.route = "\"access\": {\"alow\": [\"10.0.0.0/8\"]}"}),
                "/routes/0/access/alow", kRouteLine, {"unknown key", "did you mean \"allow\""});
  require_error(with_listener("\"access\": {\"deny\": [\"300.0.0.0/8\"]}"),
                "/listeners/0/access/deny/0", kListenerLine,
                {"\"300.0.0.0\" is not a numeric IPv4 or IPv6 address"});
  require_error(with_listener("\"acess\": {}"), "/listeners/0/acess", kListenerLine,
                {"unknown key", "did you mean \"access\""});
}

TEST_CASE("trusted_proxies: read into a prefix tree", "[conf][access]") {
  const auto snapshot = build_snapshot(
      parsed(config_text(Slots{.top = "\"trusted_proxies\": [\"10.0.0.0/8\", \"::1\"]"})), nullptr);
  CHECK(snapshot->config.trusted_proxies.size() == 2);
  CHECK(snapshot->access.trusted_proxies.contains(ip("10.20.30.40")));
  CHECK(snapshot->access.trusted_proxies.contains(ip("::1")));
  CHECK_FALSE(snapshot->access.trusted_proxies.contains(ip("127.0.0.1")));

  require_error(config_text(Slots{.top = "\"trusted_proxies\": []"}), "/trusted_proxies", kTopLine,
                {"expected an array of at least one network"});
  require_error(config_text(Slots{.top = "\"trusted_proxies\": [\"10.0.0.0/8\", \"10.1.0.0/8\"]"}),
                "/trusted_proxies/1", kTopLine, {"the network is 10.0.0.0/8"});
  require_error(config_text(Slots{.top = "\"trusted_porxies\": [\"10.0.0.0/8\"]"}),
                "/trusted_porxies", kTopLine, {"did you mean \"trusted_proxies\""});
}

TEST_CASE("trusted_proxies: who may send a PROXY header where the listener does not say",
          "[conf][access]") {
  const std::string trusted = "\"trusted_proxies\": [\"10.0.0.0/8\"]";
  Config config = parsed(with_listener("\"proxy_protocol\": true", trusted));
  REQUIRE(config.listeners.at(0).proxy_protocol_from.size() == 1);
  CHECK(config.listeners.at(0).proxy_protocol_from[0].text == "10.0.0.0/8");

  config = parsed(with_listener(
      "\"proxy_protocol\": true, \"proxy_protocol_from\": [\"192.0.2.0/24\"]", trusted));
  REQUIRE(config.listeners.at(0).proxy_protocol_from.size() == 1);
  CHECK(config.listeners.at(0).proxy_protocol_from[0].text == "192.0.2.0/24");

  config = parsed(with_listener("\"proxy_protocol\": false", trusted));
  CHECK(config.listeners.at(0).proxy_protocol_from.empty());
}

}  // namespace sluice::conf
