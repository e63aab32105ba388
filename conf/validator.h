// The config validator, shared by the files that read each part of the schema. Internal to
// conf/: it collects every problem with its JSON path and line instead of stopping at the first.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "conf/json_lines.h"

namespace sluice::conf {

// ordered_json keeps upstreams in file order, so errors and snapshot indices follow the file.
using Json = nlohmann::ordered_json;

constexpr uint32_t kMaxMs = 86'400'000;  // one day: anything longer is surely a typo

// What an address belongs to: the hint for a host name given where an IP is needed differs.
// kListener is for any address Sluice listens on (a listener's, the admin page's).
enum class AddressOf { kListener, kBackend };

template <typename T>
struct UintField {
  std::string_view key;
  uint32_t T::*member;
  uint32_t min;
  uint32_t max;
};

std::string describe(const Json& value);
std::string join(const std::vector<std::string_view>& names);
// " (did you mean "address"?)" when `word` is a near miss of one of `known` (see near_miss.h),
// else empty: appended to an error about an unknown key or value.
std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& known);
// True for the shape `sluice hash-password` prints: "scrypt$N$r$p$salt$key".
bool password_hash_shape(std::string_view hash);

class Validator {
 public:
  Validator(const LineIndex& lines, std::vector<ConfigError>& errors, std::string_view base_dir)
      : lines_(lines), errors_(errors), base_dir_(base_dir) {}

  Config read(const Json& root);

 public:
  // An error about the value at `path` (or, when it is absent, about the object lacking it).
  void fail(const std::string& path, std::string message) {
    const TextPosition at = lines_.value_position(path);
    errors_.push_back(ConfigError{path, at.line, at.column, std::move(message)});
  }
  // An error about the key of the member at `path`, such as an unknown key.
  void fail_at_key(const std::string& path, std::string message) {
    const TextPosition at = lines_.key_position(path);
    errors_.push_back(ConfigError{path, at.line, at.column, std::move(message)});
  }
  void expected(const std::string& path, std::string_view what, const Json& got) {
    fail(path, "expected " + std::string(what) + ", got " + describe(got));
  }
  bool expect_object(const Json& value, const std::string& path);
  void check_keys(const Json& object, const std::string& path,
                  const std::vector<std::string_view>& known);
  const Json* require(const Json& object, const std::string& path, std::string_view key);
  void read_uint(const Json& object, const std::string& path, std::string_view key, uint32_t min,
                 uint32_t max, uint32_t& out);
  // For sizes that may pass 4 GiB, such as a cache's bytes.
  void read_uint(const Json& object, const std::string& path, std::string_view key, uint64_t min,
                 uint64_t max, uint64_t& out);
  template <typename T, size_t N>
  void read_fields(const Json& object, const std::string& path, T& out,
                   const std::array<UintField<T>, N>& fields);
  bool read_string(const Json& value, const std::string& path, std::string& out);
  bool read_address(const Json& object, const std::string& path, SocketAddress& out,
                    AddressOf owner = AddressOf::kListener);

  void read_listeners(const Json& value, const std::string& path, Config& config);
  void read_proxy_protocol(const Json& value, const std::string& path, ListenerConfig& listener);
  // Access control (access_schema.cpp).
  bool read_networks(const Json& value, const std::string& path, std::vector<Cidr>& out);
  void read_access(const Json& value, const std::string& path, std::optional<AccessConfig>& out);
  void read_trusted_proxies(const Json& root, Config& config);
  // Rate limits on a route (rate_limit_schema.cpp).
  void read_rate_limit(const Json& value, const std::string& path,
                       std::optional<RateLimitConfig>& out);
  // The shared HTTP cache of a route (cache_schema.cpp).
  void read_cache(const Json& value, const std::string& path, std::optional<CacheConfig>& out);
  void read_upstreams(const Json& value, const std::string& path, Config& config);
  void read_upstream(const Json& value, const std::string& path, UpstreamConfig& upstream);
  void read_backend(const Json& value, const std::string& path, BackendConfig& backend);
  void read_dns_backend(const Json& value, const std::string& path, BackendConfig& backend);
  void read_backend_limit(const Json& value, const std::string& path, BackendConfig& backend);
  void read_health(const Json& value, const std::string& path, HealthCheckConfig& health);
  void read_passive(const Json& value, const std::string& path, PassiveHealthConfig& passive);
  void read_hash_key(const Json& value, const std::string& path, std::string& out);
  void read_resolver(const Json& value, const std::string& path, ResolverConfig& resolver);
  bool read_bool(const Json& object, const std::string& path, std::string_view key, bool& out);
  bool read_path(const Json& object, const std::string& path, std::string_view key,
                 std::string& out);
  void read_certificate(const Json& value, const std::string& path, CertificateFiles& files);
  void read_listener_tls(const Json& value, const std::string& path, ListenerTlsConfig& tls);
  void read_alpn(const Json& value, const std::string& path, std::vector<std::string>& out);
  void read_upstream_tls(const Json& value, const std::string& path, UpstreamTlsConfig& tls);
  void read_operations(const Json& root, Config& config);
  void check_admin_address(const Config& config);
  void read_routes(const Json& value, const std::string& path, Config& config);
  void read_route(const Json& value, const std::string& path, RouteConfig& route);
  void read_forwarded(const Json& object, const std::string& path, ForwardedMode& out);
  // Forward and intercept listeners (forward_schema.cpp).
  void read_listener_mode(const Json& value, const std::string& path, ListenerConfig& listener);
  void read_forward(const Json& value, const std::string& path, ForwardConfig& out);
  void read_users(const Json& value, const std::string& path, ForwardConfig& out);

  const LineIndex& lines_;
  std::vector<ConfigError>& errors_;
  std::string base_dir_;                     // relative file paths start here
  std::vector<std::string> upstream_names_;  // every named upstream, valid or not
};

template <typename T, size_t N>
void Validator::read_fields(const Json& object, const std::string& path, T& out,
                            const std::array<UintField<T>, N>& fields) {
  if (!expect_object(object, path)) return;
  std::vector<std::string_view> known;
  for (const UintField<T>& field : fields) {
    known.push_back(field.key);
    read_uint(object, path, field.key, field.min, field.max, out.*field.member);
  }
  check_keys(object, path, known);
}

}  // namespace sluice::conf
