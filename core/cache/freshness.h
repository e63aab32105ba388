// RFC 9111's rules as functions of heads, directives and times: what may be stored (section
// 3), for how long it is fresh (4.2.1, 4.2.2), and what a request may be given from a stored
// response (4, 4.2.4, 5.2.1, RFC 5861). No state: core/cache/route_cache.cpp applies them.
#pragma once

#include <cstdint>

#include "conf/config.h"
#include "core/cache/cache_control.h"
#include "core/cache/stored_response.h"
#include "core/http/http_head.h"

namespace sluice::core::cache {

// Statuses a cache may store without explicit freshness (RFC 9110 15.1).
bool heuristically_cacheable(int status);

// Why a response to `request` may not be stored; nullptr when it may (RFC 9111 3, 3.5, and the
// route's settings: Set-Cookie responses and bodies over max_object_bytes are not stored).
const char* unstorable(const MessageHead& request, const CacheControl& request_cc,
                       const MessageHead& response, const CacheControl& response_cc,
                       const conf::CacheConfig& config, int64_t now);

// Why fields of `response` may not be kept for other clients, whatever the request's method
// (no-store, private, Authorization, Set-Cookie, Vary: *); nullptr when they may. A 304's
// merged fields are checked with this before they replace what is stored.
const char* unshareable(const MessageHead& request, const CacheControl& request_cc,
                        const MessageHead& response, const CacheControl& response_cc);

// The freshness lifetime in seconds (RFC 9111 4.2.1): s-maxage, max-age, Expires against
// Date, the route's default_ttl_s, then 10% of the time since Last-Modified (at most a day)
// for a status that allows it. 0 when stale from the start (an invalid Expires, say).
int64_t freshness_lifetime(const MessageHead& response, const CacheControl& cc,
                           const conf::CacheConfig& config, int64_t now);

// Fills the times, directives and validators of `stored` from its head and from `response`,
// the head that came (a 200, or the 304 that refreshed it), whose Age counts (RFC 9111 4.2.3:
// request_time and response_time bracket the fetch).
void note_freshness(const MessageHead& response, const CacheControl& cc,
                    const conf::CacheConfig& config, int64_t request_time, int64_t response_time,
                    StoredResponse* stored);

// What a request may get from a stored response that its key and Vary match.
enum class Reuse : uint8_t {
  kFresh,         // serve it
  kStale,         // serve it stale: the request's max-stale allows that
  kStaleRefresh,  // serve it stale and refresh it once in the background (stale-while-revalidate)
  kRevalidate,    // ask the backend with its validators first
  kFetch,         // stale with no validators: fetch anew
};
Reuse reuse(const StoredResponse& stored, const CacheControl& request_cc, int64_t now);

// True when the request's conditional fields (If-None-Match, else If-Modified-Since) hold for
// `stored`, so a 304 answers it (RFC 9110 13.1.2, 13.1.3, 13.2.2; weak comparison).
bool not_modified(const MessageHead& request, const StoredResponse& stored);

// Weak and strong entity-tag comparison (RFC 9110 8.8.3.2).
bool weak_match(std::string_view a, std::string_view b);
bool strong_match(std::string_view a, std::string_view b);

}  // namespace sluice::core::cache
