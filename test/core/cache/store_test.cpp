// Specification of the shared store: lookups by key and Vary values (RFC 9111 4.1), how
// variants replace each other, how the request values Vary names are normalised, eviction of
// the least recently used responses within max_bytes, invalidation, and the counters.
#include "core/cache/store.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/http/http_parser.h"
#include "test/core/cache/heads.h"

using namespace sluice::core;
using namespace sluice::core::cache;
using namespace sluice::core::cache::test;

namespace {

const std::string kKey = "http://example.com/r";

MessageHead encoding(std::string_view value) {
  return request(field("Accept-Encoding", value));
}

// A response of `bytes` charged bytes under `key`, selected by `selecting`'s values of the
// `vary` fields (lower case).
std::shared_ptr<const StoredResponse> response(const std::string& key, uint64_t bytes,
                                               const std::vector<std::string>& vary = {},
                                               const MessageHead& selecting = request()) {
  auto s = std::make_shared<StoredResponse>();
  s->key = key;
  s->bytes = bytes;
  s->body = std::make_shared<Body>(0);
  for (const std::string& name : vary) {
    VaryField v;
    v.name = name;
    v.present = vary_value(selecting, name, &v.value);
    s->vary.push_back(std::move(v));
  }
  return s;
}

// Variant `n` of kKey: it varies on X-Variant, which its request sets to n.
MessageHead variant_request(int n) {
  return request(field("X-Variant", std::to_string(n)));
}
std::shared_ptr<const StoredResponse> variant(int n, uint64_t bytes) {
  return response(kKey, bytes, {"x-variant"}, variant_request(n));
}
bool holds_variant(Store& store, int n) {
  return store.find(kKey, variant_request(n)) != nullptr;
}

std::string normalised(const std::string& fields, std::string_view name) {
  std::string value;
  REQUIRE(vary_value(request(fields), name, &value));
  return value;
}

}  // namespace

TEST_CASE("find returns the response put under the key", "[cache]") {
  Store store(1000);
  auto r = response(kKey, 100);
  store.put(r);
  CHECK(store.find(kKey, request()) == r);
  CHECK(store.find("http://example.com/other", request()) == nullptr);
  CHECK(store.count() == 1);
  CHECK(store.bytes() == 100);
}

TEST_CASE("erase drops every variant of a key and says how many went", "[cache]") {
  Store store(1000);
  store.put(response(kKey, 100, {"accept-encoding"}, encoding("gzip")));
  store.put(response(kKey, 100, {"accept-encoding"}, encoding("br")));
  store.put(response("http://example.com/s", 100));
  CHECK(store.erase(kKey) == 2);
  CHECK(store.find(kKey, encoding("gzip")) == nullptr);
  CHECK(store.find(kKey, encoding("br")) == nullptr);
  CHECK(store.count() == 1);
  CHECK(store.bytes() == 100);
  CHECK(store.erase(kKey) == 0);
}

TEST_CASE("erase_prefix drops every key that starts with the prefix", "[cache]") {
  Store store(10000);
  for (const char* key : {"http://a/x", "http://a/y", "http://a/y?z", "http://b/x", "http://ab/x"})
    store.put(response(key, 100));
  CHECK(store.erase_prefix("http://a/") == 3);
  CHECK(store.find("http://a/x", request()) == nullptr);
  CHECK(store.find("http://a/y?z", request()) == nullptr);
  CHECK(store.find("http://b/x", request()) != nullptr);
  CHECK(store.find("http://ab/x", request()) != nullptr);
  CHECK(store.count() == 2);
  CHECK(store.bytes() == 200);
}

TEST_CASE("Vary variants of one key are kept apart", "[cache]") {
  Store store(1000);
  auto gzip = response(kKey, 100, {"accept-encoding"}, encoding("gzip"));
  auto br = response(kKey, 100, {"accept-encoding"}, encoding("br"));
  store.put(gzip);
  store.put(br);
  CHECK(store.find(kKey, encoding("gzip")) == gzip);
  CHECK(store.find(kKey, encoding("br")) == br);
  CHECK(store.find(kKey, encoding("identity")) == nullptr);
  CHECK(store.find(kKey, request()) == nullptr);
}

TEST_CASE("a request without a varied field matches the variant stored without it", "[cache]") {
  Store store(1000);
  auto none = response(kKey, 100, {"accept-encoding"}, request());
  store.put(response(kKey, 100, {"accept-encoding"}, encoding("gzip")));
  store.put(none);
  CHECK(store.find(kKey, request()) == none);
  CHECK(store.find(kKey, encoding("")) == nullptr);
}

TEST_CASE("a response replaces the variant stored for the same Vary values", "[cache]") {
  Store store(1000);
  store.put(response(kKey, 100, {"accept-encoding"}, encoding("gzip")));
  auto br = response(kKey, 100, {"accept-encoding"}, encoding("br"));
  store.put(br);
  auto newer = response(kKey, 150, {"accept-encoding"}, encoding("GZIP"));
  store.put(newer);
  CHECK(store.find(kKey, encoding("gzip")) == newer);
  CHECK(store.find(kKey, encoding("br")) == br);
  CHECK(store.count() == 2);
  CHECK(store.bytes() == 250);
}

TEST_CASE("vary_value joins several field lines with commas", "[cache]") {
  std::string fields = field("Accept", "text/html");
  fields.append(field("Accept", "text/plain"));
  CHECK(normalised(fields, "accept") == "text/html,text/plain");
}

TEST_CASE("vary_value drops spaces around commas and empty list items", "[cache]") {
  CHECK(normalised(field("Accept", "a ,  b,,c"), "accept") == "a,b,c");
}

TEST_CASE("vary_value lowers the case of Accept-Encoding, -Charset and -Language", "[cache]") {
  CHECK(normalised(field("Accept-Encoding", "GZip, BR"), "accept-encoding") == "gzip,br");
  CHECK(normalised(field("Accept-Charset", "UTF-8"), "accept-charset") == "utf-8");
  CHECK(normalised(field("Accept-Language", "en-GB"), "accept-language") == "en-gb");
}

TEST_CASE("vary_value keeps the case of other fields' values", "[cache]") {
  CHECK(normalised(field("Accept", "Text/HTML"), "accept") == "Text/HTML");
  CHECK(normalised(field("X-Tenant", "Blue"), "x-tenant") == "Blue");
}

TEST_CASE("vary_value lowers Accept-Encoding's case whatever the case of the name given",
          "[cache]") {
  CHECK(normalised(field("Accept-Encoding", "GZip"), "Accept-Encoding") == "gzip");
}

TEST_CASE("vary_value says whether the request has the field at all", "[cache]") {
  std::string value = "stale";
  CHECK_FALSE(vary_value(request(), "accept", &value));
  CHECK(value.empty());
  CHECK(vary_value(request(field("Accept", "")), "accept", &value));
  CHECK(value.empty());
}

TEST_CASE("eviction drops the least recently used response first", "[cache]") {
  Store store(300);
  for (int n = 1; n <= 4; ++n) store.put(variant(n, 100));
  CHECK_FALSE(holds_variant(store, 1));
  CHECK(holds_variant(store, 2));
  CHECK(holds_variant(store, 3));
  CHECK(holds_variant(store, 4));
}

TEST_CASE("a hit keeps a response from being the next evicted", "[cache]") {
  Store store(300);
  for (int n = 1; n <= 3; ++n) store.put(variant(n, 100));
  CHECK(holds_variant(store, 1));
  store.put(variant(4, 100));
  CHECK(holds_variant(store, 1));
  CHECK_FALSE(holds_variant(store, 2));
  CHECK(holds_variant(store, 3));
  CHECK(holds_variant(store, 4));
}

TEST_CASE("bytes() is never over max_bytes after a put and sums what is held", "[cache]") {
  Store store(10000);
  std::vector<std::string> keys;
  uint64_t seed = 12345;
  for (int i = 0; i < 400; ++i) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    keys.emplace_back("http://example.com/");
    keys.back().append(std::to_string(i));
    store.put(response(keys.back(), 1 + (seed >> 33) % 3000));
    REQUIRE(store.bytes() <= store.max_bytes());
  }
  uint64_t held = 0;
  size_t count = 0;
  for (const std::string& key : keys) {
    if (auto r = store.find(key, request())) {
      held += r->bytes;
      ++count;
    }
  }
  CHECK(store.bytes() == held);
  CHECK(store.count() == count);
  CHECK(count > 0);
}

TEST_CASE("a response larger than max_bytes is not stored", "[cache]") {
  Store store(1000);
  store.put(response(kKey, 1001));
  CHECK(store.find(kKey, request()) == nullptr);
  CHECK(store.count() == 0);
  CHECK(store.bytes() == 0);
  CHECK(store.counters().stored == 0);
  store.put(response(kKey, 1000));
  CHECK(store.find(kKey, request()) != nullptr);
}

TEST_CASE("the counters count what was stored, evicted and invalidated", "[cache]") {
  Store store(320);
  for (int n = 1; n <= 4; ++n) store.put(variant(n, 100));
  CHECK(store.counters().stored == 4);
  CHECK(store.counters().evicted == 1);
  CHECK(store.counters().invalidated == 0);
  store.put(response("http://a/x", 10));
  store.put(response("http://a/y", 10));
  const uint64_t evicted = store.counters().evicted;
  const size_t erased = store.erase(kKey) + store.erase_prefix("http://a/");
  CHECK(erased == 5);
  CHECK(store.counters().invalidated == erased);
  CHECK(store.counters().evicted == evicted);
  CHECK(store.counters().stored == 6);
}

TEST_CASE("a response that varies on other fields replaces every variant of its key", "[cache]") {
  Store store(1 << 20);
  store.put(variant(1, 100));
  store.put(variant(2, 100));
  store.put(response(kKey, 100));  // the backend no longer says Vary
  CHECK(store.count() == 1);
  CHECK(store.bytes() == 100);
  const auto found = store.find(kKey, variant_request(1));
  REQUIRE(found != nullptr);
  CHECK(found->vary.empty());
}
