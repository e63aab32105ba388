// X-Request-Id: made, kept or left alone as configured, on the request to the backend, on the
// response and in the exchange's record.
#include <catch2/catch.hpp>
#include <regex>

#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

namespace sluice::test {
namespace {

HarnessSetup with_ids(conf::RequestIdMode mode) {
  HarnessSetup setup;
  setup.request_id = mode;
  return setup;
}

const std::regex kMadeId("X-Request-Id: [0-9a-f]{32}\r\n");

std::string header_value(const std::string& head, const std::string& name) {
  const size_t at = head.find(name + ": ");
  if (at == std::string::npos) return "";
  const size_t start = at + name.size() + 2;
  return head.substr(start, head.find("\r\n", start) - start);
}

}  // namespace

TEST_CASE("a request without an ID gets one, sent to the backend and back to the client",
          "[exchange][request_id]") {
  ProxyHarness proxy(with_ids(conf::RequestIdMode::kKeep));
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
  proxy.pump();
  const std::string sent = proxy.backend(0).received();
  REQUIRE(std::regex_search(sent, kMadeId));
  proxy.backend(0).send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  proxy.pump();
  const std::string id = header_value(sent, "X-Request-Id");
  CHECK(header_value(client.received(), "X-Request-Id") == id);
  REQUIRE(proxy.finished().size() == 1);
  CHECK(proxy.finished()[0].record.request_id == id);
}

TEST_CASE("keep passes the client's own ID through unchanged", "[exchange][request_id]") {
  ProxyHarness proxy(with_ids(conf::RequestIdMode::kKeep));
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: abc-123\r\n\r\n");
  proxy.pump();
  const std::string sent = proxy.backend(0).received();
  CHECK(header_value(sent, "X-Request-Id") == "abc-123");
  CHECK(sent.find("X-Request-Id", sent.find("X-Request-Id") + 1) == std::string::npos);
  proxy.backend(0).send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  proxy.pump();
  CHECK(header_value(client.received(), "X-Request-Id") == "abc-123");
}

TEST_CASE("keep replaces a client ID that would need escaping in a log", "[exchange][request_id]") {
  ProxyHarness proxy(with_ids(conf::RequestIdMode::kKeep));
  proxy.open_client().send("GET / HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: a\"b\r\n\r\n");
  proxy.pump();
  const std::string sent = proxy.backend(0).received();
  CHECK(std::regex_search(sent, kMadeId));
  CHECK(sent.find("a\"b") == std::string::npos);
}

TEST_CASE("generate replaces the client's ID with a new one", "[exchange][request_id]") {
  ProxyHarness proxy(with_ids(conf::RequestIdMode::kGenerate));
  proxy.open_client().send("GET / HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: abc-123\r\n\r\n");
  proxy.pump();
  const std::string sent = proxy.backend(0).received();
  CHECK(std::regex_search(sent, kMadeId));
  CHECK(sent.find("abc-123") == std::string::npos);
}

TEST_CASE("a backend's own X-Request-Id on the response is left as it is",
          "[exchange][request_id]") {
  ProxyHarness proxy(with_ids(conf::RequestIdMode::kKeep));
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
  proxy.pump();
  proxy.backend(0).send("HTTP/1.1 200 OK\r\nX-Request-Id: theirs\r\nContent-Length: 0\r\n\r\n");
  proxy.pump();
  CHECK(header_value(client.received(), "X-Request-Id") == "theirs");
  CHECK(client.received().find("X-Request-Id", client.received().find("X-Request-Id") + 1) ==
        std::string::npos);
}

TEST_CASE("a local reply carries the request's ID", "[exchange][request_id]") {
  ProxyHarness proxy(with_ids(conf::RequestIdMode::kKeep));
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost: nowhere.test\r\nX-Request-Id: lost-1\r\n\r\n");
  proxy.pump();
  CHECK(client.received().find("404") != std::string::npos);
  CHECK(header_value(client.received(), "X-Request-Id") == "lost-1");
}

TEST_CASE("off adds no ID anywhere and passes the client's through", "[exchange][request_id]") {
  ProxyHarness proxy(with_ids(conf::RequestIdMode::kOff));
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
  proxy.pump();
  CHECK(proxy.backend(0).received().find("X-Request-Id") == std::string::npos);
  proxy.backend(0).send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  proxy.pump();
  CHECK(client.received().find("X-Request-Id") == std::string::npos);
  REQUIRE(proxy.finished().size() == 1);
  CHECK(proxy.finished()[0].record.request_id.empty());
}

}  // namespace sluice::test
