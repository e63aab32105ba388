// "rate_limit" on a route: read with its defaults, each mistake refused with its path and line,
// and the buckets a snapshot builds from it, kept across a reload that leaves the settings alone.
#include <catch2/catch.hpp>
#include <string>

#include "conf/config.h"
#include "conf/snapshot.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::all_errors;
using test::config_text;
using test::kRouteLine;
using test::require_error;
using test::Slots;

Config parsed(const std::string& text) {
  ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  REQUIRE(result.config.has_value());
  return std::move(*result.config);
}

Config with_limit(const std::string& limit) {
  return parsed(config_text(Slots{.route = "\"rate_limit\": " + limit}));
}

}  // namespace

TEST_CASE("rate_limit: absent, no buckets", "[conf][rate]") {
  const auto snapshot = build_snapshot(parsed(config_text()), nullptr);
  CHECK_FALSE(snapshot->config.routes.at(0).rate_limit.has_value());
  REQUIRE(snapshot->rates.size() == 1);
  CHECK(snapshot->rates[0] == nullptr);
}

TEST_CASE("rate_limit: read with its defaults", "[conf][rate]") {
  const RateLimitConfig all =
      with_limit("{\"per_client_rps\": 50, \"burst\": 100, \"rps\": 1000, \"max_clients\": 64}")
          .routes.at(0)
          .rate_limit.value();
  CHECK(all.per_client_rps == 50);
  CHECK(all.burst == 100);
  CHECK(all.rps == 1000);
  CHECK(all.max_clients == 64);

  const RateLimitConfig client =
      with_limit("{\"per_client_rps\": 7}").routes.at(0).rate_limit.value();
  CHECK(client.burst == 7);  // burst defaults to the rate
  CHECK(client.rps == 0);
  CHECK(client.max_clients == 65536);

  const RateLimitConfig route = with_limit("{\"rps\": 3}").routes.at(0).rate_limit.value();
  CHECK(route.per_client_rps == 0);
  CHECK(route.rps == 3);

  const auto snapshot = build_snapshot(with_limit("{\"rps\": 3}"), nullptr);
  REQUIRE(snapshot->rates.at(0) != nullptr);
  CHECK(snapshot->rates[0]->clients() == nullptr);  // no client table without per_client_rps
}

TEST_CASE("rate_limit: mistakes are refused with their path and line", "[conf][rate]") {
  const auto route = [](const std::string& limit) {
    return config_text(Slots{.route = "\"rate_limit\": " + limit});
  };
  require_error(route("{}"), "/routes/0/rate_limit", kRouteLine,
                {"expected \"per_client_rps\", \"rps\" or both"});
  require_error(route("50"), "/routes/0/rate_limit", kRouteLine, {"expected an object"});
  require_error(route("{\"per_client_rps\": 0}"), "/routes/0/rate_limit/per_client_rps", kRouteLine,
                {"an integer 1..1000000", "0"});
  require_error(route("{\"per_client_rps\": -5}"), "/routes/0/rate_limit/per_client_rps",
                kRouteLine, {"an integer 1..1000000"});
  require_error(route("{\"per_client_rps\": \"50\"}"), "/routes/0/rate_limit/per_client_rps",
                kRouteLine, {"an integer"});
  require_error(route("{\"rps\": 20000000}"), "/routes/0/rate_limit/rps", kRouteLine,
                {"an integer 1..10000000"});
  require_error(route("{\"per_client_rps\": 5, \"max_clients\": 4}"),
                "/routes/0/rate_limit/max_clients", kRouteLine, {"an integer 8..16777216"});
  require_error(route("{\"rps\": 5, \"burst\": 10}"), "/routes/0/rate_limit/burst", kRouteLine,
                {"applies only with \"per_client_rps\""});
  require_error(route("{\"rps\": 5, \"max_clients\": 10}"), "/routes/0/rate_limit/max_clients",
                kRouteLine, {"applies only with \"per_client_rps\""});
  require_error(route("{\"per_client_rsp\": 5, \"rps\": 5}"), "/routes/0/rate_limit/per_client_rsp",
                kRouteLine, {"unknown key \"per_client_rsp\"", "did you mean \"per_client_rps\"?"});
  require_error(config_text(Slots{.route = "\"rate_limits\": {\"rps\": 5}"}),
                "/routes/0/rate_limits", kRouteLine, {"did you mean \"rate_limit\"?"});
}

TEST_CASE("rate_limit: a reload that keeps the settings keeps the buckets", "[conf][rate]") {
  const auto first = build_snapshot(with_limit("{\"per_client_rps\": 5, \"rps\": 9}"), nullptr);
  const auto same = build_snapshot(with_limit("{\"per_client_rps\": 5, \"rps\": 9}"), first.get());
  CHECK(same->rates.at(0) == first->rates.at(0));
  const auto changed =
      build_snapshot(with_limit("{\"per_client_rps\": 6, \"rps\": 9}"), same.get());
  REQUIRE(changed->rates.at(0) != nullptr);
  CHECK(changed->rates.at(0) != first->rates.at(0));
  const auto gone = build_snapshot(parsed(config_text()), changed.get());
  CHECK(gone->rates.at(0) == nullptr);
  const auto back = build_snapshot(with_limit("{\"per_client_rps\": 6, \"rps\": 9}"), gone.get());
  CHECK(back->rates.at(0) != changed->rates.at(0));  // not carried over a generation without it
}

}  // namespace sluice::conf
