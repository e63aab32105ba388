// "cache" on a route: {} turns it on with every default, each key is read, and each mistake is
// refused with its path, line and bounds.
#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::all_errors;
using test::config_text;
using test::kRouteLine;
using test::require_error;
using test::Slots;

std::string with_cache(const std::string& cache) {
  return config_text(Slots{.route = "\"cache\": " + cache});
}

// {"KEY": VALUE} and "/routes/0/cache/KEY", built by appends (GCC 12 warns falsely on + chains).
std::string one_key(std::string_view key, std::string_view value) {
  std::string object = "{\"";
  object.append(key);
  object.append("\": ");
  object.append(value);
  object.append("}");
  return object;
}

std::string key_path(std::string_view key) {
  std::string path = "/routes/0/cache/";
  path.append(key);
  return path;
}

CacheConfig parsed_cache(const std::string& cache) {
  const std::string text = with_cache(cache);
  const ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  REQUIRE(result.config.has_value());
  const std::optional<CacheConfig>& read = result.config->routes.at(0).cache;
  REQUIRE(read.has_value());
  return *read;
}

}  // namespace

TEST_CASE("cache: a route without it has none", "[conf][cache]") {
  const ParseResult result = parse_config(config_text());
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  CHECK_FALSE(result.config->routes.at(0).cache.has_value());
}

TEST_CASE("cache: an empty object turns it on with every default", "[conf][cache]") {
  const CacheConfig cache = parsed_cache("{}");
  CHECK(cache.max_bytes == 268435456);
  CHECK(cache.max_object_bytes == 8388608);
  CHECK(cache.default_ttl_s == 0);
  CHECK(cache.stale_if_error_s == 0);
  CHECK(cache.stale_while_revalidate_s == 0);
  CHECK(cache.collapse_wait_ms == 5000);
}

TEST_CASE("cache: each key is read", "[conf][cache]") {
  const CacheConfig cache = parsed_cache(
      "{\"max_bytes\": 67108864, \"max_object_bytes\": 1048576, \"default_ttl_s\": 30, "
      "\"stale_if_error_s\": 60, \"stale_while_revalidate_s\": 10, \"collapse_wait_ms\": 250}");
  CHECK(cache.collapse_wait_ms == 250);
  CHECK(cache.max_bytes == 67108864);
  CHECK(cache.max_object_bytes == 1048576);
  CHECK(cache.default_ttl_s == 30);
  CHECK(cache.stale_if_error_s == 60);
  CHECK(cache.stale_while_revalidate_s == 10);
}

TEST_CASE("cache: sizes past 4 GiB are read whole", "[conf][cache]") {
  const CacheConfig cache =
      parsed_cache("{\"max_bytes\": 1099511627776, \"max_object_bytes\": 5000000000}");
  CHECK(cache.max_bytes == (uint64_t{1} << 40));
  CHECK(cache.max_object_bytes == 5000000000);
}

TEST_CASE("cache: the bounds of each key are inclusive", "[conf][cache]") {
  const CacheConfig low = parsed_cache(
      "{\"max_bytes\": 65536, \"max_object_bytes\": 1, \"default_ttl_s\": 0, "
      "\"stale_if_error_s\": 0, \"stale_while_revalidate_s\": 0}");
  CHECK(low.max_bytes == 65536);
  CHECK(low.max_object_bytes == 1);
  const CacheConfig high = parsed_cache(
      "{\"max_object_bytes\": 268435456, \"default_ttl_s\": 31536000, "
      "\"stale_if_error_s\": 31536000, \"stale_while_revalidate_s\": 31536000}");
  CHECK(high.max_object_bytes == high.max_bytes);
  CHECK(high.default_ttl_s == 31536000);
  CHECK(high.stale_if_error_s == 31536000);
  CHECK(high.stale_while_revalidate_s == 31536000);
}

TEST_CASE("cache: collapse_wait_ms takes 0 to ten minutes", "[conf][cache]") {
  CHECK(parsed_cache("{\"collapse_wait_ms\": 0}").collapse_wait_ms == 0);
  CHECK(parsed_cache("{\"collapse_wait_ms\": 600000}").collapse_wait_ms == 600000);
  require_error(with_cache("{\"collapse_wait_ms\": 600001}"), "/routes/0/cache/collapse_wait_ms",
                kRouteLine, {"an integer 0..600000"});
}

TEST_CASE("cache: max_bytes out of its bounds is refused", "[conf][cache]") {
  const char* path = "/routes/0/cache/max_bytes";
  require_error(with_cache("{\"max_bytes\": 65535}"), path, kRouteLine,
                {"an integer 65536..1099511627776", "65535"});
  require_error(with_cache("{\"max_bytes\": 1099511627777}"), path, kRouteLine,
                {"an integer 65536..1099511627776"});
  require_error(with_cache("{\"max_bytes\": -1}"), path, kRouteLine, {"an integer"});
  require_error(with_cache("{\"max_bytes\": 1.5e6}"), path, kRouteLine, {"an integer"});
  require_error(with_cache("{\"max_bytes\": \"64M\"}"), path, kRouteLine, {"an integer"});
}

TEST_CASE("cache: max_object_bytes out of its bounds is refused", "[conf][cache]") {
  require_error(with_cache("{\"max_object_bytes\": 0}"), "/routes/0/cache/max_object_bytes",
                kRouteLine, {"an integer 1..1099511627776", "0"});
}

TEST_CASE("cache: each duration past a year is refused", "[conf][cache]") {
  for (const char* key : {"default_ttl_s", "stale_if_error_s", "stale_while_revalidate_s"}) {
    INFO(key);
    require_error(with_cache(one_key(key, "31536001")), key_path(key), kRouteLine,
                  {"an integer 0..31536000", "31536001"});
    require_error(with_cache(one_key(key, "-1")), key_path(key), kRouteLine,
                  {"an integer 0..31536000"});
  }
}

TEST_CASE("cache: max_object_bytes larger than max_bytes is refused, naming both",
          "[conf][cache]") {
  require_error(with_cache("{\"max_bytes\": 65536, \"max_object_bytes\": 65537}"),
                "/routes/0/cache/max_object_bytes", kRouteLine,
                {"\"max_object_bytes\" (65537)", "\"max_bytes\" (65536)"});
  // The default max_object_bytes (8 MiB) does not fit a smaller cache either.
  require_error(with_cache("{\"max_bytes\": 1048576}"), "/routes/0/cache/max_object_bytes",
                kRouteLine, {"\"max_object_bytes\" (8388608)", "\"max_bytes\" (1048576)"});
}

TEST_CASE("cache: a value other than an object is refused", "[conf][cache]") {
  require_error(with_cache("true"), "/routes/0/cache", kRouteLine, {"expected an object"});
}

TEST_CASE("cache: a misspelt key suggests the right one", "[conf][cache]") {
  require_error(with_cache("{\"max_byte\": 65536}"), "/routes/0/cache/max_byte", kRouteLine,
                {"unknown key \"max_byte\"", "did you mean \"max_bytes\"?"});
  require_error(with_cache("{\"stale_while_revalidate\": 10}"),
                "/routes/0/cache/stale_while_revalidate", kRouteLine,
                {"did you mean \"stale_while_revalidate_s\"?"});
  require_error(config_text(Slots{.route = "\"caches\": {}"}), "/routes/0/caches", kRouteLine,
                {"did you mean \"cache\"?"});
}

}  // namespace sluice::conf
