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

std::optional<Cidr> parse_cidr(std::string_view text, std::string* problem) {
  auto refuse_cidr = [problem](std::string why) -> std::optional<Cidr> {
    if (problem != nullptr) *problem = std::move(why);
    return std::nullopt;
  };
  const size_t slash = text.find('/');
  const std::string host(text.substr(0, slash));
  Cidr cidr;
  cidr.text = std::string(text);
  if (host.find('\0') != std::string::npos)  // inet_pton would stop there
    return refuse_cidr("the address contains a NUL character");
  if (inet_pton(AF_INET, host.c_str(), cidr.bytes) == 1)
    cidr.family = AF_INET;
  else if (inet_pton(AF_INET6, host.c_str(), cidr.bytes) == 1)
    cidr.family = AF_INET6;
  else
    return refuse_cidr("\"" + host + "\" is not a numeric IPv4 or IPv6 address");
  const unsigned bits = cidr.family == AF_INET ? 32 : 128;
  unsigned prefix = bits;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const bool numeric =
        !digits.empty() && digits.size() <= 3 &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        (digits.size() == 1 || digits[0] != '0');
    prefix = 0;
    for (char c : digits) prefix = prefix * 10 + static_cast<unsigned>(c - '0');
    if (!numeric || prefix > bits)
      return refuse_cidr("the prefix length must be a number 0.." + std::to_string(bits) +
                         " for an " + (bits == 32 ? "IPv4" : "IPv6") + " address");
  }
  cidr.prefix = static_cast<uint8_t>(prefix);
  // "10.0.0.1/8" is more likely a typo than a network: say which network it would be.
  uint8_t network[16] = {};
  for (unsigned bit = 0; bit < prefix; ++bit)
    network[bit / 8] |= static_cast<uint8_t>(cidr.bytes[bit / 8] & (0x80u >> (bit % 8)));
  if (std::memcmp(network, cidr.bytes, bits / 8) != 0) {
    char text_form[INET6_ADDRSTRLEN];
    inet_ntop(cidr.family, network, text_form, sizeof text_form);
    return refuse_cidr("bits are set past the /" + std::to_string(prefix) +
                       " prefix; the network is " + text_form + "/" + std::to_string(prefix));
  }
  return cidr;
}

bool Cidr::contains(const sockaddr_storage& address) const {
  if (address.ss_family != family) return false;
  const uint8_t* peer = family == AF_INET
                            ? reinterpret_cast<const uint8_t*>(
                                  &reinterpret_cast<const sockaddr_in*>(&address)->sin_addr.s_addr)
                            : reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr.s6_addr;
  const unsigned whole = prefix / 8;
  if (std::memcmp(peer, bytes, whole) != 0) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xFFu << (8 - rest));
  return (peer[whole] & mask) == bytes[whole];
}

}  // namespace sluice::conf
