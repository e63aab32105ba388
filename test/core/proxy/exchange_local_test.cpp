// Specification of exchanges the proxy answers itself or cuts short: requests it cannot route
// or parse, heads and bodies that stop arriving, and clients or backends that go away.
#include <catch2/catch.hpp>
#include <string>

#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

using namespace sluice::test;
using sluice::core::Outcome;

TEST_CASE("a request no route matches gets a local 404", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n");
  CHECK(proxy.backend_connections() == 0);
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 404 Not Found\r\n"));
  CHECK(proxy.record().outcome == Outcome::kLocalReply);
  CHECK(proxy.record().status == 404);
  CHECK(proxy.record().attempts == 0);
}

TEST_CASE("after a local 404 the connection takes the next request", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n" + get_request("/hello"));
  proxy.pump();
  CHECK_FALSE(client.closed());
  REQUIRE(proxy.backend_connections() == 1);
  CHECK(proxy.backend(0).received() == forwarded_get("/hello"));
}

TEST_CASE("a malformed request gets 400, recorded as bad_request without a request", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost app.test\r\n\r\n");
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  CHECK_THAT(client.received(), Catch::Contains("\r\nConnection: close\r\n"));
  REQUIRE(proxy.finished().size() == 1);
  CHECK(proxy.finished()[0].request.empty());
  CHECK(proxy.record().outcome == Outcome::kBadRequest);
  CHECK(proxy.record().status == 400);
}

TEST_CASE("after a 400 the proxy half-closes and closes once the client has", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost app.test\r\n\r\n");
  CHECK(client.shut_down());
  CHECK_FALSE(client.closed());
  client.send_eof();
  CHECK(client.closed());
}

TEST_CASE("a request head that does not arrive in time gets 408 as bad_request", "[exchange]") {
  HarnessSetup setup;
  setup.timeouts.client_header_ms = 20;
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost: app");
  REQUIRE(proxy.run_until([&] { return !proxy.finished().empty(); }));
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 408 Request Timeout\r\n"));
  CHECK(proxy.record().outcome == Outcome::kBadRequest);
}

TEST_CASE("a request body that stops arriving gets 408 as bad_request", "[exchange]") {
  HarnessSetup setup;
  setup.timeouts.upstream_response_ms = 20;
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send("POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 10\r\n\r\nabc");
  REQUIRE(proxy.run_until([&] { return !proxy.finished().empty(); }));
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 408 Request Timeout\r\n"));
  CHECK(proxy.backend(0).closed());
  CHECK(proxy.record().outcome == Outcome::kBadRequest);
  CHECK(proxy.record().request_bytes == 3);
}

TEST_CASE("a client that resets mid-response is recorded as client_abort", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/big"));
  proxy.pump();
  proxy.backend(0).send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
  client.fail(UV_ECONNRESET);
  CHECK(client.closed());
  CHECK(proxy.backend(0).closed());  // half a response: the connection cannot be reused
  CHECK(proxy.context().upstreams.idle_count() == 0);
  CHECK(proxy.record().outcome == Outcome::kClientAbort);
  CHECK(proxy.record().status == 200);
}

TEST_CASE("a client that closes in the middle of its request body is recorded as client_abort",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 10\r\n\r\nabc");
  proxy.pump();
  client.send_eof();
  CHECK(client.closed());
  CHECK(proxy.backend(0).closed());
  CHECK(proxy.record().outcome == Outcome::kClientAbort);
}

TEST_CASE("a backend that closes mid-body is recorded as upstream_reset and the client closed",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/big"));
  proxy.pump();
  proxy.backend(0).send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
  proxy.backend(0).send_eof();
  CHECK(client.received() ==
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nVia: 1.1 sluice\r\n\r\nhello");
  CHECK(client.closed());
  CHECK(proxy.record().outcome == Outcome::kUpstreamReset);
  CHECK(proxy.record().status == 200);
}
