// Shared by the conf/ tests: a small valid config laid out one setting per line, with slots a
// test can fill, and lookups that print every error when an expectation fails.
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace sluice::conf::test {

// Where each slot of config_text() lands; tests assert on these lines.
constexpr int kTopLine = 2;
constexpr int kUpstreamLine = 5;
constexpr int kBackendLine = 6;
constexpr int kRouteLine = 7;

struct Slots {
  std::string top = {};       // extra top-level members
  std::string upstream = {};  // extra members of upstream "app"
  std::string backend = {};   // extra members of its only backend
  std::string route = {};     // extra members of the only route
};

inline std::string config_text(const Slots& slots = {}) {
  const auto member = [](const std::string& extra) { return extra.empty() ? "" : extra + ","; };
  const auto tail = [](const std::string& extra) { return extra.empty() ? "" : ", " + extra; };
  return "{\n" +                                                        // line 1
         member(slots.top) + "\n" +                                     // line 2
         "\"listeners\": [ { \"address\": \"127.0.0.1:8080\" } ],\n" +  // line 3
         "\"upstreams\": { \"app\": {\n" +                              // line 4
         member(slots.upstream) + "\n" +                                // line 5
         "\"backends\": [ { \"address\": \"127.0.0.1:9001\"" + tail(slots.backend) +
         " } ] } },\n" +                                                           // line 6
         "\"routes\": [ { \"upstream\": \"app\"" + tail(slots.route) + " } ]\n" +  // line 7
         "}\n";
}

inline std::string all_errors(const ParseResult& result) {
  std::string out;
  for (const ConfigError& e : result.errors) out += e.to_string() + "\n";
  return out;
}

inline const ConfigError* error_at(const ParseResult& result, std::string_view path) {
  for (const ConfigError& e : result.errors)
    if (e.path == path) return &e;
  return nullptr;
}

// The message of the error at `path` when `text` is parsed; the test fails when there is none.
inline std::string message_at(const std::string& text, std::string_view path) {
  const ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  const ConfigError* error = error_at(result, path);
  REQUIRE(error != nullptr);
  return error->message;
}

// Checks that `text` is refused with an error at `path` on `line` whose message contains each
// of `fragments`.
inline void require_error(const std::string& text, std::string_view path, int line,
                          std::initializer_list<std::string_view> fragments) {
  const ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  CHECK_FALSE(result.config.has_value());
  const ConfigError* error = error_at(result, path);
  REQUIRE(error != nullptr);
  CHECK(error->line == line);
  for (std::string_view fragment : fragments)
    CHECK_THAT(error->message, Catch::Contains(std::string(fragment)));
}

}  // namespace sluice::conf::test
