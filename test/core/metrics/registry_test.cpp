// The metrics registry: per-worker counters summed on a scrape, series kept by stable names so
// that a reload never sends a counter back, and the exchange observer's per-request counting.
#include "core/metrics/registry.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "conf/config.h"
#include "conf/snapshot.h"
#include "core/proxy/worker_context.h"

namespace sluice::metrics {
namespace {

using core::ExchangeRecord;
using core::Outcome;

// Two upstreams, two routes; "api" has two backends.
constexpr const char* kConfig = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": {
    "app": { "backends": [ { "address": "127.0.0.1:9001" } ] },
    "api": { "backends": [ { "address": "127.0.0.1:9002" }, { "address": "127.0.0.1:9003" } ] }
  },
  "routes": [ { "path_prefix": "/api", "upstream": "api" }, { "upstream": "app" } ]
})";

// The same names, reordered, with a route and a backend more.
constexpr const char* kReloaded = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": {
    "api": { "backends": [ { "address": "127.0.0.1:9004" }, { "address": "127.0.0.1:9003" },
                           { "address": "127.0.0.1:9002" } ] },
    "app": { "backends": [ { "address": "127.0.0.1:9001" } ] }
  },
  "routes": [ { "host": "new.test", "upstream": "app" }, { "upstream": "app" },
              { "path_prefix": "/api", "upstream": "api" } ]
})";

std::shared_ptr<const conf::Snapshot> snapshot(const char* text,
                                               const conf::Snapshot* previous = nullptr) {
  conf::ParseResult parsed = conf::parse_config(text);
  REQUIRE(parsed.config);
  return conf::build_snapshot(std::move(*parsed.config), previous);
}

// Indexes into kConfig's snapshot.
int32_t upstream_index(const conf::Snapshot& s, const std::string& name) {
  for (size_t i = 0; i < s.upstreams.size(); ++i)
    if (s.upstreams[i].pool.name == name) return static_cast<int32_t>(i);
  FAIL("no upstream " << name);
  return -1;
}

ExchangeRecord answered(int32_t route, int32_t upstream, int32_t backend, uint16_t status,
                        uint64_t ms = 3) {
  ExchangeRecord r;
  r.route = route;
  r.upstream = upstream;
  r.backend = backend;
  r.status = status;
  r.outcome = Outcome::kOk;
  r.start_ms = 1000;
  r.first_byte_ms = 1001;
  r.end_ms = 1000 + ms;
  r.request_bytes = 10;
  r.response_bytes = 100;
  r.attempts = 1;
  return r;
}

ExchangeRecord local(int32_t route, int32_t upstream, uint16_t status) {
  ExchangeRecord r;
  r.route = route;
  r.upstream = upstream;
  r.status = status;
  r.outcome = Outcome::kLocalReply;
  r.local = true;
  r.response_bytes = 50;
  return r;
}

// The one sample line for `series` ("name{labels}") in `text`; fails when it is missing.
std::string sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  INFO(text);
  REQUIRE(at != std::string::npos);
  const size_t start = at + 1 + series.size() + 1;
  return text.substr(start, text.find('\n', start) - start);
}

TEST_CASE("a scrape sums the counters of every worker", "[metrics]") {
  const auto s = snapshot(kConfig);
  const int32_t api = upstream_index(*s, "api"), app = upstream_index(*s, "app");
  Registry registry(2);
  auto w0 = registry.observer(registry.worker(0), *s);
  auto w1 = registry.observer(registry.worker(1), *s);
  for (int i = 0; i < 3; ++i) w0->on_finish(answered(0, api, 0, 200), nullptr);
  for (int i = 0; i < 4; ++i) w1->on_finish(answered(0, api, 1, 204), nullptr);
  w1->on_finish(answered(1, app, 0, 503), nullptr);
  w0->on_finish(local(-1, -1, 404), nullptr);
  w1->on_finish(local(-1, -1, 404), nullptr);

  const Totals t = registry.sum();
  REQUIRE(t.route_classes.size() == 3);  // both routes and the unrouted slot
  CHECK(t.route_classes[0][2] == 7);     // "*/api" to "api": 2xx
  CHECK(t.route_classes[1][5] == 1);     // "*/" to "app": 5xx
  CHECK(t.route_classes[2][4] == 2);     // no route: 4xx
  CHECK(t.route_request_bytes[0] == 70);
  CHECK(t.route_response_bytes[0] == 700);
  CHECK(t.local_replies[404] == 2);
  CHECK(t.outcomes[static_cast<size_t>(Outcome::kOk)] == 8);
  CHECK(t.outcomes[static_cast<size_t>(Outcome::kLocalReply)] == 2);

  const std::string text = registry.render(*s, {});
  CHECK(sample(text, R"(sluice_requests_total{route="*/api",upstream="api",class="2xx"})") == "7");
  CHECK(sample(text, R"(sluice_requests_total{route="*/",upstream="app",class="5xx"})") == "1");
  CHECK(sample(text, R"(sluice_requests_total{route="",upstream="",class="4xx"})") == "2");
  CHECK(sample(text, R"(sluice_local_replies_total{status="404"})") == "2");
  CHECK(sample(text, R"(sluice_upstream_response_seconds_count{upstream="api"})") == "7");
  CHECK(
      sample(text,
             R"(sluice_backend_response_seconds_count{upstream="api",backend="127.0.0.1:9003"})") ==
      "4");
}

TEST_CASE("latencies land in the first bucket whose bound is not below them", "[metrics]") {
  const auto s = snapshot(kConfig);
  const int32_t app = upstream_index(*s, "app");
  Registry registry(1);
  auto w = registry.observer(registry.worker(0), *s);
  for (uint64_t ms : {0, 1, 2, 3, 10000, 10001})
    w->on_finish(answered(1, app, 0, 200, ms), nullptr);
  const std::string text = registry.render(*s, {});
  const std::string h = R"(sluice_upstream_response_seconds_bucket{upstream="app",le=")";
  CHECK(sample(text, h + R"(0.001"})") == "2");
  CHECK(sample(text, h + R"(0.002"})") == "3");
  CHECK(sample(text, h + R"(0.005"})") == "4");
  CHECK(sample(text, h + R"(10"})") == "5");
  CHECK(sample(text, h + R"(+Inf"})") == "6");
  CHECK(sample(text, R"(sluice_upstream_response_seconds_sum{upstream="app"})") == "20.007");
}

TEST_CASE("exchanges without a backend's answer and the admin's own pages add no latency",
          "[metrics]") {
  const auto s = snapshot(kConfig);
  const int32_t app = upstream_index(*s, "app");
  Registry registry(1);
  auto w = registry.observer(registry.worker(0), *s);
  w->on_finish(local(1, app, 503), nullptr);  // no usable backend: no first byte
  ExchangeRecord admin = local(-1, -1, 200);
  admin.listener = core::kAdminListener;
  w->on_finish(admin, nullptr);
  ExchangeRecord tunnel = answered(1, app, 0, 101);
  tunnel.outcome = Outcome::kTunnelClosed;
  w->on_finish(tunnel, nullptr);
  const Totals t = registry.sum();
  CHECK(t.upstreams[0].buckets == decltype(t.upstreams[0].buckets){});
  CHECK(t.local_replies[503] == 1);
  CHECK(t.local_replies[200] == 0);   // the admin page is not counted
  CHECK(t.route_classes[1][1] == 1);  // the tunnel's 101, on route "*/"
}

TEST_CASE("a reload keeps counting each route, upstream and backend by its name", "[metrics]") {
  const auto before = snapshot(kConfig);
  const auto after = snapshot(kReloaded, before.get());
  Registry registry(1);
  auto old_gen = registry.observer(registry.worker(0), *before);
  const int32_t api = upstream_index(*before, "api");
  old_gen->on_finish(answered(0, api, 1, 200), nullptr);  // "*/api" to 127.0.0.1:9003
  auto new_gen = registry.observer(registry.worker(0), *after);
  const int32_t api2 = upstream_index(*after, "api");
  new_gen->on_finish(answered(2, api2, 1, 200), nullptr);  // "*/api" is route 2, 9003 backend 1
  old_gen->on_finish(answered(0, api, 1, 500), nullptr);   // an exchange of the old generation
  const std::string text = registry.render(*after, {});
  CHECK(sample(text, R"(sluice_requests_total{route="*/api",upstream="api",class="2xx"})") == "2");
  CHECK(sample(text, R"(sluice_requests_total{route="*/api",upstream="api",class="5xx"})") == "1");
  CHECK(
      sample(text,
             R"(sluice_backend_response_seconds_count{upstream="api",backend="127.0.0.1:9003"})") ==
      "3");
  CHECK(sample(text, R"(sluice_requests_total{route="new.test/",upstream="app",class="2xx"})") ==
        "0");
  CHECK(text.find("route=\"*/api\",upstream=\"api\",class=\"2xx\"") ==
        text.rfind("route=\"*/api\",upstream=\"api\",class=\"2xx\""));  // one series, not two
}

TEST_CASE("connection counters come from each worker's context", "[metrics]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    core::WorkerContext a(&loop), b(&loop);
    Registry registry(2);
    registry.attach(registry.worker(0), &a);
    registry.attach(registry.worker(1), &b);
    a.counters.clients_accepted.add(5);
    a.counters.clients_closed.add(4);
    b.counters.clients_accepted.add(3);
    b.counters.clients_closed.add(1);
    a.counters.upstream_opened.add(2);
    b.counters.upstream_reused.add(7);
    b.counters.retries.add();
    const Totals t = registry.sum();
    CHECK(t.clients_accepted == 8);
    CHECK(t.clients_open == 3);
    CHECK(t.upstream_opened == 2);
    CHECK(t.upstream_reused == 7);
    CHECK(t.retries == 1);
    CHECK(t.upstream_idle == 0);
  }
  uv_loop_close(&loop);
}

TEST_CASE("backends show their health, in-flight count and ejections", "[metrics]") {
  const auto s = snapshot(kConfig);
  Registry registry(1);
  auto w = registry.observer(registry.worker(0), *s);
  const balancer::Backend& b = s->upstreams[upstream_index(*s, "api")].pool.backends[1];
  b.state->ejected = true;
  b.state->ejections_total = 2;
  b.state->active = 3;
  const std::string text = registry.render(*s, {});
  const std::string labels = R"({upstream="api",backend="127.0.0.1:9003"})";
  CHECK(sample(text, "sluice_backend_up" + labels) == "0");
  CHECK(sample(text, "sluice_backend_in_flight" + labels) == "3");
  CHECK(sample(text, "sluice_backend_ejections_total" + labels) == "2");
  CHECK(sample(text, R"(sluice_backend_up{upstream="api",backend="127.0.0.1:9002"})") == "1");
}

TEST_CASE("a backend that leaves the config and comes back goes on from its ejection count",
          "[metrics]") {
  const auto first = snapshot(kConfig);
  Registry registry(1);
  auto w = registry.observer(registry.worker(0), *first);
  first->upstreams[upstream_index(*first, "api")].pool.backends[1].state->ejections_total = 4;
  const std::string labels = R"({upstream="api",backend="127.0.0.1:9003"})";
  CHECK(sample(registry.render(*first, {}), "sluice_backend_ejections_total" + labels) == "4");
  // Without the backend, then with it again: a new state, whose own count starts at 0.
  conf::ParseResult without = conf::parse_config(kConfig);
  REQUIRE(without.config);
  for (auto& up : without.config->upstreams)
    if (up.name == "api") up.backends.pop_back();
  const auto gone = conf::build_snapshot(std::move(*without.config), first.get());
  const auto back = snapshot(kConfig, gone.get());
  w = registry.observer(registry.worker(0), *back);
  const balancer::Backend& again = back->upstreams[upstream_index(*back, "api")].pool.backends[1];
  REQUIRE(again.state != first->upstreams[upstream_index(*first, "api")].pool.backends[1].state);
  again.state->ejections_total = 1;
  CHECK(sample(registry.render(*back, {}), "sluice_backend_ejections_total" + labels) == "5");
}

TEST_CASE("process figures appear as their own series", "[metrics]") {
  const auto s = snapshot(kConfig);
  Registry registry(1);
  auto w = registry.observer(registry.worker(0), *s);
  ProcessFigures f;
  f.version = "9.9.9";
  f.generation = 3;
  f.reloads_ok = 2;
  f.reloads_failed = 1;
  f.access_lines_dropped = 17;
  f.draining = true;
  const std::string text = registry.render(*s, f);
  CHECK(sample(text, R"(sluice_build_info{version="9.9.9"})") == "1");
  CHECK(sample(text, "sluice_config_generation") == "3");
  CHECK(sample(text, R"(sluice_config_reloads_total{outcome="ok"})") == "2");
  CHECK(sample(text, R"(sluice_config_reloads_total{outcome="failed"})") == "1");
  CHECK(sample(text, "sluice_access_log_lines_dropped_total") == "17");
  CHECK(sample(text, "sluice_draining") == "1");
}

// Not run by default: `sluice_unit "[.bench]"`. What counting costs per request.
TEST_CASE("per-request cost of the metrics observer", "[.bench]") {
  const auto s = snapshot(kConfig);
  const int32_t api = upstream_index(*s, "api");
  Registry registry(1);
  auto w = registry.observer(registry.worker(0), *s);
  ExchangeRecord r = answered(0, api, 1, 200);
  constexpr int kRounds = 20'000'000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) {
    r.end_ms = 1000 + static_cast<uint64_t>(i & 63);
    w->on_finish(r, nullptr);
  }
  const auto ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start);
  WARN("on_finish: " << ns.count() / kRounds << " ns per exchange");

  core::LocalCounter local;
  std::atomic<uint64_t> shared{0};
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) local.add();
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) shared.fetch_add(1, std::memory_order_relaxed);
  const auto t2 = std::chrono::steady_clock::now();
  const double local_ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / kRounds;
  const double shared_ns = std::chrono::duration<double, std::nano>(t2 - t1).count() / kRounds;
  WARN("LocalCounter::add " << local_ns << " ns; fetch_add relaxed " << shared_ns << " ns");
  CHECK(registry.sum().route_classes[0][2] == kRounds);
}

}  // namespace
}  // namespace sluice::metrics
