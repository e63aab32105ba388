// Which addresses a forward proxy keeps its clients away from unless allow_private: loopback,
// private, shared, link-local (the metadata service), multicast, broadcast and reserved ranges,
// in IPv4 and IPv6, NAT64 and IPv4-mapped forms included.
#include "core/forward/private_address.h"

#include <catch2/catch.hpp>

namespace sluice::forward {
namespace {

bool private_text(const char* text) {
  conf::IpAddress ip;
  INFO(text);
  REQUIRE(conf::parse_ip_address(text, &ip));
  return private_address(ip);
}

void check_private(std::initializer_list<const char*> texts) {
  for (const char* text : texts) {
    INFO(text);
    CHECK(private_text(text));
  }
}

void check_public(std::initializer_list<const char*> texts) {
  for (const char* text : texts) {
    INFO(text);
    CHECK_FALSE(private_text(text));
  }
}

TEST_CASE("RFC 1918 networks are private at both ends", "[forward][private]") {
  check_private({"10.0.0.0", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255",
                 "192.168.0.1", "192.168.255.255"});
}

TEST_CASE("addresses just outside the RFC 1918 networks are public", "[forward][private]") {
  check_public({"11.0.0.1", "9.255.255.255", "172.15.255.255", "172.32.0.1", "192.167.255.255",
                "192.169.0.1"});
}

TEST_CASE("loopback, this network and the unspecified address are private", "[forward][private]") {
  check_private({"127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3", "::1", "::"});
}

TEST_CASE("link-local addresses and the metadata service are private", "[forward][private]") {
  check_private({"169.254.169.254", "169.254.0.1", "fe80::1", "febf:ffff::1"});
  check_public({"169.253.255.255", "169.255.0.1"});
}

TEST_CASE("the shared address space 100.64/10 is private, its neighbours not",
          "[forward][private]") {
  check_private({"100.64.0.1", "100.127.255.255"});
  check_public({"100.63.255.255", "100.128.0.1"});
}

TEST_CASE("multicast, reserved and broadcast addresses are private", "[forward][private]") {
  check_private(
      {"224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "ff02::1", "ff05::2"});
}

TEST_CASE("IETF protocol assignments and the benchmarking network are private",
          "[forward][private]") {
  check_private({"192.0.0.1", "198.18.0.1", "198.19.255.255"});
  check_public({"198.17.255.255", "198.20.0.1"});
}

TEST_CASE("IPv6 unique-local addresses fc00::/7 are private", "[forward][private]") {
  check_private({"fc00::1", "fd12:3456::1", "fdff:ffff::1"});
}

TEST_CASE("a NAT64 address is private when its IPv4 address is", "[forward][private]") {
  check_private({"64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe"});
  check_public({"64:ff9b::808:808"});
}

TEST_CASE("local-use NAT64, site-local and IPv4-compatible IPv6 addresses are private",
          "[forward][private]") {
  check_private({"64:ff9b:1::808:808", "fec0::1", "::8.8.8.8", "::a00:1"});
}

TEST_CASE("a 6to4 address is private when its IPv4 address is", "[forward][private]") {
  check_private({"2002:7f00:1::1", "2002:a00:1::1", "2002:a9fe:a9fe::1"});
  check_public({"2002:808:808::1"});
}

TEST_CASE("an IPv4-mapped IPv6 address is judged as its IPv4 address", "[forward][private]") {
  check_private({"::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254"});
  check_public({"::ffff:8.8.8.8"});
}

TEST_CASE("public addresses are not private", "[forward][private]") {
  check_public(
      {"8.8.8.8", "1.1.1.1", "93.184.216.34", "2001:4860:4860::8888", "2606:4700:4700::1111"});
}

TEST_CASE("an address of no family is private: nothing reaches it", "[forward][private]") {
  CHECK(private_address(conf::IpAddress{}));
}

}  // namespace
}  // namespace sluice::forward
