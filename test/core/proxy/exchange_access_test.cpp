// Specification of access control through the worker's own chains: a listener's access list
// closes a refused connection at accept, before a byte is read; a route's answers 403 (outcome
// "denied"); and with trusted_proxies, the client X-Forwarded-For names is the one the route's
// list, the hash key, the record and the X-Forwarded-For sent on all use.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <string>

#include "conf/socket_address.h"
#include "test/core/io/endpoint.h"
#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

using namespace sluice::test;
using sluice::conf::AccessConfig;
using sluice::conf::Cidr;
using sluice::core::Outcome;

namespace {

Cidr cidr(const char* text) {
  std::string problem;
  auto parsed = sluice::conf::parse_cidr(text, &problem);
  INFO(text << ": " << problem);
  REQUIRE(parsed.has_value());
  return *parsed;
}

AccessConfig access(std::initializer_list<const char*> allow,
                    std::initializer_list<const char*> deny = {}) {
  AccessConfig out;
  for (const char* text : allow) out.allow.push_back(cidr(text));
  for (const char* text : deny) out.deny.push_back(cidr(text));
  return out;
}

std::string get_for(const std::string& forwarded_for, std::string_view target = "/") {
  return "GET " + std::string(target) +
         " HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: " + forwarded_for + "\r\n\r\n";
}

// The request as forwarded with `chain` as its X-Forwarded-For.
// The head the backend gets on a transparent route: the chain's last entry is the client
// Sluice settled on, and its own Forwarded element names that one.
std::string forwarded_with(const std::string& chain, std::string_view target = "/") {
  const size_t last = chain.rfind(", ");
  const std::string client = last == std::string::npos ? chain : chain.substr(last + 2);
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: " + chain +
         "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app.test\r\nForwarded: for=" + client +
         ";proto=http;host=app.test\r\nVia: 1.1 sluice\r\n\r\n";
}

}  // namespace

TEST_CASE("route access: a client outside the allow list gets 403, recorded as denied",
          "[exchange][access]") {
  HarnessSetup setup;
  setup.route_access = access({"10.0.0.0/8", "::1"});
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();  // from 192.0.2.7
  client.send(get_request("/a") + get_request("/b"));
  proxy.pump();
  CHECK(proxy.backend_connections() == 0);
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 403 Forbidden\r\n"));
  CHECK_THAT(client.received(), Catch::Contains("access to this route is denied"));
  REQUIRE(proxy.finished().size() == 2);  // the connection goes on: the next one is refused too
  CHECK(proxy.record(0).outcome == Outcome::kDenied);
  CHECK(proxy.record(0).status == 403);
  CHECK(proxy.record(0).local);
  CHECK(proxy.finished()[0].client_ip == kClientIp);
  CHECK_FALSE(client.closed());
}

TEST_CASE("route access: IPv4 and IPv6 clients against allow and deny", "[exchange][access]") {
  HarnessSetup setup;
  setup.route_access = access({"127.0.0.0/8", "::1"}, {"127.0.0.66"});
  ProxyHarness proxy(setup);
  for (const char* ip : {"127.0.0.1", "::1", "::ffff:127.0.0.9"}) {
    MemoryPeer& client = proxy.open_client(endpoint(ip), nullptr);
    client.send(get_request("/"));
    proxy.pump();
    INFO(ip);
    CHECK_THAT(client.received(), !Catch::Contains("403"));
  }
  CHECK(proxy.backend_connections() >= 1);
  for (const char* ip : {"127.0.0.66", "::2", "192.0.2.7", "::ffff:127.0.0.66"}) {
    MemoryPeer& client = proxy.open_client(endpoint(ip), nullptr);
    client.send(get_request("/"));
    proxy.pump();
    INFO(ip);
    CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 403 "));
  }
}

TEST_CASE("route access: a request that matches no route still gets its 404",
          "[exchange][access]") {
  HarnessSetup setup;
  setup.route_access = access({"10.0.0.0/8"});
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send("GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n");
  CHECK_THAT(client.received(), Catch::StartsWith("HTTP/1.1 404 "));
}

TEST_CASE("listener access: a refused connection is closed at accept, unread and uncounted",
          "[exchange][access]") {
  HarnessSetup setup;
  setup.listener_access = access({}, {"192.0.2.0/24"});
  ProxyHarness proxy(setup);
  MemoryPeer& refused = proxy.open_client();  // from 192.0.2.7
  CHECK(refused.closed());
  CHECK_FALSE(refused.reading());
  CHECK(proxy.context().client_count == 0);
  CHECK(proxy.context().counters.clients_refused.get() == 1);
  CHECK(proxy.context().counters.clients_accepted.get() == 0);
  refused.send(get_request("/"));  // nothing reads it
  proxy.pump();
  CHECK(refused.received().empty());
  CHECK(proxy.finished().empty());

  MemoryPeer& admitted = proxy.open_client(endpoint("198.51.100.4"), nullptr);
  CHECK_FALSE(admitted.closed());
  admitted.send(get_request("/"));
  proxy.pump();
  CHECK(proxy.backend_connections() == 1);
  CHECK(proxy.context().counters.clients_refused.get() == 1);
}

TEST_CASE("trusted proxy: the client its X-Forwarded-For names is the request's client",
          "[exchange][access]") {
  HarnessSetup setup;
  setup.trusted_proxies = {cidr("192.0.2.0/24")};  // kClientIp is a trusted proxy
  setup.route_access = access({"203.0.113.0/24"});
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  client.send(get_for("198.51.100.1, 203.0.113.7, 192.0.2.9", "/in"));
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 1);
  // The trusted hop after the client is left out; the entries before it stay.
  CHECK(proxy.backend(0).received() == forwarded_with("198.51.100.1, 203.0.113.7", "/in"));
  proxy.backend(0).send(ok_response("1"));
  proxy.pump();
  REQUIRE(proxy.finished().size() == 1);
  CHECK(proxy.finished()[0].client_ip == "203.0.113.7");

  client.send(get_for("198.51.100.1", "/out"));  // named client outside the allow list
  proxy.pump();
  REQUIRE(proxy.finished().size() == 2);
  CHECK(proxy.record(1).outcome == Outcome::kDenied);
  CHECK(proxy.finished()[1].client_ip == "198.51.100.1");

  client.send(get_request("/none"));  // no header: the proxy itself is the client
  proxy.pump();
  REQUIRE(proxy.finished().size() == 3);
  CHECK(proxy.record(2).status == 403);
  CHECK(proxy.finished()[2].client_ip == kClientIp);
}

TEST_CASE("untrusted peer: its X-Forwarded-For is passed on but never believed",
          "[exchange][access]") {
  HarnessSetup setup;
  setup.trusted_proxies = {cidr("10.0.0.0/8")};
  setup.route_access = access({"192.0.2.0/24"}, {"203.0.113.0/24"});
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();  // 192.0.2.7: allowed, not trusted
  client.send(get_for("203.0.113.7"));       // names a denied address: ignored
  proxy.pump();
  REQUIRE(proxy.backend_connections() == 1);
  CHECK(proxy.backend(0).received() == forwarded_with("203.0.113.7, 192.0.2.7"));
  proxy.backend(0).send(ok_response("1"));
  proxy.pump();
  REQUIRE(proxy.finished().size() == 1);
  CHECK(proxy.finished()[0].client_ip == kClientIp);

  // And the other way round: an allowed address in the header does not let a denied peer in.
  MemoryPeer& outsider = proxy.open_client(endpoint("203.0.113.50"), nullptr);
  outsider.send(get_for("192.0.2.8"));
  proxy.pump();
  CHECK_THAT(outsider.received(), Catch::StartsWith("HTTP/1.1 403 "));
}

TEST_CASE("trusted proxy: the hash balancer keys on the client the header names",
          "[exchange][access]") {
  HarnessSetup setup;
  setup.balance = "hash";
  setup.trusted_proxies = {cidr("192.0.2.0/24")};
  ProxyHarness proxy(setup);
  // No backend answers, so every request opens a connection of its own: the last one made is
  // the backend its request went to.
  const auto backend_for = [&](MemoryPeer& client, const std::string& request) {
    const size_t before = proxy.backend_connections();
    client.send(request);
    proxy.pump();
    REQUIRE(proxy.backend_connections() == before + 1);
    return ProxyHarness::backend_index(*proxy.connector().made().back());
  };
  const int proxy_backend = backend_for(proxy.open_client(), get_request("/"));
  int differs_from_proxy = 0;
  for (int i = 1; i <= 12; ++i) {
    // Each address straight from its own connection, then named by the trusted proxy.
    const std::string ip = "203.0.113." + std::to_string(i);
    const int direct =
        backend_for(proxy.open_client(endpoint(ip.c_str()), nullptr), get_request("/"));
    const int via = backend_for(proxy.open_client(), get_for(ip));
    INFO(ip);
    CHECK(via == direct);
    differs_from_proxy += direct != proxy_backend;
  }
  CHECK(differs_from_proxy > 0);  // so it is not keyed on the proxy's own address
}
