// Addresses a forward proxy does not take a client to unless told (allow_private): the proxy's
// own host and network, and cloud metadata services. Checked on the address a name resolved
// to, the one then connected to, so a name cannot point the proxy inward (SSRF, DNS rebinding).
#pragma once

#include "conf/ip_address.h"

namespace sluice::forward {

// Loopback, unspecified, private (RFC 1918, IPv6 unique-local), shared (100.64/10), link-local
// (with 169.254.169.254, the metadata service), multicast, broadcast and reserved ranges.
bool private_address(const conf::IpAddress& address);

}  // namespace sluice::forward
