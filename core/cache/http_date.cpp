// HTTP dates: the three forms of RFC 9110 5.6.7, read strictly (fixed widths, GMT only), and
// IMF-fixdate written without the C library's locale- and time-zone-dependent functions.
#include "core/cache/http_date.h"

#include <array>
#include <cstdio>

namespace sluice::core::cache {

namespace {

constexpr std::array<std::string_view, 7> kDays = {"Thu", "Fri", "Sat", "Sun",
                                                   "Mon", "Tue", "Wed"};  // 1970-01-01: Thursday
constexpr std::array<std::string_view, 7> kLongDays = {"Thursday", "Friday",  "Saturday", "Sunday",
                                                       "Monday",   "Tuesday", "Wednesday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days from 1970-01-01 to the given civil date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned kDaysIn[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDaysIn[m - 1];
}

// Reads exactly `width` digits at `*at`, moving past them.
bool digits(std::string_view s, size_t* at, size_t width, int64_t* value) {
  if (*at + width > s.size()) return false;
  int64_t v = 0;
  for (size_t i = 0; i < width; ++i) {
    const char c = s[*at + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *at += width;
  *value = v;
  return true;
}

bool literal(std::string_view s, size_t* at, std::string_view text) {
  if (s.substr(*at, text.size()) != text) return false;
  *at += text.size();
  return true;
}

bool month(std::string_view s, size_t* at, unsigned* m) {
  for (unsigned i = 0; i < kMonths.size(); ++i) {
    if (s.substr(*at, 3) == kMonths[i]) {
      *at += 3;
      *m = i + 1;
      return true;
    }
  }
  return false;
}

// "HH:MM:SS"
bool time_of_day(std::string_view s, size_t* at, int64_t* seconds) {
  int64_t h, m, sec;
  if (!digits(s, at, 2, &h) || !literal(s, at, ":") || !digits(s, at, 2, &m) ||
      !literal(s, at, ":") || !digits(s, at, 2, &sec))
    return false;
  if (h > 23 || m > 59 || sec > 60) return false;  // 60: a leap second, read as the next one
  *seconds = h * 3600 + m * 60 + sec;
  return true;
}

bool assemble(int64_t y, unsigned m, int64_t d, int64_t tod, int64_t* out) {
  if (d < 1 || d > days_in_month(y, m)) return false;
  *out = days_from_civil(y, m, static_cast<unsigned>(d)) * 86400 + tod;
  return true;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
bool imf_fixdate(std::string_view s, int64_t* out) {
  if (s.size() != kHttpDateLength) return false;
  size_t at = 0;
  bool day_ok = false;
  for (std::string_view day : kDays) day_ok = day_ok || s.substr(0, 3) == day;
  int64_t d, y, tod;
  unsigned m;
  at = 3;
  if (!day_ok || !literal(s, &at, ", ") || !digits(s, &at, 2, &d) || !literal(s, &at, " ") ||
      !month(s, &at, &m) || !literal(s, &at, " ") || !digits(s, &at, 4, &y) ||
      !literal(s, &at, " ") || !time_of_day(s, &at, &tod) || !literal(s, &at, " GMT"))
    return false;
  return assemble(y, m, d, tod, out);
}

// RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
bool rfc850_date(std::string_view s, int64_t now, int64_t* out) {
  size_t at = 0;
  bool day_ok = false;
  for (std::string_view day : kLongDays) {
    if (s.substr(0, day.size()) == day) {
      at = day.size();
      day_ok = true;
      break;
    }
  }
  int64_t d, yy, tod;
  unsigned m;
  if (!day_ok || !literal(s, &at, ", ") || !digits(s, &at, 2, &d) || !literal(s, &at, "-") ||
      !month(s, &at, &m) || !literal(s, &at, "-") || !digits(s, &at, 2, &yy) ||
      !literal(s, &at, " ") || !time_of_day(s, &at, &tod) || !literal(s, &at, " GMT") ||
      at != s.size())
    return false;
  // The year in this century, unless that is more than 50 years ahead of now: then the last.
  int64_t now_year;
  unsigned now_m, now_d;
  civil_from_days(now / 86400, &now_year, &now_m, &now_d);
  int64_t y = now_year - now_year % 100 + yy;
  if (y > now_year + 50) y -= 100;
  return assemble(y, m, d, tod, out);
}

// asctime: "Sun Nov  6 08:49:37 1994"
bool asctime_date(std::string_view s, int64_t* out) {
  if (s.size() != 24) return false;
  bool day_ok = false;
  for (std::string_view day : kDays) day_ok = day_ok || s.substr(0, 3) == day;
  size_t at = 3;
  unsigned m;
  int64_t d, tod, y;
  if (!day_ok || !literal(s, &at, " ") || !month(s, &at, &m) || !literal(s, &at, " ")) return false;
  if (s[at] == ' ') {
    ++at;
    if (!digits(s, &at, 1, &d)) return false;
  } else if (!digits(s, &at, 2, &d)) {
    return false;
  }
  if (!literal(s, &at, " ") || !time_of_day(s, &at, &tod) || !literal(s, &at, " ") ||
      !digits(s, &at, 4, &y))
    return false;
  return assemble(y, m, d, tod, out);
}

}  // namespace

bool parse_http_date(std::string_view text, int64_t now, int64_t* seconds) {
  return imf_fixdate(text, seconds) || rfc850_date(text, now, seconds) ||
         asctime_date(text, seconds);
}

void format_http_date(int64_t seconds, char* out) {
  if (seconds < 0) seconds = 0;
  const int64_t days = seconds / 86400;
  const int64_t tod = seconds % 86400;
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  if (y > 9999) y = 9999;
  char text[kHttpDateLength + 1];
  std::snprintf(text, sizeof text, "%.3s, %02u %.3s %04d %02d:%02d:%02d GMT",
                kDays[days % 7].data(), d, kMonths[m - 1].data(), static_cast<int>(y),
                static_cast<int>(tod / 3600), static_cast<int>(tod / 60 % 60),
                static_cast<int>(tod % 60));
  for (size_t i = 0; i < kHttpDateLength; ++i) out[i] = text[i];
}

}  // namespace sluice::core::cache
