// Specification of the anonymity levels in the head writer: the exact heads that reach the
// backend and the client in each mode (docs/anonymity.md states the same table).
#include <catch2/catch.hpp>
#include <string>

#include "core/http/head_writer.h"
#include "core/http/http_parser.h"

using namespace sluice::core;

namespace {

std::string rewrite_request(const std::string& text, ForwardedMode mode,
                            std::string_view client = "10.0.0.1",
                            std::string_view scheme = "http") {
  HeadPool heads;
  BlockPool blocks;
  HttpParser parser(HttpParser::Kind::kRequest, heads, {});
  REQUIRE(parser.execute(text.data(), text.size()).event == ParseEvent::kHead);
  RequestRewrite how{client, scheme};
  how.forwarded = mode;
  Slice out = write_request_head(blocks, *parser.head(), how);
  std::string wire(out.data, out.length);
  block_unref(out.block);
  return wire;
}

std::string rewrite_response(const std::string& text, ForwardedMode mode) {
  HeadPool heads;
  BlockPool blocks;
  HttpParser parser(HttpParser::Kind::kResponse, heads, {});
  REQUIRE(parser.execute(text.data(), text.size()).event == ParseEvent::kHead);
  ResponseRewrite how;
  how.forwarded = mode;
  Slice out = write_response_head(blocks, *parser.head(), how);
  std::string wire(out.data, out.length);
  block_unref(out.block);
  return wire;
}

// A client that sends every forwarding field of its own, among ordinary ones.
const std::string kSpoofing =
    "GET /p HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 1.2.3.4\r\n"
    "X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n"
    "Accept: */*\r\nForwarded: for=1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\nVia: 1.0 corp-proxy\r\n\r\n";

}  // namespace

TEST_CASE("transparent: the client's chains gain this hop; Proto and Host are the proxy's",
          "[head_writer][forwarded]") {
  CHECK(rewrite_request(kSpoofing, ForwardedMode::kTransparent) ==
        "GET /p HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Port: 443\r\nAccept: */*\r\n"
        "X-Real-IP: 1.2.3.4\r\n"
        "X-Forwarded-For: 1.2.3.4, 10.0.0.1\r\n"
        "X-Forwarded-Proto: http\r\n"
        "X-Forwarded-Host: example.com\r\n"
        "Forwarded: for=1.2.3.4, for=10.0.0.1;proto=http;host=example.com\r\n"
        "Via: 1.0 corp-proxy, 1.1 sluice\r\n\r\n");
}

TEST_CASE("transparent, the default, adds every forwarding field to a plain request",
          "[head_writer][forwarded]") {
  CHECK(rewrite_request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", RequestRewrite{}.forwarded,
                        "10.0.0.1", "https") ==
        "GET / HTTP/1.1\r\nHost: example.com\r\n"
        "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: example.com\r\n"
        "Forwarded: for=10.0.0.1;proto=https;host=example.com\r\n"
        "Via: 1.1 sluice\r\n\r\n");
}

TEST_CASE("anonymous: Via only, and none of the client's forwarding fields",
          "[head_writer][forwarded]") {
  CHECK(rewrite_request(kSpoofing, ForwardedMode::kAnonymous) ==
        "GET /p HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
        "Via: 1.0 corp-proxy, 1.1 sluice\r\n\r\n");
  CHECK(rewrite_request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", ForwardedMode::kAnonymous) ==
        "GET / HTTP/1.1\r\nHost: example.com\r\nVia: 1.1 sluice\r\n\r\n");
}

TEST_CASE("elite: no forwarding field and no Via, the client's removed too",
          "[head_writer][forwarded]") {
  CHECK(rewrite_request(kSpoofing, ForwardedMode::kElite) ==
        "GET /p HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
}

TEST_CASE("forwarding fields are recognised whatever the case of their names",
          "[head_writer][forwarded]") {
  const std::string shouting =
      "GET / HTTP/1.1\r\nHost: h\r\nx-FORWARDED-for: 1.1.1.1\r\nX-FORWARDED-SERVER: s\r\n"
      "FORWARDED: for=1.1.1.1\r\nx-real-ip: 1.1.1.1\r\nVIA: 1.1 a\r\nX-Forwarded-: odd\r\n\r\n";
  CHECK(rewrite_request(shouting, ForwardedMode::kElite) == "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(rewrite_request(shouting, ForwardedMode::kAnonymous) ==
        "GET / HTTP/1.1\r\nHost: h\r\nVia: 1.1 a, 1.1 sluice\r\n\r\n");
  CHECK(classify_field("X-Forwarded-Host") == FieldKind::kXForwardedHost);
  CHECK(classify_field("x-forwarded-port") == FieldKind::kXForwardedOther);
  CHECK(classify_field("Forwarded") == FieldKind::kForwarded);
  CHECK(classify_field("X-REAL-IP") == FieldKind::kXRealIp);
  CHECK(classify_field("via") == FieldKind::kVia);
  // Near names are ordinary fields.
  CHECK(classify_field("X-Forwarded") == FieldKind::kOther);
  CHECK(classify_field("X-Forward-For") == FieldKind::kOther);
  CHECK(classify_field("Vias") == FieldKind::kOther);
  CHECK(classify_field("Y-Forwarded-For") == FieldKind::kOther);
}

TEST_CASE("fields of one chain are joined in the order they came, however many",
          "[head_writer][forwarded]") {
  std::string request = "GET / HTTP/1.1\r\nHost: h\r\n";
  std::string chain;
  for (int i = 0; i < 45; ++i) {
    const std::string hop = "10.1.0." + std::to_string(i);
    request += "X-Forwarded-For: " + hop + "\r\nVia: 1.1 p" + std::to_string(i) + "\r\n";
    chain += hop + ", ";
  }
  const std::string wire = rewrite_request(request + "\r\n", ForwardedMode::kTransparent);
  CHECK(wire.find("\r\nX-Forwarded-For: " + chain + "10.0.0.1\r\n") != std::string::npos);
  CHECK(wire.find("1.1 p43, 1.1 p44, 1.1 sluice\r\n") != std::string::npos);
  CHECK(wire.find("X-Forwarded-For:") == wire.rfind("X-Forwarded-For:"));
}

TEST_CASE("an IPv6 client is quoted in brackets in Forwarded, bare in X-Forwarded-For",
          "[head_writer][forwarded]") {
  const std::string wire = rewrite_request("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
                                           ForwardedMode::kTransparent, "::1");
  CHECK(wire.find("\r\nX-Forwarded-For: ::1\r\n") != std::string::npos);
  CHECK(wire.find("\r\nX-Forwarded-Host: [::1]:8080\r\n") != std::string::npos);
  CHECK(wire.find("\r\nForwarded: for=\"[::1]\";proto=http;host=\"[::1]:8080\"\r\n") !=
        std::string::npos);
}

TEST_CASE("Forwarded quotes a host that is no token, and says unknown for an unknown client",
          "[head_writer][forwarded]") {
  const std::string wire = rewrite_request("GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
                                           ForwardedMode::kTransparent, "");
  CHECK(wire.find("\r\nForwarded: for=unknown;proto=http;host=\"example.com:8080\"\r\n") !=
        std::string::npos);
}

TEST_CASE("an absolute-form target's authority is the forwarded host", "[head_writer][forwarded]") {
  const std::string wire =
      rewrite_request("GET http://other.example/x HTTP/1.1\r\nHost: ignored.example\r\n\r\n",
                      ForwardedMode::kTransparent);
  CHECK(wire.starts_with("GET /x HTTP/1.1\r\nHost: other.example\r\n"));
  CHECK(wire.find("\r\nX-Forwarded-Host: other.example\r\n") != std::string::npos);
  CHECK(wire.find(";host=other.example\r\n") != std::string::npos);
}

TEST_CASE(
    "Via names the version the request came in, and a request without Host has no "
    "forwarded host",
    "[head_writer][forwarded]") {
  CHECK(rewrite_request("GET / HTTP/1.0\r\n\r\n", ForwardedMode::kTransparent) ==
        "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n"
        "Forwarded: for=10.0.0.1;proto=http\r\nVia: 1.0 sluice\r\n\r\n");
}

TEST_CASE("a forwarding field named in Connection is hop-by-hop: dropped, not extended",
          "[head_writer][forwarded]") {
  CHECK(rewrite_request("GET / HTTP/1.1\r\nHost: h\r\nConnection: Via\r\nVia: 1.1 hop\r\n\r\n",
                        ForwardedMode::kAnonymous) ==
        "GET / HTTP/1.1\r\nHost: h\r\nVia: 1.1 sluice\r\n\r\n");
}

TEST_CASE("the X-Request-Id the proxy sends is the same in every mode",
          "[head_writer][forwarded]") {
  for (ForwardedMode mode :
       {ForwardedMode::kTransparent, ForwardedMode::kAnonymous, ForwardedMode::kElite}) {
    HeadPool heads;
    BlockPool blocks;
    HttpParser parser(HttpParser::Kind::kRequest, heads, {});
    const std::string text = "GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: theirs\r\n\r\n";
    REQUIRE(parser.execute(text.data(), text.size()).event == ParseEvent::kHead);
    RequestRewrite how{"10.0.0.1"};
    how.request_id = "ours";
    how.forwarded = mode;
    Slice out = write_request_head(blocks, *parser.head(), how);
    const std::string wire(out.data, out.length);
    block_unref(out.block);
    CHECK(wire.find("\r\nX-Request-Id: ours\r\n\r\n") != std::string::npos);
    CHECK(wire.find("theirs") == std::string::npos);
  }
}

TEST_CASE("responses gain Via after the backend's, except in elite mode",
          "[head_writer][forwarded]") {
  const std::string theirs = "HTTP/1.1 200 OK\r\nVia: 1.1 cdn\r\nContent-Length: 0\r\n\r\n";
  CHECK(rewrite_response(theirs, ForwardedMode::kTransparent) ==
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVia: 1.1 cdn, 1.1 sluice\r\n\r\n");
  CHECK(rewrite_response(theirs, ForwardedMode::kAnonymous) ==
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVia: 1.1 cdn, 1.1 sluice\r\n\r\n");
  CHECK(rewrite_response(theirs, ForwardedMode::kElite) == theirs);
  CHECK(rewrite_response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                         ForwardedMode::kTransparent) ==
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVia: 1.0 sluice\r\n\r\n");
  CHECK(rewrite_response("HTTP/1.1 204 No Content\r\n\r\n", ForwardedMode::kElite) ==
        "HTTP/1.1 204 No Content\r\n\r\n");
}
