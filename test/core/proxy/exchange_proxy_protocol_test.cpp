// Specification of PROXY headers toward backends ("send_proxy_protocol"): every new backend
// connection starts with a header naming the client and the address it connected to, and a
// connection that named one client is reused only for that client.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <string>

#include "test/core/io/endpoint.h"
#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

using namespace sluice::test;
using sluice::conf::ProxyProtocolVersion;

namespace {

// The request as forwarded for a client at `ip`.
std::string forwarded_for(const std::string& ip, std::string_view target) {
  const std::string node = ip.find(':') == std::string::npos ? ip : "\"[" + ip + "]\"";
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: " + ip +
         "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app.test\r\nForwarded: for=" + node +
         ";proto=http;host=app.test\r\nVia: 1.1 sluice\r\n\r\n";
}

HarnessSetup one_backend(ProxyProtocolVersion version) {
  HarnessSetup setup;
  setup.backends = {kBackendA};
  setup.send_proxy_protocol = version;
  return setup;
}

const sockaddr_storage kListener = endpoint("10.0.0.1", 443);

}  // namespace

TEST_CASE("send_proxy_protocol v1: a new backend connection opens with the client's header",
          "[exchange][proxy_protocol]") {
  ProxyHarness proxy(one_backend(ProxyProtocolVersion::kV1));
  const sockaddr_storage from = endpoint("203.0.113.7", 40000);
  MemoryPeer& client = proxy.open_client(from, &kListener);
  client.send(get_request("/one"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 1);
  CHECK(proxy.backend(0).received() ==
        "PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\r\n" + forwarded_for("203.0.113.7", "/one"));
  // The client's next request goes on the same connection: no second header.
  proxy.backend(0).send(ok_response("1"));
  client.send(get_request("/two"));
  proxy.pump();
  CHECK(proxy.backend_connections() == 1);
  CHECK(proxy.backend(0).received() == "PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\r\n" +
                                           forwarded_for("203.0.113.7", "/one") +
                                           forwarded_for("203.0.113.7", "/two"));
}

TEST_CASE("send_proxy_protocol v2: the header is binary, IPv6 included",
          "[exchange][proxy_protocol]") {
  ProxyHarness proxy(one_backend(ProxyProtocolVersion::kV2));
  const sockaddr_storage from = endpoint("2001:db8::7", 1234);
  const sockaddr_storage to = endpoint("2001:db8::1", 443);
  MemoryPeer& client = proxy.open_client(from, &to);
  client.send(get_request("/"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 1);
  const std::string header = std::string("\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24", 16) +
                             std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07", 16) +
                             std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16) +
                             std::string("\x04\xd2\x01\xbb", 4);
  CHECK(proxy.backend(0).received() == header + forwarded_for("2001:db8::7", "/"));
}

TEST_CASE("a backend connection that named one client is never lent to another",
          "[exchange][proxy_protocol]") {
  ProxyHarness proxy(one_backend(ProxyProtocolVersion::kV1));
  MemoryPeer& alice = proxy.open_client(endpoint("203.0.113.7", 40000), &kListener);
  alice.send(get_request("/a"));
  proxy.pump();
  proxy.backend(0).send(ok_response("a"));
  REQUIRE(proxy.context().upstreams.idle_count() == 1);  // parked, for alice only

  MemoryPeer& bob = proxy.open_client(endpoint("198.51.100.9", 50000), &kListener);
  bob.send(get_request("/b"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 2);
  CHECK(proxy.backend(1).received() ==
        "PROXY TCP4 198.51.100.9 10.0.0.1 50000 443\r\n" + forwarded_for("198.51.100.9", "/b"));
  proxy.backend(1).send(ok_response("b"));
  CHECK(proxy.context().upstreams.idle_count() == 2);

  // Alice again, on a new connection of hers: her parked backend connection serves her.
  MemoryPeer& alice_again = proxy.open_client(endpoint("203.0.113.7", 40001), &kListener);
  alice_again.send(get_request("/a2"));
  proxy.pump();
  CHECK(proxy.backend_connections() == 2);
  CHECK(proxy.backend(0).take_received().ends_with(forwarded_for("203.0.113.7", "/a2")));

  // The same client address through another listener address names another destination.
  const sockaddr_storage other_listener = endpoint("10.0.0.2", 80);
  MemoryPeer& alice_elsewhere = proxy.open_client(endpoint("203.0.113.7", 40002), &other_listener);
  alice_elsewhere.send(get_request("/a3"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 3);
  CHECK(proxy.backend(2).received().starts_with("PROXY TCP4 203.0.113.7 10.0.0.2 40002 80\r\n"));
}

TEST_CASE("without send_proxy_protocol, clients share pooled backend connections",
          "[exchange][proxy_protocol]") {
  ProxyHarness proxy(one_backend(ProxyProtocolVersion::kNone));
  MemoryPeer& alice = proxy.open_client(endpoint("203.0.113.7", 40000), &kListener);
  alice.send(get_request("/a"));
  proxy.pump();
  proxy.backend(0).send(ok_response("a"));
  MemoryPeer& bob = proxy.open_client(endpoint("198.51.100.9", 50000), &kListener);
  bob.send(get_request("/b"));
  proxy.pump();
  CHECK(proxy.backend_connections() == 1);
  CHECK(proxy.backend(0).received() ==
        forwarded_for("203.0.113.7", "/a") + forwarded_for("198.51.100.9", "/b"));
}

TEST_CASE("a client whose endpoints cannot be told gets a header that names none",
          "[exchange][proxy_protocol]") {
  for (const auto version : {ProxyProtocolVersion::kV1, ProxyProtocolVersion::kV2}) {
    ProxyHarness proxy(one_backend(version));
    MemoryPeer& client = proxy.open_client();  // a MemoryStream has no local address
    client.send(get_request("/"));
    proxy.pump();
    REQUIRE(proxy.backend_connections() == 1);
    const std::string none = version == ProxyProtocolVersion::kV1
                                 ? std::string("PROXY UNKNOWN\r\n")
                                 : std::string("\r\n\r\n\0\r\nQUIT\n\x20\0\0\0", 16);
    CHECK(proxy.backend(0).received() == none + forwarded_get("/"));
  }
}
