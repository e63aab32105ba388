// Specification of what outlives one exchange: backend connections kept for the next request
// (or not), idle clients, config reloads and the worker's drain.
#include <catch2/catch.hpp>
#include <string>

#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

using namespace sluice::test;
using sluice::core::Outcome;

TEST_CASE("a connection that ended cleanly carries the next request to its backend", "[exchange]") {
  HarnessSetup setup;
  setup.balance = "hash";  // every request of this client to one backend
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/one"));
  proxy.pump();
  proxy.backend(0).send(ok_response("1"));
  client.send(get_request("/two"));
  proxy.pump();
  CHECK(proxy.backend_connections() == 1);
  CHECK(proxy.backend(0).received() == forwarded_get("/one") + forwarded_get("/two"));
}

TEST_CASE("a response with Connection: close does not return its connection to the pool",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.pump();
  proxy.backend(0).send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
  CHECK(client.received() == relayed(ok_response("hi")));  // the client's connection goes on
  CHECK(proxy.backend(0).closed());
  CHECK(proxy.context().upstreams.idle_count() == 0);
}

TEST_CASE("a pooled connection that its backend closes leaves the pool", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.pump();
  proxy.backend(0).send(ok_response("hi"));
  REQUIRE(proxy.context().upstreams.idle_count() == 1);
  proxy.backend(0).send_eof();
  CHECK(proxy.backend(0).closed());
  CHECK(proxy.context().upstreams.idle_count() == 0);
}

TEST_CASE("a pooled connection that sends unasked bytes is closed", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.pump();
  proxy.backend(0).send(ok_response("hi"));
  proxy.backend(0).send("HTTP/1.1 200 OK\r\n");
  CHECK(proxy.backend(0).closed());
  CHECK(proxy.context().upstreams.idle_count() == 0);
}

TEST_CASE("an idle keep-alive client is closed after client_idle_ms, with no record",
          "[exchange]") {
  HarnessSetup setup;
  setup.timeouts.client_idle_ms = 20;
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.pump();
  proxy.backend(0).send(ok_response("hi"));
  REQUIRE(proxy.run_until([&] { return client.closed(); }));
  CHECK(proxy.finished().size() == 1);
}

TEST_CASE("an exchange that began before a reload ends on its own generation", "[exchange]") {
  HarnessSetup setup;
  setup.balance = "hash";  // every request of this client to one backend
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/one"));
  proxy.pump();
  proxy.reload();
  REQUIRE(proxy.context().generations.size() == 2);  // the old one is still in use
  proxy.backend(0).send(ok_response("1"));
  CHECK(proxy.context().generations.size() == 1);
  client.send(get_request("/two"));
  proxy.pump();
  CHECK(proxy.backend_connections() == 1);  // pooled connections outlive their generation
  proxy.backend(0).send(ok_response("2"));
  CHECK(client.received() == relayed(ok_response("1")) + relayed(ok_response("2")));
  CHECK(proxy.finished().size() == 2);
}

TEST_CASE("a draining worker finishes the exchange in flight, then closes its connection",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.pump();
  proxy.drain();
  proxy.backend(0).send(ok_response("hi"));
  CHECK(client.received() ==
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.1 sluice\r\nConnection: close\r\n\r\nhi");
  CHECK(client.closed());
  CHECK(proxy.backend(0).closed());
  CHECK(proxy.record().outcome == Outcome::kOk);
}

TEST_CASE("a draining worker closes an idle client at once", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  proxy.drain();
  CHECK(client.closed());
  CHECK(proxy.finished().empty());
}

TEST_CASE("a connection that answered a HEAD frames the next response by its length",
          "[exchange]") {
  HarnessSetup setup;
  setup.balance = "hash";  // every request of this client to one backend
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send("HEAD /hello HTTP/1.1\r\nHost: app.test\r\n\r\n");
  proxy.pump();
  proxy.backend(0).send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  client.take_received();
  client.send(get_request("/hello"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 1);
  proxy.backend(0).send(ok_response("hello"));
  CHECK(client.take_received() == relayed(ok_response("hello")));
}
