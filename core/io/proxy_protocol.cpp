// PROXY protocol v1 and v2: a strict, incremental parser and a writer. The parser looks only at
// the bytes it is given and keeps no state between calls, so a reader that has more bytes
// simply calls it again with all of them.
#include "core/io/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace sluice::core {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr size_t kV1MinLength = 15;  // "PROXY UNKNOWN\r\n"
constexpr unsigned char kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr size_t kV2FixedLength = 16;
constexpr unsigned char kV2Local = 0x20;  // version 2, LOCAL
constexpr unsigned char kV2Proxy = 0x21;  // version 2, PROXY
constexpr unsigned char kTlvCrc32c = 0x03;

ProxyHeader need_more(uint8_t version, size_t need) {
  ProxyHeader h;
  h.version = version;
  h.need = need;
  return h;
}

ProxyHeader failed(uint8_t version, const char* why) {
  ProxyHeader h;
  h.status = ProxyParse::kError;
  h.version = version;
  h.error = why;
  return h;
}

ProxyHeader done(uint8_t version, size_t length) {
  ProxyHeader h;
  h.status = ProxyParse::kDone;
  h.version = version;
  h.length = length;
  return h;
}

// True when the first `size` bytes of `data` agree with `expected` as far as both go.
bool agrees(const char* data, size_t size, std::string_view expected) {
  return std::memcmp(data, expected.data(), std::min(size, expected.size())) == 0;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// 0..255 (or 0..65535) in decimal, without leading zeros.
bool parse_decimal(std::string_view text, uint32_t max, uint32_t* out) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (!is_digit(c)) return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > max) return false;
  *out = value;
  return true;
}

// Exactly four decimal numbers 0..255 without leading zeros, separated by single dots.
bool parse_ipv4(std::string_view text, in_addr* out) {
  unsigned char octets[4];
  for (int i = 0; i < 4; ++i) {
    const size_t dot = i < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos) return false;
    uint32_t value = 0;
    if (!parse_decimal(text.substr(0, dot), 255, &value)) return false;
    octets[i] = static_cast<unsigned char>(value);
    text.remove_prefix(i < 3 ? dot + 1 : dot);
  }
  std::memcpy(&out->s_addr, octets, 4);
  return true;
}

// Hex groups with at most one "::" (and an IPv4 tail, as in ::ffff:192.0.2.1), as inet_pton
// reads them; no zone, no brackets.
bool parse_ipv6(std::string_view text, in6_addr* out) {
  char copy[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof copy) return false;
  for (char c : text) {
    const bool hex = is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != ':' && c != '.') return false;
  }
  std::memcpy(copy, text.data(), text.size());
  copy[text.size()] = '\0';
  return inet_pton(AF_INET6, copy, out) == 1;
}

void set_ipv4(sockaddr_storage* out, const in_addr& address, uint16_t port) {
  auto* in = reinterpret_cast<sockaddr_in*>(out);
  in->sin_family = AF_INET;
  in->sin_addr = address;
  in->sin_port = htons(port);
}

void set_ipv6(sockaddr_storage* out, const in6_addr& address, uint16_t port) {
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  in6->sin6_family = AF_INET6;
  in6->sin6_addr = address;
  in6->sin6_port = htons(port);
}

// The text between "PROXY " and CRLF: the family and, for TCP4 and TCP6, the four fields.
ProxyHeader parse_v1_line(std::string_view line, size_t length) {
  if (line.starts_with("UNKNOWN")) {
    // "The receiver must ignore anything presented before the CRLF."
    if (line.size() > 7 && line[7] != ' ') return failed(1, "unknown protocol family");
    return done(1, length);
  }
  const bool v4 = line.starts_with("TCP4 ");
  if (!v4 && !line.starts_with("TCP6 ")) return failed(1, "unknown protocol family");
  std::string_view rest = line.substr(5);
  std::string_view fields[4];
  for (int i = 0; i < 4; ++i) {
    const size_t space = rest.find(' ');
    fields[i] = rest.substr(0, space);
    if (fields[i].empty()) return failed(1, "expected exactly one space between fields");
    if (i < 3 && space == std::string_view::npos)
      return failed(1, "expected two addresses and two ports");
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    if (i == 3 && space != std::string_view::npos)
      return failed(1, rest.empty() ? "expected exactly one space between fields"
                                    : "expected two addresses and two ports");
  }
  ProxyHeader h = done(1, length);
  uint32_t ports[2];
  if (!parse_decimal(fields[2], 65535, &ports[0]) || !parse_decimal(fields[3], 65535, &ports[1]))
    return failed(1, "a port is not a number 0..65535 without leading zeros");
  if (v4) {
    in_addr source, destination;
    if (!parse_ipv4(fields[0], &source) || !parse_ipv4(fields[1], &destination))
      return failed(1, "an address is not a canonical IPv4 address");
    set_ipv4(&h.source, source, static_cast<uint16_t>(ports[0]));
    set_ipv4(&h.destination, destination, static_cast<uint16_t>(ports[1]));
  } else {
    in6_addr source, destination;
    if (!parse_ipv6(fields[0], &source) || !parse_ipv6(fields[1], &destination))
      return failed(1, "an address is not an IPv6 address");
    set_ipv6(&h.source, source, static_cast<uint16_t>(ports[0]));
    set_ipv6(&h.destination, destination, static_cast<uint16_t>(ports[1]));
  }
  h.has_addresses = true;
  return h;
}

ProxyHeader parse_v1(const char* data, size_t size) {
  if (!agrees(data, size, kV1Prefix)) return failed(1, "not a PROXY protocol header");
  if (size > kV1Prefix.size()) {
    // Refuse an unknown family as soon as it shows, before waiting for the line to end.
    const char* family = data + kV1Prefix.size();
    const size_t seen = size - kV1Prefix.size();
    if (!agrees(family, seen, "TCP4 ") && !agrees(family, seen, "TCP6 ") &&
        !agrees(family, seen, "UNKNOWN ") && !agrees(family, seen, "UNKNOWN\r"))
      return failed(1, "unknown protocol family");
  }
  const size_t limit = std::min(size, kProxyV1MaxLength);
  for (size_t i = kV1Prefix.size(); i < limit; ++i) {
    const char c = data[i];
    if (c == '\r') {
      if (i + 2 > kProxyV1MaxLength) break;  // its LF would be byte 108
      if (i + 1 == size) return need_more(1, 1);
      if (data[i + 1] != '\n') return failed(1, "CR without LF");
      return parse_v1_line(std::string_view(data + kV1Prefix.size(), i - kV1Prefix.size()), i + 2);
    }
    if (c == '\n') return failed(1, "LF without CR");
    if (c < 0x20 || c > 0x7e) return failed(1, "a byte that is not printable ASCII");
  }
  if (size >= kProxyV1MaxLength) return failed(1, "no CRLF within 107 bytes");
  return need_more(1, size < kV1MinLength ? kV1MinLength - size : 1);
}

// CRC32C (Castagnoli, reflected, as RFC 4960 appendix B) of `data`, with the four bytes at
// `zeroed` read as zeros: the checksum field itself.
uint32_t crc32c(const unsigned char* data, size_t size, size_t zeroed) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= i >= zeroed && i < zeroed + 4 ? 0u : data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint16_t read_u16(const unsigned char* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

// The address block's length for a family and protocol byte of the specification; -1 for
// any other byte.
int address_length(unsigned char family) {
  switch (family) {
    case 0x00:  // UNSPEC
      return 0;
    case 0x11:  // TCP over IPv4
    case 0x12:  // UDP over IPv4
      return 12;
    case 0x21:  // TCP over IPv6
    case 0x22:  // UDP over IPv6
      return 36;
    case 0x31:  // UNIX stream
    case 0x32:  // UNIX datagram
      return 216;
    default:
      return -1;
  }
}

ProxyHeader parse_v2(const unsigned char* p, size_t size) {
  if (std::memcmp(p, kV2Signature, std::min(size, sizeof kV2Signature)) != 0)
    return failed(2, "not a PROXY protocol header");
  if (size > 12 && (p[12] >> 4) != 2) return failed(2, "version is not 2");
  if (size > 12 && p[12] != kV2Local && p[12] != kV2Proxy) return failed(2, "unknown command");
  // LOCAL: "the receiver ... must discard the protocol block including the family".
  const bool proxy = size > 12 && p[12] == kV2Proxy;
  if (proxy && size > 13 && address_length(p[13]) < 0)
    return failed(2, "unknown address family or protocol");
  if (size < kV2FixedLength) return need_more(2, kV2FixedLength - size);
  const size_t length = read_u16(p + 14);
  if (length > kProxyV2MaxAddressLength) return failed(2, "longer than 1040 bytes");
  const size_t addresses = proxy ? static_cast<size_t>(address_length(p[13])) : 0;
  if (length < addresses) return failed(2, "address block shorter than its family needs");
  const size_t total = kV2FixedLength + length;
  if (size < total) return need_more(2, total - size);
  if (!proxy) return done(2, total);

  // TLVs fill the rest exactly; a CRC32C one is checked.
  for (size_t at = kV2FixedLength + addresses; at < total;) {
    if (total - at < 3) return failed(2, "a TLV cut short");
    const size_t value = read_u16(p + at + 1);
    if (value > total - at - 3) return failed(2, "a TLV runs past the header");
    if (p[at] == kTlvCrc32c) {
      if (value != 4) return failed(2, "a CRC32C TLV that is not 4 bytes");
      const uint32_t sent =
          static_cast<uint32_t>(p[at + 3]) << 24 | p[at + 4] << 16 | p[at + 5] << 8 | p[at + 6];
      if (crc32c(p, total, at + 3) != sent) return failed(2, "CRC32C mismatch");
    }
    at += 3 + value;
  }

  ProxyHeader h = done(2, total);
  const unsigned char* a = p + kV2FixedLength;
  if (p[13] == 0x11) {
    in_addr source, destination;
    std::memcpy(&source.s_addr, a, 4);
    std::memcpy(&destination.s_addr, a + 4, 4);
    set_ipv4(&h.source, source, read_u16(a + 8));
    set_ipv4(&h.destination, destination, read_u16(a + 10));
    h.has_addresses = true;
  } else if (p[13] == 0x21) {
    in6_addr source, destination;
    std::memcpy(&source, a, 16);
    std::memcpy(&destination, a + 16, 16);
    set_ipv6(&h.source, source, read_u16(a + 32));
    set_ipv6(&h.destination, destination, read_u16(a + 34));
    h.has_addresses = true;
  }
  return h;
}

bool usable(const sockaddr* address) {
  return address != nullptr && (address->sa_family == AF_INET || address->sa_family == AF_INET6);
}

// `address` as IPv6 (IPv4 becomes IPv4-mapped) with its port, in network order.
void as_ipv6(const sockaddr* address, in6_addr* out, uint16_t* port) {
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    *out = in6->sin6_addr;
    *port = in6->sin6_port;
    return;
  }
  const auto* in = reinterpret_cast<const sockaddr_in*>(address);
  std::memset(out, 0, sizeof *out);
  out->s6_addr[10] = 0xff;
  out->s6_addr[11] = 0xff;
  std::memcpy(&out->s6_addr[12], &in->sin_addr.s_addr, 4);
  *port = in->sin_port;
}

}  // namespace

ProxyHeader parse_proxy_header(const char* data, size_t size) {
  if (size == 0) return need_more(0, 1);
  if (data[0] == 'P') return parse_v1(data, size);
  if (data[0] == '\r') return parse_v2(reinterpret_cast<const unsigned char*>(data), size);
  return failed(0, "not a PROXY protocol header");
}

size_t write_proxy_v1(const sockaddr* source, const sockaddr* destination, char* out) {
  if (!usable(source) || !usable(destination)) {
    static constexpr std::string_view kUnknown = "PROXY UNKNOWN\r\n";
    std::memcpy(out, kUnknown.data(), kUnknown.size());
    return kUnknown.size();
  }
  char from[INET6_ADDRSTRLEN], to[INET6_ADDRSTRLEN];
  unsigned from_port, to_port;
  const bool v4 = source->sa_family == AF_INET && destination->sa_family == AF_INET;
  if (v4) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(source);
    const auto* d = reinterpret_cast<const sockaddr_in*>(destination);
    inet_ntop(AF_INET, &s->sin_addr, from, sizeof from);
    inet_ntop(AF_INET, &d->sin_addr, to, sizeof to);
    from_port = ntohs(s->sin_port);
    to_port = ntohs(d->sin_port);
  } else {
    in6_addr s, d;
    uint16_t sp, dp;
    as_ipv6(source, &s, &sp);
    as_ipv6(destination, &d, &dp);
    inet_ntop(AF_INET6, &s, from, sizeof from);
    inet_ntop(AF_INET6, &d, to, sizeof to);
    from_port = ntohs(sp);
    to_port = ntohs(dp);
  }
  const int n = std::snprintf(out, kProxyHeaderMaxWrite, "PROXY %s %s %s %u %u\r\n",
                              v4 ? "TCP4" : "TCP6", from, to, from_port, to_port);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

size_t write_proxy_v2(const sockaddr* source, const sockaddr* destination, char* out) {
  auto* p = reinterpret_cast<unsigned char*>(out);
  std::memcpy(p, kV2Signature, sizeof kV2Signature);
  if (!usable(source) || !usable(destination)) {
    p[12] = kV2Local;
    p[13] = p[14] = p[15] = 0;
    return kV2FixedLength;
  }
  p[12] = kV2Proxy;
  unsigned char* a = p + kV2FixedLength;
  if (source->sa_family == AF_INET && destination->sa_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(source);
    const auto* d = reinterpret_cast<const sockaddr_in*>(destination);
    p[13] = 0x11;
    p[14] = 0;
    p[15] = 12;
    std::memcpy(a, &s->sin_addr.s_addr, 4);
    std::memcpy(a + 4, &d->sin_addr.s_addr, 4);
    std::memcpy(a + 8, &s->sin_port, 2);
    std::memcpy(a + 10, &d->sin_port, 2);
    return kV2FixedLength + 12;
  }
  in6_addr s, d;
  uint16_t sp, dp;
  as_ipv6(source, &s, &sp);
  as_ipv6(destination, &d, &dp);
  p[13] = 0x21;
  p[14] = 0;
  p[15] = 36;
  std::memcpy(a, &s, 16);
  std::memcpy(a + 16, &d, 16);
  std::memcpy(a + 32, &sp, 2);
  std::memcpy(a + 34, &dp, 2);
  return kV2FixedLength + 36;
}

}  // namespace sluice::core
