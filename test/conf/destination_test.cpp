// The forward proxy's allow list: which "host:port" patterns parse, and which destinations each
// lets through (names, suffixes, "*", IP literals; the default ports 80 and 443).
#include "conf/destination.h"

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>

namespace sluice::conf {
namespace {

bool parses(std::string_view text) {
  DestinationPattern pattern;
  std::string problem;
  const bool ok = parse_destination(text, &pattern, &problem);
  INFO(text << ": " << problem);
  CHECK(ok == problem.empty());
  return ok;
}

std::string problem_of(std::string_view text) {
  DestinationPattern pattern;
  std::string problem;
  CHECK_FALSE(parse_destination(text, &pattern, &problem));
  return problem;
}

DestinationList list(std::initializer_list<std::string_view> texts) {
  DestinationList out;
  for (std::string_view text : texts) {
    DestinationPattern pattern;
    std::string problem;
    INFO(text);
    REQUIRE(parse_destination(text, &pattern, &problem));
    out.patterns.push_back(pattern);
  }
  return out;
}

constexpr DestinationVerdict kRefused = DestinationVerdict::kRefused;
constexpr DestinationVerdict kAllowed = DestinationVerdict::kAllowed;
constexpr DestinationVerdict kAllowedLiteral = DestinationVerdict::kAllowedLiteral;

TEST_CASE("names, suffixes, \"*\" and IP literals parse, with or without a port",
          "[conf][destination]") {
  for (const char* text :
       {"example.com", "example.com:443", "Example.COM:8080", "*.example.com:443", "*", "*:*",
        "example.com:*", "10.0.0.1", "10.0.0.1:80", "[::1]", "[::1]:443", "[2001:db8::1]:*",
        "a-b_c.example:1", "example.com:65535"}) {
    CHECK(parses(text));
  }
}

TEST_CASE("a pattern keeps its kind, its name in lower case and its port", "[conf][destination]") {
  DestinationPattern p;
  std::string problem;
  REQUIRE(parse_destination("*.Example.COM:8443", &p, &problem));
  CHECK(p.kind == DestinationPattern::Host::kSuffix);
  CHECK(p.name == ".example.com");
  CHECK(p.port == 8443);
  CHECK_FALSE(p.any_port);
  REQUIRE(parse_destination("[::1]:*", &p, &problem));
  CHECK(p.kind == DestinationPattern::Host::kLiteral);
  CHECK(p.literal.family == AF_INET6);
  CHECK(p.any_port);
  REQUIRE(parse_destination("example.com", &p, &problem));
  CHECK(p.port == 0);
  CHECK_FALSE(p.any_port);
}

TEST_CASE("a port of 0, over 65535, not a number or empty is refused", "[conf][destination]") {
  for (const char* text : {"example.com:0", "example.com:65536", "example.com:x",
                           "example.com:", "example.com:+80", "example.com:80x", "*:-1"}) {
    INFO(text);
    CHECK_THAT(problem_of(text), Catch::Contains("port"));
  }
}

TEST_CASE("an IPv6 address without brackets is refused with the bracketed form",
          "[conf][destination]") {
  CHECK_THAT(problem_of("::1:443"), Catch::Contains("[::1]:443"));
  CHECK_THAT(problem_of("2001:db8::1"), Catch::Contains("brackets"));
}

TEST_CASE("an empty host or one with bad characters is refused", "[conf][destination]") {
  for (const char* text :
       {"", ":443", "*.:443", "*.", "exa mple.com", "example.com/x:80", "user@example.com:80",
        "[example.com]:80", "[10.0.0.1]:80", "**.a", "a.*.example.com", "[::1"}) {
    INFO("\"" << text << "\"");
    CHECK_FALSE(problem_of(text).empty());
  }
}

TEST_CASE("a name matches in any case", "[conf][destination]") {
  const DestinationList allow = list({"Example.COM:443"});
  CHECK(allow.check("example.com", 443) == kAllowed);
  CHECK(allow.check("EXAMPLE.com", 443) == kAllowed);
  CHECK(allow.check("www.example.com", 443) == kRefused);
  CHECK(allow.check("example.co", 443) == kRefused);
}

TEST_CASE("*.example.com matches its subdomains at any depth, not the domain itself",
          "[conf][destination]") {
  const DestinationList allow = list({"*.example.com:443"});
  CHECK(allow.check("a.example.com", 443) == kAllowed);
  CHECK(allow.check("a.b.example.com", 443) == kAllowed);
  CHECK(allow.check("A.EXAMPLE.COM", 443) == kAllowed);
  CHECK(allow.check("example.com", 443) == kRefused);
  CHECK(allow.check(".example.com", 443) == kRefused);
  CHECK(allow.check("badexample.com", 443) == kRefused);
  CHECK(allow.check("a.example.com.evil", 443) == kRefused);
}

TEST_CASE("\"*\" matches any host, literals included, as a name pattern", "[conf][destination]") {
  const DestinationList allow = list({"*:*"});
  CHECK(allow.check("anything.example", 1) == kAllowed);
  CHECK(allow.check("localhost", 65535) == kAllowed);
  // kAllowed, not kAllowedLiteral: the address is still checked against allow_private.
  CHECK(allow.check("127.0.0.1", 80) == kAllowed);
  CHECK(allow.check("[::1]", 443) == kAllowed);
}

TEST_CASE("an IPv4 literal matches only the same address written as a literal",
          "[conf][destination]") {
  const DestinationList allow = list({"10.0.0.1:80"});
  CHECK(allow.check("10.0.0.1", 80) == kAllowedLiteral);
  CHECK(allow.check("10.0.0.2", 80) == kRefused);
  CHECK(allow.check("10.0.0.1", 81) == kRefused);
}

TEST_CASE("an IPv6 literal matches the same address in brackets however it is written",
          "[conf][destination]") {
  const DestinationList allow = list({"[2001:db8::1]:443"});
  CHECK(allow.check("[2001:db8::1]", 443) == kAllowedLiteral);
  CHECK(allow.check("[2001:DB8:0:0:0:0:0:1]", 443) == kAllowedLiteral);
  CHECK(allow.check("[2001:db8::2]", 443) == kRefused);
  CHECK(allow.check("2001:db8::1", 443) == kRefused);  // no brackets: no literal
}

TEST_CASE("a literal pattern never matches a name", "[conf][destination]") {
  const DestinationList allow = list({"127.0.0.1:80", "[::1]:80"});
  CHECK(allow.check("localhost", 80) == kRefused);
  CHECK(allow.check("127.0.0.1.nip.io", 80) == kRefused);
}

TEST_CASE("a name or suffix pattern never matches a literal", "[conf][destination]") {
  const DestinationList allow = list({"*.0.0.1:80", "*.1:80", "localhost:80"});
  CHECK(allow.check("127.0.0.1", 80) == kRefused);
  CHECK(allow.check("10.0.0.1", 80) == kRefused);
  CHECK(allow.check("localhost", 80) == kAllowed);
}

TEST_CASE("a pattern without a port allows 80 and 443 only", "[conf][destination]") {
  const DestinationList allow = list({"example.com"});
  CHECK(allow.check("example.com", 80) == kAllowed);
  CHECK(allow.check("example.com", 443) == kAllowed);
  for (uint16_t port : {1, 22, 8080, 8443, 65535}) {
    INFO(port);
    CHECK(allow.check("example.com", port) == kRefused);
  }
}

TEST_CASE("a pattern with a port allows that port only", "[conf][destination]") {
  const DestinationList allow = list({"example.com:8080"});
  CHECK(allow.check("example.com", 8080) == kAllowed);
  CHECK(allow.check("example.com", 80) == kRefused);
  CHECK(allow.check("example.com", 443) == kRefused);
}

TEST_CASE("a \"*\" port allows every port", "[conf][destination]") {
  const DestinationList allow = list({"example.com:*"});
  for (uint16_t port : {1, 80, 443, 8080, 65535}) {
    INFO(port);
    CHECK(allow.check("example.com", port) == kAllowed);
  }
}

TEST_CASE("a matching literal pattern wins over a matching name pattern", "[conf][destination]") {
  CHECK(list({"*:*", "[::1]:443"}).check("[::1]", 443) == kAllowedLiteral);
  CHECK(list({"[::1]:443", "*:*"}).check("[::1]", 443) == kAllowedLiteral);
  CHECK(list({"*:*", "127.0.0.1:80"}).check("127.0.0.1", 8080) == kAllowed);
}

TEST_CASE("an empty list refuses every destination", "[conf][destination]") {
  const DestinationList allow;
  CHECK(allow.check("example.com", 443) == kRefused);
  CHECK(allow.check("127.0.0.1", 80) == kRefused);
  CHECK(allow.check("[::1]", 443) == kRefused);
}

TEST_CASE("host_literal reads IPv4 bare and IPv6 in brackets only", "[conf][destination]") {
  IpAddress ip;
  CHECK(host_literal("192.0.2.1", &ip));
  CHECK(ip.family == AF_INET);
  CHECK(host_literal("[2001:db8::1]", &ip));
  CHECK(ip.family == AF_INET6);
  CHECK_FALSE(host_literal("2001:db8::1", &ip));
  CHECK_FALSE(host_literal("[192.0.2.1]", &ip));
  CHECK_FALSE(host_literal("example.com", &ip));
  CHECK_FALSE(host_literal("[]", &ip));
  CHECK_FALSE(host_literal("", &ip));
}

}  // namespace
}  // namespace sluice::conf
