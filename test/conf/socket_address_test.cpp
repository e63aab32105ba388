// parse_socket_address: numeric IPv4 or bracketed IPv6 with a port 1..65535, nothing else.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>

#include "conf/config.h"

namespace sluice::conf {
namespace {

TEST_CASE("a numeric IPv4 address with a port becomes a sockaddr_in", "[conf][address]") {
  const auto address = parse_socket_address("10.1.2.3:65535");
  REQUIRE(address.has_value());
  CHECK(address->text == "10.1.2.3:65535");
  REQUIRE(address->length == sizeof(sockaddr_in));
  const auto* sin = reinterpret_cast<const sockaddr_in*>(&address->storage);
  CHECK(sin->sin_family == AF_INET);
  CHECK(ntohs(sin->sin_port) == 65535);
  CHECK(ntohl(sin->sin_addr.s_addr) == 0x0A010203u);
}

TEST_CASE("a bracketed IPv6 address with a port becomes a sockaddr_in6", "[conf][address]") {
  const auto address = parse_socket_address("[::]:1");
  REQUIRE(address.has_value());
  REQUIRE(address->length == sizeof(sockaddr_in6));
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&address->storage);
  CHECK(sin6->sin6_family == AF_INET6);
  CHECK(ntohs(sin6->sin6_port) == 1);
  CHECK(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
}

TEST_CASE("anything but a numeric address with a valid port is refused", "[conf][address]") {
  for (const char* text :
       {"", "localhost:80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:+80", "127.0.0.1:8o", "127.1:80", " 127.0.0.1:80", "::1:80", "[::1]", "[::1]80",
        "[::1:80", "[127.0.0.1]:80", "[::1]:123456", "1.2.3.4:80:80"}) {
    INFO('"' << text << '"');
    CHECK_FALSE(parse_socket_address(text).has_value());
  }
}

}  // namespace
}  // namespace sluice::conf
