// SO_ORIGINAL_DST is IPv4's option at SOL_IP; IPv6 has its own (IP6T_SO_ORIGINAL_DST at
// SOL_IPV6), with the same number. Without a conntrack entry (tproxy, or no NAT at all) the
// local address stands in.
#include "core/server/original_destination.h"

#include <netinet/in.h>

#include <cstring>

namespace sluice::core {
namespace {

// From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>, which clash with the C
// library's <netinet/in.h>.
constexpr int kOriginalDestination = 80;  // SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST

}  // namespace

bool original_destination(int fd, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  socklen_t length = sizeof *out;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(out), &length) != 0) return false;
  sockaddr_storage original{};
  length = sizeof original;
  const bool v6 = out->ss_family == AF_INET6;
  const int found =
      ::getsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, kOriginalDestination, &original, &length);
  if (found == 0 && original.ss_family == out->ss_family) *out = original;
  return true;
}

}  // namespace sluice::core
