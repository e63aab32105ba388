// Feeds arbitrary bytes to the Cache-Control and HTTP date parsers and checks what the cache
// relies on: every delta is kAbsent or within [0, kMaxDelta], reading a value twice into one
// struct changes nothing (the first value counts, and a repeat agrees with itself), a value
// read from several fields of a head gives the same as reading it once, and a date that parses
// formats as IMF-fixdate and reads back as the same second.
//
// Input: up to the first '\n' the Cache-Control value, after it the date.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "core/cache/cache_control.h"
#include "core/cache/http_date.h"

using sluice::core::MessageHead;
using sluice::core::cache::CacheControl;
using sluice::core::cache::kAbsent;
using sluice::core::cache::kHttpDateLength;
using sluice::core::cache::kMaxDelta;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool same(const CacheControl& a, const CacheControl& b) {
  return a.max_age == b.max_age && a.s_maxage == b.s_maxage && a.max_stale == b.max_stale &&
         a.min_fresh == b.min_fresh && a.stale_while_revalidate == b.stale_while_revalidate &&
         a.stale_if_error == b.stale_if_error && a.no_store == b.no_store &&
         a.no_cache == b.no_cache && a.private_ == b.private_ && a.public_ == b.public_ &&
         a.must_revalidate == b.must_revalidate && a.proxy_revalidate == b.proxy_revalidate &&
         a.only_if_cached == b.only_if_cached && a.no_transform == b.no_transform &&
         a.immutable == b.immutable && a.invalid_freshness == b.invalid_freshness;
}

void check_delta(int64_t delta) {
  check(delta == kAbsent || (delta >= 0 && delta <= kMaxDelta));
}

// True when `text` holds `word` in any case: a directive is only ever read from its name.
bool mentions(std::string_view text, std::string_view word) {
  for (size_t i = 0; i + word.size() <= text.size(); ++i)
    if (sluice::core::equals_ignore_case(text.substr(i, word.size()), word)) return true;
  return false;
}

void cache_control(std::string_view input) {
  // A heap copy of exactly the value's bytes, so that AddressSanitizer sees any overread.
  std::unique_ptr<char[]> copy(new char[input.size() + 1]);
  std::memcpy(copy.get(), input.data(), input.size());
  const std::string_view value(copy.get(), input.size());

  CacheControl once;
  sluice::core::cache::parse_cache_control(value, &once);
  for (int64_t delta : {once.max_age, once.s_maxage, once.max_stale, once.min_fresh,
                        once.stale_while_revalidate, once.stale_if_error})
    check_delta(delta);
  if (!mentions(value, "max-age")) check(once.max_age == kAbsent);
  if (!mentions(value, "max-age") && !mentions(value, "s-maxage")) check(!once.invalid_freshness);

  CacheControl twice = once;
  sluice::core::cache::parse_cache_control(value, &twice);
  check(same(once, twice));

  // Two Cache-Control fields with this value, and one that is not Cache-Control.
  MessageHead head;
  for (std::string_view name : {"Cache-Control", "X-Cache-Control", "cache-control"}) {
    head.append_name(name.data(), name.size(), true);
    head.append_value(value.data(), value.size(), true);
  }
  head.finalize();
  check(same(sluice::core::cache::cache_control_of(head), once));
}

void http_date(std::string_view input) {
  std::unique_ptr<char[]> copy(new char[input.size() + 1]);
  std::memcpy(copy.get(), input.data(), input.size());
  const std::string_view text(copy.get(), input.size());
  constexpr int64_t kNow = 1700000000;  // 2023-11-14
  int64_t seconds = 0;
  if (!sluice::core::cache::parse_http_date(text, kNow, &seconds)) return;
  check(text.size() >= 24 && text.size() <= 33);       // asctime .. the longest RFC 850 form
  if (seconds < 0 || seconds >= 253402300800) return;  // outside 1970..9999: written clamped
  char out[kHttpDateLength];
  sluice::core::cache::format_http_date(seconds, out);
  int64_t again = -1;
  check(sluice::core::cache::parse_http_date(std::string_view(out, kHttpDateLength), kNow, &again));
  check(again == seconds);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size > 1024) return 0;
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  const size_t newline = input.find('\n');
  cache_control(input.substr(0, newline));
  if (newline != std::string_view::npos) http_date(input.substr(newline + 1));
  return 0;
}
