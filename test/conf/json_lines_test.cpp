// The locator: maps JSON pointers to the line and column where each value (and its key) starts,
// agreeing with nlohmann on key names even when strings hold escapes, quotes or brackets.
#include "conf/json_lines.h"

#include <catch2/catch.hpp>

namespace sluice::conf {
namespace {

TEST_CASE("pointer tokens escape tilde and slash as RFC 6901 says", "[conf][lines]") {
  CHECK(pointer_token("plain") == "plain");
  CHECK(pointer_token("a/b") == "a~1b");
  CHECK(pointer_token("a~b") == "a~0b");
  CHECK(pointer_token("~/") == "~0~1");
}

TEST_CASE("values in nested objects and arrays are found on their lines", "[conf][lines]") {
  const LineIndex lines(R"({
  "a": {
    "b": [
      1,
      { "c": true },
      [ 2,
        3 ]
    ]
  },
  "d": null
})");
  CHECK(lines.line_of("") == 1);
  CHECK(lines.line_of("/a") == 2);
  CHECK(lines.line_of("/a/b") == 3);
  CHECK(lines.line_of("/a/b/0") == 4);
  CHECK(lines.line_of("/a/b/1") == 5);
  CHECK(lines.line_of("/a/b/1/c") == 5);
  CHECK(lines.line_of("/a/b/2/0") == 6);
  CHECK(lines.line_of("/a/b/2/1") == 7);
  CHECK(lines.line_of("/d") == 10);
}

TEST_CASE("a value is found on its own line when it follows its key on the next", "[conf][lines]") {
  const LineIndex lines("{\"a\":\n\n  5}");
  CHECK(lines.line_of("/a") == 3);
}

TEST_CASE("quotes, brackets and commas inside strings do not confuse the locator",
          "[conf][lines]") {
  const LineIndex lines(R"({
  "s": "a \"quoted\" ]}, [{ string\\",
  "k\"ey": 1,
  "after": 2
})");
  CHECK(lines.line_of("/k\"ey") == 3);
  CHECK(lines.line_of("/after") == 4);
}

TEST_CASE("keys written with escapes are indexed by their decoded text", "[conf][lines]") {
  const LineIndex lines(
      "{\n\"caf\\u00e9\": 1,\n\"\\ud83d\\ude00\": 2,\n\"a\\/b\": 3,\n\"t\\tab\": 4\n}");
  CHECK(lines.line_of("/caf\xC3\xA9") == 2);
  CHECK(lines.line_of("/\xF0\x9F\x98\x80") == 3);
  CHECK(lines.line_of("/a~1b") == 4);
  CHECK(lines.line_of("/t\tab") == 5);
}

TEST_CASE("a pointer that is absent is placed on its nearest present ancestor", "[conf][lines]") {
  const LineIndex lines("{\n\"a\":\n{\n\"b\": 1\n}\n}");
  CHECK(lines.line_of("/a/missing") == 3);
  CHECK(lines.line_of("/a/missing/deeper/0") == 3);
  CHECK(lines.line_of("/nothing") == 1);
}

TEST_CASE("a repeated key is reported with both lines, and the last one is indexed",
          "[conf][lines]") {
  const LineIndex lines("{\n\"a\": 1,\n\"b\": 2,\n\"a\": 3\n}");
  REQUIRE(lines.duplicates().size() == 1);
  CHECK(lines.duplicates()[0].pointer == "/a");
  CHECK(lines.duplicates()[0].line == 4);
  CHECK(lines.duplicates()[0].first_line == 2);
  CHECK(lines.line_of("/a") == 4);
}

TEST_CASE("the same key in sibling objects is not a duplicate", "[conf][lines]") {
  const LineIndex lines(R"([{"a": 1}, {"a": 2}, {"x": {"a": 3}}])");
  CHECK(lines.duplicates().empty());
}

TEST_CASE("repeated comment keys are not reported as duplicates", "[conf][lines]") {
  const LineIndex lines(R"({"_c": 1, "_c": 2, "#": 3, "#": 4})");
  CHECK(lines.duplicates().empty());
}

// parse_config refuses more than 64 levels before building the index; the index itself copes
// with more (a pointer per level makes it quadratic, so not arbitrarily more).
TEST_CASE("deep nesting is walked without recursion", "[conf][lines]") {
  const std::string text = std::string(2000, '[') + "\n1" + std::string(2000, ']');
  const LineIndex lines(text);
  CHECK(lines.line_of("/0/0/0") == 1);
}

TEST_CASE("nesting beyond the allowed depth is found at its bracket", "[conf][lines]") {
  CHECK(find_excess_nesting("[[{}]]", 3) == std::string_view::npos);
  CHECK(find_excess_nesting("[[{}]]", 2) == 2);
  CHECK(find_excess_nesting("[[], [], {\"a\": 1}]", 2) == std::string_view::npos);
}

TEST_CASE("brackets inside strings do not count as nesting", "[conf][lines]") {
  CHECK(find_excess_nesting(R"({"a": "[[[[\"{{{{"})", 1) == std::string_view::npos);
}

TEST_CASE("a byte order mark does not hide the document", "[conf][lines]") {
  const LineIndex lines("\xEF\xBB\xBF{\n\"a\": 1}");
  CHECK(lines.line_of("/a") == 2);
}

TEST_CASE("values are found at their columns", "[conf][lines]") {
  const LineIndex lines("{\n  \"a\": [ 1,  {\"b\": true} ],\n\t\"c\":null\n}");
  CHECK(lines.value_position("/a").line == 2);
  CHECK(lines.value_position("/a").column == 8);
  CHECK(lines.value_position("/a/0").column == 10);
  CHECK(lines.value_position("/a/1").column == 14);
  CHECK(lines.value_position("/a/1/b").column == 20);
  CHECK(lines.value_position("/c").line == 3);
  CHECK(lines.value_position("/c").column == 6);  // a tab is one column
}

TEST_CASE("a member's key is found at its opening quote, apart from its value", "[conf][lines]") {
  const LineIndex lines("{\n  \"a\":\n    5}");
  CHECK(lines.key_position("/a").line == 2);
  CHECK(lines.key_position("/a").column == 3);
  CHECK(lines.value_position("/a").line == 3);
  CHECK(lines.value_position("/a").column == 5);
}

TEST_CASE("an array element's key position is its value's", "[conf][lines]") {
  const LineIndex lines("[ 1, 2 ]");
  CHECK(lines.key_position("/1").line == 1);
  CHECK(lines.key_position("/1").column == 6);
}

TEST_CASE("an absent pointer is placed at its nearest present ancestor's value, key or not",
          "[conf][lines]") {
  const LineIndex lines("{\n\"a\":  {\n\"b\": 1\n}\n}");
  CHECK(lines.value_position("/a/missing").line == 2);
  CHECK(lines.value_position("/a/missing").column == 7);
  CHECK(lines.key_position("/a/missing").line == 2);
  CHECK(lines.key_position("/a/missing").column == 7);
}

TEST_CASE("an empty text places nothing: line and column 0", "[conf][lines]") {
  const LineIndex lines("");
  CHECK(lines.value_position("/a").line == 0);
  CHECK(lines.value_position("/a").column == 0);
}

TEST_CASE("columns count characters, not bytes", "[conf][lines]") {
  // "é" is two bytes and "😀" four, each one character.
  const LineIndex lines("{\"_caf\xC3\xA9\": \"\xF0\x9F\x98\x80\", \"a\": 1}");
  CHECK(lines.key_position("/a").column == 16);
  CHECK(lines.value_position("/a").column == 21);
}

TEST_CASE("columns keep counting along one long line", "[conf][lines]") {
  std::string text = "[";
  for (int i = 0; i < 1000; ++i) text += i == 0 ? "0" : ",0";
  text += "]";
  const LineIndex lines(text);
  CHECK(lines.value_position("/0").column == 2);
  CHECK(lines.value_position("/999").column == 2 + 2 * 999);
}

TEST_CASE("a byte order mark takes no column", "[conf][lines]") {
  const LineIndex lines("\xEF\xBB\xBF{\"a\": 1}");
  CHECK(lines.key_position("/a").column == 2);
  CHECK(position_of("\xEF\xBB\xBF{,", 4).column == 2);
}

TEST_CASE("a repeated key is reported at the later key's column", "[conf][lines]") {
  const LineIndex lines("{\"a\": 1,   \"a\": 2}");
  REQUIRE(lines.duplicates().size() == 1);
  CHECK(lines.duplicates()[0].line == 1);
  CHECK(lines.duplicates()[0].column == 12);
}

TEST_CASE("byte offsets convert to 1-based lines and columns", "[conf][lines]") {
  const std::string_view text = "ab\ncd\n";
  CHECK(position_of(text, 0).line == 1);
  CHECK(position_of(text, 0).column == 1);
  CHECK(position_of(text, 2).column == 3);  // the newline itself ends line 1
  CHECK(position_of(text, 4).line == 2);
  CHECK(position_of(text, 4).column == 2);
  CHECK(position_of(text, 99).line == 3);  // past the end: clamped to the end
  CHECK(position_of(text, 99).column == 1);
}

TEST_CASE("a byte offset's column counts the characters before it on its line", "[conf][lines]") {
  CHECK(position_of("\xC3\xA9x", 2).column == 2);  // "é" is two bytes
}

}  // namespace
}  // namespace sluice::conf
