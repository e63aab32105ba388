// Specification of balancing keys: what a request hashes on for each "hash_key" form, read out
// of the parsed head; a request without the key has none, and the policy falls back.
#include "core/proxy/balance_key.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/http/http_parser.h"

using namespace sluice::core;

namespace {

// A parsed request head, kept alive with its pool.
struct Request {
  HeadPool heads;
  std::unique_ptr<MessageHead> head;

  explicit Request(const std::string& text) {
    HttpParser parser(HttpParser::Kind::kRequest, heads, {});
    const ParseStep step = parser.execute(text.data(), text.size());
    REQUIRE(step.event == ParseEvent::kHead);
    head = parser.release_head();
  }
};

// The key for `spec`, or "<none>" when balance_key says the request has none.
std::string key_of(const std::string& text, std::string_view spec,
                   std::string_view client_ip = "192.0.2.7") {
  const Request request(text);
  std::string_view key = "stale";
  if (!balance_key(*request.head, spec, client_ip, &key)) {
    CHECK(key.empty());
    return "<none>";
  }
  return std::string(key);
}

const std::string kPlain = "GET /cart/items?page=2&sort=asc HTTP/1.1\r\nHost: shop.test\r\n\r\n";

}  // namespace

TEST_CASE("client_ip keys on the client's address", "[core][balance_key]") {
  CHECK(key_of(kPlain, "client_ip", "192.0.2.7") == "192.0.2.7");
  CHECK(key_of(kPlain, "client_ip", "2001:db8::1") == "2001:db8::1");
}

TEST_CASE("path keys on the target's path without its query", "[core][balance_key]") {
  CHECK(key_of(kPlain, "path") == "/cart/items");
  CHECK(key_of("GET /cart/items HTTP/1.1\r\nHost: shop.test\r\n\r\n", "path") == "/cart/items");
}

TEST_CASE("path keys on the path of an absolute-form target", "[core][balance_key]") {
  CHECK(key_of("GET http://shop.test/cart/items?page=2 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
               "path") == "/cart/items");
}

TEST_CASE("uri keys on the whole target, query included", "[core][balance_key]") {
  CHECK(key_of(kPlain, "uri") == "/cart/items?page=2&sort=asc");
}

TEST_CASE("header:NAME keys on that header's value", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nX-Other: bob\r\n\r\n",
               "header:X-User") == "alice");
}

TEST_CASE("header:NAME matches the header name regardless of letter case", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nx-user: alice\r\n\r\n", "header:X-User") == "alice");
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nX-USER: alice\r\n\r\n", "header:x-user") == "alice");
}

TEST_CASE("header:NAME keys on the first of repeated headers", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nX-User: bob\r\n\r\n",
               "header:X-User") == "alice");
}

TEST_CASE("header:NAME gives no key when the header is missing", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nX-Users: alice\r\n\r\n", "header:X-User") == "<none>");
}

TEST_CASE("header:NAME gives no key when the header is empty", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nX-User: \r\n\r\n", "header:X-User") == "<none>");
}

TEST_CASE("cookie:NAME keys on that cookie's value among several", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nCookie: theme=dark; session=abc123; lang=en\r\n\r\n",
               "cookie:session") == "abc123");
}

TEST_CASE("cookie:NAME finds the cookie as the first or last of the list", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nCookie: session=abc123; lang=en\r\n\r\n",
               "cookie:session") == "abc123");
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nCookie: lang=en;session=abc123\r\n\r\n",
               "cookie:session") == "abc123");
}

TEST_CASE("cookie:NAME looks through every Cookie header", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nCookie: theme=dark; lang=en\r\nX-Other: 1\r\n"
               "cookie: session=abc123\r\n\r\n",
               "cookie:session") == "abc123");
}

TEST_CASE("cookie:NAME matches the whole cookie name, not a part of it", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nCookie: xsession=1; sessionid=2; session=3\r\n\r\n",
               "cookie:session") == "3");
}

TEST_CASE("cookie:NAME gives no key when the cookie is missing", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nCookie: theme=dark; lang=en\r\n\r\n",
               "cookie:session") == "<none>");
}

TEST_CASE("cookie:NAME gives no key without a Cookie header", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "cookie:session") == "<none>");
}

TEST_CASE("a spec that names no known key gives no key", "[core][balance_key]") {
  CHECK(key_of(kPlain, "query") == "<none>");
}

TEST_CASE("cookie:NAME skips an empty cookie of that name for a later one", "[core][balance_key]") {
  CHECK(key_of("GET / HTTP/1.1\r\nHost: x\r\nCookie: session=\r\nCookie: session=abc\r\n\r\n",
               "cookie:session") == "abc");
}
