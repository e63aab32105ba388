// Reading POST /cache/purge: one url= or one prefix=, percent-decoded once, made into the keys'
// form (scheme and host in lower case, the path and query as written), and the loopback check.
#include "core/admin/purge.h"

#include <catch2/catch.hpp>
#include <string>

namespace sluice::admin {
namespace {

conf::IpAddress address(const char* text) {
  conf::IpAddress a;
  REQUIRE(conf::parse_ip_address(text, &a));
  return a;
}

std::string why(std::string_view query) {
  PurgeOrder order;
  const char* reason = parse_purge(query, &order);
  return reason ? reason : "";
}

TEST_CASE("a purge url is the key: scheme and host lower-cased, path and query kept",
          "[admin][purge]") {
  PurgeOrder order;
  REQUIRE(parse_purge("url=HTTP%3A%2F%2FWww.Example.COM%3A8080%2FA%2Fb%3FQ%3D1%26r", &order) ==
          nullptr);
  CHECK_FALSE(order.prefix);
  CHECK(order.text == "http://www.example.com:8080/A/b?Q=1&r");
}

TEST_CASE("a purge url is decoded once: an escape inside it stays an escape", "[admin][purge]") {
  PurgeOrder order;
  REQUIRE(parse_purge("url=https://a.test/x%2520y", &order) == nullptr);
  CHECK(order.text == "https://a.test/x%20y");
}

TEST_CASE("a purge url without a path is the key of its root, and loses its fragment",
          "[admin][purge]") {
  std::string key;
  REQUIRE(purge_key("http://a.test", &key) == nullptr);
  CHECK(key == "http://a.test/");
  REQUIRE(purge_key("http://a.test?q", &key) == nullptr);
  CHECK(key == "http://a.test/?q");
  REQUIRE(purge_key("http://a.test/p#part", &key) == nullptr);
  CHECK(key == "http://a.test/p");
}

TEST_CASE("a purge url must be absolute http or https", "[admin][purge]") {
  std::string key;
  CHECK(purge_key("/just/a/path", &key) != nullptr);
  CHECK(purge_key("ftp://a.test/", &key) != nullptr);
  CHECK(purge_key("http://user@a.test/", &key) != nullptr);
  CHECK(purge_key("http:///path", &key) != nullptr);
  CHECK_THAT(why("url=%2Fpath"), Catch::Contains("absolute http or https URL"));
}

TEST_CASE("a purge prefix keeps its path as written and lower-cases the rest", "[admin][purge]") {
  PurgeOrder order;
  REQUIRE(parse_purge("prefix=HTTP%3A%2F%2FA.Test%2FImages%2F", &order) == nullptr);
  CHECK(order.prefix);
  CHECK(order.text == "http://a.test/Images/");
  REQUIRE(parse_purge("prefix=HTTPS://Shop.", &order) == nullptr);
  CHECK(order.text == "https://shop.");
}

TEST_CASE("a purge names exactly one url or prefix", "[admin][purge]") {
  CHECK_THAT(why(""), Catch::Contains("exactly one of url="));
  CHECK_THAT(why("other=1"), Catch::Contains("exactly one of url="));
  CHECK_THAT(why("url=http://a.test/&prefix=http://a.test/"), Catch::Contains("exactly one"));
  CHECK_THAT(why("url=http://a.test/1&url=http://a.test/2"), Catch::Contains("exactly one"));
  CHECK(why("other=1&url=http://a.test/") == "");
  CHECK(why("prefix=") == "prefix must not be empty");
}

TEST_CASE("a broken percent escape refuses the purge", "[admin][purge]") {
  CHECK_THAT(why("url=http://a.test/%zz"), Catch::Contains("invalid percent escape"));
  CHECK_THAT(why("prefix=http%3"), Catch::Contains("invalid percent escape"));
  std::string out;
  CHECK(percent_decode("a%41%62%", &out) == false);
  REQUIRE(percent_decode("a%41%62+", &out));
  CHECK(out == "aAb+");  // '+' is not a space outside form bodies
}

TEST_CASE("only loopback addresses may purge", "[admin][purge]") {
  CHECK(is_loopback(address("127.0.0.1")));
  CHECK(is_loopback(address("127.255.3.4")));
  CHECK(is_loopback(address("::1")));
  CHECK(is_loopback(address("::ffff:127.0.0.1")));
  CHECK_FALSE(is_loopback(address("128.0.0.1")));
  CHECK_FALSE(is_loopback(address("10.0.0.1")));
  CHECK_FALSE(is_loopback(address("::2")));
  CHECK_FALSE(is_loopback(address("::ffff:10.0.0.1")));
  CHECK_FALSE(is_loopback(conf::IpAddress{}));
}

}  // namespace
}  // namespace sluice::admin
