// near_miss: the known word a typo was meant to be, or none when nothing is close enough or two
// words are equally close.
#include "conf/near_miss.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string_view>
#include <vector>

namespace sluice::conf {
namespace {

const std::vector<std::string_view> kBackendKeys = {"address", "dns", "weight", "backup"};

TEST_CASE("a missing letter is a near miss", "[conf][near_miss]") {
  CHECK(near_miss("adress", kBackendKeys) == "address");
}

TEST_CASE("an extra letter is a near miss", "[conf][near_miss]") {
  CHECK(near_miss("weightt", kBackendKeys) == "weight");
}

TEST_CASE("a wrong letter is a near miss", "[conf][near_miss]") {
  CHECK(near_miss("backap", kBackendKeys) == "backup");
}

TEST_CASE("two swapped neighbouring letters are one edit", "[conf][near_miss]") {
  CHECK(near_miss("wieght", kBackendKeys) == "weight");
  CHECK(near_miss("dsn", kBackendKeys) == "dns");  // 1 edit: near even in a 3-letter word
}

TEST_CASE("a difference in case alone is a near miss", "[conf][near_miss]") {
  CHECK(near_miss("Address", kBackendKeys) == "address");
  CHECK(near_miss("ROUND_ROBIN", {"round_robin", "least_conn"}) == "round_robin");
}

TEST_CASE("two edits are near in a long word", "[conf][near_miss]") {
  CHECK(near_miss("refresh", {"dns", "refresh_s", "weight", "backup"}) == "refresh_s");
}

TEST_CASE("three edits are never near, however long the word", "[conf][near_miss]") {
  CHECK(near_miss("keepalive_timeout", {"keepalive_timeout_ms"}) == std::nullopt);
}

TEST_CASE("a short word needs fewer edits than half its length", "[conf][near_miss]") {
  CHECK(near_miss("url", {"uri"}) == "uri");        // 1 edit of 3
  CHECK(near_miss("ur", {"uri"}) == std::nullopt);  // 1 edit of 2
  CHECK(near_miss("ip", {"client_ip", "path", "uri"}) == std::nullopt);
}

TEST_CASE("nothing near gives no suggestion", "[conf][near_miss]") {
  CHECK(near_miss("fastest", {"round_robin", "least_conn", "hash", "random_two"}) == std::nullopt);
  CHECK(near_miss("", kBackendKeys) == std::nullopt);
  CHECK(near_miss("address", {}) == std::nullopt);
}

TEST_CASE("the nearest of several near candidates wins", "[conf][near_miss]") {
  CHECK(near_miss("timeout_ms", {"timeouts_ms", "timeout_ms2x"}) == "timeouts_ms");
}

TEST_CASE("two candidates equally near give no suggestion", "[conf][near_miss]") {
  CHECK(near_miss("1.1", {"1.2", "1.3"}) == std::nullopt);
  CHECK(near_miss("ket", {"key", "kept"}) == std::nullopt);
}

TEST_CASE("a candidate listed twice is not a tie with itself", "[conf][near_miss]") {
  CHECK(near_miss("adress", {"address", "address"}) == "address");
}

}  // namespace
}  // namespace sluice::conf
