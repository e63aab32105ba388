// Specification of where a request goes: which Host values and request-targets are accepted,
// what host() and origin_target() say, and how an absolute-form or h2c-upgrade request reaches
// the backend.
#include "core/http/request_target.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/http/head_writer.h"
#include "core/http/http_parser.h"

using namespace sluice::core;

namespace {

struct Head {
  HeadPool heads;
  std::unique_ptr<MessageHead> head;
  int status = 0;  // error status, 0 when the head parsed
  std::string reason;
};

// Parses one request head.
std::unique_ptr<Head> parse(const std::string& text) {
  auto out = std::make_unique<Head>();
  HttpParser parser(HttpParser::Kind::kRequest, out->heads, {});
  const ParseStep step = parser.execute(text.data(), text.size());
  if (step.event == ParseEvent::kHead) {
    out->head = parser.release_head();
  } else {
    out->status = parser.error_status();
    out->reason = parser.error_reason();
  }
  return out;
}

int status_of(const std::string& text) {
  return parse(text)->status;
}

std::string with_host(const std::string& host) {
  return "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
}

// The head as the backend gets it.
std::string forwarded(const std::string& text, RequestRewrite how = {"10.0.0.1"}) {
  auto parsed = parse(text);
  REQUIRE(parsed->head);
  if (how.tunnel) how.tunnel = parsed->head->upgrade;  // as the proxy decides it
  BlockPool blocks;
  Slice s = write_request_head(blocks, *parsed->head, how);
  std::string wire(s.data, s.length);
  block_unref(s.block);
  return wire;
}

bool has_line(const std::string& wire, const std::string& line) {
  return wire.find("\r\n" + line + "\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("valid_host accepts reg-names, IPv4, bracketed IPv6 and a port", "[host]") {
  for (const char* host :
       {"example.com", "EXAMPLE.com", "a-b_c~d.e", "site.example:8080", "10.0.0.1", "10.0.0.1:80",
        "[::1]", "[::1]:443", "[2001:db8::ffff:10.0.0.1]", "%41bc", "a!$&'()*+,;=b", "", "x:"}) {
    INFO(host);
    CHECK(valid_host(host));
  }
}

TEST_CASE("valid_host refuses characters outside reg-name and malformed literals or ports",
          "[host]") {
  for (const char* host : {"bad host",
                           "bad host/x",
                           "a/b",
                           "a?b",
                           "a#b",
                           "a@b",
                           "a\"b",
                           "a<b>",
                           "a\\b",
                           "a%4",
                           "a%zz",
                           "a:b",
                           "a:80:80",
                           "a:123456",
                           "[::1",
                           "::1",
                           "[::1]x",
                           "[::1]:x",
                           "[v1.x]",
                           "[fe80::1%25e]",
                           "[]",
                           "a\tb",
                           "\xc3\xa9.example"}) {
    INFO(host);
    CHECK_FALSE(valid_host(host));
  }
}

TEST_CASE("a Host value outside RFC 3986's host syntax is answered with 400", "[host]") {
  for (const char* host : {"bad host/x", "a/b", "evil.example@good.example", "a:b", "[::1"}) {
    INFO(host);
    auto p = parse(with_host(host));
    CHECK(p->status == 400);
    CHECK(p->reason == "invalid Host header");
  }
}

TEST_CASE("a valid Host value is the request's host()", "[host]") {
  for (const char* host : {"site.example", "site.example:8080", "[::1]:8080", "127.0.0.1"}) {
    INFO(host);
    auto p = parse(with_host(host));
    REQUIRE(p->head);
    CHECK(p->head->host() == host);
    CHECK_FALSE(p->head->absolute_form());
  }
}

TEST_CASE("an empty Host is accepted and an HTTP/1.0 request without Host has an empty host()",
          "[host]") {
  auto empty = parse("GET / HTTP/1.1\r\nHost: \r\n\r\n");
  REQUIRE(empty->head);
  CHECK(empty->head->host().empty());
  auto none = parse("GET / HTTP/1.0\r\n\r\n");
  REQUIRE(none->head);
  CHECK(none->head->host().empty());
}

TEST_CASE("an absolute-form target's authority is host(), whatever the Host field says",
          "[target]") {
  auto p = parse("GET http://other.example/x?y HTTP/1.1\r\nHost: site.example\r\n\r\n");
  REQUIRE(p->head);
  CHECK(p->head->absolute_form());
  CHECK(p->head->host() == "other.example");
  CHECK(p->head->origin_target() == "/x?y");
  CHECK(p->head->path() == "/x");
  CHECK(p->head->target() == "http://other.example/x?y");
}

TEST_CASE("an absolute-form target with an empty path has the origin-form target /", "[target]") {
  struct Case {
    const char *target, *origin, *path;
  };
  const Case cases[] = {
      {"http://a.example", "/", "/"},
      {"http://a.example?q=1", "/?q=1", "/"},
      {"https://a.example:8443/", "/", "/"},
      {"HTTP://a.example/p", "/p", "/p"},
  };
  for (const Case& c : cases) {
    INFO(c.target);
    auto p = parse(std::string("GET ") + c.target + " HTTP/1.1\r\nHost: a.example\r\n\r\n");
    REQUIRE(p->head);
    CHECK(p->head->origin_target() == c.origin);
    CHECK(p->head->path() == c.path);
  }
}

TEST_CASE("the authority of an absolute-form target keeps its port in host()", "[target]") {
  auto p = parse("GET http://[::1]:8080/ HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(p->head);
  CHECK(p->head->host() == "[::1]:8080");
}

TEST_CASE("an origin-form or asterisk-form target is its own origin_target()", "[target]") {
  auto p = parse("GET /a/b?c HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(p->head);
  CHECK(p->head->origin_target() == "/a/b?c");
  CHECK_FALSE(p->head->absolute_form());
  auto star = parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(star->head);
  CHECK(star->head->origin_target() == "*");
  CHECK(star->head->host() == "x");
}

TEST_CASE("an absolute-form target with a scheme other than http or https is answered with 400",
          "[target]") {
  for (const char* target : {"ftp://a.example/", "ws://a.example/", "file:///etc/passwd"}) {
    INFO(target);
    CHECK(status_of(std::string("GET ") + target + " HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400);
  }
}

TEST_CASE("an absolute-form target with userinfo is answered with 400", "[target]") {
  auto p = parse("GET http://user:pw@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n");
  CHECK(p->status == 400);
  CHECK(p->reason == "userinfo in the request target");
}

TEST_CASE("an absolute-form target with an empty or invalid authority is answered with 400",
          "[target]") {
  for (const char* target :
       {"http:///x", "http://:80/x", "http://a:b/x", "http://[::1/x", "http://a%zz/x"}) {
    INFO(target);
    CHECK(status_of(std::string("GET ") + target + " HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400);
  }
}

TEST_CASE("an absolute-form request still needs a valid Host field", "[target]") {
  CHECK(status_of("GET http://a.example/ HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("GET http://a.example/ HTTP/1.1\r\nHost: bad host\r\n\r\n") == 400);
  auto http10 = parse("GET http://a.example/ HTTP/1.0\r\n\r\n");
  REQUIRE(http10->head);
  CHECK(http10->head->host() == "a.example");
}

TEST_CASE(
    "an absolute-form request reaches the backend in origin-form with Host from the authority",
    "[target][writer]") {
  const std::string wire =
      forwarded("GET http://other.example:81/x?y HTTP/1.1\r\nHost: site.example\r\nA: 1\r\n\r\n");
  CHECK(wire.starts_with("GET /x?y HTTP/1.1\r\nHost: other.example:81\r\n"));
  CHECK(wire.find("site.example") == std::string::npos);
  CHECK(has_line(wire, "A: 1"));
}

TEST_CASE("an absolute-form HTTP/1.0 request without Host gets Host from its authority",
          "[target][writer]") {
  RequestRewrite how{"10.0.0.1"};
  how.host_if_missing = "upstream-name";
  const std::string wire = forwarded("GET http://a.example HTTP/1.0\r\n\r\n", how);
  CHECK(wire.starts_with("GET / HTTP/1.1\r\nHost: a.example\r\n"));
  CHECK(wire.find("upstream-name") == std::string::npos);
}

TEST_CASE("an origin-form request is forwarded exactly as before", "[target][writer]") {
  const std::string wire = forwarded("GET /a?b HTTP/1.1\r\nHost: site.example\r\nX: y\r\n\r\n");
  CHECK(wire ==
        "GET /a?b HTTP/1.1\r\nHost: site.example\r\nX: y\r\nX-Forwarded-For: 10.0.0.1\r\n"
        "X-Forwarded-Proto: http\r\nX-Forwarded-Host: site.example\r\n"
        "Forwarded: for=10.0.0.1;proto=http;host=site.example\r\nVia: 1.1 sluice\r\n\r\n");
}

TEST_CASE("a request whose Upgrade offers only h2c is no upgrade", "[h2c]") {
  for (const char* upgrade : {"h2c", "H2C", "h2c, h2c"}) {
    INFO(upgrade);
    auto p = parse(std::string("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings"
                               "\r\nUpgrade: ") +
                   upgrade + "\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n");
    REQUIRE(p->head);
    CHECK_FALSE(p->head->upgrade);
  }
}

TEST_CASE("after an h2c-only upgrade request the next bytes are the next HTTP request", "[h2c]") {
  // No pause for a protocol switch: the connection goes on as HTTP/1.1 without decline_upgrade().
  const std::string first =
      "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
  const std::string second = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string text = first + second;
  HeadPool heads;
  HttpParser parser(HttpParser::Kind::kRequest, heads, {});
  ParseStep s = parser.execute(text.data(), text.size());
  REQUIRE(s.event == ParseEvent::kHead);
  size_t at = s.consumed;
  s = parser.execute(text.data() + at, text.size() - at);
  REQUIRE(s.event == ParseEvent::kEnd);
  at += s.consumed;
  s = parser.execute(text.data() + at, text.size() - at);
  REQUIRE(s.event == ParseEvent::kHead);
  CHECK(parser.head()->target() == "/b");
}

TEST_CASE("an h2c upgrade request reaches the backend as a plain HTTP/1.1 request",
          "[h2c][writer]") {
  RequestRewrite how{"10.0.0.1"};
  how.tunnel = true;  // the proxy would ask for a tunnel only if upgrade stayed true
  const std::string wire = forwarded(
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
      "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nAccept: */*\r\n\r\n",
      how);
  CHECK(wire.find("Upgrade") == std::string::npos);
  CHECK(wire.find("HTTP2-Settings") == std::string::npos);
  CHECK(wire.find("Connection") == std::string::npos);
  CHECK(has_line(wire, "Accept: */*"));
}

TEST_CASE("an Upgrade offering h2c beside another protocol upgrades to the other one only",
          "[h2c][writer]") {
  const std::string text =
      "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n";
  auto p = parse(text);
  REQUIRE(p->head);
  CHECK(p->head->upgrade);
  RequestRewrite how{"10.0.0.1"};
  how.tunnel = true;
  const std::string wire = forwarded(text, how);
  CHECK(has_line(wire, "Upgrade: websocket"));
  CHECK(has_line(wire, "Connection: upgrade"));
  CHECK(wire.find("h2c") == std::string::npos);
}

TEST_CASE("HTTP2-Settings is never forwarded, upgrade or not", "[h2c][writer]") {
  const std::string wire =
      forwarded("GET / HTTP/1.1\r\nHost: x\r\nhttp2-settings: AAMAAABk\r\nX: y\r\n\r\n");
  CHECK(wire.find("AAMAAABk") == std::string::npos);
  CHECK(has_line(wire, "X: y"));
}
