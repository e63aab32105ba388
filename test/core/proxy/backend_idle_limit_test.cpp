// Specification of how long a pooled connection may idle by the backend's own word: its
// Keep-Alive timeout, less a margin so the proxy retires the connection first.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/http/http_parser.h"
#include "core/proxy/upstream.h"

using namespace sluice::core;

namespace {

uint32_t limit_for(const std::string& fields) {
  HeadPool heads;
  HttpParser parser(HttpParser::Kind::kResponse, heads, {});
  const std::string text = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + fields + "\r\n";
  const ParseStep step = parser.execute(text.data(), text.size());
  REQUIRE(step.event == ParseEvent::kHead);
  return backend_idle_limit_ms(*parser.head());
}

}  // namespace

TEST_CASE("a response without Keep-Alive sets no limit", "[upstream][keepalive]") {
  CHECK(limit_for("") == 0);
}

TEST_CASE("a timeout of N seconds retires the connection a second early", "[upstream][keepalive]") {
  CHECK(limit_for("Keep-Alive: timeout=5\r\n") == 4000);
}

TEST_CASE("a timeout of one second retires the connection after half of it",
          "[upstream][keepalive]") {
  CHECK(limit_for("Keep-Alive: timeout=1\r\n") == 500);
}

TEST_CASE("the timeout is found among other Keep-Alive parameters, in any case",
          "[upstream][keepalive]") {
  CHECK(limit_for("Keep-Alive: max=100, Timeout=3\r\n") == 2000);
}

TEST_CASE("a Keep-Alive without a timeout sets no limit", "[upstream][keepalive]") {
  CHECK(limit_for("Keep-Alive: max=100\r\n") == 0);
  CHECK(limit_for("Keep-Alive: timeout=\r\n") == 0);
}

TEST_CASE("a timeout of zero keeps the connection for no time at all", "[upstream][keepalive]") {
  CHECK(limit_for("Keep-Alive: timeout=0\r\n") == 1);
}

TEST_CASE("an absurd timeout does not overflow", "[upstream][keepalive]") {
  CHECK(limit_for("Keep-Alive: timeout=99999999999999999999\r\n") > 0);
}
