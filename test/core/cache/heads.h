// Heads for the cache's unit tests: field lines, HTTP dates, and requests and responses parsed
// by the proxy's own parser, so what a test stores is what a backend could have sent.
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/cache/http_date.h"
#include "core/http/http_head.h"
#include "core/http/http_parser.h"

namespace sluice::core::cache::test {

inline std::string field(std::string_view name, std::string_view value) {
  std::string line(name);
  line.append(": ");
  line.append(value);
  line.append("\r\n");
  return line;
}

inline std::string date(int64_t seconds) {
  char text[kHttpDateLength];
  format_http_date(seconds, text);
  return std::string(text, sizeof text);
}

// The head of `text`, and where it ends.
inline MessageHead parse_head(HttpParser::Kind kind, const std::string& text,
                              size_t* end = nullptr) {
  HeadPool heads;
  HttpParser parser(kind, heads, {});
  const ParseStep step = parser.execute(text.data(), text.size());
  REQUIRE(step.event == ParseEvent::kHead);
  if (end) *end = step.consumed;
  return *parser.head();
}

// A request for http://example.com/r with `fields` ("Name: value\r\n"...).
inline MessageHead request(const std::string& fields = {}, const char* method = "GET") {
  std::string text(method);
  text.append(" /r HTTP/1.1\r\nHost: example.com\r\n");
  text.append(fields);
  text.append("\r\n");
  return parse_head(HttpParser::Kind::kRequest, text);
}

}  // namespace sluice::core::cache::test
