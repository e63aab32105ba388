// The admin pages. Each runs on the worker that accepted the admin connection and reads only
// that worker's config generation, the backends' shared states (atomics), the metrics
// registry (whose lock a scrape takes) and the generation's route caches, shared by every
// worker (a purge drops from them).
#include "core/admin/pages.h"

#include <llhttp.h>
#include <time.h>

#include <nlohmann/json.hpp>

#include "core/admin/purge.h"
#include "core/metrics/prometheus.h"
#include "core/proxy/worker_context.h"
#include "health/probe.h"

namespace sluice::admin {
namespace {

const char* state_name(const balancer::BackendState& s) {
  if (s.ejected.load(std::memory_order_relaxed)) return "ejected";
  return s.up.load(std::memory_order_relaxed) ? "up" : "down";
}

nlohmann::ordered_json backend_json(const balancer::Backend& b) {
  const balancer::BackendState& s = *b.state;
  nlohmann::ordered_json j;
  j["address"] = b.address;
  j["weight"] = b.weight;
  j["backup"] = b.backup;
  if (b.from_dns) j["from_dns"] = true;
  const bool ejected = s.ejected.load(std::memory_order_relaxed);
  const bool up = s.up.load(std::memory_order_relaxed);
  j["state"] = state_name(s);
  if (ejected) {
    j["why"] = "passive ejection";
  } else if (!up) {
    const auto failed =
        balancer::FailedCheck::unpack(s.last_check_failure.load(std::memory_order_relaxed));
    j["why"] = failed.kind == balancer::CheckFailure::kNone ? std::string("not checked yet")
                                                            : health::describe(failed);
  } else {
    j["why"] = nullptr;
  }
  const int64_t since = ejected ? s.ejected_at_ms.load(std::memory_order_relaxed)
                                : s.changed_at_ms.load(std::memory_order_relaxed);
  j["since"] = iso_time(since);
  j["in_flight"] = b.health().active();
  j["passive_ejections"] = s.ejections_total.load(std::memory_order_relaxed);
  return j;
}

}  // namespace

std::string iso_time(int64_t unix_ms) {
  const time_t seconds = static_cast<time_t>(unix_ms / 1000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return text;
}

Readiness readiness(const conf::Snapshot& snapshot, bool listening, bool draining) {
  if (draining) return {false, "draining: shutting down"};
  if (!listening) return {false, "not accepting yet"};
  std::vector<bool> checked(snapshot.upstreams.size(), false);
  for (const conf::Route& route : snapshot.routes) {
    if (checked[route.upstream]) continue;
    checked[route.upstream] = true;
    const balancer::Pool& pool = snapshot.upstreams[route.upstream].pool;
    bool usable = false;
    for (const balancer::Backend& b : pool.backends) usable = usable || b.up();
    if (!usable) return {false, "upstream '" + pool.name + "' has no usable backend"};
  }
  return {true, ""};
}

std::string status_json(const conf::Snapshot& snapshot, const ProcessInfo& info) {
  nlohmann::ordered_json j;
  j["version"] = info.version;
  j["started_at"] = iso_time(info.started_ms);
  j["workers"] = info.workers.load(std::memory_order_relaxed);
  j["draining"] = info.draining.load(std::memory_order_relaxed);
  j["config"] = {{"path", info.config_path},
                 {"loaded_at", iso_time(info.config_loaded_ms.load(std::memory_order_relaxed))},
                 {"generation", snapshot.generation}};
  j["reloads"] = {{"ok", info.reloads_ok.load(std::memory_order_relaxed)},
                  {"failed", info.reloads_failed.load(std::memory_order_relaxed)}};
  j["admin"] = snapshot.config.admin.address.text;  // a page is served only with the admin on
  j["listeners"] = nlohmann::ordered_json::array();
  for (const conf::ListenerConfig& l : snapshot.config.listeners)
    j["listeners"].push_back({{"address", l.address.text}, {"tls", l.tls.has_value()}});
  j["routes"] = nlohmann::ordered_json::array();
  for (const conf::Route& r : snapshot.routes)
    j["routes"].push_back({{"host", r.config.host},
                           {"path_prefix", r.config.path_prefix},
                           {"upstream", snapshot.upstreams[r.upstream].pool.name}});
  j["upstreams"] = nlohmann::ordered_json::array();
  for (const conf::Upstream& up : snapshot.upstreams) {
    nlohmann::ordered_json u;
    u["name"] = up.pool.name;
    u["balance"] = up.pool.policy;
    u["health_checks"] = up.settings.health.enabled;
    u["backends"] = nlohmann::ordered_json::array();
    for (const balancer::Backend& b : up.pool.backends) u["backends"].push_back(backend_json(b));
    j["upstreams"].push_back(std::move(u));
  }
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

void Pages::serve(const core::MessageHead& request, const conf::IpAddress& client,
                  core::LocalPage* page) {
  const conf::Snapshot& snapshot = *ctx_.current->snapshot;
  const std::string_view path = request.path();
  if (path == "/cache/purge") return purge(request, client, page);
  if (request.method != HTTP_GET && request.method != HTTP_HEAD) {
    page->status = 405;
    page->body = "the admin listener answers GET and HEAD, and POST on /cache/purge only\n";
  } else if (path == "/healthz") {
    page->body = "ok\n";
  } else if (path == "/readyz") {
    const Readiness r = readiness(snapshot, info_.listening.load(std::memory_order_relaxed),
                                  info_.draining.load(std::memory_order_relaxed));
    page->status = r.ready ? 200 : 503;
    page->body = r.ready ? "ready\n" : "not ready: " + r.why + "\n";
  } else if (path == "/status") {
    page->content_type = "application/json";
    page->body = status_json(snapshot, info_);
  } else if (path == "/metrics" && info_.registry) {
    metrics(snapshot, page);
  } else {
    page->status = 404;
    page->body =
        "no such page; there are /healthz, /readyz, /status, /metrics and POST /cache/purge\n";
  }
}

void Pages::metrics(const conf::Snapshot& snapshot, core::LocalPage* page) {
  metrics::ProcessFigures figures;
  figures.version = info_.version;
  figures.generation = snapshot.generation;
  figures.config_loaded_ms = info_.config_loaded_ms.load(std::memory_order_relaxed);
  figures.reloads_ok = info_.reloads_ok.load(std::memory_order_relaxed);
  figures.reloads_failed = info_.reloads_failed.load(std::memory_order_relaxed);
  figures.access_lines_dropped = info_.access_lines_dropped ? info_.access_lines_dropped() : 0;
  figures.draining = info_.draining.load(std::memory_order_relaxed);
  // A route's cache, its counters included, is shared by every worker: read once, not summed.
  const std::vector<core::ResponseCache*>& caches = ctx_.current->caches;
  for (size_t i = 0; i < caches.size(); ++i)
    if (caches[i]) figures.caches.push_back({i, caches[i]->figures()});
  page->content_type = metrics::kPrometheusContentType;
  page->body = info_.registry->render(snapshot, figures);
}

void Pages::purge(const core::MessageHead& request, const conf::IpAddress& client,
                  core::LocalPage* page) {
  if (request.method != HTTP_POST) {
    page->status = 405;
    page->body = "/cache/purge takes POST only\n";
    return;
  }
  // The admin listener may listen on a management network; dropping what is stored may not
  // be done from there.
  if (!is_loopback(client)) {
    page->status = 403;
    page->body = "/cache/purge answers loopback clients only\n";
    return;
  }
  const std::string_view target = request.origin_target();
  const size_t question = target.find('?');
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  PurgeOrder order;
  if (const char* why = parse_purge(query, &order)) {
    page->status = 400;
    page->body = why;
    page->body += '\n';
    return;
  }
  const size_t purged =
      info_.purge_caches ? info_.purge_caches(*ctx_.current, order.text, order.prefix) : 0;
  page->content_type = "application/json";
  page->body = "{\"purged\": " + std::to_string(purged) + "}\n";
}

}  // namespace sluice::admin
