// Reading a purge request: the query's parameters, percent-decoding, and the absolute URL
// made into the key its responses are stored under.
#include "core/admin/purge.h"

#include <cstring>

#include "core/http/request_target.h"

namespace sluice::admin {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_lower(std::string* out, std::string_view text) {
  for (char c : text) out->push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
}

// A prefix's scheme and authority in lower case, as the keys have them; what follows the
// authority is left as written. A prefix that stops inside the authority is all lower case.
std::string prefix_key(std::string_view prefix) {
  const size_t scheme_end = prefix.find("://");
  const size_t path = scheme_end == std::string_view::npos ? std::string_view::npos
                                                           : prefix.find('/', scheme_end + 3);
  std::string key;
  key.reserve(prefix.size());
  append_lower(&key, prefix.substr(0, path));
  if (path != std::string_view::npos) key.append(prefix.substr(path));
  return key;
}

}  // namespace

bool percent_decode(std::string_view text, std::string* out) {
  out->clear();
  out->reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out->push_back(text[i]);
      continue;
    }
    const int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int low = high >= 0 ? hex_value(text[i + 2]) : -1;
    if (low < 0) return false;
    out->push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return true;
}

const char* purge_key(std::string_view url, std::string* key) {
  url = url.substr(0, url.find('#'));  // a fragment is never sent, so never part of a key
  core::AbsoluteTarget target;
  if (core::parse_absolute_form(url, &target) != nullptr)
    return "url must be an absolute http or https URL, such as http://example.com/path";
  key->clear();
  key->append(target.https ? "https://" : "http://");
  append_lower(key, target.authority);
  if (target.rest.empty() || target.rest.front() != '/') key->push_back('/');
  key->append(target.rest);
  return nullptr;
}

const char* parse_purge(std::string_view query, PurgeOrder* out) {
  std::string_view url, prefix;
  int urls = 0, prefixes = 0;
  while (!query.empty()) {
    const size_t end = query.find('&');
    const std::string_view pair = query.substr(0, end);
    query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
    const size_t equals = pair.find('=');
    const std::string_view name = pair.substr(0, equals);
    const std::string_view value =
        equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1);
    if (name == "url") {
      url = value;
      ++urls;
    } else if (name == "prefix") {
      prefix = value;
      ++prefixes;
    }
  }
  if (urls + prefixes != 1)
    return "give exactly one of url=<percent-encoded absolute URL> or "
           "prefix=<percent-encoded key prefix>";
  std::string decoded;
  if (!percent_decode(urls ? url : prefix, &decoded))
    return "invalid percent escape: % must be followed by two hex digits";
  out->prefix = prefixes == 1;
  if (out->prefix) {
    if (decoded.empty()) return "prefix must not be empty";
    out->text = prefix_key(decoded);
    return nullptr;
  }
  return purge_key(decoded, &out->text);
}

bool is_loopback(const conf::IpAddress& address) {
  static constexpr uint8_t kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (address.family == AF_INET) return address.bytes[0] == 127;
  if (address.family != AF_INET6) return false;
  if (std::memcmp(address.bytes, kLoopback6, 16) == 0) return true;
  return std::memcmp(address.bytes, kMapped, 12) == 0 && address.bytes[12] == 127;
}

}  // namespace sluice::admin
