// Specification of head rewriting: what reaches the backend and what reaches the client.
#include "core/http/head_writer.h"

#include <catch2/catch.hpp>
#include <string>

#include "core/http/http_parser.h"

using namespace sluice::core;

namespace {

// Parses a head and rewrites it; returns the text that would go on the wire.
std::string rewrite(const std::string& text, bool request, RequestRewrite req = {"10.0.0.1"},
                    ResponseRewrite resp = {}) {
  HeadPool heads;
  BlockPool blocks;
  HttpParser parser(request ? HttpParser::Kind::kRequest : HttpParser::Kind::kResponse, heads, {});
  ParseStep step = parser.execute(text.data(), text.size());
  REQUIRE(step.event == ParseEvent::kHead);
  Slice out = request ? write_request_head(blocks, *parser.head(), req)
                      : write_response_head(blocks, *parser.head(), resp);
  std::string wire(out.data, out.length);
  block_unref(out.block);
  return wire;
}

bool has_line(const std::string& wire, const std::string& line) {
  return wire.find("\r\n" + line + "\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("the request line, Host and end-to-end fields are forwarded unchanged") {
  std::string wire = rewrite("GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n", true);
  CHECK(wire.rfind("GET /a?b HTTP/1.1\r\n", 0) == 0);
  CHECK(has_line(wire, "Host: example.com"));
  CHECK(has_line(wire, "Accept: */*"));
  CHECK(wire.size() > 4);
  CHECK(wire.substr(wire.size() - 4) == "\r\n\r\n");
}

TEST_CASE("hop-by-hop request fields and the fields named in Connection are removed") {
  std::string wire = rewrite(
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\n"
      "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X\r\n"
      "Upgrade: h2c\r\nX-Kept: yes\r\n\r\n",
      true);
  for (const char* gone : {"Connection:", "X-Private:", "Keep-Alive:", "Proxy-Connection:", "TE:",
                           "Trailer:", "Upgrade:"})
    CHECK(wire.find(std::string("\r\n") + gone) == std::string::npos);
  CHECK(has_line(wire, "X-Kept: yes"));
}

TEST_CASE("X-Forwarded-For gains the client address after any earlier hops") {
  CHECK(has_line(rewrite("GET / HTTP/1.1\r\nHost: x\r\n\r\n", true), "X-Forwarded-For: 10.0.0.1"));
  std::string chained = rewrite(
      "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\r\n",
      true);
  CHECK(has_line(chained, "X-Forwarded-For: 1.2.3.4, 5.6.7.8, 10.0.0.1"));
}

TEST_CASE("X-Forwarded-Proto is set by the proxy, replacing a client's value") {
  std::string wire = rewrite("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n\r\n", true);
  CHECK(has_line(wire, "X-Forwarded-Proto: http"));
  CHECK(wire.find("X-Forwarded-Proto: https") == std::string::npos);
}

TEST_CASE("an upgrade request keeps Upgrade and asks the backend for the switch") {
  RequestRewrite how{"10.0.0.1", "http", true};
  std::string wire =
      rewrite("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
              true, how);
  CHECK(has_line(wire, "Upgrade: websocket"));
  CHECK(has_line(wire, "Connection: upgrade"));
}

TEST_CASE("hop-by-hop response fields are removed and Connection: close added when closing") {
  ResponseRewrite how;
  how.keep_alive = false;
  std::string wire = rewrite(
      "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n"
      "Content-Length: 0\r\n\r\n",
      false, {}, how);
  CHECK(wire.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(wire.find("X-Secret") == std::string::npos);
  CHECK(wire.find("Keep-Alive") == std::string::npos);
  CHECK(has_line(wire, "Content-Length: 0"));
  CHECK(has_line(wire, "Connection: close"));
}

TEST_CASE("an HTTP/1.0 client that keeps the connection is told so explicitly") {
  ResponseRewrite how;
  how.http10_client = true;
  CHECK(has_line(rewrite("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, {}, how),
                 "Connection: keep-alive"));
}

TEST_CASE("a de-chunked response loses its Transfer-Encoding") {
  ResponseRewrite how;
  how.keep_alive = false;
  how.drop_transfer_encoding = true;
  std::string wire =
      rewrite("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, {}, how);
  CHECK(wire.find("Transfer-Encoding") == std::string::npos);
}

TEST_CASE("the proxy's own answers carry a length, a reason and a body naming the problem") {
  BlockPool blocks;
  Slice s = write_error_response(blocks, 503, "no healthy backend in upstream 'app'", true, 1);
  std::string wire(s.data, s.length);
  block_unref(s.block);
  CHECK(wire.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
  CHECK(has_line(wire, "Retry-After: 1"));
  const std::string body = "503 Service Unavailable: no healthy backend in upstream 'app'\n";
  CHECK(wire.substr(wire.size() - body.size()) == body);
  CHECK(has_line(wire, "Content-Length: " + std::to_string(body.size())));
  CHECK(wire.find("Connection: close") == std::string::npos);
}

TEST_CASE("a request without Host is sent on with the upstream's name as Host") {
  RequestRewrite how{"10.0.0.1"};
  how.host_if_missing = "app";
  const std::string wire = rewrite("GET / HTTP/1.0\r\n\r\n", true, how);
  CHECK(wire.starts_with("GET / HTTP/1.1\r\nHost: app\r\n"));
}

TEST_CASE("an upstream name that is no valid host is never written as Host") {
  RequestRewrite how{"10.0.0.1"};
  how.host_if_missing = "a b\r\nX-Injected: 1";
  const std::string wire = rewrite("GET / HTTP/1.0\r\n\r\n", true, how);
  CHECK(wire.find("Host") == std::string::npos);
  CHECK(wire.find("X-Injected") == std::string::npos);
}

TEST_CASE("hop-by-hop and forwarding fields are recognised whatever the case of their names") {
  const std::string wire = rewrite(
      "GET / HTTP/1.1\r\nhOsT: x\r\nCONNECTION: keep-alive\r\nkeep-ALIVE: 5\r\nTe: trailers\r\n"
      "X-FORWARDED-FOR: 1.2.3.4\r\nx-forwarded-PROTO: https\r\n\r\n",
      true);
  CHECK(has_line(wire, "hOsT: x"));
  CHECK(wire.find("CONNECTION") == std::string::npos);
  CHECK(wire.find("keep-ALIVE") == std::string::npos);
  CHECK(wire.find("Te:") == std::string::npos);
  CHECK(wire.find("x-forwarded-PROTO") == std::string::npos);
  CHECK(has_line(wire, "X-Forwarded-For: 1.2.3.4, 10.0.0.1"));
  CHECK(has_line(wire, "X-Forwarded-Proto: http"));
}

TEST_CASE("Connection cannot remove Host, Content-Length or Transfer-Encoding from a request") {
  // Dropping a framing field while the body still follows would make the backend read the body
  // as a second request (request smuggling).
  const std::string wire = rewrite(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
      "Connection: content-length, host, transfer-encoding, x-private\r\nX-Private: 1\r\n\r\n",
      true);
  CHECK(has_line(wire, "Host: x"));
  CHECK(has_line(wire, "Content-Length: 5"));
  CHECK(wire.find("X-Private") == std::string::npos);
}
