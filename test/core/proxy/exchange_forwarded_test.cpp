// A route's anonymity level through a whole exchange: the request head the backend gets and
// the response head the client gets, in each mode.
#include <catch2/catch.hpp>
#include <string>

#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

namespace sluice::test {
namespace {

HarnessSetup with_level(conf::ForwardedMode mode) {
  HarnessSetup setup;
  setup.forwarded = mode;
  return setup;
}

const std::string kSpoofing =
    "GET /p HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\n"
    "Forwarded: for=1.2.3.4\r\nVia: 1.1 corp\r\nX-Forwarded-Host: evil.test\r\n\r\n";
const std::string kBackendAnswer =
    "HTTP/1.1 200 OK\r\nVia: 1.0 cache\r\nContent-Length: 2\r\n\r\nok";

struct Seen {
  std::string backend;  // the request head as the backend got it
  std::string client;   // the response as the client got it
};

Seen exchange(conf::ForwardedMode mode, const std::string& request) {
  ProxyHarness proxy(with_level(mode));
  MemoryPeer& client = proxy.open_client();
  client.send(request);
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 1);
  Seen seen{proxy.backend(0).received(), ""};
  proxy.backend(0).send(kBackendAnswer);
  proxy.pump();
  seen.client = client.received();
  return seen;
}

}  // namespace

TEST_CASE("a transparent route extends the client's chains and names itself both ways",
          "[exchange][forwarded]") {
  const Seen seen = exchange(conf::ForwardedMode::kTransparent, kSpoofing);
  CHECK(seen.backend ==
        "GET /p HTTP/1.1\r\nHost: app.test\r\nX-Real-IP: 1.2.3.4\r\n"
        "X-Forwarded-For: 1.2.3.4, 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
        "X-Forwarded-Host: app.test\r\n"
        "Forwarded: for=1.2.3.4, for=192.0.2.7;proto=http;host=app.test\r\n"
        "Via: 1.1 corp, 1.1 sluice\r\n\r\n");
  CHECK(seen.client ==
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.0 cache, 1.1 sluice\r\n\r\nok");
}

TEST_CASE("an anonymous route sends Via only, both ways", "[exchange][forwarded]") {
  const Seen seen = exchange(conf::ForwardedMode::kAnonymous, kSpoofing);
  CHECK(seen.backend == "GET /p HTTP/1.1\r\nHost: app.test\r\nVia: 1.1 corp, 1.1 sluice\r\n\r\n");
  CHECK(seen.client ==
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.0 cache, 1.1 sluice\r\n\r\nok");
}

TEST_CASE("an elite route leaves no trace of the client or the proxy", "[exchange][forwarded]") {
  const Seen seen = exchange(conf::ForwardedMode::kElite, kSpoofing);
  CHECK(seen.backend == "GET /p HTTP/1.1\r\nHost: app.test\r\n\r\n");
  // The backend's own Via is the backend's to send; the proxy adds none.
  CHECK(seen.client == kBackendAnswer);
}

TEST_CASE("the proxy's own answers carry no Via", "[exchange][forwarded]") {
  ProxyHarness proxy;
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n");
  proxy.pump();
  CHECK(client.received().starts_with("HTTP/1.1 404 "));
  CHECK(client.received().find("Via") == std::string::npos);
}

}  // namespace sluice::test
