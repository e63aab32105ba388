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

}  // namespace sluice::conf
