// Specification of exchanges that go well: what the backend receives, what the client
// receives, and what the record says, with the client and the backends played in memory.
#include <catch2/catch.hpp>
#include <string>

#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

using namespace sluice::test;
using sluice::core::Outcome;

TEST_CASE("a GET is forwarded with the forwarding fields added", "[exchange]") {
  ProxyHarness proxy;
  proxy.open_client().send(get_request("/hello"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 1);
  CHECK(proxy.backend(0).received() == forwarded_get("/hello"));
}

TEST_CASE("hop-by-hop fields are dropped and X-Forwarded-For extends the client's chain",
          "[exchange]") {
  ProxyHarness proxy;
  proxy.open_client().send(
      "GET /hello HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, X-Trace\r\n"
      "X-Trace: 1\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 198.51.100.1\r\n"
      "X-Forwarded-Proto: https\r\nAccept: */*\r\n\r\n");
  proxy.pump();
  CHECK(proxy.backend(0).received() ==
        "GET /hello HTTP/1.1\r\nHost: app.test\r\nAccept: */*\r\n"
        "X-Forwarded-For: 198.51.100.1, 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
        "X-Forwarded-Host: app.test\r\nForwarded: for=192.0.2.7;proto=http;host=app.test\r\n"
        "Via: 1.1 sluice\r\n\r\n");
}

TEST_CASE("a backend's response is relayed to the client as it came", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  proxy.pump();
  proxy.backend(0).send(ok_response("hello"));
  CHECK(client.received() == relayed(ok_response("hello")));
  CHECK_FALSE(client.closed());
}

TEST_CASE("a relayed response is recorded as ok with its status, attempts and bytes",
          "[exchange]") {
  ProxyHarness proxy;
  proxy.open_client().send(get_request("/hello"));
  proxy.pump();
  proxy.backend(0).send(ok_response("hello"));
  REQUIRE(proxy.finished().size() == 1);
  CHECK(proxy.finished()[0].request == "GET /hello");
  const auto& r = proxy.record();
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.status == 200);
  CHECK(r.attempts == 1);
  CHECK(r.route == 0);
  CHECK(r.upstream == 0);
  CHECK(r.backend == ProxyHarness::backend_index(proxy.backend(0)));
  CHECK(r.request_bytes == 0);
  CHECK(r.response_bytes == relayed(ok_response("hello")).size());
}

TEST_CASE("a request body is forwarded after the head and counted", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Length: 7\r\n\r\na=1&b=2");
  proxy.pump();
  CHECK(proxy.backend(0).received() ==
        "POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Length: 7\r\n" + kForwardingFields +
            "\r\na=1&b=2");
  proxy.backend(0).send(ok_response("done"));
  CHECK(proxy.record().request_bytes == 7);
}

TEST_CASE("a body that arrives before the backend connection is sent once it connects",
          "[exchange]") {
  ProxyHarness proxy;
  proxy.connector().finish_connects_by_hand();
  MemoryPeer& client = proxy.open_client();
  client.send("POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Length: 7\r\n\r\n");
  client.send("a=1&b=2");
  proxy.backend(0).finish_connect();
  CHECK(proxy.backend(0).received() ==
        "POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Length: 7\r\n" + kForwardingFields +
            "\r\na=1&b=2");
}

TEST_CASE("pipelined requests are forwarded one at a time, each after the previous response",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/one") + get_request("/two"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 1);
  CHECK(proxy.backend(0).received() == forwarded_get("/one"));
  proxy.backend(0).send(ok_response("1"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 2);  // round robin: the other backend
  CHECK(proxy.backend(1).received() == forwarded_get("/two"));
  proxy.backend(1).send(ok_response("2"));
  CHECK(client.received() == relayed(ok_response("1")) + relayed(ok_response("2")));
}

TEST_CASE("each pipelined request gets its own record, in order", "[exchange]") {
  ProxyHarness proxy;
  proxy.open_client().send(get_request("/one") + get_request("/two"));
  proxy.pump();
  proxy.backend(0).send(ok_response("1"));
  proxy.pump();
  proxy.backend(1).send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(proxy.finished().size() == 2);
  CHECK(proxy.finished()[0].request == "GET /one");
  CHECK(proxy.record(0).status == 200);
  CHECK(proxy.finished()[1].request == "GET /two");
  CHECK(proxy.record(1).status == 404);
  CHECK(proxy.record(1).outcome == Outcome::kOk);
}

TEST_CASE("a client that half-closes after its request gets the response, then the close",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/hello"));
  client.send_eof();
  proxy.pump();
  proxy.backend(0).send(ok_response("hello"));
  CHECK(
      client.received() ==
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nVia: 1.1 sluice\r\nConnection: close\r\n\r\nhello");
  CHECK(client.closed());
  CHECK(proxy.record().outcome == Outcome::kOk);
}

TEST_CASE("a response delimited by the backend's close ends ok and closes the client",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/stream"));
  proxy.pump();
  proxy.backend(0).send("HTTP/1.1 200 OK\r\n\r\nall of it");
  proxy.backend(0).send_eof();
  CHECK(client.received() ==
        "HTTP/1.1 200 OK\r\nVia: 1.1 sluice\r\nConnection: close\r\n\r\nall of it");
  CHECK(client.closed());
  CHECK(proxy.record().outcome == Outcome::kOk);
}

TEST_CASE("a chunked response is de-chunked for an HTTP/1.0 client", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("GET /hello HTTP/1.0\r\nHost: app.test\r\n\r\n");
  proxy.pump();
  proxy.backend(0).send(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  CHECK(client.received() ==
        "HTTP/1.1 200 OK\r\nVia: 1.1 sluice\r\nConnection: close\r\n\r\nhello");
  CHECK(client.closed());
}

TEST_CASE("the response to a HEAD ends after its head, whatever its Content-Length", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("HEAD /hello HTTP/1.1\r\nHost: app.test\r\n\r\n");
  proxy.pump();
  proxy.backend(0).send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  CHECK(client.received() == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nVia: 1.1 sluice\r\n\r\n");
  CHECK(proxy.record().outcome == Outcome::kOk);
  CHECK(proxy.context().upstreams.idle_count() == 1);
}

TEST_CASE("an early answer to an unfinished upload is relayed, then both connections close",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\nabc");
  proxy.pump();
  proxy.backend(0).send("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n");
  CHECK(client.received() ==
        "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nVia: 1.1 sluice\r\nConnection: "
        "close\r\n\r\n");
  CHECK(proxy.backend(0).closed());
  CHECK(client.shut_down());
  CHECK(proxy.record().status == 413);
}

TEST_CASE("a chunked request body is forwarded with its framing", "[exchange]") {
  ProxyHarness proxy;
  proxy.open_client().send(
      "POST /feed HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n");
  proxy.pump();
  CHECK(proxy.backend(0).received() ==
        "POST /feed HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n" +
            kForwardingFields + "\r\n3\r\nabc\r\n0\r\n\r\n");
}

TEST_CASE("a request and a response that arrive a byte at a time pass whole", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  for (char c : get_request("/hello")) client.send(std::string(1, c));
  proxy.pump();
  CHECK(proxy.backend(0).received() == forwarded_get("/hello"));
  for (char c : ok_response("hello")) proxy.backend(0).send(std::string(1, c));
  CHECK(client.received() == relayed(ok_response("hello")));
  CHECK(proxy.record().outcome == Outcome::kOk);
}
