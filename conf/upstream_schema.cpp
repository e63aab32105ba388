// The upstream part of the config schema: backends (static or from DNS), balancing, health
// checks, passive outlier detection, and the resolver used for DNS-discovered backends.
#include <algorithm>

#include "balancer/policy.h"
#include "conf/near_miss.h"
#include "conf/socket_address.h"
#include "conf/validator.h"

namespace sluice::conf {
namespace {

constexpr uint32_t kMaxBackendConnections = 1'000'000;
constexpr uint32_t kMaxQueue = 1'000'000;

constexpr std::array<UintField<HealthCheckConfig>, 4> kHealthFields = {{
    {"interval_ms", &HealthCheckConfig::interval_ms, 100, kMaxMs},
    {"timeout_ms", &HealthCheckConfig::timeout_ms, 10, kMaxMs},
    {"rise", &HealthCheckConfig::rise, 1, 100},
    {"fall", &HealthCheckConfig::fall, 1, 100},
}};

constexpr std::array<UintField<PassiveHealthConfig>, 3> kPassiveFields = {{
    {"failures", &PassiveHealthConfig::failures, 0, 1000},
    {"ejection_ms", &PassiveHealthConfig::ejection_ms, 100, kMaxMs},
    {"max_ejection_ms", &PassiveHealthConfig::max_ejection_ms, 100, kMaxMs},
}};

// "200-399" or "200": an inclusive range of status codes.
bool parse_status_range(std::string_view text, uint32_t& low, uint32_t& high) {
  auto number = [](std::string_view s, uint32_t& out) {
    if (s.size() != 3 ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    out = static_cast<uint32_t>(std::stoul(std::string(s)));
    return out >= 100 && out <= 599;
  };
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return number(text, low) && number(text, high);
  return number(text.substr(0, dash), low) && number(text.substr(dash + 1), high) && low <= high;
}

// "name:port" for a DNS-discovered set; the name is resolved later, so only its form is checked.
bool split_dns_target(std::string_view text, std::string& name, uint16_t& port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view digits = text.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const unsigned long value = std::stoul(std::string(digits));
  if (value == 0 || value > 65535) return false;
  name = std::string(text.substr(0, colon));
  port = static_cast<uint16_t>(value);
  return name.find_first_of(" /[]:") == std::string::npos;
}

// Text that goes into a health check's request line or Host header verbatim.
bool safe_in_request(std::string_view text) {
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return c == ' ' || c == '\r' || c == '\n' || c == '\0'; });
}

// "127.0.0.1" -> "127.0.0.1:53", "::1" or "[::1]" -> "[::1]:53"; a text with a port is kept.
std::string with_default_port(const std::string& text) {
  if (text.starts_with('[')) return text.find("]:") == std::string::npos ? text + ":53" : text;
  const size_t colons = static_cast<size_t>(std::count(text.begin(), text.end(), ':'));
  if (colons == 0) return text + ":53";
  if (colons > 1) return "[" + text + "]:53";
  return text;
}

}  // namespace

bool Validator::read_bool(const Json& object, const std::string& path, std::string_view key,
                          bool& out) {
  auto it = object.find(key);
  if (it == object.end()) return false;
  if (!it->is_boolean()) {
    expected(path + "/" + std::string(key), "true or false", *it);
    return false;
  }
  out = it->get<bool>();
  return true;
}

void Validator::read_upstreams(const Json& value, const std::string& path, Config& config) {
  if (!expect_object(value, path)) return;
  for (const auto& [name, upstream_value] : value.items()) {
    if (is_comment_key(name)) continue;
    const std::string at = path + "/" + pointer_token(name);
    upstream_names_.push_back(name);
    if (name.empty()) fail(at, "an upstream name must not be empty");
    UpstreamConfig upstream;
    upstream.name = name;
    read_upstream(upstream_value, at, upstream);
    config.upstreams.push_back(std::move(upstream));
  }
  if (upstream_names_.empty()) fail(path, "expected at least one upstream, got none");
}

void Validator::read_upstream(const Json& value, const std::string& path,
                              UpstreamConfig& upstream) {
  if (!expect_object(value, path)) return;
  check_keys(value, path,
             {"balance", "hash_key", "backends", "keepalive", "keepalive_timeout_ms",
              "non_retriable_max_idle_ms", "retries", "slow_start_ms", "health", "passive", "tls",
              "send_proxy_protocol", "max_connections", "queue_max", "queue_timeout_ms"});
  if (auto it = value.find("balance"); it != value.end()) {
    const std::string at = path + "/balance";
    if (read_string(*it, at, upstream.balance) && !balancer::find_policy(upstream.balance)) {
      const std::vector<std::string_view> names = balancer::policy_names();
      expected(at, "a balancing policy (one of: " + join(names) + ")", *it);
      errors_.back().message += did_you_mean(upstream.balance, names);
    }
  }
  if (auto it = value.find("hash_key"); it != value.end())
    read_hash_key(*it, path + "/hash_key", upstream.hash_key);
  read_uint(value, path, "keepalive", 0, 10'000, upstream.keepalive);
  read_uint(value, path, "keepalive_timeout_ms", 1, kMaxMs, upstream.keepalive_timeout_ms);
  read_uint(value, path, "non_retriable_max_idle_ms", 0, kMaxMs,
            upstream.non_retriable_max_idle_ms);
  read_uint(value, path, "retries", 0, 10, upstream.retries);
  read_uint(value, path, "slow_start_ms", 0, kMaxMs, upstream.slow_start_ms);
  read_uint(value, path, "max_connections", 0, kMaxBackendConnections, upstream.max_connections);
  read_uint(value, path, "queue_max", 0, kMaxQueue, upstream.queue_max);
  read_uint(value, path, "queue_timeout_ms", 1, kMaxMs, upstream.queue_timeout_ms);
  if (auto it = value.find("health"); it != value.end())
    read_health(*it, path + "/health", upstream.health);
  if (auto it = value.find("passive"); it != value.end())
    read_passive(*it, path + "/passive", upstream.passive);
  if (auto it = value.find("tls"); it != value.end())
    read_upstream_tls(*it, path + "/tls", upstream.tls.emplace());
  if (auto it = value.find("send_proxy_protocol"); it != value.end()) {
    std::string version;
    if (read_string(*it, path + "/send_proxy_protocol", version)) {
      if (version == "v1")
        upstream.send_proxy_protocol = ProxyProtocolVersion::kV1;
      else if (version == "v2")
        upstream.send_proxy_protocol = ProxyProtocolVersion::kV2;
      else
        expected(path + "/send_proxy_protocol", "\"v1\" or \"v2\"", *it);
    }
  }
  const Json* backends = require(value, path, "backends");
  if (backends == nullptr) return;
  const std::string at = path + "/backends";
  if (!backends->is_array() || backends->empty()) {
    expected(at, "an array of at least one backend", *backends);
    return;
  }
  for (size_t i = 0; i < backends->size(); ++i) {
    BackendConfig backend;
    read_backend((*backends)[i], at + "/" + std::to_string(i), backend);
    upstream.backends.push_back(std::move(backend));
  }
}

void Validator::read_backend(const Json& value, const std::string& path, BackendConfig& backend) {
  if (!expect_object(value, path)) return;
  if (value.contains("dns")) return read_dns_backend(value, path, backend);
  check_keys(value, path, {"address", "dns", "weight", "backup", "max_connections"});
  read_address(value, path, backend.address, AddressOf::kBackend);
  read_uint(value, path, "weight", 1, 256, backend.weight);
  read_bool(value, path, "backup", backend.backup);
  read_backend_limit(value, path, backend);
}

// Read only when present: an absent limit takes the upstream's, an explicit 0 lifts it.
void Validator::read_backend_limit(const Json& value, const std::string& path,
                                   BackendConfig& backend) {
  if (!value.contains("max_connections")) return;
  uint32_t limit = 0;
  read_uint(value, path, "max_connections", 0, kMaxBackendConnections, limit);
  backend.max_connections = limit;
}

void Validator::read_dns_backend(const Json& value, const std::string& path,
                                 BackendConfig& backend) {
  check_keys(value, path, {"dns", "refresh_s", "weight", "backup", "max_connections"});
  if (value.contains("address"))
    fail(path + "/address", "a backend has either \"address\" or \"dns\", not both");
  const std::string at = path + "/dns";
  std::string text;
  if (read_string(value["dns"], at, text) &&
      !split_dns_target(text, backend.dns_name, backend.dns_port))
    expected(at, "a DNS name with a port, such as \"app.internal:8080\"", value["dns"]);
  read_uint(value, path, "refresh_s", 1, 86'400, backend.refresh_s);
  read_uint(value, path, "weight", 1, 256, backend.weight);
  read_bool(value, path, "backup", backend.backup);
  read_backend_limit(value, path, backend);
}

void Validator::read_health(const Json& value, const std::string& path, HealthCheckConfig& health) {
  if (!expect_object(value, path)) return;
  health.enabled = true;
  std::vector<std::string_view> known{"path", "host", "expect"};
  for (const auto& field : kHealthFields) {
    known.push_back(field.key);
    read_uint(value, path, field.key, field.min, field.max, health.*field.member);
  }
  check_keys(value, path, known);
  if (auto it = value.find("path"); it != value.end()) {
    if (read_string(*it, path + "/path", health.path) &&
        (!health.path.starts_with('/') || !safe_in_request(health.path)))
      expected(path + "/path", "a path starting with \"/\", without spaces or line breaks", *it);
  }
  if (auto it = value.find("host"); it != value.end()) {
    if (read_string(*it, path + "/host", health.host) &&
        (health.host.empty() || !safe_in_request(health.host)))
      expected(path + "/host", "a host name without spaces or line breaks", *it);
  }
  if (auto it = value.find("expect"); it != value.end()) {
    std::string text;
    if (read_string(*it, path + "/expect", text) &&
        !parse_status_range(text, health.expect_min, health.expect_max))
      expected(path + "/expect", "a status or status range such as \"200-399\"", *it);
  }
  if (health.timeout_ms > health.interval_ms) {
    if (value.contains("timeout_ms"))
      fail(path + "/timeout_ms", "the check timeout must not exceed interval_ms (" +
                                     std::to_string(health.interval_ms) + ")");
    else
      health.timeout_ms = health.interval_ms;  // the default yields to a short interval
  }
}

void Validator::read_passive(const Json& value, const std::string& path,
                             PassiveHealthConfig& passive) {
  read_fields(value, path, passive, kPassiveFields);
  if (passive.max_ejection_ms < passive.ejection_ms)
    fail(path + "/max_ejection_ms",
         "must be at least ejection_ms (" + std::to_string(passive.ejection_ms) + ")");
}

void Validator::read_hash_key(const Json& value, const std::string& path, std::string& out) {
  if (!read_string(value, path, out)) return;
  const bool named = (out.starts_with("header:") && out.size() > 7) ||
                     (out.starts_with("cookie:") && out.size() > 7);
  if (out == "client_ip" || out == "path" || out == "uri" || named) return;
  expected(path, "one of \"client_ip\", \"path\", \"uri\", \"header:NAME\", \"cookie:NAME\"",
           value);
  // A near miss of the kind: of the whole text, or of what comes before the ":" of a named
  // one ("headers:X-User" means "header:X-User").
  const size_t colon = out.find(':');
  if (colon == std::string::npos) {
    errors_.back().message += did_you_mean(out, {"client_ip", "path", "uri"});
  } else if (colon + 1 < out.size()) {
    const std::string_view kind = std::string_view(out).substr(0, colon);
    if (const std::optional<std::string_view> near = near_miss(kind, {"header", "cookie"}))
      errors_.back().message +=
          " (did you mean \"" + std::string(*near) + out.substr(colon) + "\"?)";
  }
}

void Validator::read_resolver(const Json& value, const std::string& path,
                              ResolverConfig& resolver) {
  if (!expect_object(value, path)) return;
  check_keys(value, path, {"nameservers", "timeout_ms"});
  read_uint(value, path, "timeout_ms", 10, 60'000, resolver.timeout_ms);
  auto it = value.find("nameservers");
  if (it == value.end()) return;
  const std::string at = path + "/nameservers";
  if (!it->is_array()) return expected(at, "an array of \"ip:port\" strings", *it);
  for (size_t i = 0; i < it->size(); ++i) {
    std::string text;
    const std::string item = at + "/" + std::to_string(i);
    if (!read_string((*it)[i], item, text)) continue;
    const std::string with_port = with_default_port(text);
    if (!parse_socket_address(with_port, nullptr))
      expected(item, "a numeric nameserver address such as \"127.0.0.1:53\"", (*it)[i]);
    else
      resolver.nameservers.push_back(with_port);
  }
}

}  // namespace sluice::conf
