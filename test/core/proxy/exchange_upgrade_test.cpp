// Specification of interim responses and protocol switches: 1xx answers relayed before the
// final one, a 101 that turns the exchange into a raw tunnel, and an upgrade the backend
// declines.
#include <catch2/catch.hpp>
#include <string>

#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

using namespace sluice::test;
using sluice::core::Outcome;

namespace {

const std::string kUpgrade =
    "GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
const std::string kSwitching =
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// A client whose upgrade the backend accepted: the exchange is tunnelling.
MemoryPeer& open_tunnel(ProxyHarness& proxy) {
  MemoryPeer& client = proxy.open_client();
  client.send(kUpgrade);
  proxy.pump();
  proxy.backend(0).send(kSwitching);
  return client;
}

}  // namespace

TEST_CASE("a 100 Continue is relayed before the final response", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(
      "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n"
      "Expect: 100-continue\r\n\r\n");
  proxy.pump();
  proxy.backend(0).send(kContinue);
  CHECK(client.take_received() == relayed(kContinue));
  client.send("abc");
  CHECK_THAT(proxy.backend(0).received(), Catch::EndsWith("\r\n\r\nabc"));
  proxy.backend(0).send(ok_response("stored"));
  CHECK(client.take_received() == relayed(ok_response("stored")));
  CHECK(proxy.record().status == 200);
}

TEST_CASE("an HTTP/1.0 client gets the final response without the interim one", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("GET /hello HTTP/1.0\r\nHost: app.test\r\n\r\n");
  proxy.pump();
  proxy.backend(0).send(kContinue + ok_response("hello"));
  CHECK(
      client.received() ==
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nVia: 1.1 sluice\r\nConnection: close\r\n\r\nhello");
}

TEST_CASE("an upgrade request is forwarded with its Upgrade field", "[exchange]") {
  ProxyHarness proxy;
  proxy.open_client().send(kUpgrade);
  proxy.pump();
  CHECK(proxy.backend(0).received() ==
        "GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\n" + kForwardingFields +
            "Connection: upgrade\r\n\r\n");
}

TEST_CASE("an accepted upgrade relays the 101 and tunnels raw bytes both ways", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = open_tunnel(proxy);
  CHECK(client.take_received() ==
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nVia: 1.1 sluice\r\nConnection: "
        "upgrade\r\n\r\n");
  MemoryPeer& backend = proxy.backend(0);
  backend.take_received();
  client.send("ping");
  CHECK(backend.take_received() == "ping");
  backend.send("pong");
  CHECK(client.take_received() == "pong");
}

TEST_CASE("client bytes sent right after an upgrade request reach the backend after the 101",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(kUpgrade + "early");
  proxy.pump();
  CHECK_THAT(proxy.backend(0).received(), !Catch::Contains("early"));
  proxy.backend(0).send(kSwitching);
  CHECK_THAT(proxy.backend(0).received(), Catch::EndsWith("\r\n\r\nearly"));
}

TEST_CASE("each side's close of a tunnel is passed to the other as a half-close", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = open_tunnel(proxy);
  client.send_eof();
  CHECK(proxy.backend(0).shut_down());
  CHECK_FALSE(client.closed());
  proxy.backend(0).send("bye");
  CHECK_THAT(client.received(), Catch::EndsWith("bye"));
}

TEST_CASE("a tunnel ends as tunnel_closed once both sides have closed", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = open_tunnel(proxy);
  client.send("hi");
  proxy.backend(0).send_eof();
  CHECK(client.shut_down());
  CHECK(proxy.finished().empty());
  client.send_eof();
  CHECK(client.closed());
  CHECK(proxy.backend(0).closed());
  CHECK(proxy.record().outcome == Outcome::kTunnelClosed);
  CHECK(proxy.record().status == 101);
  CHECK(proxy.record().request_bytes == 2);
}

TEST_CASE("a declined upgrade leaves the connection parsing HTTP", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(kUpgrade);
  proxy.pump();
  proxy.backend(0).send(ok_response("no"));
  CHECK(client.take_received() == relayed(ok_response("no")));
  client.send(get_request("/next"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 2);
  CHECK(proxy.backend(1).received() == forwarded_get("/next"));
  proxy.backend(1).send(ok_response("yes"));
  CHECK(client.take_received() == relayed(ok_response("yes")));
  CHECK(proxy.finished().size() == 2);
}

TEST_CASE("a 101 to a request that asked for no upgrade gets 502 as bad_response", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.pump();
  proxy.backend(0).send(kSwitching);
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(proxy.record().outcome == Outcome::kBadResponse);
}

TEST_CASE("a request sent right behind a declined upgrade is answered next", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(kUpgrade + get_request("/next"));
  proxy.pump();
  proxy.backend(0).send(ok_response("no"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 2);
  CHECK(proxy.backend(1).received() == forwarded_get("/next"));
}

TEST_CASE("a client that half-closed before the 101 ends the tunnel when the backend closes",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(kUpgrade);
  client.send_eof();
  proxy.pump();
  proxy.backend(0).send(kSwitching);
  proxy.pump();
  CHECK(proxy.backend(0).shut_down());
  proxy.backend(0).send_eof();
  CHECK(client.closed());
  CHECK(proxy.record().outcome == Outcome::kTunnelClosed);
}

TEST_CASE("a tunnel client that does not read stops reads from the backend", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = open_tunnel(proxy);
  client.hold();
  proxy.backend(0).send(std::string(5 * 64 * 1024, 't'));
  CHECK_FALSE(proxy.backend(0).reading());
  client.release();
  CHECK(proxy.backend(0).reading());
}

TEST_CASE("a tunnel backend that does not read stops reads from the client", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = open_tunnel(proxy);
  proxy.backend(0).hold();
  client.send(std::string(5 * 64 * 1024, 't'));
  CHECK_FALSE(client.reading());
  proxy.backend(0).release();
  CHECK(client.reading());
}

TEST_CASE("bytes the backend sends right behind its 101 reach the client", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(kUpgrade);
  proxy.pump();
  proxy.backend(0).send(kSwitching + "hello");
  CHECK_THAT(client.received(), Catch::EndsWith("\r\n\r\nhello"));
}

// The request head is dropped once a response head arrives, a 1xx one included; a retry after
// an interim response then has no head to send.
TEST_CASE("a GET whose backend closes after an interim response is resent whole", "[exchange]") {
  HarnessSetup setup;
  setup.timeouts.upstream_response_ms = 20;  // what the resent request waits for, if it is empty
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hints"));
  proxy.pump();
  proxy.backend(0).send("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
  proxy.backend(0).send_eof();
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 2);
  CHECK(proxy.backend(1).received() == forwarded_get("/hints"));
}
