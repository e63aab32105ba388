// Specification of HTTP dates (RFC 9110 5.6.7): the three forms a recipient reads, the RFC 850
// century rule, what is refused, and IMF-fixdate as written (checked against the C library).
#include "core/cache/http_date.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <ctime>
#include <string>

using namespace sluice::core::cache;

namespace {

constexpr int64_t kRfcExample = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110 5.6.7)
constexpr int64_t kNow2023 = 1700000000;    // 2023-11-14

bool parses(std::string_view text, int64_t now = kNow2023) {
  int64_t seconds = 0;
  return parse_http_date(text, now, &seconds);
}

int64_t parsed(std::string_view text, int64_t now = kNow2023) {
  int64_t seconds = -123456789;
  REQUIRE(parse_http_date(text, now, &seconds));
  return seconds;
}

std::string formatted(int64_t seconds) {
  char out[kHttpDateLength];
  format_http_date(seconds, out);
  return std::string(out, kHttpDateLength);
}

// What the C library writes for the same time, in the C locale the tests run in.
std::string libc_formatted(int64_t seconds) {
  const auto t = static_cast<time_t>(seconds);
  struct tm tm {};
  REQUIRE(gmtime_r(&t, &tm) != nullptr);
  char out[64];
  const size_t n = std::strftime(out, sizeof out, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(out, n);
}

}  // namespace

TEST_CASE("an IMF-fixdate reads as its seconds since the epoch", "[cache]") {
  CHECK(parsed("Sun, 06 Nov 1994 08:49:37 GMT") == kRfcExample);
  CHECK(parsed("Thu, 01 Jan 1970 00:00:00 GMT") == 0);
  CHECK(parsed("Fri, 31 Dec 9999 23:59:59 GMT") == 253402300799);
}

TEST_CASE("an RFC 850 date reads as the same time", "[cache]") {
  CHECK(parsed("Sunday, 06-Nov-94 08:49:37 GMT") == kRfcExample);
  CHECK(parsed("Wednesday, 16-Nov-94 08:49:37 GMT") == kRfcExample + 10 * 86400);
}

TEST_CASE("an asctime date reads as the same time, its day padded with a space or a zero",
          "[cache]") {
  CHECK(parsed("Sun Nov  6 08:49:37 1994") == kRfcExample);
  CHECK(parsed("Sun Nov 06 08:49:37 1994") == kRfcExample);
  CHECK(parsed("Wed Nov 16 08:49:37 1994") == kRfcExample + 10 * 86400);
}

TEST_CASE("an RFC 850 year more than 50 years ahead is taken from the last century", "[cache]") {
  CHECK(parsed("Sunday, 01-Jan-73 00:00:00 GMT") == 3250454400);             // 2073: 50 years ahead
  CHECK(parsed("Tuesday, 01-Jan-74 00:00:00 GMT") == 126230400);             // 1974, not 2074
  const int64_t now2045 = 2379888000;                                        // 2045-06-01
  CHECK(parsed("Saturday, 01-Jan-95 00:00:00 GMT", now2045) == 3944678400);  // 2095
  CHECK(parsed("Monday, 01-Jan-96 00:00:00 GMT", now2045) == 820454400);     // 1996
}

TEST_CASE("a date that does not exist is refused", "[cache]") {
  const char* text = GENERATE("Sat, 30 Feb 2019 00:00:00 GMT", "Mon, 31 Apr 2019 00:00:00 GMT",
                              "Mon, 00 Apr 2019 00:00:00 GMT", "Sunday, 30-Feb-19 00:00:00 GMT",
                              "Sat Feb 30 00:00:00 2019");
  CAPTURE(text);
  CHECK_FALSE(parses(text));
}

TEST_CASE("a time of day out of range is refused", "[cache]") {
  const char* text = GENERATE("Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
                              "Sun, 06 Nov 1994 08:49:61 GMT", "Sunday, 06-Nov-94 24:49:37 GMT",
                              "Sun Nov  6 24:49:37 1994");
  CAPTURE(text);
  CHECK_FALSE(parses(text));
}

TEST_CASE("a leap second reads as the second after", "[cache]") {
  CHECK(parsed("Thu, 31 Dec 1998 23:59:60 GMT") == 915148800);
}

TEST_CASE("values that are not dates are refused", "[cache]") {
  const char* text = GENERATE("", "0", "-1", "1994-11-06T08:49:37Z", "Sun, 06 Nov 1994",
                              "Sun, 06 Nov 1994 08:49:37 GMT ", " Sun, 06 Nov 1994 08:49:37 GMT",
                              "Sun, 06 Nov 1994 08:49:37 GMTx", "Sunday, 06-Nov-94 08:49:37 GMT!",
                              "Sun Nov  6 08:49:37 1994 ", "Sun, 06 Nov 1994 08:49:37 UTC",
                              "Sun, 06 Nov 1994 08:49:37 +0000", "Sun,  6 Nov 1994 08:49:37 GMT",
                              "Sun, 06 Nov 94 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT");
  CAPTURE(text);
  CHECK_FALSE(parses(text));
}

TEST_CASE("month and day names are case-sensitive", "[cache]") {
  CHECK_FALSE(parses("Sun, 06 nov 1994 08:49:37 GMT"));
  CHECK_FALSE(parses("Sun, 06 NOV 1994 08:49:37 GMT"));
  CHECK_FALSE(parses("sunday, 06-Nov-94 08:49:37 GMT"));
  CHECK_FALSE(parses("Sun nov  6 08:49:37 1994"));
  CHECK_FALSE(parses("Sun, 06 Nov 1994 08:49:37 gmt"));
}

TEST_CASE("29 February exists in leap years only", "[cache]") {
  CHECK(parsed("Thu, 29 Feb 2024 00:00:00 GMT") == 1709164800);
  CHECK(parsed("Tue, 29 Feb 2000 00:00:00 GMT") == 951782400);  // divisible by 400
  CHECK(parsed("Wed, 01 Mar 2000 00:00:00 GMT") == 951868800);
  CHECK_FALSE(parses("Wed, 29 Feb 2023 00:00:00 GMT"));
  CHECK_FALSE(parses("Thu, 29 Feb 1900 00:00:00 GMT"));  // divisible by 100, not 400
  CHECK_FALSE(parses("Tue, 29 Feb 2100 00:00:00 GMT"));
}

TEST_CASE("format_http_date writes the RFC's example", "[cache]") {
  CHECK(formatted(kRfcExample) == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(formatted(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
}

TEST_CASE("format_http_date writes a time before 1970 as the epoch", "[cache]") {
  CHECK(formatted(-1) == formatted(0));
  CHECK(formatted(-762189023) == formatted(0));
}

TEST_CASE("format_http_date writes what the C library writes", "[cache]") {
  // Days and seconds spread over 1970..9999, leap days and year ends among them.
  for (int64_t t = 0; t < 253402300800; t += 86400 * 97 + 3607) {
    CAPTURE(t);
    REQUIRE(formatted(t) == libc_formatted(t));
  }
  for (int64_t t : {int64_t{951782400}, int64_t{951868799}, int64_t{4107542399},
                    int64_t{4107542400}, int64_t{253402300799}})
    CHECK(formatted(t) == libc_formatted(t));
}

TEST_CASE("a formatted date parses back to the same seconds", "[cache]") {
  for (int64_t t = 0; t < 253402300800; t += 86400 * 31 + 7919) {
    CAPTURE(t);
    REQUIRE(parsed(formatted(t)) == t);
  }
  CHECK(parsed(formatted(253402300799)) == 253402300799);
}
