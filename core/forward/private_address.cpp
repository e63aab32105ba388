// One comparison per range: IPv4-mapped IPv6 addresses arrive here as IPv4 (conf::ip_address).
#include "core/forward/private_address.h"

#include <cstdint>

namespace sluice::forward {
namespace {

struct Range4 {
  uint32_t network;
  int bits;
};

constexpr Range4 kPrivate4[] = {
    {0x00000000, 8},   // "this network", 0.0.0.0
    {0x0a000000, 8},   // 10/8
    {0x64400000, 10},  // 100.64/10, carrier-grade NAT
    {0x7f000000, 8},   // loopback
    {0xa9fe0000, 16},  // link-local, 169.254.169.254 the metadata service among them
    {0xac100000, 12},  // 172.16/12
    {0xc0000000, 24},  // IETF protocol assignments
    {0xc0a80000, 16},  // 192.168/16
    {0xc6120000, 15},  // 198.18/15, benchmarking
    {0xe0000000, 3},   // multicast, reserved and broadcast (224/4, 240/4)
};

bool private4(const uint8_t* b) {
  const uint32_t a = uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
  for (const Range4& r : kPrivate4)
    if ((a >> (32 - r.bits)) == (r.network >> (32 - r.bits))) return true;
  return false;
}

bool private6(const uint8_t* b) {
  bool zero_to_12 = true;
  for (int i = 0; i < 12; ++i) zero_to_12 = zero_to_12 && b[i] == 0;
  if (zero_to_12) return true;             // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
  if ((b[0] & 0xfe) == 0xfc) return true;  // fc00::/7, unique-local
  if (b[0] == 0xfe && (b[1] & 0x80) == 0x80) return true;  // fe80::/10 link-local, fec0::/10
  if (b[0] == 0xff) return true;                           // multicast
  // 64:ff9b:1::/48, NAT64 for a network's own use.
  if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1)
    return true;
  // 2002::/16 (6to4) carries an IPv4 address in its next four bytes.
  if (b[0] == 0x20 && b[1] == 0x02) return private4(b + 2);
  // 64:ff9b::/96 (NAT64) reaches the IPv4 address in its last four bytes.
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  bool nat64 = true;
  for (int i = 0; i < 12; ++i) nat64 = nat64 && b[i] == kNat64[i];
  return nat64 && private4(b + 12);
}

}  // namespace

bool private_address(const conf::IpAddress& address) {
  if (address.family == AF_INET) return private4(address.bytes);
  if (address.family == AF_INET6) return private6(address.bytes);
  return true;  // nothing else is reachable over TCP here
}

}  // namespace sluice::forward
