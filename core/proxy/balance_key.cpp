// Balancing keys, read straight out of the parsed head without copying.
#include "core/proxy/balance_key.h"

namespace sluice::core {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Finds `name` in "a=1; b=2" (a Cookie header value).
bool find_cookie(std::string_view cookies, std::string_view name, std::string_view* value) {
  while (!cookies.empty()) {
    const size_t semi = cookies.find(';');
    std::string_view pair = trim(cookies.substr(0, semi));
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name &&
        !trim(pair.substr(eq + 1)).empty()) {
      *value = trim(pair.substr(eq + 1));
      return true;
    }
    if (semi == std::string_view::npos) break;
    cookies.remove_prefix(semi + 1);
  }
  return false;
}

}  // namespace

bool balance_key(const MessageHead& request, std::string_view spec, std::string_view client_ip,
                 std::string_view* key) {
  *key = {};
  if (spec == "client_ip") {
    *key = client_ip;
  } else if (spec == "path") {
    *key = request.path();
  } else if (spec == "uri") {
    *key = request.target();
  } else if (spec.starts_with("header:")) {
    request.find(spec.substr(7), key);
  } else if (spec.starts_with("cookie:")) {
    const std::string_view name = spec.substr(7);
    for (size_t i = 0; i < request.field_count(); ++i)
      if (equals_ignore_case(request.name(i), "cookie") && find_cookie(request.value(i), name, key))
        break;
  }
  return !key->empty();
}

}  // namespace sluice::core
