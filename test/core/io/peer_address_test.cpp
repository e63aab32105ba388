// Specification of the client address text that X-Forwarded-For, the client_ip key and logs use.
#include "core/io/peer_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

using sluice::core::peer_address;

namespace {

std::string text_of(int family, const char* ip) {
  sockaddr_storage ss{};
  ss.ss_family = static_cast<sa_family_t>(family);
  if (family == AF_INET)
    REQUIRE(inet_pton(AF_INET, ip, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1);
  else if (family == AF_INET6)
    REQUIRE(inet_pton(AF_INET6, ip, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) == 1);
  char out[INET6_ADDRSTRLEN];
  peer_address(ss, out, sizeof out);
  return out;
}

}  // namespace

TEST_CASE("an IPv4 peer is written as its dotted quad, one to three digits an octet") {
  for (const char* ip :
       {"127.0.0.1", "0.0.0.0", "255.255.255.255", "10.20.30.40", "192.168.9.99", "1.100.10.101"})
    CHECK(text_of(AF_INET, ip) == ip);
}

TEST_CASE("an IPv6 peer is written in its short form") {
  CHECK(text_of(AF_INET6, "::1") == "::1");
  CHECK(text_of(AF_INET6, "2001:db8::8:800:200c:417a") == "2001:db8::8:800:200c:417a");
}

TEST_CASE("a peer of another family is written as unknown") {
  CHECK(text_of(AF_UNIX, nullptr) == "unknown");
}
