// Specification of RFC 9111's rules as core/cache/freshness.h applies them: what may be stored,
// for how long it is fresh, how old it is, what a request may get from it, and when a client's
// own validators earn a 304.
#include "core/cache/freshness.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "core/cache/http_date.h"
#include "core/http/head_writer.h"
#include "core/http/http_parser.h"
#include "test/core/cache/heads.h"

using namespace sluice;
using namespace sluice::core;
using namespace sluice::core::cache;
using namespace sluice::core::cache::test;

namespace {

constexpr int64_t kNow = 1700000000;

MessageHead response(int status, const std::string& fields) {
  char line[64];
  std::snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, status_reason(status));
  std::string text(line);
  text.append(fields);
  text.append("\r\n");
  return parse_head(HttpParser::Kind::kResponse, text);
}

// Field lines for a head, from name-value pairs.
std::string lines(std::initializer_list<std::pair<std::string_view, std::string>> fields) {
  std::string text;
  for (const auto& [name, value] : fields) text.append(field(name, value));
  return text;
}

// A response dated now, fresh for a minute, with a small body: storable on its own.
std::string storable_fields() {
  std::string fields =
      lines({{"Date", date(kNow)}, {"Cache-Control", "max-age=60"}, {"Content-Length", "5"}});
  return fields;
}

std::string storable_fields(const std::string& extra) {
  std::string fields = storable_fields();
  fields.append(extra);
  return fields;
}

// Why the response may not be stored ("" when it may).
std::string why_not(const MessageHead& req, const MessageHead& resp,
                    const conf::CacheConfig& config = {}) {
  const char* why =
      unstorable(req, cache_control_of(req), resp, cache_control_of(resp), config, kNow);
  return why ? why : "";
}

int64_t lifetime(const MessageHead& resp, const conf::CacheConfig& config = {}) {
  return freshness_lifetime(resp, cache_control_of(resp), config, kNow);
}

// `head` as stored from a fetch sent at `request_time` that came back at `response_time`.
std::shared_ptr<StoredResponse> stored(const MessageHead& head, int64_t request_time,
                                       int64_t response_time,
                                       const conf::CacheConfig& config = {}) {
  auto s = std::make_shared<StoredResponse>();
  s->head = head;
  note_freshness(s->head, cache_control_of(s->head), config, request_time, response_time, s.get());
  return s;
}

// Stored at kNow, dated kNow, fresh for 60 seconds, with `extra` fields.
std::shared_ptr<StoredResponse> minute(const std::string& extra = field("ETag", "\"v1\""),
                                       std::string_view cache_control = "max-age=60",
                                       const conf::CacheConfig& config = {}) {
  std::string fields = lines({{"Date", date(kNow)}, {"Cache-Control", std::string(cache_control)}});
  fields.append(extra);
  return stored(response(200, fields), kNow, kNow, config);
}

Reuse reuse_at(const StoredResponse& s, int64_t now, std::string_view request_cc = {}) {
  CacheControl cc;
  parse_cache_control(request_cc, &cc);
  return reuse(s, cc, now);
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<Reuse> {
  static std::string convert(Reuse r) {
    static const char* const kNames[] = {"kFresh", "kStale", "kStaleRefresh", "kRevalidate",
                                         "kFetch"};
    return kNames[static_cast<int>(r)];
  }
};
}  // namespace Catch

// What may be stored.

TEST_CASE("the statuses RFC 9110 15.1 lists are heuristically cacheable", "[cache]") {
  for (int status : {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
    CHECK(heuristically_cacheable(status));
}

TEST_CASE("other statuses are not heuristically cacheable", "[cache]") {
  for (int status : {100, 201, 202, 302, 303, 304, 307, 400, 401, 403, 500, 502, 503})
    CHECK_FALSE(heuristically_cacheable(status));
}

TEST_CASE("a fresh response to a GET may be stored", "[cache]") {
  CHECK(why_not(request(), response(200, storable_fields())).empty());
}

TEST_CASE("responses to methods other than GET are not stored", "[cache]") {
  const MessageHead resp = response(200, storable_fields());
  CHECK_THAT(why_not(request({}, "HEAD"), resp), Catch::Contains("GET"));
  CHECK_THAT(why_not(request(field("Content-Length", "0"), "POST"), resp), Catch::Contains("GET"));
}

TEST_CASE("206, 304 and interim responses are not stored", "[cache]") {
  const std::string partial = storable_fields(field("Content-Range", "bytes 0-4/10"));
  CHECK_THAT(why_not(request(), response(206, partial)), Catch::Contains("not a complete"));
  CHECK_THAT(why_not(request(), response(304, storable_fields())),
             Catch::Contains("not a complete"));
  MessageHead interim = response(200, storable_fields());
  interim.status = 103;
  CHECK_THAT(why_not(request(), interim), Catch::Contains("not a complete"));
}

TEST_CASE("no-store in the request keeps its response out of the cache", "[cache]") {
  CHECK(why_not(request(field("Cache-Control", "no-store")), response(200, storable_fields())) ==
        "no-store");
}

TEST_CASE("no-store in the response keeps it out of the cache", "[cache]") {
  CHECK(why_not(request(), response(200, storable_fields(field("Cache-Control", "no-store")))) ==
        "no-store");
}

TEST_CASE("a private response is not stored by a shared cache", "[cache]") {
  CHECK(why_not(request(), response(200, storable_fields(field("Cache-Control", "private")))) ==
        "private");
}

TEST_CASE("a response to a request with Authorization is not stored", "[cache]") {
  CHECK_THAT(
      why_not(request(field("Authorization", "Basic dTpw")), response(200, storable_fields())),
      Catch::Contains("Authorization"));
}

TEST_CASE("public lets a response to a request with Authorization be stored", "[cache]") {
  CHECK(why_not(request(field("Authorization", "Basic dTpw")),
                response(200, storable_fields(field("Cache-Control", "public"))))
            .empty());
}

TEST_CASE("s-maxage lets a response to a request with Authorization be stored", "[cache]") {
  std::string fields = lines({{"Date", date(kNow)}, {"Cache-Control", "s-maxage=60"}});
  CHECK(why_not(request(field("Authorization", "Basic dTpw")), response(200, fields)).empty());
}

TEST_CASE("must-revalidate lets a response to a request with Authorization be stored", "[cache]") {
  CHECK(why_not(request(field("Authorization", "Basic dTpw")),
                response(200, storable_fields(field("Cache-Control", "must-revalidate"))))
            .empty());
}

TEST_CASE("a response that sets a cookie is not stored", "[cache]") {
  CHECK(why_not(request(), response(200, storable_fields(field("Set-Cookie", "id=1")))) ==
        "Set-Cookie");
}

TEST_CASE("a response that varies on everything is not stored", "[cache]") {
  CHECK(why_not(request(), response(200, storable_fields(field("Vary", "*")))) == "Vary: *");
  CHECK(why_not(request(), response(200, storable_fields(field("Vary", "Accept, *")))) ==
        "Vary: *");
}

TEST_CASE("a declared length over max_object_bytes keeps the response out", "[cache]") {
  conf::CacheConfig config;
  config.max_object_bytes = 5;
  CHECK(why_not(request(), response(200, storable_fields()), config).empty());
  config.max_object_bytes = 4;
  CHECK_THAT(why_not(request(), response(200, storable_fields()), config),
             Catch::Contains("max_object_bytes"));
}

TEST_CASE("a 302 without explicit freshness is not stored", "[cache]") {
  std::string fields =
      lines({{"Date", date(kNow)}, {"Location", "/elsewhere"}, {"ETag", "\"v1\""}});
  CHECK_THAT(why_not(request(), response(302, fields)), Catch::Contains("no freshness"));
  fields.append(field("Cache-Control", "max-age=60"));
  CHECK(why_not(request(), response(302, fields)).empty());
}

TEST_CASE("a response stale at once with no validator is not stored", "[cache]") {
  std::string fields = lines({{"Date", date(kNow)}, {"Cache-Control", "max-age=0"}});
  CHECK_THAT(why_not(request(), response(200, fields)), Catch::Contains("stale at once"));
}

TEST_CASE("a response stale at once with an ETag is stored for revalidation", "[cache]") {
  std::string fields =
      lines({{"Date", date(kNow)}, {"Cache-Control", "max-age=0"}, {"ETag", "\"v1\""}});
  CHECK(why_not(request(), response(200, fields)).empty());
}

// For how long it is fresh.

TEST_CASE("s-maxage takes precedence over max-age", "[cache]") {
  std::string fields = lines({{"Date", date(kNow)}, {"Cache-Control", "max-age=20, s-maxage=10"}});
  CHECK(lifetime(response(200, fields)) == 10);
}

TEST_CASE("max-age takes precedence over Expires", "[cache]") {
  std::string fields =
      lines({{"Date", date(kNow)}, {"Expires", date(kNow + 100)}, {"Cache-Control", "max-age=20"}});
  CHECK(lifetime(response(200, fields)) == 20);
}

TEST_CASE("Expires counts from the response's Date, not from now", "[cache]") {
  std::string fields = lines({{"Date", date(kNow - 30)}, {"Expires", date(kNow + 70)}});
  CHECK(lifetime(response(200, fields)) == 100);
}

TEST_CASE("Expires takes precedence over the route's default_ttl_s", "[cache]") {
  conf::CacheConfig config;
  config.default_ttl_s = 50;
  std::string fields = lines({{"Date", date(kNow)}, {"Expires", date(kNow + 100)}});
  CHECK(lifetime(response(200, fields), config) == 100);
}

TEST_CASE("default_ttl_s takes precedence over the Last-Modified heuristic", "[cache]") {
  conf::CacheConfig config;
  config.default_ttl_s = 50;
  std::string fields = lines({{"Date", date(kNow)}, {"Last-Modified", date(kNow - 10000)}});
  CHECK(lifetime(response(200, fields), config) == 50);
}

TEST_CASE("the heuristic lifetime is a tenth of the time since Last-Modified", "[cache]") {
  std::string fields = lines({{"Date", date(kNow)}, {"Last-Modified", date(kNow - 10000)}});
  CHECK(lifetime(response(200, fields)) == 1000);
}

TEST_CASE("the heuristic lifetime is at most a day", "[cache]") {
  std::string fields = lines({{"Date", date(kNow)}, {"Last-Modified", date(kNow - 100 * 86400)}});
  CHECK(lifetime(response(200, fields)) == 86400);
}

TEST_CASE("an invalid Expires means already expired", "[cache]") {
  conf::CacheConfig config;
  config.default_ttl_s = 50;
  std::string fields =
      lines({{"Date", date(kNow)}, {"Expires", "0"}, {"Last-Modified", date(kNow - 10000)}});
  CHECK(lifetime(response(200, fields), config) == 0);
}

TEST_CASE("an invalid max-age means already stale", "[cache]") {
  conf::CacheConfig config;
  config.default_ttl_s = 50;
  std::string fields =
      lines({{"Date", date(kNow)}, {"Cache-Control", "max-age=1h"}, {"Expires", date(kNow + 100)}});
  CHECK(lifetime(response(200, fields), config) == 0);
}

TEST_CASE("no heuristic or default lifetime for a status that does not allow it", "[cache]") {
  conf::CacheConfig config;
  config.default_ttl_s = 50;
  std::string fields = lines({{"Date", date(kNow)}, {"Last-Modified", date(kNow - 10000)}});
  CHECK(lifetime(response(302, fields)) == 0);
  CHECK(lifetime(response(302, fields), config) == 0);
}

TEST_CASE("public allows a heuristic lifetime for any status", "[cache]") {
  std::string fields = lines(
      {{"Date", date(kNow)}, {"Last-Modified", date(kNow - 10000)}, {"Cache-Control", "public"}});
  CHECK(lifetime(response(302, fields)) == 1000);
}

// How old it is (RFC 9111 4.2.3).

TEST_CASE("the apparent age is how far Date is behind the response's arrival", "[cache]") {
  auto s = stored(response(200, field("Date", date(kNow - 50))), kNow, kNow);
  CHECK(s->corrected_initial_age == 50);
}

TEST_CASE("the Age field plus the response delay is the corrected age value", "[cache]") {
  std::string fields = lines({{"Date", date(kNow)}, {"Age", "100"}});
  auto s = stored(response(200, fields), kNow - 3, kNow);
  CHECK(s->corrected_initial_age == 103);
}

TEST_CASE("the corrected initial age is the larger of the apparent and corrected ages", "[cache]") {
  std::string apparent_larger = lines({{"Date", date(kNow - 10)}, {"Age", "5"}});
  CHECK(stored(response(200, apparent_larger), kNow - 2, kNow)->corrected_initial_age == 10);
  std::string age_larger = lines({{"Date", date(kNow - 10)}, {"Age", "20"}});
  CHECK(stored(response(200, age_larger), kNow - 2, kNow)->corrected_initial_age == 22);
}

TEST_CASE("a Date after the response's arrival gives no negative apparent age", "[cache]") {
  auto s = stored(response(200, field("Date", date(kNow + 500))), kNow, kNow);
  CHECK(s->corrected_initial_age == 0);
}

TEST_CASE("the current age adds the time since the response arrived", "[cache]") {
  auto s = stored(response(200, field("Date", date(kNow - 50))), kNow, kNow);
  CHECK(s->current_age(kNow + 30) == 80);
}

// What a request may get from it.

TEST_CASE("a fresh stored response is served", "[cache]") {
  CHECK(reuse_at(*minute(), kNow + 59) == Reuse::kFresh);
}

TEST_CASE("a stale stored response with a validator is revalidated", "[cache]") {
  CHECK(reuse_at(*minute(), kNow + 100) == Reuse::kRevalidate);
}

TEST_CASE("a stored response is stale once its age reaches its lifetime", "[cache]") {
  CHECK(reuse_at(*minute(), kNow + 60) == Reuse::kRevalidate);
}

TEST_CASE("a stale stored response without validators is fetched anew", "[cache]") {
  CHECK(reuse_at(*minute(""), kNow + 100) == Reuse::kFetch);
}

TEST_CASE("request no-cache revalidates even a fresh response", "[cache]") {
  CHECK(reuse_at(*minute(), kNow + 1, "no-cache") == Reuse::kRevalidate);
  CHECK(reuse_at(*minute(""), kNow + 1, "no-cache") == Reuse::kFetch);
}

TEST_CASE("response no-cache revalidates it on every use", "[cache]") {
  CHECK(reuse_at(*minute(field("ETag", "\"v1\""), "max-age=60, no-cache"), kNow + 1) ==
        Reuse::kRevalidate);
}

TEST_CASE("request max-age refuses a fresh response older than it allows", "[cache]") {
  CHECK(reuse_at(*minute(), kNow + 30, "max-age=29") == Reuse::kRevalidate);
  CHECK(reuse_at(*minute(), kNow + 30, "max-age=30") == Reuse::kFresh);
}

TEST_CASE("request min-fresh refuses a response fresh for less than it asks", "[cache]") {
  CHECK(reuse_at(*minute(), kNow + 30, "min-fresh=31") == Reuse::kRevalidate);
  CHECK(reuse_at(*minute(), kNow + 30, "min-fresh=30") == Reuse::kFresh);
}

TEST_CASE("request max-stale with a value accepts that much staleness", "[cache]") {
  CHECK(reuse_at(*minute(), kNow + 100, "max-stale=40") == Reuse::kStale);
  CHECK(reuse_at(*minute(), kNow + 100, "max-stale=39") == Reuse::kRevalidate);
}

TEST_CASE("request max-stale without a value accepts any staleness", "[cache]") {
  CHECK(reuse_at(*minute(), kNow + 1000000, "max-stale") == Reuse::kStale);
}

TEST_CASE("max-stale does not lift the age limit of the request's max-age", "[cache]") {
  // Age 80, stale by 20: within max-stale, but older than the 70 seconds max-age allows.
  CHECK(reuse_at(*minute(), kNow + 80, "max-age=70, max-stale=100") == Reuse::kRevalidate);
}

TEST_CASE("must-revalidate forbids serving stale even with max-stale", "[cache]") {
  auto s = minute(field("ETag", "\"v1\""), "max-age=60, must-revalidate");
  CHECK(reuse_at(*s, kNow + 100, "max-stale") == Reuse::kRevalidate);
}

TEST_CASE("proxy-revalidate forbids serving stale even with max-stale", "[cache]") {
  auto s = minute(field("ETag", "\"v1\""), "max-age=60, proxy-revalidate");
  CHECK(reuse_at(*s, kNow + 100, "max-stale") == Reuse::kRevalidate);
}

TEST_CASE("s-maxage forbids serving stale even with max-stale", "[cache]") {
  auto s = minute(field("ETag", "\"v1\""), "s-maxage=60");
  CHECK(reuse_at(*s, kNow + 100, "max-stale") == Reuse::kRevalidate);
}

TEST_CASE("stale-while-revalidate serves stale and refreshes within its window", "[cache]") {
  auto s = minute(field("ETag", "\"v1\""), "max-age=60, stale-while-revalidate=30");
  CHECK(reuse_at(*s, kNow + 90) == Reuse::kStaleRefresh);
  CHECK(reuse_at(*s, kNow + 91) == Reuse::kRevalidate);
}

TEST_CASE("the route's stale_while_revalidate_s applies where the response names none", "[cache]") {
  conf::CacheConfig config;
  config.stale_while_revalidate_s = 30;
  auto s = minute(field("ETag", "\"v1\""), "max-age=60", config);
  CHECK(reuse_at(*s, kNow + 90) == Reuse::kStaleRefresh);
  CHECK(reuse_at(*s, kNow + 91) == Reuse::kRevalidate);
}

// A client's own validators.

namespace {

// Stored with ETag `etag` and a Last-Modified 1000 seconds before kNow.
std::shared_ptr<StoredResponse> validated(std::string_view etag = "\"v1\"") {
  std::string fields = lines(
      {{"Date", date(kNow)}, {"ETag", std::string(etag)}, {"Last-Modified", date(kNow - 1000)}});
  return stored(response(200, fields), kNow, kNow);
}

bool inm(std::string_view value, std::string_view etag = "\"v1\"") {
  return not_modified(request(field("If-None-Match", value)), *validated(etag));
}

bool ims(std::string_view value) {
  return not_modified(request(field("If-Modified-Since", value)), *validated());
}

}  // namespace

TEST_CASE("If-None-Match holds when any tag of its list matches", "[cache]") {
  CHECK(inm("\"a\", \"v1\""));
  CHECK_FALSE(inm("\"a\", \"b\""));
}

TEST_CASE("If-None-Match compares weakly", "[cache]") {
  CHECK(inm("W/\"v1\""));
  CHECK(inm("\"v1\"", "W/\"v1\""));
  CHECK(inm("W/\"v1\"", "W/\"v1\""));
  CHECK_FALSE(inm("W/\"v2\"", "W/\"v1\""));
}

TEST_CASE("If-None-Match * holds for a stored 200", "[cache]") {
  CHECK(inm("*"));
}

TEST_CASE("If-None-Match reads commas inside a tag as part of it", "[cache]") {
  CHECK(inm("\"x\", \"a,b\"", "\"a,b\""));
  CHECK_FALSE(inm("\"a\", \"b\"", "\"a,b\""));
}

TEST_CASE("If-Modified-Since before Last-Modified does not hold", "[cache]") {
  CHECK_FALSE(ims(date(kNow - 1001)));
}

TEST_CASE("If-Modified-Since at or after Last-Modified holds", "[cache]") {
  CHECK(ims(date(kNow - 1000)));
  CHECK(ims(date(kNow - 10)));
}

TEST_CASE("an unparsable If-Modified-Since is ignored", "[cache]") {
  CHECK_FALSE(ims("yesterday"));
}

TEST_CASE("If-None-Match is evaluated instead of If-Modified-Since", "[cache]") {
  std::string no_match = lines({{"If-None-Match", "\"other\""}, {"If-Modified-Since", date(kNow)}});
  CHECK_FALSE(not_modified(request(no_match), *validated()));
  std::string match =
      lines({{"If-None-Match", "\"v1\""}, {"If-Modified-Since", date(kNow - 5000)}});
  CHECK(not_modified(request(match), *validated()));
}

TEST_CASE("strong comparison matches only two identical strong tags", "[cache]") {
  CHECK_FALSE(strong_match("W/\"1\"", "W/\"1\""));
  CHECK_FALSE(strong_match("W/\"1\"", "W/\"2\""));
  CHECK_FALSE(strong_match("W/\"1\"", "\"1\""));
  CHECK_FALSE(strong_match("\"1\"", "W/\"1\""));
  CHECK(strong_match("\"1\"", "\"1\""));
  CHECK_FALSE(strong_match("\"1\"", "\"2\""));
}

TEST_CASE("weak comparison matches tags with the same opaque part, weak or not", "[cache]") {
  CHECK(weak_match("W/\"1\"", "W/\"1\""));
  CHECK_FALSE(weak_match("W/\"1\"", "W/\"2\""));
  CHECK(weak_match("W/\"1\"", "\"1\""));
  CHECK(weak_match("\"1\"", "W/\"1\""));
  CHECK(weak_match("\"1\"", "\"1\""));
  CHECK_FALSE(weak_match("\"1\"", "\"2\""));
}
