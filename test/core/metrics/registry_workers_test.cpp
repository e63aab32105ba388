// Workers that reloads add and retire: a new worker counts into its own part, and a retired
// one's counts (its connection counters included) stay in the sums, so no counter goes back.
#include <uv.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "conf/config.h"
#include "conf/snapshot.h"
#include "core/metrics/registry.h"
#include "core/proxy/worker_context.h"

namespace sluice::metrics {
namespace {

constexpr const char* kConfig = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
  "routes": [ { "upstream": "app" } ]
})";

core::ExchangeRecord answered(uint16_t status) {
  core::ExchangeRecord r;
  r.route = 0;
  r.upstream = 0;
  r.backend = 0;
  r.status = status;
  r.outcome = core::Outcome::kOk;
  r.start_ms = 1000;
  r.first_byte_ms = 1001;
  r.end_ms = 1004;
  r.request_bytes = 10;
  r.response_bytes = 100;
  r.attempts = 1;
  return r;
}

TEST_CASE("a retired worker's counts stay in the sums", "[metrics]") {
  conf::ParseResult parsed = conf::parse_config(kConfig);
  REQUIRE(parsed.config);
  const auto s = conf::build_snapshot(std::move(*parsed.config), nullptr);
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    core::WorkerContext a(&loop), b(&loop);
    Registry registry(1);
    registry.attach(registry.worker(0), &a);
    WorkerPart& added = registry.add_worker();
    registry.attach(added, &b);
    CHECK(registry.workers() == 2);
    auto wa = registry.observer(registry.worker(0), *s);
    auto wb = registry.observer(added, *s);
    for (int i = 0; i < 3; ++i) wa->on_finish(answered(200), nullptr);
    for (int i = 0; i < 5; ++i) wb->on_finish(answered(502), nullptr);
    b.counters.clients_accepted.add(6);
    b.counters.clients_closed.add(6);
    b.counters.upstream_opened.add(4);
    b.counters.retries.add(2);
    a.counters.clients_accepted.add(2);
    a.counters.clients_closed.add(1);
    const Totals before = registry.sum();

    wb.reset();  // the worker's generations are gone with it
    registry.retire(added);
    CHECK(registry.workers() == 1);
    const Totals after = registry.sum();
    CHECK(after.route_classes[0][2] == 3);
    CHECK(after.route_classes[0][5] == 5);
    CHECK(after.route_response_bytes[0] == before.route_response_bytes[0]);
    CHECK(after.upstreams[0].buckets == before.upstreams[0].buckets);
    CHECK(after.outcomes == before.outcomes);
    CHECK(after.clients_accepted == 8);
    CHECK(after.clients_open == 1);
    CHECK(after.upstream_opened == 4);
    CHECK(after.retries == 2);

    // Counting goes on from there, in the worker that stays and in one added later.
    wa->on_finish(answered(200), nullptr);
    auto wc = registry.observer(registry.add_worker(), *s);
    wc->on_finish(answered(200), nullptr);
    CHECK(registry.sum().route_classes[0][2] == 5);
    const std::string text = registry.render(*s, {});
    CHECK(text.find("sluice_requests_total{route=\"*/\",upstream=\"app\",class=\"5xx\"} 5\n") !=
          std::string::npos);
    CHECK(text.find("sluice_client_connections_accepted_total 8\n") != std::string::npos);
  }
  uv_loop_close(&loop);
}

}  // namespace
}  // namespace sluice::metrics
