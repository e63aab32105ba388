// Syntax checks for where a request goes: the Host field and the request-target's authority
// (RFC 3986 3.2.2, RFC 9112 3.2). A proxy routes on these and hands them to a backend, so a
// value that the two could read differently is refused instead of passed on.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::core {

// True for uri-host [ ":" port ] with uri-host an IP-literal ("[" IPv6 "]"), an IPv4 address or
// a reg-name (unreserved / pct-encoded / sub-delims), and port at most 5 digits. Empty is valid:
// RFC 9110 7.2 asks for an empty Host when the target has no authority.
bool valid_host(std::string_view host);

// An absolute-form request-target split into what the proxy forwards.
struct AbsoluteTarget {
  std::string_view authority;  // host [ ":" port ], validated
  std::string_view rest;       // path and query, possibly empty ("http://a" or "http://a?q")
  bool https = false;          // the scheme was https
};

// Splits an absolute-form target (scheme "://" authority path-abempty [ "?" query ]). Returns
// nullptr on success, else why the target is refused: a scheme other than http or https,
// userinfo, or an empty or invalid authority.
const char* parse_absolute_form(std::string_view target, AbsoluteTarget* out);

// A valid authority (valid_host) split into its host (an IPv6 literal keeps its brackets) and
// port: `default_port` when none is written, where 0 means one must be (CONNECT's
// authority-form, RFC 9112 3.2.3). False for an empty host, an empty or zero port, a port over
// 65535, or a missing one that is required.
bool split_authority(std::string_view authority, uint16_t default_port, std::string_view* host,
                     uint16_t* port);

}  // namespace sluice::core
