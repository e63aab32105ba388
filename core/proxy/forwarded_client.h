// Who the client is when its request came through proxies Sluice trusts ("trusted_proxies"):
// X-Forwarded-For is walked from the right, over every such field, past the trusted proxies,
// to the first address that is not one. That address then stands for the client everywhere
// (access lists, the hash key, the log, the X-Forwarded-For sent on). See docs/access.md.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string_view>

#include "conf/prefix_tree.h"
#include "core/http/http_head.h"

namespace sluice::core {

// The entry the walk settled on.
struct ForwardedClient {
  conf::IpAddress address;           // an IPv4-mapped entry comes out as IPv4
  char text[INET6_ADDRSTRLEN] = {};  // `address` as text, for the log and the header
  int32_t field = -1;                // the request field it is in (-1: none found)
  uint32_t start = 0;                // where its entry starts in that field's value
};

// One step of the walk per field, rightmost field first: feed() the values until it says stop.
// Entries are IPv4 or IPv6 addresses, bare or with a port ("192.0.2.1:5000", "[2001:db8::1]",
// "[2001:db8::1]:5000"), separated by commas with optional spaces; empty entries are skipped.
// Anything else is malformed and ends the walk at the entry before it.
class ForwardedForWalk {
 public:
  explicit ForwardedForWalk(const conf::PrefixTree& trusted) : trusted_(trusted) {}
  // Walks `value` (field `field` of the request) from its end. False: the walk is over.
  bool feed(std::string_view value, int32_t field);
  // The entry found; field is -1 when none was (no entry, or the first one malformed).
  const ForwardedClient& result() const { return found_; }

 private:
  const conf::PrefixTree& trusted_;
  ForwardedClient found_;
};

// Parses one entry as above, spaces already trimmed; false when it is malformed.
bool parse_forwarded_entry(std::string_view entry, conf::IpAddress* out);

// Walks the request's X-Forwarded-For fields (its connection's address is a trusted proxy, the
// caller checked). True, with `out` filled, when an entry was found; false when the connection's
// address stands.
bool forwarded_client(const MessageHead& request, const conf::PrefixTree& trusted,
                      ForwardedClient* out);

}  // namespace sluice::core
