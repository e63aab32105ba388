// The X-Forwarded-For walk. Runs only for requests whose connection comes from a trusted proxy;
// reads the head's fields in place and allocates nothing.
#include "core/proxy/forwarded_client.h"

namespace sluice::core {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

// 1 to 5 digits, at most 65535.
bool valid_port(std::string_view digits) {
  if (digits.empty() || digits.size() > 5) return false;
  uint32_t port = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  return port <= 65535;
}

}  // namespace

bool parse_forwarded_entry(std::string_view entry, conf::IpAddress* out) {
  if (entry.starts_with('[')) {  // "[v6]" or "[v6]:port"
    const size_t close = entry.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view inside = entry.substr(1, close - 1);
    const std::string_view rest = entry.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || !valid_port(rest.substr(1)))) return false;
    return inside.find(':') != std::string_view::npos && conf::parse_ip_address(inside, out);
  }
  const size_t colon = entry.find(':');
  if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
    // One colon: "v4:port" (an IPv6 address has at least two).
    if (!valid_port(entry.substr(colon + 1))) return false;
    return conf::parse_ip_address(entry.substr(0, colon), out) && out->family == AF_INET;
  }
  return conf::parse_ip_address(entry, out);
}

bool ForwardedForWalk::feed(std::string_view value, int32_t field) {
  size_t end = value.size();
  for (;;) {
    const size_t comma = end == 0 ? std::string_view::npos : value.rfind(',', end - 1);
    size_t begin = comma == std::string_view::npos ? 0 : comma + 1;
    size_t stop = end;
    while (begin < stop && is_space(value[begin])) ++begin;
    while (stop > begin && is_space(value[stop - 1])) --stop;
    if (begin < stop) {
      conf::IpAddress address;
      if (!parse_forwarded_entry(value.substr(begin, stop - begin), &address)) return false;
      found_.address = address;
      found_.field = field;
      found_.start = static_cast<uint32_t>(begin);
      if (!trusted_.contains(address)) return false;  // the client: the walk is over
    }
    if (comma == std::string_view::npos) return true;
    end = comma;
  }
}

bool forwarded_client(const MessageHead& request, const conf::PrefixTree& trusted,
                      ForwardedClient* out) {
  ForwardedForWalk walk(trusted);
  for (size_t i = request.field_count(); i-- > 0;) {
    if (request.kind(i) == FieldKind::kXForwardedFor &&
        !walk.feed(request.value(i), static_cast<int32_t>(i)))
      break;
  }
  *out = walk.result();
  if (out->field < 0) return false;
  conf::format_ip_address(out->address, out->text, sizeof out->text);
  return true;
}

}  // namespace sluice::core
