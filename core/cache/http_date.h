// HTTP dates (RFC 9110 5.6.7): IMF-fixdate, which the proxy sends, and the obsolete RFC 850 and
// asctime forms, which a recipient must accept. Times are whole seconds since the Unix epoch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::core::cache {

// False for anything that is not one of the three forms with a real date and time in it
// (Expires: 0, a bad month, 31 February, an hour of 24). An RFC 850 two-digit year is the
// one in this century or the last that is not more than 50 years after `now` (RFC 9110
// 5.6.7); `now` is only read for that.
bool parse_http_date(std::string_view text, int64_t now, int64_t* seconds);

// IMF-fixdate, exactly kHttpDateLength bytes: "Sun, 06 Nov 1994 08:49:37 GMT". Times before
// 1970 are written as the epoch.
inline constexpr size_t kHttpDateLength = 29;
void format_http_date(int64_t seconds, char* out);

}  // namespace sluice::core::cache
