// The access-control keys of the config: "access" on a listener or a route, and the top-level
// "trusted_proxies"; and the list of networks they (and proxy_protocol_from) are written as.
#include "conf/socket_address.h"
#include "conf/validator.h"

namespace sluice::conf {

bool Validator::read_networks(const Json& value, const std::string& path, std::vector<Cidr>& out) {
  if (!value.is_array() || value.empty()) {
    expected(path, "an array of at least one network such as \"10.0.0.0/8\"", value);
    return false;
  }
  const size_t errors_before = errors_.size();
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item = path + "/" + std::to_string(i);
    std::string text, problem;
    if (!read_string(value[i], item, text)) continue;
    std::optional<Cidr> cidr = parse_cidr(text, &problem);
    if (cidr) {
      out.push_back(std::move(*cidr));
      continue;
    }
    const std::string what =
        "a network such as \"10.0.0.0/8\" or \"2001:db8::/32\", or one address";
    fail(item, "expected " + what + ", got \"" + text + "\" (" + problem + ")");
  }
  return errors_.size() == errors_before;
}

// {"allow": [...], "deny": [...]}: at least one of the two.
void Validator::read_access(const Json& value, const std::string& path,
                            std::optional<AccessConfig>& out) {
  if (!expect_object(value, path)) return;
  check_keys(value, path, {"allow", "deny"});
  AccessConfig access;
  const auto allow = value.find("allow");
  const auto deny = value.find("deny");
  if (allow == value.end() && deny == value.end())
    return fail(path, "expected \"allow\", \"deny\" or both, each a list of networks");
  bool good = true;
  if (allow != value.end()) good = read_networks(*allow, path + "/allow", access.allow) && good;
  if (deny != value.end()) good = read_networks(*deny, path + "/deny", access.deny) && good;
  if (good) out = std::move(access);
}

// A proxy_protocol listener that does not say who may send headers takes the trusted proxies:
// a PROXY header names the client as X-Forwarded-For does, and is believed from the same peers.
void Validator::read_trusted_proxies(const Json& root, Config& config) {
  auto it = root.find("trusted_proxies");
  if (it == root.end()) return;
  if (!read_networks(*it, "/trusted_proxies", config.trusted_proxies)) return;
  for (ListenerConfig& listener : config.listeners)
    if (listener.proxy_protocol && listener.proxy_protocol_from.empty())
      listener.proxy_protocol_from = config.trusted_proxies;
}

}  // namespace sluice::conf
