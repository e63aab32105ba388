// Shared by the tests that need a socket address from text: an IPv4 or IPv6 literal and a port
// as a sockaddr_storage, as accept() or a PROXY header would give it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstdint>

namespace sluice::test {

inline sockaddr_storage endpoint(const char* ip, uint16_t port = 40000) {
  sockaddr_storage out{};
  if (inet_pton(AF_INET, ip, &reinterpret_cast<sockaddr_in*>(&out)->sin_addr) == 1) {
    out.ss_family = AF_INET;
    reinterpret_cast<sockaddr_in*>(&out)->sin_port = htons(port);
  } else {
    REQUIRE(inet_pton(AF_INET6, ip, &reinterpret_cast<sockaddr_in6*>(&out)->sin6_addr) == 1);
    out.ss_family = AF_INET6;
    reinterpret_cast<sockaddr_in6*>(&out)->sin6_port = htons(port);
  }
  return out;
}

}  // namespace sluice::test
