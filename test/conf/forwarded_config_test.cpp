// A route's "forwarded" (its anonymity level): the three words, the default, and a clear error
// for anything else, with the word it nearly matches.
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

ForwardedMode parsed_mode(const std::string& route_members) {
  const ParseResult result = parse_config(config_text({.route = route_members}));
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  REQUIRE(result.config->routes.size() == 1);
  return result.config->routes[0].forwarded;
}

TEST_CASE("a route is transparent unless it says otherwise", "[conf][forwarded]") {
  CHECK(parsed_mode("") == ForwardedMode::kTransparent);
  CHECK(parsed_mode(R"("forwarded": "transparent")") == ForwardedMode::kTransparent);
  CHECK(parsed_mode(R"("forwarded": "anonymous")") == ForwardedMode::kAnonymous);
  CHECK(parsed_mode(R"("forwarded": "elite")") == ForwardedMode::kElite);
}

TEST_CASE("each route keeps its own level in the snapshot", "[conf][forwarded]") {
  const ParseResult result = parse_config(R"({
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
    "routes": [ { "path_prefix": "/hidden", "upstream": "app", "forwarded": "elite" },
                { "upstream": "app" } ]
  })");
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  const auto snapshot = build_snapshot(*result.config, nullptr);
  CHECK(snapshot->match("x", "/hidden/a")->config.forwarded == ForwardedMode::kElite);
  CHECK(snapshot->match("x", "/open")->config.forwarded == ForwardedMode::kTransparent);
}

TEST_CASE("an unknown level is refused with the three that exist", "[conf][forwarded]") {
  require_error(config_text({.route = R"("forwarded": "hidden")"}), "/routes/0/forwarded",
                kRouteLine,
                {"expected \"transparent\", \"anonymous\" or \"elite\", got \"hidden\""});
}

TEST_CASE("a near miss of a level is answered with it", "[conf][forwarded][suggest]") {
  require_error(config_text({.route = R"("forwarded": "anonymus")"}), "/routes/0/forwarded",
                kRouteLine, {"got \"anonymus\" (did you mean \"anonymous\"?)"});
  require_error(config_text({.route = R"("forwarded": "Elite")"}), "/routes/0/forwarded",
                kRouteLine, {"(did you mean \"elite\"?)"});
}

TEST_CASE("a level that is no string is refused", "[conf][forwarded]") {
  require_error(config_text({.route = R"("forwarded": true)"}), "/routes/0/forwarded", kRouteLine,
                {"expected a string, got true"});
}

TEST_CASE("a misspelt key beside it is answered with forwarded", "[conf][forwarded][suggest]") {
  require_error(config_text({.route = R"("fowarded": "elite")"}), "/routes/0/fowarded", kRouteLine,
                {"(did you mean \"forwarded\"?)"});
}

}  // namespace
}  // namespace sluice::conf
