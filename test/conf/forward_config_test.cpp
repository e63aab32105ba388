// A listener's "mode" and its "forward" object: a forward proxy needs no upstreams or routes,
// and every mistake in its allow list or users is an error at its JSON path.
#include <catch2/catch.hpp>
#include <string>

#include "conf/config.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::all_errors;
using test::error_at;
using test::message_at;

constexpr const char* kHash =
    "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=";

// A config with one listener whose members follow its address, and nothing else.
std::string listener_only(const std::string& members) {
  return R"({ "listeners": [ { "address": "127.0.0.1:3128", )" + members + " } ] }";
}

std::string forward_listener(const std::string& forward) {
  return listener_only(R"("mode": "forward", "forward": )" + forward);
}

ListenerConfig parsed_listener(const std::string& text) {
  const ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  REQUIRE(result.config.has_value());
  REQUIRE(result.config->listeners.size() == 1);
  return result.config->listeners[0];
}

TEST_CASE("a forward listener needs no upstreams or routes", "[conf][forward]") {
  const ListenerConfig listener = parsed_listener(forward_listener(R"({ "allow": ["*:443"] })"));
  CHECK(listener.mode == ListenerMode::kForward);
  REQUIRE(listener.forward.allow.patterns.size() == 1);
  CHECK(listener.forward.allow.patterns[0].kind == DestinationPattern::Host::kAny);
  CHECK(listener.forward.allow.patterns[0].port == 443);
}

TEST_CASE("a forward listener without \"forward\" allows nothing and asks no password",
          "[conf][forward]") {
  const ListenerConfig listener = parsed_listener(listener_only(R"("mode": "forward")"));
  CHECK(listener.mode == ListenerMode::kForward);
  CHECK(listener.forward.allow.patterns.empty());
  CHECK_FALSE(listener.forward.allow_private);
  CHECK(listener.forward.users.empty());
  CHECK(listener.forward.forwarded == ForwardedMode::kTransparent);
}

TEST_CASE("a listener is a reverse proxy unless it says otherwise", "[conf][forward]") {
  const ParseResult result = parse_config(test::config_text());
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  CHECK(result.config->listeners[0].mode == ListenerMode::kReverse);
}

TEST_CASE("a reverse listener still needs upstreams and routes", "[conf][forward]") {
  for (const char* mode : {"", R"("mode": "reverse",)"}) {
    const std::string text =
        std::string(R"({ "listeners": [ { )") + mode + R"( "address": "127.0.0.1:8080" } ] })";
    CHECK_THAT(message_at(text, "/upstreams"), Catch::Contains("missing required key"));
    CHECK_THAT(message_at(text, "/routes"), Catch::Contains("missing required key"));
  }
}

TEST_CASE("a reverse listener beside a forward one still needs upstreams and routes",
          "[conf][forward]") {
  const std::string text = R"({ "listeners": [
    { "address": "127.0.0.1:3128", "mode": "forward" },
    { "address": "127.0.0.1:8080" } ] })";
  CHECK_THAT(message_at(text, "/upstreams"), Catch::Contains("missing required key"));
}

TEST_CASE("an unknown mode is refused with the three that exist", "[conf][forward]") {
  CHECK_THAT(message_at(listener_only(R"("mode": "tunnel")"), "/listeners/0/mode"),
             Catch::Contains(R"("reverse", "forward" or "intercept")"));
}

TEST_CASE("a near miss of a mode is answered with it", "[conf][forward][suggest]") {
  CHECK_THAT(message_at(listener_only(R"("mode": "foward")"), "/listeners/0/mode"),
             Catch::Contains(R"((did you mean "forward"?))"));
  CHECK_THAT(message_at(listener_only(R"("mode": "Reverse")"), "/listeners/0/mode"),
             Catch::Contains(R"((did you mean "reverse"?))"));
}

TEST_CASE("\"forward\" on a reverse listener is an error", "[conf][forward]") {
  const std::string text = test::config_text();
  const std::string with_forward = text.substr(0, text.find(R"("address": "127.0.0.1:8080")")) +
                                   R"("forward": { "allow": ["*"] }, )" +
                                   text.substr(text.find(R"("address": "127.0.0.1:8080")"));
  CHECK_THAT(message_at(with_forward, "/listeners/0/forward"),
             Catch::Contains(R"("mode": "forward")"));
}

TEST_CASE("a bad allow entry is an error at its index, saying what is wrong", "[conf][forward]") {
  const std::string text = forward_listener(R"({ "allow": ["example.com", "example.com:0"] })");
  const ParseResult result = parse_config(text);
  CHECK_FALSE(result.config.has_value());
  CHECK(error_at(result, "/listeners/0/forward/allow/0") == nullptr);
  const std::string message = message_at(text, "/listeners/0/forward/allow/1");
  CHECK_THAT(message, Catch::Contains("\"example.com:0\""));
  CHECK_THAT(message, Catch::Contains("port"));
}

TEST_CASE("an allow list that is no list of strings is an error", "[conf][forward]") {
  CHECK_FALSE(
      message_at(forward_listener(R"({ "allow": "*" })"), "/listeners/0/forward/allow").empty());
  CHECK_FALSE(message_at(forward_listener(R"({ "allow": [443] })"), "/listeners/0/forward/allow/0")
                  .empty());
}

TEST_CASE("a misspelt key in \"forward\" is answered with the right one",
          "[conf][forward][suggest]") {
  CHECK_THAT(message_at(forward_listener(R"({ "alow": ["*"] })"), "/listeners/0/forward/alow"),
             Catch::Contains(R"((did you mean "allow"?))"));
}

TEST_CASE("users with a well-shaped hash are kept by name", "[conf][forward]") {
  const ListenerConfig listener = parsed_listener(
      forward_listener(std::string(R"({ "users": { "alice": ")") + kHash + R"(" } })"));
  REQUIRE(listener.forward.users.size() == 1);
  CHECK(listener.forward.users[0].name == "alice");
  CHECK(listener.forward.users[0].hash == kHash);
}

TEST_CASE("an intercept listener may not have users: its clients send no credentials",
          "[conf][forward]") {
  const std::string text =
      listener_only(std::string(R"("mode": "intercept", "forward": )") +
                    R"({ "allow": ["*"], "users": { "alice": ")" + kHash + R"(" } })");
  CHECK_THAT(message_at(text, "/listeners/0/forward/users"),
             Catch::Contains("belongs to a forward listener"));
}

TEST_CASE("a user whose hash is not what hash-password prints is an error", "[conf][forward]") {
  for (const char* hash : {"hunter2", "scrypt$16384$8$1$c2FsdA==", "bcrypt$16384$8$1$c2FsdA==$a2V5",
                           "scrypt$x$8$1$c2FsdA==$a2V5", "scrypt$16384$8$1$c2FsdA=$a2V5",
                           "scrypt$0$8$1$c2FsdA==$a2V5", "scrypt$16384$8$1$c2FsdA==$a2V5$", ""}) {
    INFO(hash);
    const std::string text =
        forward_listener(std::string(R"({ "users": { "alice": ")") + hash + R"(" } })");
    CHECK_THAT(message_at(text, "/listeners/0/forward/users/alice"),
               Catch::Contains("hash-password"));
  }
}

TEST_CASE("a user name holding ':' or empty is an error", "[conf][forward]") {
  const std::string text = forward_listener(std::string(R"({ "users": { "a:b": ")") + kHash +
                                            R"(", "": ")" + kHash + R"(" } })");
  CHECK_THAT(message_at(text, "/listeners/0/forward/users/a:b"), Catch::Contains("\":\""));
  CHECK_THAT(message_at(text, "/listeners/0/forward/users/"), Catch::Contains("empty"));
}

TEST_CASE("the forward listener's anonymity level and allow_private are read", "[conf][forward]") {
  const ListenerConfig listener = parsed_listener(
      forward_listener(R"({ "allow": ["*"], "allow_private": true, "forwarded": "elite" })"));
  CHECK(listener.forward.allow_private);
  CHECK(listener.forward.forwarded == ForwardedMode::kElite);
  CHECK(parsed_listener(forward_listener(R"({ "forwarded": "anonymous" })")).forward.forwarded ==
        ForwardedMode::kAnonymous);
}

TEST_CASE("an unknown anonymity level on a forward listener is an error", "[conf][forward]") {
  CHECK_THAT(message_at(forward_listener(R"({ "forwarded": "anonymus" })"),
                        "/listeners/0/forward/forwarded"),
             Catch::Contains(R"((did you mean "anonymous"?))"));
}

}  // namespace
}  // namespace sluice::conf
