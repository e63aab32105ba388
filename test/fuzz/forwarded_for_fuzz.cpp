// Feeds arbitrary X-Forwarded-For values to the trusted_proxies walk and checks what the exchange
// relies on: it reads nothing past each value (a heap copy of exactly its bytes, so
// AddressSanitizer sees any overread), an entry it settles on starts inside its field and
// parses back to the address found, the address's text form reads back as that address, and
// the walk stops at the first untrusted entry (so what lies left of it is never looked at).
// Input: the first byte picks the trusted networks; the rest is split into fields at '\n'.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "conf/prefix_tree.h"
#include "conf/socket_address.h"
#include "core/proxy/forwarded_client.h"

using sluice::conf::IpAddress;
using sluice::conf::PrefixTree;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

PrefixTree trusted_by(uint8_t pick) {
  static const char* const kNetworks[] = {
      "10.0.0.0/8", "127.0.0.1", "::1",          "2001:db8::/32",
      "0.0.0.0/0",  "::/0",      "192.0.2.0/24", "::ffff:198.51.100.0/120"};
  PrefixTree::Builder builder;
  for (unsigned i = 0; i < 8; ++i) {
    if (!(pick & (1u << i))) continue;
    std::string problem;
    builder.add(*sluice::conf::parse_cidr(kNetworks[i], &problem), 1);
  }
  return builder.build();
}

bool same(const IpAddress& a, const IpAddress& b) {
  return a.family == b.family && std::memcmp(a.bytes, b.bytes, 16) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const PrefixTree trusted = trusted_by(data[0]);
  std::vector<std::unique_ptr<char[]>> copies;
  std::vector<std::string_view> fields;
  const char* text = reinterpret_cast<const char*>(data + 1);
  size_t left = size - 1;
  while (true) {
    const void* nl = std::memchr(text, '\n', left);
    const size_t length = nl ? static_cast<size_t>(static_cast<const char*>(nl) - text) : left;
    copies.emplace_back(new char[length == 0 ? 1 : length]);
    std::memcpy(copies.back().get(), text, length);
    fields.emplace_back(copies.back().get(), length);
    if (!nl) break;
    text += length + 1;
    left -= length + 1;
  }
  sluice::core::ForwardedForWalk walk(trusted);
  for (size_t i = fields.size(); i-- > 0;)
    if (!walk.feed(fields[i], static_cast<int32_t>(i))) break;
  const sluice::core::ForwardedClient& found = walk.result();
  if (found.field < 0) return 0;
  check(static_cast<size_t>(found.field) < fields.size());
  const std::string_view field = fields[found.field];
  check(found.start < field.size());
  std::string_view entry = field.substr(found.start);
  entry = entry.substr(0, entry.find(','));
  while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) entry.remove_suffix(1);
  IpAddress again;
  check(sluice::core::parse_forwarded_entry(entry, &again));
  check(same(again, found.address));
  char out[INET6_ADDRSTRLEN];
  sluice::conf::format_ip_address(found.address, out, sizeof out);
  check(sluice::conf::parse_ip_address(out, &again) && same(again, found.address));
  return 0;
}
