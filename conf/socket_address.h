// Numeric "host:port" parsing, with the reason a text was refused. config.h exposes the plain
// form; the validator uses this one so an error can say which part of an address is wrong.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace sluice::conf {

// As parse_socket_address(text); on failure `problem` (when given) says what is wrong.
std::optional<SocketAddress> parse_socket_address(std::string_view text, std::string* problem);

// Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (one host: /32 or /128); on failure
// `problem` says what is wrong. Bits set past the prefix are refused, with the network meant.
std::optional<Cidr> parse_cidr(std::string_view text, std::string* problem);

}  // namespace sluice::conf
