// The forward proxy's targets: split_authority (host and port of an absolute-form or CONNECT
// target), parse_absolute_form's scheme, and CONNECT, which only a forward listener's parser
// accepts and then only as host:port.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/http/http_parser.h"
#include "core/http/request_target.h"

using namespace sluice::core;

namespace {

struct Split {
  bool ok = false;
  std::string host;
  uint16_t port = 0;
};

Split split(std::string_view authority, uint16_t default_port) {
  Split out;
  std::string_view host;
  out.ok = split_authority(authority, default_port, &host, &out.port);
  if (out.ok) out.host = std::string(host);
  return out;
}

struct Head {
  HeadPool heads;
  std::unique_ptr<MessageHead> head;
  int status = 0;  // error status, 0 when the head parsed
  std::string reason;
};

std::unique_ptr<Head> parse(const std::string& text, bool connect_allowed) {
  auto out = std::make_unique<Head>();
  HttpParser parser(HttpParser::Kind::kRequest, out->heads, {});
  parser.allow_connect(connect_allowed);
  const ParseStep step = parser.execute(text.data(), text.size());
  if (step.event == ParseEvent::kHead) {
    out->head = parser.release_head();
  } else {
    out->status = parser.error_status();
    out->reason = parser.error_reason();
  }
  return out;
}

std::string connect_to(const std::string& target) {
  return "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";
}

TEST_CASE("an authority without a port gets the default port", "[target][forward]") {
  const Split s = split("example.com", 80);
  CHECK(s.ok);
  CHECK(s.host == "example.com");
  CHECK(s.port == 80);
  CHECK(split("example.com", 443).port == 443);
}

TEST_CASE("an authority's own port overrides the default", "[target][forward]") {
  const Split s = split("example.com:8080", 80);
  CHECK(s.ok);
  CHECK(s.host == "example.com");
  CHECK(s.port == 8080);
  CHECK(split("example.com:1", 80).port == 1);
  CHECK(split("example.com:65535", 80).port == 65535);
  CHECK(split("example.com:00443", 80).port == 443);
}

TEST_CASE("a default port of 0 makes the port required, as for CONNECT", "[target][forward]") {
  CHECK_FALSE(split("example.com", 0).ok);
  CHECK_FALSE(split("[::1]", 0).ok);
  const Split s = split("example.com:443", 0);
  CHECK(s.ok);
  CHECK(s.port == 443);
}

TEST_CASE("an authority with port 0, over 65535, empty or not digits is refused",
          "[target][forward]") {
  for (const char* authority : {"example.com:0", "example.com:00000", "example.com:65536",
                                "example.com:99999", "example.com:", "example.com:123456",
                                "example.com:8o", "[::1]:0", "[::1]:", "[::1]:65536"}) {
    INFO(authority);
    CHECK_FALSE(split(authority, 80).ok);
  }
}

TEST_CASE("an authority with an empty or invalid host is refused", "[target][forward]") {
  for (const char* authority :
       {"", ":80", ":", "exa mple.com", "a@b:80", "[::1", "[zz::1]:80", "[]:80"}) {
    INFO(authority);
    CHECK_FALSE(split(authority, 80).ok);
  }
}

TEST_CASE("an empty authority is refused, even one with no data behind it", "[target][forward]") {
  std::string_view host;
  uint16_t port = 0;
  CHECK_FALSE(split_authority(std::string_view(), 80, &host, &port));
  CHECK_FALSE(split_authority(std::string_view(), 0, &host, &port));
}

TEST_CASE("an IPv6 literal keeps its brackets in the host", "[target][forward]") {
  const Split s = split("[2001:db8::1]:8443", 0);
  CHECK(s.ok);
  CHECK(s.host == "[2001:db8::1]");
  CHECK(s.port == 8443);
  const Split bare = split("[::1]", 443);
  CHECK(bare.ok);
  CHECK(bare.host == "[::1]");
  CHECK(bare.port == 443);
}

TEST_CASE("an absolute-form target says whether its scheme is https", "[target][forward]") {
  AbsoluteTarget t;
  REQUIRE(parse_absolute_form("https://example.com/a?b", &t) == nullptr);
  CHECK(t.https);
  CHECK(t.authority == "example.com");
  CHECK(t.rest == "/a?b");
  REQUIRE(parse_absolute_form("HTTPS://example.com", &t) == nullptr);
  CHECK(t.https);
  REQUIRE(parse_absolute_form("http://example.com:8080/", &t) == nullptr);
  CHECK_FALSE(t.https);
  CHECK(t.authority == "example.com:8080");
}

TEST_CASE("CONNECT is answered with 405 unless the parser is told to accept it",
          "[target][forward]") {
  auto p = parse(connect_to("example.com:443"), false);
  CHECK(p->status == 405);
  CHECK_FALSE(p->head);
}

TEST_CASE("an accepted CONNECT has its authority as host()", "[target][forward]") {
  auto p = parse("CONNECT example.com:443 HTTP/1.1\r\nHost: other.example\r\n\r\n", true);
  REQUIRE(p->head);
  CHECK(p->head->method == HTTP_CONNECT);
  CHECK(p->head->host() == "example.com:443");
  CHECK(p->head->target() == "example.com:443");
}

TEST_CASE("an accepted CONNECT to an IPv6 literal keeps its brackets", "[target][forward]") {
  auto p = parse(connect_to("[::1]:8443"), true);
  REQUIRE(p->head);
  CHECK(p->head->host() == "[::1]:8443");
}

TEST_CASE("a CONNECT target that is not host:port is answered with 400", "[target][forward]") {
  for (const char* target : {"example.com", "/path", "http://example.com:443/", "example.com:0",
                             "example.com:65536", ":443", "[::1]"}) {
    INFO(target);
    auto p = parse(connect_to(target), true);
    CHECK(p->status == 400);
  }
  CHECK(parse(connect_to("example.com"), true)->reason == "a CONNECT target must be host:port");
}

TEST_CASE("allowing CONNECT leaves other requests as they were", "[target][forward]") {
  auto p = parse("GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n", true);
  REQUIRE(p->head);
  CHECK(p->head->host() == "example.com");
  CHECK(p->head->origin_target() == "/x");
  CHECK(parse("GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", true)->status == 400);
}

}  // namespace
