// The admin pages: readiness from the routed upstreams' backends and the drain, /status with
// each backend's state, why and since, the page routing of Pages::serve, the cached routes'
// figures in /metrics, and POST /cache/purge.
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

std::shared_ptr<const conf::Snapshot> snapshot(const char* config = kConfig) {
  conf::ParseResult parsed = conf::parse_config(config);
  REQUIRE(parsed.config);
  return conf::build_snapshot(std::move(*parsed.config), nullptr);
}

conf::IpAddress loopback() {
  conf::IpAddress a;
  a.family = AF_INET;
  a.bytes[0] = 127;
  a.bytes[3] = 1;
  return a;
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
      pages.serve(*parser.head(), loopback(), &page);
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

// One worker with the admin pages over `config`, serving requests as an admin connection would
// bring them.
class AdminWorker {
 public:
  explicit AdminWorker(const char* config = kConfig) {
    uv_loop_init(&loop_);
    ctx_ = std::make_unique<core::WorkerContext>(&loop_);
    ctx_->adopt(snapshot(config));
    info_.registry = &registry_;
    info_.listening = true;
    pages_ = std::make_unique<Pages>(*ctx_, info_);
  }
  ~AdminWorker() {
    pages_.reset();
    ctx_.reset();
    uv_loop_close(&loop_);
  }
  core::LocalPage serve(const std::string& method, const std::string& target,
                        const conf::IpAddress& client = loopback()) {
    core::HttpParser parser(core::HttpParser::Kind::kRequest, ctx_->heads, core::ParseLimits{});
    const std::string text = method + " " + target + " HTTP/1.1\r\nHost: admin\r\n\r\n";
    REQUIRE(parser.execute(text.data(), text.size()).event == core::ParseEvent::kHead);
    core::LocalPage page;
    pages_->serve(*parser.head(), client, &page);
    ctx_->heads.release(parser.release_head());
    return page;
  }
  core::Generation& generation() { return *ctx_->current; }
  ProcessInfo& info() { return info_; }

 private:
  uv_loop_t loop_;
  std::unique_ptr<core::WorkerContext> ctx_;
  metrics::Registry registry_{1};
  ProcessInfo info_;
  std::unique_ptr<Pages> pages_;
};

// What the last purge asked of the caches, and what it answers.
struct PurgeCall {
  int calls = 0;
  std::string key;
  bool prefix = false;
};
PurgeCall last_purge;

size_t record_purge(const core::Generation&, std::string_view key, bool prefix) {
  ++last_purge.calls;
  last_purge.key = key;
  last_purge.prefix = prefix;
  return 3;
}

TEST_CASE("other methods than GET and HEAD get a 405 on every page but the purge", "[admin]") {
  AdminWorker worker;
  CHECK(worker.serve("HEAD", "/healthz").status == 200);
  CHECK(worker.serve("POST", "/metrics").status == 405);
  CHECK(worker.serve("DELETE", "/status").status == 405);
  CHECK(worker.serve("POST", "/nothing").status == 405);
}

TEST_CASE("a purge by url answers how many responses went, in JSON", "[admin][purge]") {
  AdminWorker worker;
  worker.info().purge_caches = &record_purge;
  last_purge = {};
  const core::LocalPage page =
      worker.serve("POST", "/cache/purge?url=http%3A%2F%2FA.Test%2Fx%3Fy%3D1");
  CHECK(page.status == 200);
  CHECK(page.content_type == "application/json");
  CHECK(nlohmann::json::parse(page.body) == nlohmann::json{{"purged", 3}});
  CHECK(last_purge.calls == 1);
  CHECK(last_purge.key == "http://a.test/x?y=1");
  CHECK_FALSE(last_purge.prefix);
  REQUIRE(worker.serve("POST", "/cache/purge?prefix=http%3A%2F%2Fa.test%2Fimg%2F").status == 200);
  CHECK(last_purge.key == "http://a.test/img/");
  CHECK(last_purge.prefix);
}

TEST_CASE("a purge with nothing to purge through answers 0", "[admin][purge]") {
  AdminWorker worker;  // no purge_caches: no route has a cache
  const core::LocalPage page = worker.serve("POST", "/cache/purge?url=http://a.test/");
  CHECK(page.status == 200);
  CHECK(page.body == "{\"purged\": 0}\n");
}

TEST_CASE("a purge that names no single absolute URL or prefix is a 400 saying why",
          "[admin][purge]") {
  AdminWorker worker;
  worker.info().purge_caches = &record_purge;
  last_purge = {};
  const core::LocalPage neither = worker.serve("POST", "/cache/purge");
  CHECK(neither.status == 400);
  CHECK_THAT(neither.body, Catch::Contains("exactly one of url="));
  CHECK(worker.serve("POST", "/cache/purge?url=http://a/&prefix=http://a/").status == 400);
  const core::LocalPage relative = worker.serve("POST", "/cache/purge?url=%2Fx");
  CHECK(relative.status == 400);
  CHECK_THAT(relative.body, Catch::Contains("absolute http or https URL"));
  CHECK(last_purge.calls == 0);
}

TEST_CASE("a purge takes POST only", "[admin][purge]") {
  AdminWorker worker;
  worker.info().purge_caches = &record_purge;
  last_purge = {};
  for (const char* method : {"GET", "HEAD", "PUT", "DELETE"})
    CHECK(worker.serve(method, "/cache/purge?url=http://a.test/").status == 405);
  CHECK(last_purge.calls == 0);
}

TEST_CASE("a purge from a client that is not on loopback is a 403", "[admin][purge]") {
  AdminWorker worker;
  worker.info().purge_caches = &record_purge;
  last_purge = {};
  conf::IpAddress remote;
  REQUIRE(conf::parse_ip_address("192.0.2.7", &remote));
  CHECK(worker.serve("POST", "/cache/purge?url=http://a.test/", remote).status == 403);
  REQUIRE(conf::parse_ip_address("::1", &remote));
  CHECK(worker.serve("POST", "/cache/purge?url=http://a.test/", remote).status == 200);
  CHECK(last_purge.calls == 1);
}

// A route's cache that only has figures to show.
class FiguresOnly final : public core::ResponseCache {
 public:
  explicit FiguresOnly(core::CacheFigures f) : figures_(f) {}
  core::CacheStep begin(const core::CacheQuery&, core::ClientSide&, core::CacheWaiter*,
                        std::unique_ptr<core::CacheTicket>*, core::CachedAnswer*) override {
    return core::CacheStep::kBypass;
  }
  core::CacheFigures figures() const override { return figures_; }

 private:
  core::CacheFigures figures_;
};

constexpr const char* kCachedConfig = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
  "routes": [ { "host": "img.test", "upstream": "app", "cache": {} },
              { "path_prefix": "/api/", "upstream": "app" },
              { "upstream": "app", "cache": {} } ]
})";

TEST_CASE("metrics show each cached route's figures under the route's labels", "[admin]") {
  AdminWorker worker(kCachedConfig);
  core::CacheFigures images, rest;
  images.hits = 7;
  images.misses = 2;
  images.bytes = 4096;
  images.max_bytes = 1 << 20;
  rest.entries = 5;
  rest.invalidated = 4;
  FiguresOnly first(images), third(rest);
  worker.generation().caches = {&first, nullptr, &third};
  const std::string text = worker.serve("GET", "/metrics").body;
  CHECK_THAT(
      text, Catch::Contains("\nsluice_cache_hits_total{route=\"img.test/\",upstream=\"app\"} 7\n"));
  CHECK_THAT(text, Catch::Contains(
                       "\nsluice_cache_misses_total{route=\"img.test/\",upstream=\"app\"} 2\n"));
  CHECK_THAT(text,
             Catch::Contains("\nsluice_cache_bytes{route=\"img.test/\",upstream=\"app\"} 4096\n"));
  CHECK_THAT(text, Catch::Contains(
                       "\nsluice_cache_max_bytes{route=\"img.test/\",upstream=\"app\"} 1048576\n"));
  CHECK_THAT(text, Catch::Contains("\nsluice_cache_entries{route=\"*/\",upstream=\"app\"} 5\n"));
  CHECK_THAT(text, Catch::Contains(
                       "\nsluice_cache_invalidations_total{route=\"*/\",upstream=\"app\"} 4\n"));
  CHECK_THAT(text, !Catch::Contains("sluice_cache_hits_total{route=\"*/api/\""));
}

TEST_CASE("times are ISO 8601 in UTC with milliseconds", "[admin]") {
  CHECK(iso_time(0) == "1970-01-01T00:00:00.000Z");
  CHECK(iso_time(1'796'171'614'018) == "2026-12-02T00:33:34.018Z");
}

}  // namespace
}  // namespace sluice::admin
