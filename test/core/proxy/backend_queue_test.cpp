// Specification of max_connections per backend: requests in flight to a backend stay within its
// (worker's share of the) limit; the next ones go to a backend with room, else wait in their
// upstream's queue, first come first served, until a request finishes or queue_timeout_ms
// passes (503); a full queue answers 503 at once; a client that goes away leaves the queue.
#include <catch2/catch.hpp>
#include <string>

#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

using namespace sluice::test;
using sluice::core::Outcome;

namespace {

// One backend (kBackendA) that takes `limit` requests at once.
HarnessSetup one_backend(uint32_t limit) {
  HarnessSetup setup;
  setup.backends = {kBackendA};
  setup.max_connections = limit;
  return setup;
}

bool answered_503(const MemoryPeer& client) {
  return client.received().starts_with("HTTP/1.1 503 Service Unavailable\r\n");
}

// "/3" for 3 (appended: GCC 12 warns falsely about `"/" + std::string`).
std::string path(int n) {
  std::string out = "/";
  out += std::to_string(n);
  return out;
}

size_t waiting(ProxyHarness& proxy) {
  return proxy.context().backend_slots.waiting("app");
}

}  // namespace

TEST_CASE("a backend at max_connections gets no further request; the next one waits",
          "[exchange][limits]") {
  ProxyHarness proxy(one_backend(1));
  MemoryPeer& first = proxy.open_client();
  MemoryPeer& second = proxy.open_client();
  first.send(get_request("/one"));
  second.send(get_request("/two"));
  proxy.run_for(20);
  REQUIRE(proxy.backend_connections() == 1);
  CHECK(proxy.backend(0).received() == forwarded_get("/one"));
  CHECK(second.received().empty());
  CHECK(waiting(proxy) == 1);
}

TEST_CASE("a waiting request goes as soon as the one in flight finishes", "[exchange][limits]") {
  ProxyHarness proxy(one_backend(1));
  MemoryPeer& first = proxy.open_client();
  MemoryPeer& second = proxy.open_client();
  first.send(get_request("/one"));
  second.send(get_request("/two"));
  proxy.pump();
  proxy.backend(0).send(ok_response("1"));
  CHECK(first.received() == relayed(ok_response("1")));
  // It takes the connection the first request left in the pool.
  REQUIRE(proxy.run_until([&] {
    return proxy.backend(0).received().size() > 0 &&
           proxy.backend(0).received().ends_with(forwarded_get("/two"));
  }));
  CHECK(proxy.backend_connections() == 1);
  CHECK(waiting(proxy) == 0);
  proxy.backend(0).send(ok_response("2"));
  CHECK(second.received() == relayed(ok_response("2")));
  CHECK(proxy.record(1).outcome == Outcome::kOk);
  CHECK(proxy.record(1).attempts == 1);
}

TEST_CASE("max_connections 2 holds two requests in flight and the rest go in arrival order",
          "[exchange][limits]") {
  ProxyHarness proxy(one_backend(2));
  std::vector<MemoryPeer*> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(&proxy.open_client());
  for (int i = 0; i < 5; ++i) clients[i]->send(get_request(path(i)));
  proxy.run_for(10);
  REQUIRE(proxy.backend_connections() == 2);
  CHECK(waiting(proxy) == 3);
  // Each answer lets exactly one more request through, in the order they came.
  for (int served = 0; served < 5; ++served) {
    MemoryPeer* busy = nullptr;
    for (size_t c = 0; c < proxy.backend_connections(); ++c) {
      const std::string& got = proxy.backend(c).received();
      if (got.ends_with(forwarded_get(path(served)))) busy = &proxy.backend(c);
    }
    REQUIRE(busy != nullptr);
    busy->send(ok_response(std::to_string(served)));
    CHECK(clients[served]->received() == relayed(ok_response(std::to_string(served))));
    if (served + 2 < 5) {
      const std::string next = forwarded_get(path(served + 2));
      REQUIRE(proxy.run_until([&] { return busy->received().ends_with(next); }));
    }
    CHECK(proxy.backend_connections() == 2);  // never a third connection
  }
  CHECK(waiting(proxy) == 0);
}

TEST_CASE("a request that waits longer than queue_timeout_ms gets 503 queue_timeout",
          "[exchange][limits]") {
  HarnessSetup setup = one_backend(1);
  setup.queue_timeout_ms = 60;
  ProxyHarness proxy(setup);
  proxy.open_client().send(get_request("/one"));
  MemoryPeer& second = proxy.open_client();
  second.send(get_request("/two"));
  REQUIRE(proxy.run_until([&] { return answered_503(second); }));
  CHECK_THAT(second.received(), Catch::Contains("Retry-After: 1\r\n"));
  CHECK_THAT(second.received(), Catch::Contains("within queue_timeout_ms"));
  REQUIRE(proxy.finished().size() == 1);
  const auto& record = proxy.record(0);
  CHECK(record.outcome == Outcome::kQueueTimeout);
  CHECK(record.status == 503);
  CHECK(record.local);
  CHECK(record.attempts == 0);
  CHECK(record.end_ms - record.start_ms >= 60);
  CHECK(record.end_ms - record.start_ms < 1000);
  CHECK(proxy.backend(0).received() == forwarded_get("/one"));  // the backend never saw it
  CHECK(waiting(proxy) == 0);
}

TEST_CASE("with the queue full a request gets 503 queue_full at once", "[exchange][limits]") {
  HarnessSetup setup = one_backend(1);
  setup.queue_max = 1;
  ProxyHarness proxy(setup);
  proxy.open_client().send(get_request("/one"));
  MemoryPeer& second = proxy.open_client();
  MemoryPeer& third = proxy.open_client();
  second.send(get_request("/two"));
  third.send(get_request("/three"));
  proxy.pump();
  CHECK(second.received().empty());
  REQUIRE(answered_503(third));
  CHECK_THAT(third.received(), Catch::Contains("queue is full"));
  CHECK(proxy.record(0).outcome == Outcome::kQueueFull);
  CHECK(proxy.record(0).attempts == 0);
  CHECK(waiting(proxy) == 1);
}

TEST_CASE("queue_max 0 answers 503 at once while every backend is full", "[exchange][limits]") {
  HarnessSetup setup = one_backend(1);
  setup.queue_max = 0;
  ProxyHarness proxy(setup);
  proxy.open_client().send(get_request("/one"));
  MemoryPeer& second = proxy.open_client();
  second.send(get_request("/two"));
  proxy.pump();
  CHECK(answered_503(second));
  CHECK(proxy.record(0).outcome == Outcome::kQueueFull);
}

TEST_CASE("a client that resets while its request waits leaves the queue, never to be sent",
          "[exchange][limits]") {
  ProxyHarness proxy(one_backend(1));
  MemoryPeer& first = proxy.open_client();
  MemoryPeer& second = proxy.open_client();
  MemoryPeer& third = proxy.open_client();
  first.send(get_request("/one"));
  second.send(get_request("/two"));
  third.send(get_request("/three"));
  proxy.pump();
  REQUIRE(waiting(proxy) == 2);
  second.fail();
  proxy.pump();
  CHECK(waiting(proxy) == 1);
  REQUIRE(proxy.finished().size() == 1);
  CHECK(proxy.record(0).outcome == Outcome::kClientAbort);
  proxy.backend(0).send(ok_response("1"));
  // The slot goes to the one still waiting; the gone one's request never leaves.
  REQUIRE(proxy.run_until(
      [&] { return proxy.backend(0).received().ends_with(forwarded_get("/three")); }));
  CHECK(proxy.backend(0).received() == forwarded_get("/one") + forwarded_get("/three"));
  proxy.backend(0).send(ok_response("3"));
  CHECK(third.received() == relayed(ok_response("3")));
}

TEST_CASE("a client that closes in the middle of its request body leaves the queue",
          "[exchange][limits]") {
  ProxyHarness proxy(one_backend(1));
  proxy.open_client().send(get_request("/one"));
  MemoryPeer& second = proxy.open_client();
  second.send("POST /two HTTP/1.1\r\nHost: app.test\r\nContent-Length: 10\r\n\r\nabc");
  proxy.pump();
  REQUIRE(waiting(proxy) == 1);
  second.send_eof();
  proxy.pump();
  CHECK(waiting(proxy) == 0);
  CHECK(second.closed());
  proxy.backend(0).send(ok_response("1"));
  proxy.run_for(10);
  CHECK(proxy.backend(0).received() == forwarded_get("/one"));
}

TEST_CASE("a request body that arrives while the request waits follows its head",
          "[exchange][limits]") {
  ProxyHarness proxy(one_backend(1));
  proxy.open_client().send(get_request("/one"));
  MemoryPeer& second = proxy.open_client();
  second.send("POST /two HTTP/1.1\r\nHost: app.test\r\nContent-Length: 6\r\n\r\nabc");
  proxy.pump();
  second.send("def");
  proxy.pump();
  proxy.backend(0).send(ok_response("1"));
  REQUIRE(proxy.run_until([&] { return proxy.backend(0).received().ends_with("abcdef"); }));
  CHECK_THAT(proxy.backend(0).received(), Catch::Contains("POST /two HTTP/1.1\r\n"));
  proxy.backend(0).send(ok_response("2"));
  CHECK(second.received() == relayed(ok_response("2")));
}

TEST_CASE("a full backend is passed over for one with room", "[exchange][limits]") {
  HarnessSetup setup;  // round-robin over A (max_connections 1) and B (no limit)
  setup.backend_limits = {1, 0};
  ProxyHarness proxy(setup);
  for (int i = 0; i < 4; ++i) proxy.open_client().send(get_request(path(i)));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 4);
  int on_a = 0;
  for (size_t c = 0; c < 4; ++c) on_a += ProxyHarness::backend_index(proxy.backend(c)) == 0;
  CHECK(on_a == 1);  // round-robin alone would have sent A two of the four
  CHECK(waiting(proxy) == 0);
}

TEST_CASE("an upstream's max_connections applies to each backend, and a backend's own wins",
          "[exchange][limits]") {
  HarnessSetup setup;
  setup.max_connections = 1;
  setup.backend_limits = {2};  // A: 2 of its own; B: the upstream's 1
  ProxyHarness proxy(setup);
  for (int i = 0; i < 4; ++i) proxy.open_client().send(get_request(path(i)));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 3);
  int on_a = 0;
  for (size_t c = 0; c < 3; ++c) on_a += ProxyHarness::backend_index(proxy.backend(c)) == 0;
  CHECK(on_a == 2);
  CHECK(waiting(proxy) == 1);
}

TEST_CASE("a worker takes its share of max_connections, rounded up", "[exchange][limits]") {
  ProxyHarness proxy(one_backend(3));
  proxy.context().worker_count = 2;  // 3 over 2 workers: 2 each
  for (int i = 0; i < 4; ++i) proxy.open_client().send(get_request(path(i)));
  proxy.pump();
  CHECK(proxy.backend_connections() == 2);
  CHECK(waiting(proxy) == 2);
}

TEST_CASE("a request already waiting goes before one of a newer config generation",
          "[exchange][limits]") {
  ProxyHarness proxy(one_backend(1));
  proxy.open_client().send(get_request("/one"));
  MemoryPeer& second = proxy.open_client();
  second.send(get_request("/two"));
  proxy.pump();
  proxy.reload();
  MemoryPeer& third = proxy.open_client();
  third.send(get_request("/three"));
  proxy.pump();
  CHECK(waiting(proxy) == 2);  // the backend's slot carried over: still full
  proxy.backend(0).send(ok_response("1"));
  REQUIRE(proxy.run_until(
      [&] { return proxy.backend(0).received().ends_with(forwarded_get("/two")); }));
  proxy.backend(0).send(ok_response("2"));
  CHECK(second.received() == relayed(ok_response("2")));
  REQUIRE(proxy.run_until(
      [&] { return proxy.backend(0).received().ends_with(forwarded_get("/three")); }));
  proxy.backend(0).send(ok_response("3"));
  CHECK(third.received() == relayed(ok_response("3")));
  CHECK(proxy.backend_connections() == 1);
}

TEST_CASE("a local answer gives the backend's slot back at once", "[exchange][limits]") {
  HarnessSetup setup = one_backend(1);
  setup.retries = 0;
  ProxyHarness proxy(setup);
  proxy.connector().finish_connects_by_hand();
  MemoryPeer& first = proxy.open_client();
  MemoryPeer& second = proxy.open_client();
  first.send(get_request("/one"));
  second.send(get_request("/two"));
  proxy.pump();
  REQUIRE(waiting(proxy) == 1);
  proxy.backend(0).finish_connect(UV_ECONNREFUSED);  // the first gets 502
  CHECK_THAT(first.received(), Catch::StartsWith("HTTP/1.1 502 "));
  REQUIRE(proxy.run_until([&] { return proxy.backend_connections() == 2; }));
  proxy.backend(1).finish_connect();
  CHECK(proxy.backend(1).received() == forwarded_get("/two"));
}

TEST_CASE("requests waiting for a backend that goes down get the no-healthy-backend 503 soon",
          "[exchange][limits]") {
  ProxyHarness proxy(one_backend(1));
  proxy.open_client().send(get_request("/one"));
  MemoryPeer& second = proxy.open_client();
  second.send(get_request("/two"));
  proxy.pump();
  REQUIRE(waiting(proxy) == 1);
  proxy.backend_state(0).up = false;  // its place never frees: the first request hangs on
  REQUIRE(proxy.run_until([&] { return answered_503(second); }, 1000));
  CHECK_THAT(second.received(), Catch::Contains("no healthy backend in upstream 'app'"));
  CHECK(proxy.record(0).outcome == Outcome::kLocalReply);
  CHECK(proxy.record(0).end_ms - proxy.record(0).start_ms < 500);
  CHECK(waiting(proxy) == 0);
}

TEST_CASE("a new request while every backend is down is answered at once, not queued",
          "[exchange][limits]") {
  ProxyHarness proxy(one_backend(1));
  proxy.open_client().send(get_request("/one"));
  proxy.open_client().send(get_request("/two"));
  proxy.pump();
  proxy.backend_state(0).up = false;
  MemoryPeer& third = proxy.open_client();
  third.send(get_request("/three"));
  proxy.pump();
  CHECK(answered_503(third));
}
