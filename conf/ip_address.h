// An IP address as the access tables and the forward proxy's allow list compare it: numeric,
// family and bytes, parsed and written without the C library's locale-aware paths.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::conf {

// A client's IP address as the tables match it. An IPv4-mapped IPv6 address (::ffff:a.b.c.d,
// what a dual-stack socket reports for an IPv4 client) is held as the IPv4 address, so IPv4
// rules apply to it.
struct IpAddress {
  sa_family_t family = AF_UNSPEC;  // AF_INET, AF_INET6, or AF_UNSPEC for none
  uint8_t bytes[16] = {};          // network order; the first 4 for IPv4
};

// The IP of a socket address (its port left out); AF_UNSPEC for other families.
IpAddress ip_address(const sockaddr* address);
inline IpAddress ip_address(const sockaddr_storage& address) {
  return ip_address(reinterpret_cast<const sockaddr*>(&address));
}
// A numeric IPv4 or IPv6 address as inet_pton reads it (no brackets, port or zone); false for
// anything else.
bool parse_ip_address(std::string_view text, IpAddress* out);
// The address as text ("10.0.0.1", "2001:db8::1") into `out` of INET6_ADDRSTRLEN bytes or more.
void format_ip_address(const IpAddress& address, char* out, size_t size);

}  // namespace sluice::conf
