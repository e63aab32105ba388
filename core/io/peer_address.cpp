// Peer addresses as text.
#include "core/io/peer_address.h"

#include <arpa/inet.h>

#include <cstring>

namespace sluice::core {
namespace {

// Dotted quad by hand: glibc's inet_ntop formats IPv4 with sprintf, about a thousand
// instructions per accepted connection.
void ipv4_text(const in_addr& address, char* out) {
  const auto* octets = reinterpret_cast<const unsigned char*>(&address.s_addr);
  for (int i = 0; i < 4; ++i) {
    const unsigned v = octets[i];
    if (v >= 100) *out++ = static_cast<char>('0' + v / 100);
    if (v >= 10) *out++ = static_cast<char>('0' + v / 10 % 10);
    *out++ = static_cast<char>('0' + v % 10);
    *out++ = i < 3 ? '.' : '\0';
  }
}

}  // namespace

void peer_address(const sockaddr_storage& ss, char* out, size_t size) {
  std::strncpy(out, "unknown", size);
  if (ss.ss_family == AF_INET && size >= INET_ADDRSTRLEN)
    ipv4_text(reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, out);
  else if (ss.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, out, size);
}

}  // namespace sluice::core
