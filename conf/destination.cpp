// The forward proxy's allow list: parsing its patterns once, and matching a request's
// destination against them without allocating.
#include "conf/destination.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace sluice::conf {
namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equal_lower(std::string_view a, std::string_view lowered) {
  if (a.size() != lowered.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lowered[i]) return false;
  return true;
}

bool same_address(const IpAddress& a, const IpAddress& b) {
  const size_t n = a.family == AF_INET ? 4 : 16;
  return a.family == b.family && std::memcmp(a.bytes, b.bytes, n) == 0;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

bool read_port(std::string_view text, DestinationPattern* out, std::string* problem) {
  if (text == "*") {
    out->any_port = true;
    return true;
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port == 0 || port > 65535) {
    *problem = "the port must be a number from 1 to 65535 or \"*\"";
    return false;
  }
  out->port = static_cast<uint16_t>(port);
  return true;
}

bool read_host(std::string_view host, DestinationPattern* out, std::string* problem) {
  if (host == "*") {
    out->kind = DestinationPattern::Host::kAny;
    return true;
  }
  if (host_literal(host, &out->literal)) {
    out->kind = DestinationPattern::Host::kLiteral;
    return true;
  }
  const bool suffix = host.starts_with("*.");
  if (suffix) host.remove_prefix(1);
  if (!valid_name(suffix ? host.substr(1) : host)) {
    *problem = "expected a host name, \"*.\" and a domain, \"*\", or an IP address";
    return false;
  }
  out->kind = suffix ? DestinationPattern::Host::kSuffix : DestinationPattern::Host::kName;
  out->name.resize(host.size());
  std::transform(host.begin(), host.end(), out->name.begin(), lower);
  return true;
}

bool host_matches(const DestinationPattern& p, std::string_view host, bool literal,
                  const IpAddress& address) {
  switch (p.kind) {
    case DestinationPattern::Host::kAny:
      return true;
    case DestinationPattern::Host::kLiteral:
      return literal && same_address(p.literal, address);
    case DestinationPattern::Host::kName:
      return !literal && equal_lower(host, p.name);
    case DestinationPattern::Host::kSuffix:
      return !literal && host.size() > p.name.size() &&
             equal_lower(host.substr(host.size() - p.name.size()), p.name);
  }
  return false;
}

bool port_matches(const DestinationPattern& p, uint16_t port) {
  if (p.any_port) return true;
  if (p.port == 0) return port == 80 || port == 443;
  return port == p.port;
}

}  // namespace

bool host_literal(std::string_view host, IpAddress* out) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    return parse_ip_address(host.substr(1, host.size() - 2), out) && out->family == AF_INET6;
  return parse_ip_address(host, out) && out->family == AF_INET;
}

bool parse_destination(std::string_view text, DestinationPattern* out, std::string* problem) {
  *out = DestinationPattern{};
  // The port follows the last colon outside brackets; a bare IPv6 address needs its brackets.
  std::string_view host = text;
  const size_t bracket = text.rfind(']');
  const size_t colon = text.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    if (bracket == std::string_view::npos && text.find(':') != colon) {
      *problem = "an IPv6 address goes in brackets: \"[::1]:443\"";
      return false;
    }
    host = text.substr(0, colon);
    if (!read_port(text.substr(colon + 1), out, problem)) return false;
  }
  return read_host(host, out, problem);
}

DestinationVerdict DestinationList::check(std::string_view host, uint16_t port) const {
  IpAddress address;
  const bool literal = host_literal(host, &address);
  DestinationVerdict verdict = DestinationVerdict::kRefused;
  for (const DestinationPattern& p : patterns) {
    if (!port_matches(p, port) || !host_matches(p, host, literal, address)) continue;
    if (p.kind == DestinationPattern::Host::kLiteral) return DestinationVerdict::kAllowedLiteral;
    verdict = DestinationVerdict::kAllowed;
  }
  return verdict;
}

}  // namespace sluice::conf
