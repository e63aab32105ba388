// A listener's "mode" and, for forward and intercept listeners, its "forward" object: the allow
// list, allow_private, users and the anonymity level (docs/forward-proxy.md).
#include <array>
#include <charconv>

#include "conf/validator.h"

namespace sluice::conf {
namespace {

// In ListenerMode's order.
constexpr std::array<std::string_view, 3> kModes = {"reverse", "forward", "intercept"};

bool base64(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!letter && !(c == '=' && i + 2 >= s.size())) return false;
  }
  return true;
}

bool number(std::string_view s) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc() && end == s.data() + s.size() && n > 0;
}

}  // namespace

bool split_password_hash(std::string_view hash, std::string_view (&parts)[6]) {
  for (size_t i = 0; i < 6; ++i) {
    const size_t dollar = hash.find('$');
    if ((dollar == std::string_view::npos) != (i == 5)) return false;
    parts[i] = hash.substr(0, dollar);
    hash.remove_prefix(dollar == std::string_view::npos ? hash.size() : dollar + 1);
  }
  return true;
}

// "scrypt$N$r$p$salt$key": the shape `sluice hash-password` prints. The numbers are checked
// again, against OpenSSL's limits, when a password is verified.
bool password_hash_shape(std::string_view hash) {
  std::string_view parts[6];
  if (!split_password_hash(hash, parts)) return false;
  return parts[0] == "scrypt" && number(parts[1]) && number(parts[2]) && number(parts[3]) &&
         base64(parts[4]) && base64(parts[5]);
}

void Validator::read_listener_mode(const Json& value, const std::string& path,
                                   ListenerConfig& listener) {
  auto it = value.find("mode");
  if (it != value.end()) {
    std::string mode;
    bool known = false;
    if (read_string(*it, path + "/mode", mode)) {
      for (size_t i = 0; i < kModes.size(); ++i) {
        if (mode != kModes[i]) continue;
        listener.mode = static_cast<ListenerMode>(i);
        known = true;
      }
      if (!known) {
        expected(path + "/mode", "\"reverse\", \"forward\" or \"intercept\"", *it);
        errors_.back().message +=
            did_you_mean(mode, std::vector<std::string_view>(kModes.begin(), kModes.end()));
      }
    }
  }
  auto forward = value.find("forward");
  if (forward == value.end()) return;
  if (listener.mode == ListenerMode::kReverse)
    return fail_at_key(path + "/forward",
                       "\"forward\" belongs to a listener with \"mode\": \"forward\" or "
                       "\"intercept\"");
  read_forward(*forward, path + "/forward", listener.forward);
  if (listener.mode == ListenerMode::kIntercept && !listener.forward.users.empty())
    fail_at_key(path + "/forward/users",
                "an intercept listener's clients do not know of the proxy and send no "
                "Proxy-Authorization: \"users\" belongs to a forward listener");
}

void Validator::read_forward(const Json& value, const std::string& path, ForwardConfig& out) {
  if (!expect_object(value, path)) return;
  check_keys(value, path, {"allow", "allow_private", "users", "forwarded"});
  if (auto it = value.find("allow"); it != value.end()) {
    if (!it->is_array()) return expected(path + "/allow", "a list of \"host:port\" patterns", *it);
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string at = path + "/allow/" + std::to_string(i);
      std::string text, problem;
      if (!read_string((*it)[i], at, text)) continue;
      DestinationPattern pattern;
      if (!parse_destination(text, &pattern, &problem)) {
        expected(at, "\"host:port\" with a name, \"*.domain\", \"*\" or an IP address", (*it)[i]);
        errors_.back().message += " (" + problem + ")";
        continue;
      }
      out.allow.patterns.push_back(std::move(pattern));
    }
  }
  read_bool(value, path, "allow_private", out.allow_private);
  read_forwarded(value, path, out.forwarded);
  if (auto it = value.find("users"); it != value.end()) read_users(*it, path + "/users", out);
}

void Validator::read_users(const Json& value, const std::string& path, ForwardConfig& out) {
  if (!expect_object(value, path)) return;
  for (const auto& [name, hash] : value.items()) {
    const std::string at = path + "/" + pointer_token(name);
    std::string text;
    if (!read_string(hash, at, text)) continue;
    if (name.empty() || name.find(':') != std::string::npos) {
      fail_at_key(at, "a user name may not be empty or hold \":\" (Basic credentials split there)");
      continue;
    }
    if (!password_hash_shape(text)) {
      expected(at, "the output of `sluice hash-password` (scrypt$N$r$p$salt$key)", hash);
      continue;
    }
    out.users.push_back(ProxyUser{name, text});
  }
}

}  // namespace sluice::conf
