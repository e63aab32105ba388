// Specification of Cache-Control parsing (RFC 9111 5.2, RFC 5861): which directives are read,
// how names, spaces and quoted strings are taken, and what a repeated or unreadable value does.
#include "core/cache/cache_control.h"

#include <catch2/catch.hpp>
#include <string>

#include "core/http/http_parser.h"

using namespace sluice::core;
using namespace sluice::core::cache;

namespace {

CacheControl parse(std::string_view value) {
  CacheControl cc;
  parse_cache_control(value, &cc);
  return cc;
}

bool nothing_set(const CacheControl& cc) {
  return cc.max_age == kAbsent && cc.s_maxage == kAbsent && cc.max_stale == kAbsent &&
         cc.min_fresh == kAbsent && cc.stale_while_revalidate == kAbsent &&
         cc.stale_if_error == kAbsent && !cc.no_store && !cc.no_cache && !cc.private_ &&
         !cc.public_ && !cc.must_revalidate && !cc.proxy_revalidate && !cc.only_if_cached &&
         !cc.no_transform && !cc.immutable && !cc.invalid_freshness;
}

// Reads `response` (a whole head) with the response parser and returns its directives.
CacheControl of_response(const std::string& response) {
  HeadPool heads;
  HttpParser parser(HttpParser::Kind::kResponse, heads, {});
  const ParseStep step = parser.execute(response.data(), response.size());
  REQUIRE(step.event == ParseEvent::kHead);
  return cache_control_of(*parser.head());
}

}  // namespace

TEST_CASE("an empty or blank value sets nothing", "[cache]") {
  CHECK(nothing_set(parse("")));
  CHECK(nothing_set(parse(" \t ")));
  CHECK(nothing_set(parse(",, ,")));
}

TEST_CASE("each flag directive sets its own flag and no other", "[cache]") {
  struct Case {
    const char* name;
    bool CacheControl::*flag;
  };
  const Case c =
      GENERATE(Case{"no-store", &CacheControl::no_store}, Case{"no-cache", &CacheControl::no_cache},
               Case{"private", &CacheControl::private_}, Case{"public", &CacheControl::public_},
               Case{"must-revalidate", &CacheControl::must_revalidate},
               Case{"proxy-revalidate", &CacheControl::proxy_revalidate},
               Case{"only-if-cached", &CacheControl::only_if_cached},
               Case{"no-transform", &CacheControl::no_transform},
               Case{"immutable", &CacheControl::immutable});
  CAPTURE(c.name);
  CacheControl cc = parse(c.name);
  CHECK(cc.*c.flag);
  cc.*c.flag = false;
  CHECK(nothing_set(cc));
}

TEST_CASE("max-age reads its delta-seconds", "[cache]") {
  const CacheControl cc = parse("max-age=3600");
  CHECK(cc.max_age == 3600);
  CHECK(cc.s_maxage == kAbsent);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("s-maxage reads its delta-seconds apart from max-age", "[cache]") {
  const CacheControl cc = parse("s-maxage=60, max-age=10");
  CHECK(cc.s_maxage == 60);
  CHECK(cc.max_age == 10);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("max-stale without a value accepts any staleness", "[cache]") {
  CHECK(parse("max-stale").max_stale == kMaxDelta);
  CHECK(parse("max-stale, no-cache").max_stale == kMaxDelta);
}

TEST_CASE("max-stale with a value reads it", "[cache]") {
  CHECK(parse("max-stale=30").max_stale == 30);
  CHECK(parse("max-stale=0").max_stale == 0);
}

TEST_CASE("min-fresh reads its delta-seconds", "[cache]") {
  CHECK(parse("min-fresh=15").min_fresh == 15);
}

TEST_CASE("stale-while-revalidate and stale-if-error read their delta-seconds", "[cache]") {
  const CacheControl cc = parse("max-age=1, stale-while-revalidate=59, stale-if-error=86400");
  CHECK(cc.stale_while_revalidate == 59);
  CHECK(cc.stale_if_error == 86400);
  CHECK(cc.max_age == 1);
}

TEST_CASE("directive names are case-insensitive", "[cache]") {
  const CacheControl cc = parse("MAX-AGE=5, No-Store, S-MaxAge=7, Stale-While-Revalidate=3");
  CHECK(cc.max_age == 5);
  CHECK(cc.no_store);
  CHECK(cc.s_maxage == 7);
  CHECK(cc.stale_while_revalidate == 3);
}

TEST_CASE("spaces and tabs around commas and around '=' are allowed", "[cache]") {
  const CacheControl cc = parse(" \tmax-age = 5 ,\tno-cache\t, s-maxage\t=\t9 ");
  CHECK(cc.max_age == 5);
  CHECK(cc.no_cache);
  CHECK(cc.s_maxage == 9);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("empty list elements are skipped", "[cache]") {
  const CacheControl cc = parse(",,max-age=5,, ,public,");
  CHECK(cc.max_age == 5);
  CHECK(cc.public_);
}

TEST_CASE("a quoted delta-seconds value is accepted", "[cache]") {
  const CacheControl cc = parse("max-age=\"60\", max-stale=\"5\"");
  CHECK(cc.max_age == 60);
  CHECK(cc.max_stale == 5);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("a quoted-pair in a quoted value stands for the character after the backslash",
          "[cache]") {
  CHECK(parse("max-age=\"6\\0\"").max_age == 60);
  CHECK(parse("min-fresh=\"\\1\\2\"").min_fresh == 12);
}

TEST_CASE("a comma inside a quoted string does not end the directive", "[cache]") {
  const CacheControl cc = parse("no-cache=\"Set-Cookie, max-age=5\", s-maxage=3");
  CHECK(cc.no_cache);
  CHECK(cc.max_age == kAbsent);
  CHECK(cc.s_maxage == 3);
}

TEST_CASE("an escaped quote does not end a quoted string", "[cache]") {
  const CacheControl cc = parse("private=\"a\\\", max-age=5\", public");
  CHECK(cc.private_);
  CHECK(cc.max_age == kAbsent);
  CHECK(cc.public_);
}

TEST_CASE("an unterminated quoted string runs to the end of the value", "[cache]") {
  const CacheControl cc = parse("no-cache=\"X, max-age=5, no-store");
  CHECK(cc.no_cache);
  CHECK(cc.max_age == kAbsent);
  CHECK_FALSE(cc.no_store);
}

TEST_CASE("no-cache and private with field names count as unqualified", "[cache]") {
  const CacheControl cc = parse("no-cache=\"Set-Cookie\", private=Authorization");
  CHECK(cc.no_cache);
  CHECK(cc.private_);
}

TEST_CASE("unknown directives are ignored, with or without arguments", "[cache]") {
  const CacheControl cc = parse("community=\"UCI, max-age=1\", ext, foo=bar, max-age=9");
  CHECK(cc.max_age == 9);
  CacheControl rest = cc;
  rest.max_age = kAbsent;
  CHECK(nothing_set(rest));
}

TEST_CASE("a repeated max-age with the same value stays valid", "[cache]") {
  const CacheControl cc = parse("max-age=5, max-age=5, max-age=\"5\"");
  CHECK(cc.max_age == 5);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("a repeated max-age or s-maxage with another value keeps the first, invalid", "[cache]") {
  const CacheControl age = parse("max-age=5, max-age=6");
  CHECK(age.max_age == 5);
  CHECK(age.invalid_freshness);
  const CacheControl shared = parse("s-maxage=7, S-MAXAGE=70");
  CHECK(shared.s_maxage == 7);
  CHECK(shared.invalid_freshness);
}

TEST_CASE("other repeated delta directives keep their first value without invalidating",
          "[cache]") {
  const CacheControl cc = parse(
      "min-fresh=1, min-fresh=2, max-stale=3, max-stale, stale-while-revalidate=4, "
      "stale-while-revalidate=5, stale-if-error=6, stale-if-error=7");
  CHECK(cc.min_fresh == 1);
  CHECK(cc.max_stale == 3);
  CHECK(cc.stale_while_revalidate == 4);
  CHECK(cc.stale_if_error == 6);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("max-age or s-maxage with a value that is not delta-seconds is invalid freshness",
          "[cache]") {
  const char* value = GENERATE("max-age=1h", "max-age=-1", "max-age=", "max-age", "max-age=+5",
                               "max-age=5.0", "max-age=\"\"", "max-age=\"5", "max-age=5 6",
                               "max-age=\"5 \"", "s-maxage=abc", "s-maxage", "max-age=0x10");
  CAPTURE(value);
  const CacheControl cc = parse(value);
  CHECK(cc.invalid_freshness);
  CHECK(cc.max_age == kAbsent);
  CHECK(cc.s_maxage == kAbsent);
}

TEST_CASE("max-stale with an unreadable value is ignored", "[cache]") {
  CHECK(parse("max-stale=abc").max_stale == kAbsent);
  CHECK(parse("max-stale=").max_stale == kAbsent);
  CHECK(parse("max-stale=-1").max_stale == kAbsent);
  CHECK(parse("max-stale=abc, max-stale=4").max_stale == 4);
}

TEST_CASE("min-fresh, stale-while-revalidate and stale-if-error ignore unreadable values",
          "[cache]") {
  const CacheControl cc = parse("min-fresh=x, stale-while-revalidate=1m, stale-if-error=\"\"");
  CHECK(nothing_set(cc));
}

TEST_CASE("junk after a flag's name keeps the flag and the next directive", "[cache]") {
  const CacheControl cc = parse("no-store junk \"a,b\", max-age=5");
  CHECK(cc.no_store);
  CHECK(cc.max_age == 5);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("an element without a name is skipped up to the next comma", "[cache]") {
  const CacheControl cc = parse("=5, \"max-age=1, x\", @max-age=2, public");
  CHECK(cc.public_);
  CHECK(cc.max_age == kAbsent);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("delta-seconds past 2^31 clamp to kMaxDelta", "[cache]") {
  CHECK(parse("max-age=2147483647").max_age == 2147483647);
  CHECK(parse("max-age=2147483648").max_age == kMaxDelta);
  CHECK(parse("max-age=2147483649").max_age == kMaxDelta);
  CHECK(parse("s-maxage=99999999999999999999999999999999999999").s_maxage == kMaxDelta);
  CHECK(parse("stale-if-error=\"18446744073709551617\"").stale_if_error == kMaxDelta);
  CHECK(parse("max-age=0000000000000000000000000000007").max_age == 7);
}

TEST_CASE("values that clamp to the same kMaxDelta do not count as different", "[cache]") {
  const CacheControl cc = parse("max-age=4294967296, max-age=2147483648");
  CHECK(cc.max_age == kMaxDelta);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("parsing adds to what is already there", "[cache]") {
  CacheControl cc;
  parse_cache_control("max-age=5", &cc);
  parse_cache_control("no-store, max-age=5", &cc);
  CHECK(cc.max_age == 5);
  CHECK(cc.no_store);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("cache_control_of combines every Cache-Control field in order", "[cache]") {
  const CacheControl cc = of_response(
      "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=5\r\nX-Other: max-age=1, no-store\r\n"
      "cache-control: must-revalidate, stale-if-error=9\r\nCACHE-CONTROL:  min-fresh=2 \r\n"
      "Content-Length: 0\r\n\r\n");
  CHECK(cc.public_);
  CHECK(cc.max_age == 5);
  CHECK(cc.must_revalidate);
  CHECK(cc.stale_if_error == 9);
  CHECK(cc.min_fresh == 2);
  CHECK_FALSE(cc.no_store);
  CHECK_FALSE(cc.invalid_freshness);
}

TEST_CASE("cache_control_of finds a max-age conflict across fields", "[cache]") {
  const CacheControl cc = of_response(
      "HTTP/1.1 200 OK\r\nCache-Control: max-age=5\r\nCache-Control: max-age=50\r\n"
      "Content-Length: 0\r\n\r\n");
  CHECK(cc.max_age == 5);
  CHECK(cc.invalid_freshness);
}

TEST_CASE("cache_control_of reads only fields named exactly Cache-Control", "[cache]") {
  CHECK(nothing_set(of_response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")));
  CHECK(nothing_set(
      of_response("HTTP/1.1 200 OK\r\nCache-Controls: no-store\r\nX-Cache-Control: max-age=1\r\n"
                  "Pragma: no-cache\r\nContent-Length: 0\r\n\r\n")));
}

TEST_CASE("cache_control_of reads a head built field by field", "[cache]") {
  MessageHead head;
  const std::string name = "Cache-Control", first = "no-cache", second = " s-maxage=4 ";
  head.append_name(name.data(), name.size(), true);
  head.append_value(first.data(), first.size(), true);
  head.append_name(name.data(), name.size(), true);
  head.append_value(second.data(), 4, true);
  head.append_value(second.data() + 4, second.size() - 4, false);
  head.finalize();
  const CacheControl cc = cache_control_of(head);
  CHECK(cc.no_cache);
  CHECK(cc.s_maxage == 4);
}
