// Where a forward proxy may take its clients: the "forward" object's "allow" list of
// "host:port" patterns (exact names, "*.suffix", "*", IP literals; a port, or "*"; no port means
// 80 and 443). A forward listener without a list lets nothing through: never an open relay.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conf/ip_address.h"

namespace sluice::conf {

struct DestinationPattern {
  enum class Host : uint8_t { kName, kSuffix, kAny, kLiteral };
  Host kind = Host::kName;
  std::string name;   // lower case; for kSuffix the part after "*" (".example.com")
  IpAddress literal;  // kLiteral
  uint16_t port = 0;  // 0 with any_port false: 80 and 443
  bool any_port = false;
};

// Parses one pattern; on failure returns false and says why in `problem`.
bool parse_destination(std::string_view text, DestinationPattern* out, std::string* problem);

enum class DestinationVerdict : uint8_t {
  kRefused,         // on no pattern
  kAllowed,         // a name or "*" pattern: the address it resolves to is checked too
  kAllowedLiteral,  // an IP literal the list names as written: no further check
};

struct DestinationList {
  std::vector<DestinationPattern> patterns;
  // `host` as the request names it: a reg-name (any case) or an IP literal (IPv6 in brackets).
  DestinationVerdict check(std::string_view host, uint16_t port) const;
};

// The host of an authority as an IP literal ("127.0.0.1", "[::1]"); false for a name.
bool host_literal(std::string_view host, IpAddress* out);

}  // namespace sluice::conf
