// PROXY protocol headers, versions 1 (text) and 2 (binary), as HAProxy's specification defines
// them (doc/proxy-protocol.txt): an L4 balancer puts one at the start of each TCP connection to
// name the client it carries. The parser reads one off the start of a connection from the bytes
// seen so far, however few; the writer makes one for a connection to a backend.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

namespace sluice::core {

// A v1 line, CRLF included, is at most 107 bytes (the specification's worst case).
inline constexpr size_t kProxyV1MaxLength = 107;
// A v2 header is 16 bytes and then `length` bytes of addresses and TLVs. The field allows
// 65535; we refuse more than 1024 (the whole header 1040 bytes): an IPv6 address block is 36,
// a UNIX one 216, and the TLVs balancers send (AWS's VPC endpoint ID, Azure's link ID, TLS
// facts, a unique ID of at most 128 bytes) fit many times over.
inline constexpr size_t kProxyV2MaxAddressLength = 1024;
inline constexpr size_t kProxyV2MaxLength = 16 + kProxyV2MaxAddressLength;
// The most a reader must hold to see any acceptable header whole.
inline constexpr size_t kProxyHeaderMaxLength = kProxyV2MaxLength;
// The most the writer writes (a v1 TCP6 line is 104 bytes, a v2 IPv6 header 52).
inline constexpr size_t kProxyHeaderMaxWrite = 108;

enum class ProxyParse : uint8_t { kNeedMore, kDone, kError };

struct ProxyHeader {
  ProxyParse status = ProxyParse::kNeedMore;
  uint8_t version = 0;  // 1 or 2 once the first byte told which; 0 before
  size_t need = 0;      // kNeedMore: at least this many more bytes before anything is decided
  size_t length = 0;    // kDone: the header's length; the connection's own bytes follow it
  // kDone: the header names the connection's endpoints (TCP over IPv4 or IPv6). False for v2's
  // LOCAL command (a balancer's health check), v1's UNKNOWN, and v2 families the proxy has no
  // use for (UNSPEC, UDP, UNIX): the socket's own addresses stand.
  bool has_addresses = false;
  sockaddr_storage source{};       // the client, with its port
  sockaddr_storage destination{};  // the address the client connected to, with its port
  const char* error = nullptr;     // kError: a short reason (static text)
};

// Reads a header at the start of `data`. Reads no byte past `size`; kDone never claims more
// than `size` bytes. Strict: v1 needs exactly "PROXY", single spaces, a known family, canonical
// addresses of that family (IPv4 without leading zeros), ports 0..65535 without leading zeros
// and CRLF within 107 bytes; v2 needs the signature, version 2, a known command, a family and
// protocol the specification defines, an address block as long as the family needs, TLVs that
// fill the rest exactly, and a CRC32C TLV, when present, that matches.
ProxyHeader parse_proxy_header(const char* data, size_t size);

// Writes a header naming the connection `source` -> `destination` (IPv4 or IPv6 with ports)
// into `out` (kProxyHeaderMaxWrite bytes) and returns its length. With one address IPv4 and
// the other IPv6, the IPv4 one is written as IPv4-mapped IPv6. Without addresses (null, or a
// family other than IPv4 and IPv6) the header names none: v1 "PROXY UNKNOWN", v2 LOCAL, as
// for connections the proxy makes on its own behalf (health checks).
size_t write_proxy_v1(const sockaddr* source, const sockaddr* destination, char* out);
size_t write_proxy_v2(const sockaddr* source, const sockaddr* destination, char* out);

}  // namespace sluice::core
