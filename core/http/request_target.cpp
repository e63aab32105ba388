// Host and authority syntax, checked byte by byte with no allocation.
#include "core/http/request_target.h"

#include <array>

#include "core/http/http_head.h"

namespace sluice::core {
namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4 addresses fit it too. One
// table lookup a byte: every request's Host goes through here.
constexpr std::array<bool, 256> kRegNameByte = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 32] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

// Scans a reg-name up to the end or a ':' (which it leaves at *end); false on a bad byte.
bool scan_reg_name(std::string_view name, size_t* end) {
  size_t i = 0;
  for (; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (kRegNameByte[c]) continue;
    if (c == ':') break;
    if (c != '%' || i + 2 >= name.size() || !is_hex(name[i + 1]) || !is_hex(name[i + 2]))
      return false;
    i += 2;
  }
  *end = i;
  return true;
}

// Only IPv6 (with an optional embedded IPv4 tail): IPvFuture and zone identifiers name nothing
// a backend here could be.
bool valid_ip_literal(std::string_view inner) {
  if (inner.find(':') == std::string_view::npos) return false;
  for (char c : inner)
    if (!is_hex(c) && c != ':' && c != '.') return false;
  return true;
}

bool valid_port(std::string_view port) {
  if (port.size() > 5) return false;
  for (char c : port)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

bool valid_host(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos || !valid_ip_literal(host.substr(1, close - 1)))
      return false;
    const std::string_view after = host.substr(close + 1);
    return after.empty() || (after.front() == ':' && valid_port(after.substr(1)));
  }
  size_t end = 0;
  if (!scan_reg_name(host, &end)) return false;
  return end == host.size() || valid_port(host.substr(end + 1));
}

const char* parse_absolute_form(std::string_view target, AbsoluteTarget* out) {
  const size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return "request target in no known form";
  const std::string_view scheme = target.substr(0, scheme_end);
  if (!equals_ignore_case(scheme, "http") && !equals_ignore_case(scheme, "https"))
    return "request target with a scheme other than http or https";
  const std::string_view after = target.substr(scheme_end + 3);
  const size_t authority_end = after.find_first_of("/?#");
  const std::string_view authority = after.substr(0, authority_end);
  if (authority.find('@') != std::string_view::npos) return "userinfo in the request target";
  // An http(s) URI with an empty host is invalid (RFC 9110 4.2.1).
  if (authority.empty() || authority.front() == ':' || !valid_host(authority))
    return "invalid authority in the request target";
  out->authority = authority;
  out->https = scheme.size() == 5;
  out->rest =
      authority_end == std::string_view::npos ? std::string_view() : after.substr(authority_end);
  return nullptr;
}

bool split_authority(std::string_view authority, uint16_t default_port, std::string_view* host,
                     uint16_t* port) {
  // valid_host takes "" (an empty Host is valid), but an authority without a host names nothing.
  if (authority.empty() || !valid_host(authority)) return false;
  const size_t close = authority.front() == '[' ? authority.find(']') : 0;
  const size_t colon = authority.find(':', close);
  *host = authority.substr(0, colon);
  if (host->empty()) return false;
  if (colon == std::string_view::npos) {
    *port = default_port;
    return default_port != 0;
  }
  const std::string_view digits = authority.substr(colon + 1);
  uint32_t value = 0;
  for (char c : digits) value = value * 10 + static_cast<uint32_t>(c - '0');  // valid_port: <= 5
  if (digits.empty() || value == 0 || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace sluice::core
