// Specification of backpressure: past 256 KiB waiting for one side, the proxy stops reading
// from the other, and reads again once that side has caught up.
#include <catch2/catch.hpp>
#include <string>

#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

using namespace sluice::test;
using sluice::core::Outcome;

namespace {

constexpr size_t kBlock = 64 * 1024;      // what one read of the memory stream carries
constexpr size_t kBodySize = 6 * kBlock;  // well past the 256 KiB high-water mark
const std::string kBigHead =
    "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kBodySize) + "\r\n\r\n";

// A GET whose backend connection is open and whose client has stopped reading.
MemoryPeer& slow_client_request(ProxyHarness& proxy) {
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/big"));
  proxy.pump();
  client.hold();
  return client;
}

// A POST of kBodySize whose head reached a backend that has stopped taking bytes.
MemoryPeer& upload_to_slow_backend(ProxyHarness& proxy) {
  MemoryPeer& client = proxy.open_client();
  client.send("POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: " +
              std::to_string(kBodySize) + "\r\n\r\n");
  proxy.pump();
  proxy.backend(0).hold();
  return client;
}

}  // namespace

TEST_CASE("a client that does not read stops reads from its backend past 256 KiB", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = slow_client_request(proxy);
  proxy.backend(0).send(kBigHead + std::string(kBlock, 'a'));
  CHECK(proxy.backend(0).reading());
  proxy.backend(0).send(std::string(4 * kBlock, 'b'));
  CHECK_FALSE(proxy.backend(0).reading());
  CHECK(client.queued_bytes() > 256 * 1024);
}

TEST_CASE("backend reads resume once the slow client has taken what waited", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = slow_client_request(proxy);
  proxy.backend(0).send(kBigHead + std::string(kBodySize, 'x'));
  REQUIRE_FALSE(proxy.backend(0).reading());
  client.release();
  CHECK(proxy.backend(0).reading());
  proxy.pump();  // the backend's bytes that waited are read now
  CHECK(client.received() == relayed(kBigHead) + std::string(kBodySize, 'x'));
  CHECK(proxy.record().outcome == Outcome::kOk);
}

TEST_CASE("a client that takes part of the backlog does not resume backend reads", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = slow_client_request(proxy);
  proxy.backend(0).send(kBigHead + std::string(kBodySize, 'x'));
  client.take(kBlock);
  proxy.pump();
  CHECK_FALSE(proxy.backend(0).reading());
}

TEST_CASE("a client that takes no response bytes in time is cut off as client_abort",
          "[exchange]") {
  HarnessSetup setup;
  setup.timeouts.client_send_ms = 20;
  ProxyHarness proxy(setup);
  MemoryPeer& client = slow_client_request(proxy);
  proxy.backend(0).send(kBigHead + std::string(kBodySize, 'x'));
  REQUIRE(proxy.run_until([&] { return client.closed(); }));
  CHECK(proxy.backend(0).closed());
  CHECK(proxy.record().outcome == Outcome::kClientAbort);
}

TEST_CASE("a backend that does not take the request body stops reads from the client",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = upload_to_slow_backend(proxy);
  client.send(std::string(kBlock, 'a'));
  CHECK(client.reading());
  client.send(std::string(4 * kBlock, 'b'));
  CHECK_FALSE(client.reading());
  CHECK(proxy.backend(0).queued_bytes() > 256 * 1024);
}

TEST_CASE("client reads resume once the backend has taken the waiting body", "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = upload_to_slow_backend(proxy);
  client.send(std::string(kBodySize, 'u'));
  REQUIRE_FALSE(client.reading());
  proxy.backend(0).release();
  CHECK(client.reading());
  proxy.pump();
  CHECK_THAT(proxy.backend(0).received(), Catch::EndsWith(std::string(kBodySize, 'u')));
  proxy.backend(0).send(ok_response("stored"));
  CHECK(proxy.record().request_bytes == kBodySize);
}

TEST_CASE("a slow client that keeps taking bytes is not cut off", "[exchange]") {
  HarnessSetup setup;
  // The deadline is real time: long enough that a loaded machine (two cores, a sanitizer build)
  // does not stall the loop past it between two turns.
  setup.timeouts.client_send_ms = 150;
  ProxyHarness proxy(setup);
  MemoryPeer& client = slow_client_request(proxy);
  proxy.backend(0).send(kBigHead + std::string(kBodySize, 'x'));
  // Three deadlines' worth of loop turns, with a few bytes taken between any two of them.
  proxy.run_until(
      [&] {
        client.take(16);
        return false;
      },
      450);
  CHECK_FALSE(client.closed());
  CHECK(proxy.finished().empty());
}

TEST_CASE("a pipelined request waits until the client has taken the answer before it",
          "[exchange]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send(get_request("/one") + get_request("/two"));
  proxy.pump();
  client.hold();
  proxy.backend(0).send(ok_response("1"));
  proxy.pump();
  CHECK(proxy.backend_connections() == 1);  // "/two" waits, unparsed
  CHECK_FALSE(client.reading());
  client.release();
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 2);
  CHECK(proxy.backend(1).received() == forwarded_get("/two"));
  proxy.backend(1).send(ok_response("2"));
  CHECK(client.received() == relayed(ok_response("1")) + relayed(ok_response("2")));
}
