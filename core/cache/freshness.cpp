// RFC 9111's storage and freshness rules. Every time is whole seconds since the epoch; every
// subtraction is of values bounded by parsing (dates within years 0-9999, deltas below 2^31).
#include "core/cache/freshness.h"

#include <llhttp.h>

#include <algorithm>

#include "core/cache/http_date.h"

namespace sluice::core::cache {

namespace {

constexpr int64_t kHeuristicCap = 86400;  // a day: a response that says nothing lives no longer

bool field(const MessageHead& head, std::string_view name, std::string_view* value) {
  return head.find(name, value);
}

bool date_field(const MessageHead& head, std::string_view name, int64_t now, int64_t* seconds) {
  std::string_view value;
  return field(head, name, &value) && parse_http_date(value, now, seconds);
}

// Age's delta-seconds; 0 when absent or unreadable (RFC 9111 5.1).
int64_t age_value(const MessageHead& head) {
  std::string_view value;
  if (!field(head, "Age", &value) || value.empty()) return 0;
  int64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return 0;
    n = std::min<int64_t>(n * 10 + (c - '0'), kMaxDelta);
  }
  return n;
}

bool has_explicit_freshness(const MessageHead& response, const CacheControl& cc) {
  std::string_view expires;
  return cc.max_age != kAbsent || cc.s_maxage != kAbsent || field(response, "Expires", &expires);
}

// The opaque part of an entity-tag ("\"xyz\"" of W/"xyz"), and whether it was weak.
std::string_view opaque(std::string_view tag, bool* weak) {
  *weak = tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/';
  return *weak ? tag.substr(2) : tag;
}

// The next entity-tag of an If-None-Match list (its commas may sit inside quotes); false at
// the end or at something that is not an entity-tag.
bool next_tag(std::string_view* list, std::string_view* tag) {
  size_t i = 0;
  while (i < list->size() && ((*list)[i] == ' ' || (*list)[i] == '\t' || (*list)[i] == ',')) ++i;
  if (i == list->size()) return false;
  const size_t start = i;
  if (list->substr(i, 2) == "W/") i += 2;
  if (i >= list->size() || (*list)[i] != '"') return false;
  const size_t close = list->find('"', i + 1);
  if (close == std::string_view::npos) return false;
  *tag = list->substr(start, close + 1 - start);
  list->remove_prefix(close + 1);
  return true;
}

}  // namespace

bool heuristically_cacheable(int status) {
  switch (status) {
    case 200:
    case 203:
    case 204:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
      return true;
    default:
      return false;
  }
}

const char* unshareable(const MessageHead& request, const CacheControl& request_cc,
                        const MessageHead& response, const CacheControl& response_cc) {
  if (request_cc.no_store || response_cc.no_store) return "no-store";
  if (response_cc.private_) return "private";
  std::string_view value;
  if (request.find("Authorization", &value) && !response_cc.public_ &&
      response_cc.s_maxage == kAbsent && !response_cc.must_revalidate)
    return "a response to a request with Authorization";
  if (response.find("Set-Cookie", &value)) return "Set-Cookie";
  for (size_t i = 0; i < response.field_count(); ++i)
    if (equals_ignore_case(response.name(i), "Vary") && list_contains(response.value(i), "*"))
      return "Vary: *";
  return nullptr;
}

const char* unstorable(const MessageHead& request, const CacheControl& request_cc,
                       const MessageHead& response, const CacheControl& response_cc,
                       const conf::CacheConfig& config, int64_t now) {
  if (request.method != HTTP_GET) return "only responses to GET are stored";
  if (response.status < 200 || response.status == 206 || response.status == 304)
    return "not a complete final response";
  if (const char* why = unshareable(request, request_cc, response, response_cc)) return why;
  std::string_view value;
  if (response.framing == Framing::kLength && response.content_length > config.max_object_bytes)
    return "larger than max_object_bytes";
  const bool validators = response.find("ETag", &value) || response.find("Last-Modified", &value);
  if (!has_explicit_freshness(response, response_cc) && !response_cc.public_ &&
      !heuristically_cacheable(response.status))
    return "no freshness information for this status";
  if (freshness_lifetime(response, response_cc, config, now) == 0 && !validators)
    return "stale at once, with no validator";
  return nullptr;
}

int64_t freshness_lifetime(const MessageHead& response, const CacheControl& cc,
                           const conf::CacheConfig& config, int64_t now) {
  if (cc.invalid_freshness) return 0;
  if (cc.s_maxage != kAbsent) return cc.s_maxage;
  if (cc.max_age != kAbsent) return cc.max_age;
  int64_t date = now;
  date_field(response, "Date", now, &date);
  std::string_view expires;
  if (field(response, "Expires", &expires)) {
    int64_t at;
    if (!parse_http_date(expires, now, &at)) return 0;  // RFC 9111 5.3: invalid means expired
    return std::max<int64_t>(0, at - date);
  }
  const bool allowed = heuristically_cacheable(response.status) || cc.public_;
  if (!allowed) return 0;
  if (config.default_ttl_s > 0) return config.default_ttl_s;
  int64_t modified;
  if (date_field(response, "Last-Modified", now, &modified) && modified < date)
    return std::min<int64_t>((date - modified) / 10, kHeuristicCap);
  return 0;
}

void note_freshness(const MessageHead& response, const CacheControl& cc,
                    const conf::CacheConfig& config, int64_t request_time, int64_t response_time,
                    StoredResponse* stored) {
  const MessageHead& head = stored->head;
  int64_t date = response_time;
  date_field(head, "Date", response_time, &date);
  const int64_t apparent_age = std::max<int64_t>(0, response_time - date);
  const int64_t corrected_age_value = age_value(response) + (response_time - request_time);
  stored->request_time = request_time;
  stored->response_time = response_time;
  stored->corrected_initial_age = std::max(apparent_age, corrected_age_value);
  stored->freshness_lifetime = freshness_lifetime(head, cc, config, response_time);
  stored->no_cache = cc.no_cache;
  stored->must_revalidate = cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage != kAbsent;
  stored->stale_while_revalidate = cc.stale_while_revalidate != kAbsent
                                       ? cc.stale_while_revalidate
                                       : config.stale_while_revalidate_s;
  stored->stale_if_error =
      cc.stale_if_error != kAbsent ? cc.stale_if_error : config.stale_if_error_s;
  std::string_view value;
  stored->etag = head.find("ETag", &value) ? value : std::string_view();
  stored->last_modified = head.find("Last-Modified", &value) ? value : std::string_view();
}

Reuse reuse(const StoredResponse& stored, const CacheControl& request_cc, int64_t now) {
  const int64_t age = stored.current_age(now);
  const int64_t lifetime = stored.freshness_lifetime;
  const bool validators = !stored.etag.empty() || !stored.last_modified.empty();
  const Reuse ask = validators ? Reuse::kRevalidate : Reuse::kFetch;
  if (request_cc.no_cache || stored.no_cache) return ask;
  bool acceptable = lifetime > age;
  if (request_cc.max_age != kAbsent && age > request_cc.max_age) acceptable = false;
  if (request_cc.min_fresh != kAbsent && lifetime - age < request_cc.min_fresh) acceptable = false;
  if (acceptable) return Reuse::kFresh;
  // Stale (or too old for this request): served only where nothing forbids it (4.2.4).
  if (lifetime > age || stored.must_revalidate) return ask;
  const int64_t staleness = age - lifetime;
  // max-stale widens what is fresh enough, never past the request's own max-age (5.2.1.1).
  if (request_cc.max_stale != kAbsent && staleness <= request_cc.max_stale &&
      (request_cc.max_age == kAbsent || age <= request_cc.max_age))
    return Reuse::kStale;
  if (request_cc.max_age == kAbsent && stored.stale_while_revalidate > 0 &&
      staleness <= stored.stale_while_revalidate)
    return Reuse::kStaleRefresh;
  return ask;
}

bool weak_match(std::string_view a, std::string_view b) {
  bool weak_a, weak_b;
  return !a.empty() && opaque(a, &weak_a) == opaque(b, &weak_b);
}

bool strong_match(std::string_view a, std::string_view b) {
  bool weak_a, weak_b;
  return !a.empty() && opaque(a, &weak_a) == opaque(b, &weak_b) && !weak_a && !weak_b;
}

bool not_modified(const MessageHead& request, const StoredResponse& stored) {
  // Validators select a representation: a stored error has none (RFC 9110 13.2.1).
  if (stored.head.status < 200 || stored.head.status >= 300) return false;
  std::string_view value;
  if (request.find("If-None-Match", &value)) {
    if (value == "*") return true;
    std::string_view tag;
    while (next_tag(&value, &tag))
      if (weak_match(tag, stored.etag)) return true;
    return false;
  }
  if (!request.find("If-Modified-Since", &value) || stored.last_modified.empty()) return false;
  int64_t since, modified;
  return parse_http_date(value, stored.response_time, &since) &&
         parse_http_date(stored.last_modified, stored.response_time, &modified) &&
         modified <= since;
}

}  // namespace sluice::core::cache
