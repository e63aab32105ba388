// The "rate_limit" object of a route: request rates per client address and for the whole route
// (docs/access.md). Bounds keep the bucket arithmetic in 64 bits and a table under 256 MiB.
#include "conf/validator.h"

namespace sluice::conf {

namespace {

constexpr uint32_t kMaxClientRps = 1'000'000;
constexpr uint32_t kMaxRouteRps = 10'000'000;
constexpr uint32_t kMaxBurst = 1'000'000;
constexpr uint32_t kMinClients = 8;  // one set of buckets
constexpr uint32_t kMaxClients = 16'777'216;

}  // namespace

// {"per_client_rps": 50, "burst": 100, "rps": 1000, "max_clients": 65536}: at least one rate.
void Validator::read_rate_limit(const Json& value, const std::string& path,
                                std::optional<RateLimitConfig>& out) {
  if (!expect_object(value, path)) return;
  check_keys(value, path, {"per_client_rps", "burst", "rps", "max_clients"});
  const size_t errors_before = errors_.size();
  RateLimitConfig limit;
  read_uint(value, path, "per_client_rps", 1, kMaxClientRps, limit.per_client_rps);
  read_uint(value, path, "burst", 1, kMaxBurst, limit.burst);
  read_uint(value, path, "rps", 1, kMaxRouteRps, limit.rps);
  read_uint(value, path, "max_clients", kMinClients, kMaxClients, limit.max_clients);
  const bool per_client = value.contains("per_client_rps");
  if (!per_client && !value.contains("rps"))
    fail(path, "expected \"per_client_rps\", \"rps\" or both, each a number of requests a second");
  for (const char* key : {"burst", "max_clients"}) {
    if (!value.contains(key) || per_client) continue;
    std::string message = "\"";
    message.append(key).append("\" applies only with \"per_client_rps\" in the same object");
    std::string at = path;
    at.append("/").append(key);
    fail_at_key(at, std::move(message));
  }
  if (errors_.size() != errors_before) return;
  if (limit.burst == 0) limit.burst = limit.per_client_rps;
  out = limit;
}

}  // namespace sluice::conf
