// Cache-Control directives (RFC 9111 5.2, and RFC 5861's stale-while-revalidate and
// stale-if-error) of a request or a response, read from every Cache-Control field of a head.
// Parsing never fails: what it cannot read it leaves out, or marks as invalid freshness.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/http/http_head.h"

namespace sluice::core::cache {

inline constexpr int64_t kAbsent = -1;
// RFC 9111 1.2.2: a delta-seconds value too large to hold counts as 2^31.
inline constexpr int64_t kMaxDelta = 2147483648;

struct CacheControl {
  // delta-seconds directives; kAbsent when not given. max-stale without a value is kMaxDelta.
  int64_t max_age = kAbsent;
  int64_t s_maxage = kAbsent;
  int64_t max_stale = kAbsent;  // requests
  int64_t min_fresh = kAbsent;  // requests
  int64_t stale_while_revalidate = kAbsent;
  int64_t stale_if_error = kAbsent;
  bool no_store = false;
  bool no_cache = false;  // also its qualified form (no-cache="Set-Cookie"), taken as unqualified
  bool private_ = false;  // also its qualified form, taken as unqualified (never stored)
  bool public_ = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool only_if_cached = false;  // requests
  bool no_transform = false;
  bool immutable = false;
  // max-age or s-maxage was given with a value that is not delta-seconds ("max-age=1h"), or was
  // given twice with different values: RFC 9111 4.2.1 has such a response treated as stale.
  bool invalid_freshness = false;
};

// Adds the directives of one Cache-Control field value to `cc`. Directive names are
// case-insensitive; a value may be a token or a quoted string; where a directive repeats, its
// first value counts. Unknown directives are ignored (RFC 9111 5.2.3).
void parse_cache_control(std::string_view value, CacheControl* cc);

// The directives of every Cache-Control field of `head`, in order.
CacheControl cache_control_of(const MessageHead& head);

}  // namespace sluice::core::cache
