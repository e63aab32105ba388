// Feeds arbitrary bytes to the PROXY protocol parser and checks what the listener relies on: it
// reads nothing past what it is given (each call gets a heap copy of exactly its bytes, so
// AddressSanitizer sees any overread), never says done with a length beyond that, a header
// that is incomplete says how much more it needs (and is not done before that), a decision
// once made stands as bytes are added, and headers the writer makes read back as written.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/io/proxy_protocol.h"

using sluice::core::kProxyHeaderMaxLength;
using sluice::core::kProxyHeaderMaxWrite;
using sluice::core::parse_proxy_header;
using sluice::core::ProxyHeader;
using sluice::core::ProxyParse;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

ProxyHeader parse_exact(const uint8_t* data, size_t size) {
  std::unique_ptr<char[]> copy(new char[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(copy.get(), data, size);
  return parse_proxy_header(copy.get(), size);
}

void check_result(const ProxyHeader& h, size_t size) {
  switch (h.status) {
    case ProxyParse::kDone:
      check(h.length >= 15 && h.length <= size && h.length <= kProxyHeaderMaxLength);
      check(h.version == 1 || h.version == 2);
      if (h.has_addresses) {
        check(h.source.ss_family == h.destination.ss_family);
        check(h.source.ss_family == AF_INET || h.source.ss_family == AF_INET6);
      }
      break;
    case ProxyParse::kNeedMore:
      check(h.need >= 1 && size + h.need <= kProxyHeaderMaxLength);
      break;
    case ProxyParse::kError:
      check(h.error != nullptr && h.error[0] != '\0');
      break;
  }
}

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  const size_t length = a.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  return std::memcmp(&a, &b, length) == 0;
}

// Two addresses from the input's first bytes, written both ways and read back.
void check_round_trip(const uint8_t* data, size_t size) {
  if (size < 37) return;
  sockaddr_storage source{}, destination{};
  for (int i = 0; i < 2; ++i) {
    sockaddr_storage& out = i == 0 ? source : destination;
    const bool v6 = (data[0] >> i) & 1;
    const uint8_t* bytes = data + 1 + 18 * i;
    if (v6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
      in6->sin6_family = AF_INET6;
      std::memcpy(&in6->sin6_addr, bytes, 16);
      std::memcpy(&in6->sin6_port, bytes + 16, 2);
    } else {
      auto* in = reinterpret_cast<sockaddr_in*>(&out);
      in->sin_family = AF_INET;
      std::memcpy(&in->sin_addr, bytes, 4);
      std::memcpy(&in->sin_port, bytes + 16, 2);
    }
  }
  // Mixed families are written as IPv6, the IPv4 one mapped.
  auto as_written = [&](const sockaddr_storage& a) {
    if (source.ss_family == destination.ss_family || a.ss_family == AF_INET6) return a;
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    sockaddr_storage mapped{};
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&mapped);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = in->sin_port;
    in6->sin6_addr.s6_addr[10] = 0xff;
    in6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&in6->sin6_addr.s6_addr[12], &in->sin_addr, 4);
    return mapped;
  };
  const auto* s = reinterpret_cast<const sockaddr*>(&source);
  const auto* d = reinterpret_cast<const sockaddr*>(&destination);
  for (int version = 1; version <= 2; ++version) {
    uint8_t out[kProxyHeaderMaxWrite + 8];
    const size_t n = version == 1
                         ? sluice::core::write_proxy_v1(s, d, reinterpret_cast<char*>(out))
                         : sluice::core::write_proxy_v2(s, d, reinterpret_cast<char*>(out));
    check(n > 0 && n <= kProxyHeaderMaxWrite);
    std::memcpy(out + n, "GET / HT", 8);  // the connection's own bytes follow
    for (size_t with : {n, n + 8}) {
      const ProxyHeader h = parse_exact(out, with);
      check(h.status == ProxyParse::kDone && h.length == n && h.version == version);
      check(h.has_addresses);
      check(same_address(h.source, as_written(source)));
      check(same_address(h.destination, as_written(destination)));
    }
    const ProxyHeader cut = parse_exact(out, n - 1);
    check(cut.status == ProxyParse::kNeedMore);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ProxyHeader whole = parse_exact(data, size);
  check_result(whole, size);
  if (size > 0) {
    // One byte less: what it decided, the whole input decides the same way.
    const ProxyHeader shorter = parse_exact(data, size - 1);
    check_result(shorter, size - 1);
    if (shorter.status == ProxyParse::kError) check(whole.status == ProxyParse::kError);
    if (shorter.status == ProxyParse::kDone) {
      check(whole.status == ProxyParse::kDone && whole.length == shorter.length);
      check(whole.has_addresses == shorter.has_addresses);
      if (whole.has_addresses) {
        check(same_address(whole.source, shorter.source));
        check(same_address(whole.destination, shorter.destination));
      }
    }
    // A header still short by more than one byte cannot be done one byte later.
    if (shorter.status == ProxyParse::kNeedMore && shorter.need > 1)
      check(whole.status != ProxyParse::kDone);
    if (whole.status == ProxyParse::kDone && whole.length < size) {
      const ProxyHeader exact = parse_exact(data, whole.length);
      check(exact.status == ProxyParse::kDone && exact.length == whole.length);
    }
  }
  check_round_trip(data, size);
  return 0;
}
