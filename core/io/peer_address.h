// The text form of a client's address, made once per accepted connection for X-Forwarded-For,
// the client_ip balancing key and logs.
#pragma once

#include <sys/socket.h>

#include <cstddef>

namespace sluice::core {

// Writes `address`'s IP (no port) into `out` ("unknown" for other families). `size` must be
// at least INET6_ADDRSTRLEN.
void peer_address(const sockaddr_storage& address, char* out, size_t size);

}  // namespace sluice::core
