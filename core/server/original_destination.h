// Where an intercepted client meant to go: the destination the kernel rewrote (an nftables or
// iptables `redirect`, read back from conntrack with SO_ORIGINAL_DST), or, for `tproxy`, the
// socket's own local address, which is then that destination.
#pragma once

#include <sys/socket.h>

namespace sluice::core {

// The original destination of the accepted connection `fd`; false when the kernel knows none.
bool original_destination(int fd, sockaddr_storage* out);

}  // namespace sluice::core
