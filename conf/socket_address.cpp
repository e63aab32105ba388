// Numeric socket addresses only: resolving names here would make parsing depend on DNS, and
// a config must mean the same thing every time it is loaded.
#include "conf/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace sluice::conf {
namespace {

std::optional<SocketAddress> refuse(std::string* problem, const char* why) {
  if (problem != nullptr) *problem = why;
  return std::nullopt;
}

// 1..65535 in plain decimal digits; no sign, no spaces.
std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  uint32_t port = 0;
  for (char c : text) port = port * 10 + static_cast<uint32_t>(c - '0');
  if (port < 1 || port > 65535) return std::nullopt;
  return static_cast<uint16_t>(port);
}

}  // namespace

std::optional<SocketAddress> parse_socket_address(std::string_view text, std::string* problem) {
  std::string host;
  std::string_view port_text;
  const bool v6 = text.starts_with('[');
  if (v6) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return refuse(problem, "missing \"]\"");
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.starts_with(':')) return refuse(problem, "missing \":port\"");
    port_text = rest.substr(1);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return refuse(problem, "missing \":port\"");
    host = text.substr(0, colon);
    if (host.find(':') != std::string::npos)
      return refuse(problem, "an IPv6 address needs brackets, as in \"[::1]:8080\"");
    port_text = text.substr(colon + 1);
  }
  const std::optional<uint16_t> port = parse_port(port_text);
  if (!port) return refuse(problem, "the port must be a number 1..65535");

  SocketAddress address;
  address.text = std::string(text);
  if (v6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(*port);
    if (inet_pton(AF_INET6, host.c_str(), &sin6.sin6_addr) != 1)
      return refuse(problem, "the host is not a numeric IPv6 address");
    std::memcpy(&address.storage, &sin6, sizeof sin6);
    address.length = sizeof sin6;
  } else {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(*port);
    if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1)
      return refuse(problem, "the host is not a numeric IPv4 address");
    std::memcpy(&address.storage, &sin, sizeof sin);
    address.length = sizeof sin;
  }
  return address;
}

std::optional<SocketAddress> parse_socket_address(std::string_view text) {
  return parse_socket_address(text, nullptr);
}

}  // namespace sluice::conf
