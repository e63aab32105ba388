// The admin pages: readiness from the routed upstreams' backends and the drain, /status with
// each backend's state, why and since, and the page routing of Pages::serve.
#include "core/admin/pages.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "conf/snapshot.h"
#include "core/http/http_parser.h"
#include "core/proxy/worker_context.h"

namespace sluice::admin {
namespace {

// "spare" is used by no route.
constexpr const char* kConfig = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": {
    "app": { "backends": [ { "address": "127.0.0.1:9001" }, { "address": "127.0.0.1:9002" } ] },
    "spare": { "backends": [ { "address": "127.0.0.1:9003" } ] }
  },
  "routes": [ { "upstream": "app" } ]
})";

std::shared_ptr<const conf::Snapshot> snapshot() {
  conf::ParseResult parsed = conf::parse_config(kConfig);
  REQUIRE(parsed.config);
  return conf::build_snapshot(std::move(*parsed.config), nullptr);
}

const balancer::Pool& pool(const conf::Snapshot& s, const std::string& name) {
  for (const conf::Upstream& up : s.upstreams)
    if (up.pool.name == name) return up.pool;
  FAIL("no upstream " << name);
  return s.upstreams[0].pool;
}

TEST_CASE("ready while listening and each routed upstream has a usable backend", "[admin]") {
  const auto s = snapshot();
  CHECK(readiness(*s, true, false).ready);
  CHECK_FALSE(readiness(*s, false, false).ready);
  const Readiness draining = readiness(*s, true, true);
  CHECK_FALSE(draining.ready);
  CHECK_THAT(draining.why, Catch::Contains("draining"));
}

TEST_CASE("not ready when a routed upstream has no usable backend, naming it", "[admin]") {
  const auto s = snapshot();
  pool(*s, "spare").backends[0].state->up = false;  // no route uses it: still ready
  CHECK(readiness(*s, true, false).ready);
  pool(*s, "app").backends[0].state->up = false;
  CHECK(readiness(*s, true, false).ready);  // the other one is left
  pool(*s, "app").backends[1].state->ejected = true;
  const Readiness r = readiness(*s, true, false);
  CHECK_FALSE(r.ready);
  CHECK(r.why == "upstream 'app' has no usable backend");
}

TEST_CASE("status says each backend's state, why and since", "[admin]") {
  const auto s = snapshot();
  balancer::BackendState& down = *pool(*s, "app").backends[0].state;
  down.up = false;
  down.last_check_failure = balancer::FailedCheck{balancer::CheckFailure::kStatus, 500}.pack();
  down.changed_at_ms = 1'796'171'614'018;
  balancer::BackendState& ejected = *pool(*s, "app").backends[1].state;
  ejected.ejected = true;
  ejected.ejected_at_ms = 1'796'171'615'000;
  ejected.ejections_total = 3;
  ejected.active = 2;
  ProcessInfo info;
  info.version = "1.2.3";
  info.config_path = "/etc/sluice.json";
  info.workers = 3;
  info.config_loaded_ms = 1'796'171'600'000;
  const auto j = nlohmann::json::parse(status_json(*s, info));
  CHECK(j["version"] == "1.2.3");
  CHECK(j["config"]["path"] == "/etc/sluice.json");
  CHECK(j["config"]["loaded_at"] == "2026-12-02T00:33:20.000Z");
  CHECK(j["config"]["generation"] == 1);
  CHECK(j["workers"] == 3);
  // The listeners are the snapshot's: those open now.
  REQUIRE(j["listeners"].size() == 1);
  CHECK(j["listeners"][0]["address"] == "127.0.0.1:8080");
  CHECK(j["listeners"][0]["tls"] == false);
  CHECK(j["routes"][0]["upstream"] == "app");
  const auto& backends = j["upstreams"][0]["backends"];
  REQUIRE(backends.size() == 2);
  CHECK(backends[0]["state"] == "down");
  CHECK(backends[0]["why"] == "status 500");
  CHECK(backends[0]["since"] == "2026-12-02T00:33:34.018Z");
  CHECK(backends[1]["state"] == "ejected");
  CHECK(backends[1]["why"] == "passive ejection");
  CHECK(backends[1]["since"] == "2026-12-02T00:33:35.000Z");
  CHECK(backends[1]["passive_ejections"] == 3);
  CHECK(backends[1]["in_flight"] == 2);
  CHECK(j["upstreams"][1]["backends"][0]["state"] == "up");
  CHECK(j["upstreams"][1]["backends"][0]["why"].is_null());
}

TEST_CASE("each page answers at its path; any other path is a 404", "[admin]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    core::WorkerContext ctx(&loop);
    ctx.adopt(snapshot());
    metrics::Registry registry(1);
    ProcessInfo info;
    info.registry = &registry;
    info.listening = true;
    Pages pages(ctx, info);
    auto serve = [&](const std::string& target) {
      core::HttpParser parser(core::HttpParser::Kind::kRequest, ctx.heads, core::ParseLimits{});
      const std::string text = "GET " + target + " HTTP/1.1\r\nHost: admin\r\n\r\n";
      REQUIRE(parser.execute(text.data(), text.size()).event == core::ParseEvent::kHead);
      core::LocalPage page;
      pages.serve(*parser.head(), &page);
      ctx.heads.release(parser.release_head());
      return page;
    };
    CHECK(serve("/healthz").body == "ok\n");
    CHECK(serve("/readyz").status == 200);
    info.draining = true;
    const core::LocalPage not_ready = serve("/readyz?verbose=1");
    CHECK(not_ready.status == 503);
    CHECK(not_ready.body == "not ready: draining: shutting down\n");
    CHECK(serve("/status").content_type == "application/json");
    const core::LocalPage metrics = serve("/metrics");
    CHECK(metrics.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK_THAT(metrics.body, Catch::Contains("\nsluice_draining 1\n"));
    CHECK(serve("/nothing").status == 404);
  }
  uv_loop_close(&loop);
}

TEST_CASE("times are ISO 8601 in UTC with milliseconds", "[admin]") {
  CHECK(iso_time(0) == "1970-01-01T00:00:00.000Z");
  CHECK(iso_time(1'796'171'614'018) == "2026-12-02T00:33:34.018Z");
}

}  // namespace
}  // namespace sluice::admin
