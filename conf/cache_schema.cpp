// The "cache" object of a route: the size of its shared HTTP cache and how long a response may be
// served without, or past, its freshness (docs/cache.md). {} turns the cache on with defaults.
#include "conf/validator.h"

namespace sluice::conf {

namespace {

constexpr uint64_t kMinBytes = 65'536;             // 64 KiB: less holds hardly a response
constexpr uint64_t kMaxBytes = uint64_t{1} << 40;  // 1 TiB: more is surely a typo
constexpr uint32_t kMaxSeconds = 31'536'000;       // a year: longer is surely a typo
constexpr uint32_t kMaxWaitMs = 600'000;           // ten minutes: longer is surely a typo

}  // namespace

// {"max_bytes": 67108864, "max_object_bytes": 1048576, "default_ttl_s": 60,
//  "stale_if_error_s": 300, "stale_while_revalidate_s": 10, "collapse_wait_ms": 5000}: every
//  key optional.
void Validator::read_cache(const Json& value, const std::string& path,
                           std::optional<CacheConfig>& out) {
  if (!expect_object(value, path)) return;
  check_keys(value, path,
             {"max_bytes", "max_object_bytes", "default_ttl_s", "stale_if_error_s",
              "stale_while_revalidate_s", "collapse_wait_ms"});
  const size_t errors_before = errors_.size();
  CacheConfig cache;
  read_uint(value, path, "max_bytes", kMinBytes, kMaxBytes, cache.max_bytes);
  read_uint(value, path, "max_object_bytes", uint64_t{1}, kMaxBytes, cache.max_object_bytes);
  read_uint(value, path, "default_ttl_s", 0, kMaxSeconds, cache.default_ttl_s);
  read_uint(value, path, "stale_if_error_s", 0, kMaxSeconds, cache.stale_if_error_s);
  read_uint(value, path, "stale_while_revalidate_s", 0, kMaxSeconds,
            cache.stale_while_revalidate_s);
  read_uint(value, path, "collapse_wait_ms", 0, kMaxWaitMs, cache.collapse_wait_ms);
  if (errors_.size() != errors_before) return;
  // A body larger than the whole cache could never be stored; the default max_object_bytes
  // may be what passes a small max_bytes, so the error names both values.
  if (cache.max_object_bytes > cache.max_bytes) {
    std::string message = "\"max_object_bytes\" (";
    message.append(std::to_string(cache.max_object_bytes));
    message.append(") is more than \"max_bytes\" (");
    message.append(std::to_string(cache.max_bytes));
    message.append("): one stored response cannot be larger than the whole cache");
    std::string at = path;
    at.append("/max_object_bytes");
    fail(at, std::move(message));
    return;
  }
  out = cache;
}

}  // namespace sluice::conf
