// PROXY protocol settings: a listener's "proxy_protocol" and "proxy_protocol_from" (IPv4 and
// IPv6 networks, each refused with what is wrong), an upstream's "send_proxy_protocol", and the
// networks' matching of peer addresses.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "conf/socket_address.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::all_errors;
using test::config_text;
using test::kUpstreamLine;
using test::require_error;

// A config whose only listener has the extra members `extra`, on line 2.
constexpr int kListenerLine = 2;
std::string with_listener(const std::string& extra) {
  return "{\n"
         "\"listeners\": [ { \"address\": \"127.0.0.1:8080\", " +
         extra +
         " } ],\n"  // line 2
         "\"upstreams\": { \"app\": { \"backends\": [ { \"address\": \"127.0.0.1:9001\" } ] } },\n"
         "\"routes\": [ { \"upstream\": \"app\" } ]\n"
         "}\n";
}

Config parsed(const std::string& text) {
  ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  REQUIRE(result.config.has_value());
  return std::move(*result.config);
}

sockaddr_storage peer(const char* ip) {
  sockaddr_storage out{};
  if (inet_pton(AF_INET, ip, &reinterpret_cast<sockaddr_in*>(&out)->sin_addr) == 1) {
    out.ss_family = AF_INET;
  } else {
    REQUIRE(inet_pton(AF_INET6, ip, &reinterpret_cast<sockaddr_in6*>(&out)->sin6_addr) == 1);
    out.ss_family = AF_INET6;
  }
  return out;
}

Cidr cidr(const char* text) {
  std::string problem;
  std::optional<Cidr> parsed_cidr = parse_cidr(text, &problem);
  INFO(text << ": " << problem);
  REQUIRE(parsed_cidr.has_value());
  return *parsed_cidr;
}

std::string cidr_problem(std::string_view text) {
  std::string problem;
  CHECK_FALSE(parse_cidr(text, &problem).has_value());
  return problem;
}

}  // namespace

TEST_CASE("a listener reads no PROXY header unless told to", "[conf][proxy_protocol]") {
  const Config config = parsed(config_text());
  CHECK_FALSE(config.listeners.at(0).proxy_protocol);
  CHECK(config.listeners.at(0).proxy_protocol_from.empty());
  CHECK(config.upstreams.at(0).send_proxy_protocol == ProxyProtocolVersion::kNone);
}

TEST_CASE("proxy_protocol and proxy_protocol_from are read", "[conf][proxy_protocol]") {
  Config config = parsed(with_listener("\"proxy_protocol\": true"));
  CHECK(config.listeners.at(0).proxy_protocol);
  CHECK(config.listeners.at(0).proxy_protocol_from.empty());  // any peer

  config = parsed(with_listener(
      "\"proxy_protocol\": true, "
      "\"proxy_protocol_from\": [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\", \"::1\"]"));
  const auto& from = config.listeners.at(0).proxy_protocol_from;
  REQUIRE(from.size() == 4);
  CHECK(from[0].text == "10.0.0.0/8");
  CHECK(from[0].family == AF_INET);
  CHECK(from[0].prefix == 8);
  CHECK(from[1].family == AF_INET6);
  CHECK(from[1].prefix == 32);
  CHECK(from[2].prefix == 32);  // a bare address is one host
  CHECK(from[3].prefix == 128);
}

TEST_CASE("bad PROXY protocol listener settings are refused with their path and line",
          "[conf][proxy_protocol]") {
  require_error(with_listener("\"proxy_protocol\": \"yes\""), "/listeners/0/proxy_protocol",
                kListenerLine, {"expected true or false", "\"yes\""});
  require_error(with_listener("\"proxy_protocol_from\": [\"10.0.0.0/8\"]"),
                "/listeners/0/proxy_protocol_from", kListenerLine,
                {"only with \"proxy_protocol\": true"});
  require_error(with_listener("\"proxy_protocol\": false, \"proxy_protocol_from\": [\"::/0\"]"),
                "/listeners/0/proxy_protocol_from", kListenerLine,
                {"only with \"proxy_protocol\": true"});
  require_error(with_listener("\"proxy_protocol\": true, \"proxy_protocol_from\": []"),
                "/listeners/0/proxy_protocol_from", kListenerLine,
                {"expected an array of at least one network", "an empty array"});
  require_error(with_listener("\"proxy_protocol\": true, \"proxy_protocol_from\": \"10.0.0.0/8\""),
                "/listeners/0/proxy_protocol_from", kListenerLine,
                {"expected an array of at least one network"});
  require_error(with_listener("\"proxy_protocol\": true, \"proxy_protocol_from\": [\"10.0.0.0/8\", "
                              "\"10.0.0.1/8\"]"),
                "/listeners/0/proxy_protocol_from/1", kListenerLine,
                {"\"10.0.0.1/8\"", "bits are set past the /8 prefix; the network is 10.0.0.0/8"});
  require_error(with_listener("\"proxy_protocol\": true, \"proxy_protocol_from\": [8]"),
                "/listeners/0/proxy_protocol_from/0", kListenerLine, {"expected a string", "8"});
  require_error(
      with_listener("\"proxy_protocol\": true, \"proxy_protocol_from\": [\"lb.internal\"]"),
      "/listeners/0/proxy_protocol_from/0", kListenerLine,
      {"\"lb.internal\" is not a numeric IPv4 or IPv6 address"});
  require_error(with_listener("\"proxy_protocol_form\": true"), "/listeners/0/proxy_protocol_form",
                kListenerLine, {"unknown key", "proxy_protocol_from"});
}

TEST_CASE("networks: each mistake is named", "[conf][proxy_protocol]") {
  CHECK(cidr_problem("10.0.0.0/33") ==
        "the prefix length must be a number 0..32 for an IPv4 address");
  CHECK(cidr_problem("2001:db8::/129") ==
        "the prefix length must be a number 0..128 for an IPv6 address");
  CHECK(cidr_problem("10.0.0.0/") ==
        "the prefix length must be a number 0..32 for an IPv4 address");
  CHECK(cidr_problem("10.0.0.0/08") ==
        "the prefix length must be a number 0..32 for an IPv4 address");
  CHECK(cidr_problem("10.0.0.0/-1") ==
        "the prefix length must be a number 0..32 for an IPv4 address");
  CHECK(cidr_problem("10.0.0.0/8/8") ==
        "the prefix length must be a number 0..32 for an IPv4 address");
  CHECK(cidr_problem("10.0.0/8") == "\"10.0.0\" is not a numeric IPv4 or IPv6 address");
  CHECK(cidr_problem("[::1]/128") == "\"[::1]\" is not a numeric IPv4 or IPv6 address");
  CHECK(cidr_problem("") == "\"\" is not a numeric IPv4 or IPv6 address");
  CHECK(cidr_problem(std::string("10.0.0.0\0/8", 11)) == "the address contains a NUL character");
  CHECK(cidr_problem("2001:db8::1/32") ==
        "bits are set past the /32 prefix; the network is 2001:db8::/32");
  CHECK(cidr_problem("192.168.1.1/23") ==
        "bits are set past the /23 prefix; the network is 192.168.0.0/23");
  CHECK(cidr("0.0.0.0/0").prefix == 0);
  CHECK(cidr("::/0").prefix == 0);
}

TEST_CASE("networks contain the addresses of their family and prefix", "[conf][proxy_protocol]") {
  const Cidr ten = cidr("10.0.0.0/8");
  CHECK(ten.contains(peer("10.0.0.1")));
  CHECK(ten.contains(peer("10.255.255.255")));
  CHECK_FALSE(ten.contains(peer("11.0.0.0")));
  CHECK_FALSE(ten.contains(peer("::ffff:10.0.0.1")));  // another family
  const Cidr odd = cidr("192.168.0.0/23");
  CHECK(odd.contains(peer("192.168.1.200")));
  CHECK_FALSE(odd.contains(peer("192.168.2.0")));
  const Cidr host = cidr("192.0.2.7");
  CHECK(host.contains(peer("192.0.2.7")));
  CHECK_FALSE(host.contains(peer("192.0.2.8")));
  const Cidr v6 = cidr("2001:db8:80::/41");
  CHECK(v6.contains(peer("2001:db8:80::1")));
  CHECK(v6.contains(peer("2001:db8:ff:ffff::1")));
  CHECK_FALSE(v6.contains(peer("2001:db8:100::1")));
  CHECK_FALSE(v6.contains(peer("10.0.0.1")));
  CHECK(cidr("::/0").contains(peer("::1")));
  CHECK(cidr("0.0.0.0/0").contains(peer("203.0.113.9")));
  CHECK(cidr("::1").contains(peer("::1")));
}

TEST_CASE("send_proxy_protocol is v1 or v2", "[conf][proxy_protocol]") {
  Config config = parsed(config_text({.upstream = "\"send_proxy_protocol\": \"v1\""}));
  CHECK(config.upstreams.at(0).send_proxy_protocol == ProxyProtocolVersion::kV1);
  config = parsed(config_text({.upstream = "\"send_proxy_protocol\": \"v2\""}));
  CHECK(config.upstreams.at(0).send_proxy_protocol == ProxyProtocolVersion::kV2);
  require_error(config_text({.upstream = "\"send_proxy_protocol\": \"v3\""}),
                "/upstreams/app/send_proxy_protocol", kUpstreamLine,
                {"expected \"v1\" or \"v2\", got \"v3\""});
  require_error(config_text({.upstream = "\"send_proxy_protocol\": true"}),
                "/upstreams/app/send_proxy_protocol", kUpstreamLine, {"expected a string", "true"});
}

}  // namespace sluice::conf
