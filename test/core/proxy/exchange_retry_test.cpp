// Specification of failed upstream attempts: which are tried again and where, and what the
// client and the record get when an attempt is not.
#include <catch2/catch.hpp>
#include <string>

#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

using namespace sluice::test;
using sluice::core::Outcome;

namespace {

const std::string kPost = "POST /order HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nabc";

// A GET of /one answered on a connection that then goes back to the pool.
void pool_one_connection(ProxyHarness& proxy, MemoryPeer& client) {
  client.send(get_request("/one"));
  proxy.pump();
  proxy.backend(0).send(ok_response("1"));
  REQUIRE(proxy.context().upstreams.idle_count() == 1);
}

}  // namespace

TEST_CASE("a refused connect moves to the other backend", "[exchange]") {
  ProxyHarness proxy;
  proxy.connector().finish_connects_by_hand();
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.backend(0).finish_connect(UV_ECONNREFUSED);
  REQUIRE(proxy.backend_connections() == 2);
  CHECK(proxy.backend(1).address() != proxy.backend(0).address());
  proxy.backend(1).finish_connect();
  CHECK(proxy.backend(1).received() == forwarded_get("/hello"));
  proxy.backend(1).send(ok_response("hello"));
  CHECK(client.received() == relayed(ok_response("hello")));
}

TEST_CASE("a request that moved to another backend records both attempts", "[exchange]") {
  ProxyHarness proxy;
  proxy.connector().finish_connects_by_hand();
  proxy.open_client().send(get_request("/hello"));
  proxy.backend(0).finish_connect(UV_ECONNREFUSED);
  proxy.backend(1).finish_connect();
  proxy.backend(1).send(ok_response("hello"));
  CHECK(proxy.record().outcome == Outcome::kOk);
  CHECK(proxy.record().attempts == 2);
  CHECK(proxy.record().backend == ProxyHarness::backend_index(proxy.backend(1)));
}

TEST_CASE("a refused connect with retries 0 answers 502 as upstream_reset", "[exchange]") {
  HarnessSetup setup;
  setup.retries = 0;
  ProxyHarness proxy(setup);
  proxy.connector().finish_connects_by_hand();
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.backend(0).finish_connect(UV_ECONNREFUSED);
  CHECK(proxy.backend_connections() == 1);
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(proxy.record().outcome == Outcome::kUpstreamReset);
  CHECK(proxy.record().status == 502);
  CHECK(proxy.record().attempts == 1);
}

TEST_CASE("a connect that fails at once moves to the other backend", "[exchange]") {
  ProxyHarness proxy;
  proxy.connector().fail_next_connect(UV_EMFILE);
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 1);  // the failed connect made no stream
  proxy.backend(0).send(ok_response("hello"));
  CHECK(client.received() == relayed(ok_response("hello")));
  CHECK(proxy.record().attempts == 2);
}

TEST_CASE("a GET on a pooled connection that closes before answering is resent on a fresh one",
          "[exchange]") {
  HarnessSetup setup;
  setup.balance = "hash";  // every request of this client to one backend
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  pool_one_connection(proxy, client);
  client.send(get_request("/two"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 1);  // the pooled connection carried it
  proxy.backend(0).send_eof();
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 2);
  CHECK(proxy.backend(1).address() == proxy.backend(0).address());
  CHECK(proxy.backend(1).received() == forwarded_get("/two"));
  proxy.backend(1).send(ok_response("2"));
  CHECK(client.received() == relayed(ok_response("1")) + relayed(ok_response("2")));
  CHECK(proxy.record(1).outcome == Outcome::kOk);
}

TEST_CASE("a GET on a fresh connection that closes before answering moves to the other backend",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.pump();
  proxy.backend(0).send_eof();
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 2);
  CHECK(proxy.backend(1).address() != proxy.backend(0).address());
  CHECK(proxy.backend(1).received() == forwarded_get("/hello"));
}

TEST_CASE("a POST whose connection closes before any response byte gets 502, not resent",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(kPost);
  proxy.pump();
  proxy.backend(0).send_eof();
  proxy.pump();
  CHECK(proxy.backend_connections() == 1);
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(proxy.record().outcome == Outcome::kUpstreamReset);
  CHECK(proxy.record().status == 502);
}

TEST_CASE("a backend reset before any response byte of a POST gets 502", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(kPost);
  proxy.pump();
  proxy.backend(0).fail(UV_ECONNRESET);
  CHECK(proxy.backend_connections() == 1);
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(proxy.record().outcome == Outcome::kUpstreamReset);
}

TEST_CASE("a backend that sends an invalid response gets 502 as bad_response", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.pump();
  proxy.backend(0).send("SPDY/3 200 OK\r\n\r\n");
  CHECK(proxy.backend_connections() == 1);  // an answer, if a wrong one: never resent
  CHECK(proxy.backend(0).closed());
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(proxy.record().outcome == Outcome::kBadResponse);
  CHECK(proxy.record().status == 502);
}

TEST_CASE("a backend that does not answer in time gets 504 as upstream_timeout", "[exchange]") {
  HarnessSetup setup;
  setup.timeouts.upstream_response_ms = 20;
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/slow"));
  REQUIRE(proxy.run_until([&] { return !proxy.finished().empty(); }));
  CHECK(proxy.backend_connections() == 1);  // the backend may be acting on it: never resent
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 504 Gateway Timeout\r\n"));
  CHECK(proxy.record().outcome == Outcome::kUpstreamTimeout);
  CHECK(proxy.record().status == 504);
}

TEST_CASE("a connect that times out moves to the other backend", "[exchange]") {
  HarnessSetup setup;
  setup.timeouts.upstream_connect_ms = 20;
  ProxyHarness proxy(setup);
  proxy.connector().finish_connects_by_hand();
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  REQUIRE(proxy.run_until([&] { return proxy.backend_connections() == 2; }));
  CHECK(proxy.backend(0).closed());
  proxy.backend(1).finish_connect();
  proxy.backend(1).send(ok_response("hello"));
  CHECK(client.received() == relayed(ok_response("hello")));
}

TEST_CASE("with no usable backend the client gets 503 and a Retry-After", "[exchange]") {
  ProxyHarness proxy;
  proxy.backend_state(0).up = false;
  proxy.backend_state(1).up = false;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  CHECK(proxy.backend_connections() == 0);
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  CHECK_THAT(client.received(), Catch::Contains("\r\nRetry-After: 1\r\n"));
  CHECK(proxy.record().outcome == Outcome::kLocalReply);
  CHECK(proxy.record().status == 503);
}

TEST_CASE("a POST whose connect was refused goes whole to the other backend", "[exchange]") {
  ProxyHarness proxy;
  proxy.connector().finish_connects_by_hand();
  MemoryPeer& client = proxy.open_client();
  client.send(kPost);
  proxy.backend(0).finish_connect(UV_ECONNREFUSED);
  proxy.backend(1).finish_connect();
  CHECK(proxy.backend(1).received() ==
        "POST /order HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n" + kForwardingFields +
            "\r\nabc");
}

TEST_CASE("a backend that stalls mid-body is cut off as upstream_timeout", "[exchange]") {
  HarnessSetup setup;
  setup.timeouts.upstream_response_ms = 20;
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/big"));
  proxy.pump();
  proxy.backend(0).send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
  REQUIRE(proxy.run_until([&] { return client.closed(); }));
  CHECK(client.received() ==
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nVia: 1.1 sluice\r\n\r\nhello");
  CHECK(proxy.backend(0).closed());
  CHECK(proxy.record().outcome == Outcome::kUpstreamTimeout);
}
