// POST /cache/purge: reading what to drop from the query (one url= or one prefix=, each
// percent-encoded once) into the form the cached routes' keys have, and who may ask for it
// (loopback clients only, wherever the admin listener listens).
#pragma once

#include <string>
#include <string_view>

#include "conf/ip_address.h"

namespace sluice::admin {

// What a purge drops: every stored response whose key is `text` (all its Vary variants), or
// with `prefix`, every one whose key starts with it. Keys are "scheme://host/target" with the
// scheme and host in lower case, the target as the client sent it.
struct PurgeOrder {
  std::string text;
  bool prefix = false;
};

// Reads the query of a purge request into `out`. Returns nullptr on success, else why the
// request is refused (one line, for a 400): neither url= nor prefix=, both or one twice, an
// invalid percent escape, a url that is not an absolute http or https URL, an empty prefix.
const char* parse_purge(std::string_view query, PurgeOrder* out);

// The key an absolute http(s) URL is stored under: scheme and authority in lower case, the
// path and query as written ("/" for an empty path), no fragment. Returns the same reasons as
// parse_purge for a URL it refuses, else nullptr.
const char* purge_key(std::string_view url, std::string* key);

// `text` with each %XX replaced by its byte; false for a % not followed by two hex digits.
bool percent_decode(std::string_view text, std::string* out);

// 127.0.0.0/8, ::1, and IPv4 loopback written as an IPv4-mapped IPv6 address.
bool is_loopback(const conf::IpAddress& address);

}  // namespace sluice::admin
