// Specification of rate limits through the worker's own chains: a client past its rate_limit
// gets 429 with Retry-After (outcome "rate_limited") on a connection that stays open, while a
// client X-Forwarded-For names from a trusted proxy has its own bucket; the route's rps covers
// every client; and a client the access list refuses spends no tokens. Rates are 1 a second,
// so no token comes back while a test runs.
#include <catch2/catch.hpp>
#include <string>

#include "conf/socket_address.h"
#include "test/core/proxy/http_messages.h"
#include "test/core/proxy/proxy_harness.h"

using namespace sluice::test;
using sluice::core::Outcome;

namespace {

sluice::conf::RateLimitConfig rate(uint32_t per_client, uint32_t burst, uint32_t rps) {
  sluice::conf::RateLimitConfig out;
  out.per_client_rps = per_client;
  out.burst = burst;
  out.rps = rps;
  return out;
}

std::string get_for(const std::string& forwarded_for, std::string_view target = "/") {
  return "GET " + std::string(target) +
         " HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: " + forwarded_for + "\r\n\r\n";
}

// Sends `request` and answers it 200 from whichever backend connection (new or pooled) it was
// forwarded on, if any; returns the status the client got.
int exchange(ProxyHarness& proxy, MemoryPeer& client, const std::string& request) {
  const size_t before = proxy.finished().size();
  for (size_t i = 0; i < proxy.backend_connections(); ++i) proxy.backend(i).take_received();
  client.send(request);
  proxy.pump();
  for (size_t i = 0; i < proxy.backend_connections(); ++i) {
    if (proxy.backend(i).take_received().empty()) continue;
    proxy.backend(i).send(ok_response("1"));
    proxy.pump();
  }
  REQUIRE(proxy.finished().size() == before + 1);
  return proxy.record(before).status;
}

sluice::conf::Cidr cidr(const char* text) {
  std::string problem;
  auto parsed = sluice::conf::parse_cidr(text, &problem);
  REQUIRE(parsed.has_value());
  return *parsed;
}

}  // namespace

TEST_CASE("rate limit: past its burst a client gets 429 with Retry-After, and stays connected",
          "[exchange][rate]") {
  HarnessSetup setup;
  setup.route_rate_limit = rate(1, 2, 0);
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  CHECK(exchange(proxy, client, get_request("/a")) == 200);
  CHECK(exchange(proxy, client, get_request("/b")) == 200);
  client.take_received();
  CHECK(exchange(proxy, client, get_request("/c")) == 429);
  const std::string refused = client.take_received();
  CHECK_THAT(refused, Catch::StartsWith("HTTP/1.1 429 Too Many Requests\r\n"));
  CHECK_THAT(refused, Catch::Contains("\r\nRetry-After: 1\r\n"));
  CHECK_THAT(refused, Catch::Contains("the client is over this route's request rate"));
  CHECK(proxy.record(2).outcome == Outcome::kRateLimited);
  CHECK(proxy.record(2).local);
  CHECK(exchange(proxy, client, get_request("/d")) == 429);  // the connection goes on
}

TEST_CASE("rate limit: each client a trusted proxy names has its own bucket", "[exchange][rate]") {
  HarnessSetup setup;
  setup.trusted_proxies = {cidr(kClientIp)};
  setup.route_rate_limit = rate(1, 1, 0);
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  CHECK(exchange(proxy, client, get_for("203.0.113.1")) == 200);
  CHECK(exchange(proxy, client, get_for("203.0.113.1")) == 429);
  CHECK(exchange(proxy, client, get_for("203.0.113.2")) == 200);
  CHECK(exchange(proxy, client, get_request("/own")) == 200);  // the proxy itself: a third
  CHECK(exchange(proxy, client, get_for("2001:db8::1")) == 200);
  CHECK(exchange(proxy, client, get_for("2001:db8::1")) == 429);
  CHECK(proxy.finished()[5].client_ip == "2001:db8::1");
}

TEST_CASE("rate limit: the route's rps covers every client, after the access list",
          "[exchange][rate]") {
  HarnessSetup setup;
  setup.trusted_proxies = {cidr(kClientIp)};
  setup.route_access = sluice::conf::AccessConfig{{}, {cidr("198.51.100.0/24")}};
  setup.route_rate_limit = rate(0, 0, 1);
  ProxyHarness proxy(setup);
  MemoryPeer& client = proxy.open_client();
  for (int i = 0; i < 3; ++i) CHECK(exchange(proxy, client, get_for("198.51.100.9")) == 403);
  CHECK(exchange(proxy, client, get_for("203.0.113.1")) == 200);  // the refused spent nothing
  client.take_received();
  CHECK(exchange(proxy, client, get_for("203.0.113.2")) == 429);
  CHECK_THAT(client.take_received(), Catch::Contains("this route is over its request rate"));
  CHECK(proxy.record(4).outcome == Outcome::kRateLimited);
}
