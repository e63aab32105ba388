// The prefix tree behind access lists and trusted_proxies: the most specific network wins,
// /0 to /32 and /128, IPv4 and IPv6 kept apart, IPv4-mapped addresses matched as IPv4, a network
// given twice, random tables checked against a plain scan, and IPv4 text read and written as libc
// does.
#include "conf/prefix_tree.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "conf/socket_address.h"

namespace sluice::conf {
namespace {

Cidr cidr(const std::string& text) {
  std::string problem;
  std::optional<Cidr> parsed = parse_cidr(text, &problem);
  INFO(text << ": " << problem);
  REQUIRE(parsed.has_value());
  return *parsed;
}

IpAddress ip(const char* text) {
  IpAddress out;
  INFO(text);
  REQUIRE(parse_ip_address(text, &out));
  return out;
}

// A tree of (network, value) pairs.
PrefixTree tree(const std::vector<std::pair<std::string, uint8_t>>& networks) {
  PrefixTree::Builder builder;
  for (const auto& [text, value] : networks) builder.add(cidr(text), value);
  return builder.build();
}

}  // namespace

TEST_CASE("prefix tree: an empty tree finds nothing", "[conf][prefix_tree]") {
  const PrefixTree empty = tree({});
  CHECK(empty.empty());
  CHECK(empty.lookup(ip("10.0.0.1")) == PrefixTree::kNone);
  CHECK(empty.lookup(ip("::1")) == PrefixTree::kNone);
  CHECK(empty.lookup(IpAddress{}) == PrefixTree::kNone);
}

TEST_CASE("prefix tree: the most specific network wins, whatever the order given",
          "[conf][prefix_tree]") {
  const PrefixTree t = tree({{"10.0.5.0/24", 2}, {"10.0.0.0/8", 1}, {"10.0.5.7", 3}});
  CHECK(t.lookup(ip("10.1.2.3")) == 1);
  CHECK(t.lookup(ip("10.0.5.1")) == 2);
  CHECK(t.lookup(ip("10.0.5.7")) == 3);
  CHECK(t.lookup(ip("10.0.4.255")) == 1);
  CHECK(t.lookup(ip("10.0.6.0")) == 1);
  CHECK(t.lookup(ip("11.0.0.0")) == PrefixTree::kNone);
  CHECK(t.lookup(ip("9.255.255.255")) == PrefixTree::kNone);
}

TEST_CASE("prefix tree: /0 covers its whole family and only it", "[conf][prefix_tree]") {
  const PrefixTree v4 = tree({{"0.0.0.0/0", 1}, {"192.0.2.0/24", 2}});
  CHECK(v4.lookup(ip("0.0.0.0")) == 1);
  CHECK(v4.lookup(ip("255.255.255.255")) == 1);
  CHECK(v4.lookup(ip("192.0.2.200")) == 2);
  CHECK(v4.lookup(ip("::1")) == PrefixTree::kNone);

  const PrefixTree v6 = tree({{"::/0", 1}, {"2001:db8::/32", 2}});
  CHECK(v6.lookup(ip("::")) == 1);
  CHECK(v6.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")) == 1);
  CHECK(v6.lookup(ip("2001:db8:1::1")) == 2);
  CHECK(v6.lookup(ip("10.0.0.1")) == PrefixTree::kNone);  // ::/0 is IPv6 only
}

TEST_CASE("prefix tree: /32 and /128 are single hosts", "[conf][prefix_tree]") {
  const PrefixTree t = tree({{"127.0.0.1/32", 1}, {"::1/128", 2}, {"2001:db8::ff/128", 3}});
  CHECK(t.lookup(ip("127.0.0.1")) == 1);
  CHECK(t.lookup(ip("127.0.0.2")) == PrefixTree::kNone);
  CHECK(t.lookup(ip("127.0.0.0")) == PrefixTree::kNone);
  CHECK(t.lookup(ip("::1")) == 2);
  CHECK(t.lookup(ip("::")) == PrefixTree::kNone);
  CHECK(t.lookup(ip("::2")) == PrefixTree::kNone);
  CHECK(t.lookup(ip("2001:db8::ff")) == 3);
  CHECK(t.lookup(ip("2001:db8::fe")) == PrefixTree::kNone);
  CHECK(t.lookup(ip("2001:db8::1ff")) == PrefixTree::kNone);
}

TEST_CASE("prefix tree: prefixes that are not byte-aligned, across the 64-bit halves",
          "[conf][prefix_tree]") {
  const PrefixTree t = tree({{"172.16.0.0/12", 1},
                             {"2001:db8:0:0:8000::/65", 2},
                             {"2001:db8::/64", 3},
                             {"2001:db8::/63", 4}});
  CHECK(t.lookup(ip("172.31.255.255")) == 1);
  CHECK(t.lookup(ip("172.32.0.0")) == PrefixTree::kNone);
  CHECK(t.lookup(ip("172.15.255.255")) == PrefixTree::kNone);
  CHECK(t.lookup(ip("2001:db8::8000:0:0:1")) == 2);
  CHECK(t.lookup(ip("2001:db8::7fff:0:0:1")) == 3);
  CHECK(t.lookup(ip("2001:db8:0:1::1")) == 4);
  CHECK(t.lookup(ip("2001:db8:0:2::1")) == PrefixTree::kNone);
}

TEST_CASE("prefix tree: IPv4-mapped addresses and networks are IPv4", "[conf][prefix_tree]") {
  const PrefixTree t = tree({{"10.0.0.0/8", 1}, {"::ffff:192.0.2.0/120", 2}});
  CHECK(t.lookup(ip("::ffff:10.1.2.3")) == 1);
  CHECK(t.lookup(ip("192.0.2.9")) == 2);
  CHECK(t.lookup(ip("::ffff:192.0.2.9")) == 2);

  sockaddr_in6 mapped{};
  mapped.sin6_family = AF_INET6;
  REQUIRE(inet_pton(AF_INET6, "::ffff:10.9.9.9", &mapped.sin6_addr) == 1);
  const IpAddress from_socket = ip_address(reinterpret_cast<const sockaddr*>(&mapped));
  CHECK(from_socket.family == AF_INET);
  CHECK(t.lookup(from_socket) == 1);
  char text[INET6_ADDRSTRLEN];
  format_ip_address(from_socket, text, sizeof text);
  CHECK(std::string(text) == "10.9.9.9");
}

TEST_CASE("prefix tree: a network given twice keeps the larger value", "[conf][prefix_tree]") {
  CHECK(tree({{"10.0.0.0/8", 0}, {"10.0.0.0/8", 1}}).lookup(ip("10.2.3.4")) == 1);
  CHECK(tree({{"10.0.0.0/8", 1}, {"10.0.0.0/8", 0}}).lookup(ip("10.2.3.4")) == 1);
  CHECK(tree({{"::1", 1}, {"::1/128", 0}}).lookup(ip("::1")) == 1);
}

TEST_CASE("prefix tree: overlapping networks nest at every depth", "[conf][prefix_tree]") {
  std::vector<std::pair<std::string, uint8_t>> chain;
  for (int bits = 0; bits <= 32; bits += 4) {
    const uint32_t network = bits == 0 ? 0 : 0xC0A80101u & (~0u << (32 - bits));
    in_addr a{htonl(network)};
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, text, sizeof text);
    chain.emplace_back(std::string(text) + "/" + std::to_string(bits), bits);
  }
  const PrefixTree t = tree(chain);
  CHECK(t.lookup(ip("192.168.1.1")) == 32);
  CHECK(t.lookup(ip("192.168.1.0")) == 28);
  CHECK(t.lookup(ip("192.168.0.1")) == 20);
  CHECK(t.lookup(ip("192.0.0.0")) == 8);
  CHECK(t.lookup(ip("8.8.8.8")) == 0);
}

// Random networks of both families against a linear scan: the longest match, value of the
// larger on a tie. Addresses are drawn near the networks so that most of them match something.
TEST_CASE("prefix tree: random tables agree with a plain scan", "[conf][prefix_tree]") {
  std::mt19937_64 random(20261124);
  for (int round = 0; round < 20; ++round) {
    struct Net {
      Cidr cidr;
      uint8_t value;
    };
    std::vector<Net> nets;
    PrefixTree::Builder builder;
    const int count = 1 + static_cast<int>(random() % 300);
    for (int i = 0; i < count; ++i) {
      Cidr c;
      c.family = random() % 2 ? AF_INET : AF_INET6;
      const unsigned bits = c.family == AF_INET ? 32 : 128;
      c.prefix = static_cast<uint8_t>(random() % (bits + 1));
      for (unsigned b = 0; b < bits / 8; ++b) c.bytes[b] = static_cast<uint8_t>(random() % 4);
      for (unsigned b = c.prefix; b < bits; ++b) c.bytes[b / 8] &= ~(0x80u >> (b % 8));
      const auto value = static_cast<uint8_t>(random() % 3);
      nets.push_back({c, value});
      builder.add(c, value);
    }
    const PrefixTree t = builder.build();
    for (int probe = 0; probe < 2000; ++probe) {
      IpAddress a;
      a.family = random() % 2 ? AF_INET : AF_INET6;
      const unsigned bytes = a.family == AF_INET ? 4 : 16;
      for (unsigned b = 0; b < bytes; ++b) a.bytes[b] = static_cast<uint8_t>(random() % 4);
      int best = PrefixTree::kNone, best_prefix = -1;
      sockaddr_storage s{};
      if (a.family == AF_INET) {
        s.ss_family = AF_INET;
        std::memcpy(&reinterpret_cast<sockaddr_in*>(&s)->sin_addr, a.bytes, 4);
      } else {
        s.ss_family = AF_INET6;
        std::memcpy(&reinterpret_cast<sockaddr_in6*>(&s)->sin6_addr, a.bytes, 16);
      }
      for (const Net& n : nets) {
        if (!n.cidr.contains(s)) continue;
        if (n.cidr.prefix > best_prefix || (n.cidr.prefix == best_prefix && n.value > best)) {
          best = n.value;
          best_prefix = n.cidr.prefix;
        }
      }
      INFO("round " << round << ", probe " << probe);
      REQUIRE(t.lookup(a) == best);
    }
  }
}

TEST_CASE("prefix tree: 1,000 networks stay a compact tree", "[conf][prefix_tree]") {
  PrefixTree::Builder builder;
  for (int i = 0; i < 1000; ++i)
    builder.add(cidr("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24"), 1);
  const PrefixTree t = builder.build();
  // A node per network and per fork: at most two per network, where a plain trie needs ~24.
  CHECK(t.node_count() <= 2000);
  CHECK(t.lookup(ip("10.3.231.77")) == 1);
  CHECK(t.lookup(ip("10.3.232.1")) == PrefixTree::kNone);  // 1,000 = 3 * 256 + 232
}

TEST_CASE("addresses: text forms read and written", "[conf][prefix_tree]") {
  IpAddress a;
  CHECK(parse_ip_address("192.0.2.1", &a));
  CHECK(a.family == AF_INET);
  CHECK(parse_ip_address("2001:db8::1", &a));
  CHECK(a.family == AF_INET6);
  CHECK_FALSE(parse_ip_address("", &a));
  CHECK_FALSE(parse_ip_address("192.0.2.1:80", &a));
  CHECK_FALSE(parse_ip_address("[::1]", &a));
  CHECK_FALSE(parse_ip_address("fe80::1%eth0", &a));
  CHECK_FALSE(parse_ip_address("010.0.0.1", &a));
  CHECK_FALSE(parse_ip_address(std::string_view("1.2.3.4\0", 8), &a));
  CHECK_FALSE(parse_ip_address(std::string(200, '1'), &a));
  char text[INET6_ADDRSTRLEN];
  REQUIRE(parse_ip_address("2001:DB8:0::1", &a));
  format_ip_address(a, text, sizeof text);
  CHECK(std::string(text) == "2001:db8::1");
  format_ip_address(IpAddress{}, text, sizeof text);
  CHECK(std::string(text) == "unknown");
}

// IPv4 text is read and written without inet_pton and inet_ntop (X-Forwarded-For entries are
// read per request): both must agree with libc exactly.
TEST_CASE("addresses: IPv4 reads and writes as libc does", "[conf][prefix_tree]") {
  IpAddress a;
  for (const char* good : {"0.0.0.0", "255.255.255.255", "10.0.100.9", "1.2.3.4"}) {
    INFO(good);
    REQUIRE(parse_ip_address(good, &a));
    char text[INET6_ADDRSTRLEN];
    format_ip_address(a, text, sizeof text);
    CHECK(std::string(text) == good);
  }
  for (const char* bad : {"1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "1.2.3.", ".1.2.3",
                          "1.2.3.4 ", "1.2.3.00", "1.2.3.1000", "1.2.3.-1", "a.b.c.d"}) {
    INFO(bad);
    CHECK_FALSE(parse_ip_address(bad, &a));
  }
  std::mt19937_64 random(42);
  const char alphabet[] = "0123456789.";
  for (int i = 0; i < 200000; ++i) {
    std::string text;
    const size_t length = random() % 16;
    for (size_t j = 0; j < length; ++j) text += alphabet[random() % 11];
    if (i % 4 == 0) {  // addresses that are valid more often than chance would make them
      text = std::to_string(random() % 300) + "." + std::to_string(random() % 256) + "." +
             std::to_string(random() % 256) + "." + std::to_string(random() % 260);
    }
    uint8_t theirs[4];
    const bool libc = inet_pton(AF_INET, text.c_str(), theirs) == 1;
    INFO(text);
    REQUIRE(parse_ip_address(text, &a) == libc);
    if (!libc) continue;
    REQUIRE(std::memcmp(a.bytes, theirs, 4) == 0);
    char ours[INET6_ADDRSTRLEN], expected[INET6_ADDRSTRLEN];
    format_ip_address(a, ours, sizeof ours);
    inet_ntop(AF_INET, theirs, expected, sizeof expected);
    REQUIRE(std::string(ours) == expected);
  }
}

}  // namespace sluice::conf
