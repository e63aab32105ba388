// Extracts a request's balancing key for consistent hashing, as the upstream's "hash_key"
// names it: client_ip, path, uri, header:NAME or cookie:NAME.
#pragma once

#include <string_view>

#include "core/http/http_head.h"

namespace sluice::core {

// Sets `key` and returns true when the request carries the key (non-empty); false otherwise,
// and the policy then falls back to round-robin.
bool balance_key(const MessageHead& request, std::string_view spec, std::string_view client_ip,
                 std::string_view* key);

}  // namespace sluice::core
