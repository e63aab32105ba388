// One blocking c-ares lookup of a name's A and AAAA records, with the answer's shortest TTL.
// Callers run it on libuv's thread pool, never on a loop: DNS discovery of backends, and the
// forward proxy's origins.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "conf/config.h"

namespace sluice::health {

struct DnsResult {
  int status = 0;                              // ARES_SUCCESS or c-ares's error
  std::vector<conf::SocketAddress> addresses;  // each with `port`
  uint32_t ttl_s = 0;                          // the shortest TTL among the records
  const char* error() const;                   // what went wrong, in words
};

// `search`: try resolv.conf's search domains for a name without dots in it, as a DNS backend's
// name may want; the forward proxy looks up exactly the name its client wrote.
DnsResult lookup_name(const std::string& name, uint16_t port, const conf::ResolverConfig& resolver,
                      bool search = true);

}  // namespace sluice::health
