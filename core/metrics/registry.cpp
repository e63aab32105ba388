// The metrics observer (per worker and generation), the registry's names and slots, and the sum
// a scrape renders.
#include "core/metrics/registry.h"

#include <algorithm>
#include <set>

#include "core/metrics/prometheus.h"
#include "core/proxy/worker_context.h"

namespace sluice::metrics {
namespace {

size_t status_class(uint16_t status) {
  return status >= 100 && status < 600 ? status / 100 : 0;
}

constexpr std::array<const char*, kStatusClasses> kClassNames = {"none", "1xx", "2xx",
                                                                 "3xx",  "4xx", "5xx"};

std::string key_of(const std::string& a, const std::string& b) {
  std::string key = a;
  key += '\0';
  key += b;
  return key;
}

// Counts the exchanges of one generation on one worker, into slots found at adopt time.
class GenerationCounter final : public core::ExchangeObserver {
 public:
  GenerationCounter(WorkerPart& part, std::vector<RouteSeries*> routes, RouteSeries* unrouted,
                    std::vector<Histogram*> upstreams, std::vector<uint32_t> backend_offsets,
                    std::vector<Histogram*> backends)
      : part_(part),
        routes_(std::move(routes)),
        unrouted_(unrouted),
        upstreams_(std::move(upstreams)),
        backend_offsets_(std::move(backend_offsets)),
        backends_(std::move(backends)) {}

  void on_finish(const core::ExchangeRecord& record, const core::MessageHead*) override {
    if (record.listener == core::kAdminListener) return;  // the admin's own pages: not traffic
    part_.outcomes[static_cast<size_t>(record.outcome) % kOutcomes].add();
    RouteSeries& series = record.route >= 0 && static_cast<size_t>(record.route) < routes_.size()
                              ? *routes_[record.route]
                              : *unrouted_;
    series.classes[status_class(record.status)].add();
    if (record.request_bytes) series.request_bytes.add(record.request_bytes);
    series.response_bytes.add(record.response_bytes);
    if (record.local) part_.local_replies[record.status < kStatuses ? record.status : 0].add();
    // Latency of the exchanges a backend answered; a protocol switch's tunnel is not one.
    if (record.first_byte_ms == 0 || record.upstream < 0 ||
        record.outcome == core::Outcome::kTunnelClosed ||
        static_cast<size_t>(record.upstream) >= upstreams_.size())
      return;
    const uint64_t ms = record.end_ms > record.start_ms ? record.end_ms - record.start_ms : 0;
    upstreams_[record.upstream]->observe(ms);
    if (record.backend < 0) return;
    const size_t slot = backend_offsets_[record.upstream] + static_cast<size_t>(record.backend);
    if (slot < backend_offsets_[record.upstream + 1]) backends_[slot]->observe(ms);
  }

 private:
  WorkerPart& part_;
  std::vector<RouteSeries*> routes_;       // per snapshot route
  RouteSeries* unrouted_;                  // requests no route matched
  std::vector<Histogram*> upstreams_;      // per snapshot upstream
  std::vector<uint32_t> backend_offsets_;  // per upstream, where its backends start; one more
  std::vector<Histogram*> backends_;       // every upstream's backends, one after another
};

template <typename T>
T* slot_in(std::deque<T>& slots, uint32_t slot) {
  while (slots.size() <= slot) slots.emplace_back();
  return &slots[slot];
}

}  // namespace

uint32_t Registry::Names::slot(const std::string& a, const std::string& b) {
  const auto [it, added] = slots.emplace(key_of(a, b), static_cast<uint32_t>(labels.size()));
  if (added) labels.push_back({a, b});
  return it->second;
}

const uint32_t* Registry::Names::find(const std::string& a, const std::string& b) const {
  const auto it = slots.find(key_of(a, b));
  return it == slots.end() ? nullptr : &it->second;
}

std::string Registry::route_name(const conf::RouteConfig& route) {
  return (route.host.empty() ? std::string("*") : route.host) + route.path_prefix;
}

Registry::Registry(size_t workers) {
  for (size_t i = 0; i < workers; ++i) parts_.push_back(std::make_unique<WorkerPart>());
}

WorkerPart& Registry::add_worker() {
  std::lock_guard<std::mutex> lock(mutex_);
  parts_.push_back(std::make_unique<WorkerPart>());
  return *parts_.back();
}

namespace {

template <typename T>
void fold(std::deque<T>& into, const std::deque<T>& from, void (*add)(T&, const T&)) {
  while (into.size() < from.size()) into.emplace_back();
  for (size_t i = 0; i < from.size(); ++i) add(into[i], from[i]);
}

void add_series(RouteSeries& into, const RouteSeries& from) {
  for (size_t c = 0; c < kStatusClasses; ++c) into.classes[c].add(from.classes[c].get());
  into.request_bytes.add(from.request_bytes.get());
  into.response_bytes.add(from.response_bytes.get());
}

void add_histogram(Histogram& into, const Histogram& from) {
  for (size_t b = 0; b < into.buckets.size(); ++b) into.buckets[b].add(from.buckets[b].get());
  into.sum_ms.add(from.sum_ms.get());
}

}  // namespace

void Registry::retire(WorkerPart& part) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < kOutcomes; ++i) retired_.outcomes[i].add(part.outcomes[i].get());
  for (size_t i = 0; i < kStatuses; ++i) retired_.local_replies[i].add(part.local_replies[i].get());
  fold(retired_.routes, part.routes, &add_series);
  fold(retired_.upstreams, part.upstreams, &add_histogram);
  fold(retired_.backends, part.backends, &add_histogram);
  if (const core::WorkerContext* ctx = part.context) {
    const core::ProxyCounters& c = ctx->counters;
    retired_clients_.clients_accepted.add(c.clients_accepted.get());
    retired_clients_.clients_closed.add(c.clients_closed.get());
    retired_clients_.clients_refused.add(c.clients_refused.get());
    retired_clients_.upstream_opened.add(c.upstream_opened.get());
    retired_clients_.upstream_reused.add(c.upstream_reused.get());
    retired_clients_.retries.add(c.retries.get());
  }
  parts_.erase(std::find_if(parts_.begin(), parts_.end(),
                            [&part](const auto& p) { return p.get() == &part; }));
}

void Registry::attach(WorkerPart& part, const core::WorkerContext* context) {
  std::lock_guard<std::mutex> lock(mutex_);
  part.context = context;
}

std::shared_ptr<core::ExchangeObserver> Registry::observer(WorkerPart& part,
                                                           const conf::Snapshot& snapshot) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<RouteSeries*> routes;
  for (const conf::Route& route : snapshot.routes) {
    const std::string& upstream = snapshot.upstreams[route.upstream].pool.name;
    routes.push_back(slot_in(part.routes, routes_.slot(route_name(route.config), upstream)));
  }
  RouteSeries* unrouted = slot_in(part.routes, routes_.slot("", ""));
  std::vector<Histogram*> upstreams, backends;
  std::vector<uint32_t> offsets;
  for (const conf::Upstream& up : snapshot.upstreams) {
    upstreams.push_back(slot_in(part.upstreams, upstreams_.slot(up.pool.name, "")));
    offsets.push_back(static_cast<uint32_t>(backends.size()));
    for (const balancer::Backend& b : up.pool.backends)
      backends.push_back(slot_in(part.backends, backends_.slot(up.pool.name, b.address)));
  }
  offsets.push_back(static_cast<uint32_t>(backends.size()));
  return std::make_shared<GenerationCounter>(part, std::move(routes), unrouted,
                                             std::move(upstreams), std::move(offsets),
                                             std::move(backends));
}

Totals Registry::sum() {
  std::lock_guard<std::mutex> lock(mutex_);
  return sum_locked();
}

// One part's counters into `t` (connection counters aside).
void Registry::add_part(Totals& t, const WorkerPart& part) {
  auto add_latency = [](Totals::Latency& to, const Histogram& from) {
    for (size_t b = 0; b < to.buckets.size(); ++b) to.buckets[b] += from.buckets[b].get();
    to.sum_ms += from.sum_ms.get();
  };
  for (size_t i = 0; i < kOutcomes; ++i) t.outcomes[i] += part.outcomes[i].get();
  for (size_t i = 0; i < kStatuses; ++i) t.local_replies[i] += part.local_replies[i].get();
  for (size_t s = 0; s < part.routes.size(); ++s) {
    for (size_t c = 0; c < kStatusClasses; ++c)
      t.route_classes[s][c] += part.routes[s].classes[c].get();
    t.route_request_bytes[s] += part.routes[s].request_bytes.get();
    t.route_response_bytes[s] += part.routes[s].response_bytes.get();
  }
  for (size_t s = 0; s < part.upstreams.size(); ++s) add_latency(t.upstreams[s], part.upstreams[s]);
  for (size_t s = 0; s < part.backends.size(); ++s) add_latency(t.backends[s], part.backends[s]);
}

Totals Registry::sum_locked() {
  Totals t;
  t.route_classes.resize(routes_.labels.size());
  t.route_request_bytes.resize(routes_.labels.size());
  t.route_response_bytes.resize(routes_.labels.size());
  t.upstreams.resize(upstreams_.labels.size());
  t.backends.resize(backends_.labels.size());
  add_part(t, retired_);
  uint64_t closed = 0;
  auto add_clients = [&](const core::ProxyCounters& c) {
    // Closed before accepted, so that a connection that comes and goes meanwhile never
    // shows as a negative number open.
    closed += c.clients_closed.get();
    t.clients_accepted += c.clients_accepted.get();
    t.clients_refused += c.clients_refused.get();
    t.upstream_opened += c.upstream_opened.get();
    t.upstream_reused += c.upstream_reused.get();
    t.retries += c.retries.get();
  };
  add_clients(retired_clients_);
  for (const auto& part : parts_) {
    add_part(t, *part);
    if (const core::WorkerContext* ctx = part->context) {
      add_clients(ctx->counters);
      t.upstream_idle += ctx->upstreams.idle_count();
    }
  }
  t.clients_open = t.clients_accepted > closed ? t.clients_accepted - closed : 0;
  return t;
}

uint64_t Registry::ejections_locked(uint32_t slot, const balancer::Backend& backend) {
  if (ejections_.size() <= slot) ejections_.resize(slot + 1);
  Ejections& e = ejections_[slot];
  if (e.state.lock() != backend.state) {  // a state made anew: its count starts at 0
    e.state = backend.state;
    e.base = e.shown;
  }
  e.shown =
      std::max(e.shown, e.base + backend.state->ejections_total.load(std::memory_order_relaxed));
  return e.shown;
}

std::string Registry::render(const conf::Snapshot& current, const ProcessFigures& figures) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Totals t = sum_locked();
  std::string out;
  out.reserve(4096 + 2048 * (routes_.labels.size() + backends_.labels.size()));
  TextWriter w(&out);

  w.family("sluice_build_info", "gauge", "Always 1; the version of the running binary.");
  w.sample("sluice_build_info", {{"version", figures.version}}, uint64_t{1});
  w.family("sluice_config_generation", "gauge", "Config generation the scraped worker serves.");
  w.sample("sluice_config_generation", {}, figures.generation);
  w.family("sluice_config_loaded_timestamp_seconds", "gauge",
           "Unix time of the last successful config load.");
  w.sample("sluice_config_loaded_timestamp_seconds", {},
           static_cast<double>(figures.config_loaded_ms) / 1000.0);
  w.family("sluice_config_reloads_total", "counter", "Config reloads (SIGHUP) by outcome.");
  w.sample("sluice_config_reloads_total", {{"outcome", "ok"}}, figures.reloads_ok);
  w.sample("sluice_config_reloads_total", {{"outcome", "failed"}}, figures.reloads_failed);
  w.family("sluice_draining", "gauge", "1 once SIGTERM has begun the drain, else 0.");
  w.sample("sluice_draining", {}, uint64_t{figures.draining ? 1u : 0u});

  w.family("sluice_requests_total", "counter",
           "Requests by route, upstream and status class (none: no response was sent).");
  for (size_t s = 0; s < routes_.labels.size(); ++s)
    for (size_t c = 0; c < kStatusClasses; ++c)
      w.sample("sluice_requests_total",
               {{"route", routes_.labels[s][0]},
                {"upstream", routes_.labels[s][1]},
                {"class", kClassNames[c]}},
               t.route_classes[s][c]);
  w.family("sluice_request_bytes_total", "counter",
           "Request body bytes taken from clients, by route and upstream.");
  for (size_t s = 0; s < routes_.labels.size(); ++s)
    w.sample("sluice_request_bytes_total",
             {{"route", routes_.labels[s][0]}, {"upstream", routes_.labels[s][1]}},
             t.route_request_bytes[s]);
  w.family("sluice_response_bytes_total", "counter",
           "Bytes sent to clients, heads included, by route and upstream.");
  for (size_t s = 0; s < routes_.labels.size(); ++s)
    w.sample("sluice_response_bytes_total",
             {{"route", routes_.labels[s][0]}, {"upstream", routes_.labels[s][1]}},
             t.route_response_bytes[s]);
  w.family("sluice_exchange_outcomes_total", "counter", "Finished exchanges by how they ended.");
  for (size_t i = 0; i < kOutcomes; ++i)
    w.sample("sluice_exchange_outcomes_total",
             {{"outcome", core::outcome_name(static_cast<core::Outcome>(i))}}, t.outcomes[i]);
  w.family("sluice_local_replies_total", "counter",
           "Responses the proxy made itself (404, 502, 503, 504, 400 ...), by status.");
  for (size_t i = 0; i < kStatuses; ++i) {
    if (t.local_replies[i] == 0) continue;
    const std::string status = i == 0 ? "other" : std::to_string(i);
    w.sample("sluice_local_replies_total", {{"status", status}}, t.local_replies[i]);
  }
  w.family("sluice_retries_total", "counter",
           "Upstream attempts after the first: another backend, or a fresh connection.");
  w.sample("sluice_retries_total", {}, t.retries);

  w.family("sluice_client_connections_accepted_total", "counter",
           "Client connections accepted (admin listener included).");
  w.sample("sluice_client_connections_accepted_total", {}, t.clients_accepted);
  w.family("sluice_client_connections_refused_total", "counter",
           "Client connections closed at accept by a listener's access list.");
  w.sample("sluice_client_connections_refused_total", {}, t.clients_refused);
  w.family("sluice_client_connections_open", "gauge", "Client connections open now.");
  w.sample("sluice_client_connections_open", {}, t.clients_open);
  w.family("sluice_upstream_connections_opened_total", "counter",
           "Connections opened to backends for requests.");
  w.sample("sluice_upstream_connections_opened_total", {}, t.upstream_opened);
  w.family("sluice_upstream_connections_reused_total", "counter",
           "Requests sent on a pooled keep-alive connection.");
  w.sample("sluice_upstream_connections_reused_total", {}, t.upstream_reused);
  w.family("sluice_upstream_connections_idle", "gauge", "Idle pooled backend connections now.");
  w.sample("sluice_upstream_connections_idle", {}, t.upstream_idle);

  w.family("sluice_upstream_response_seconds", "histogram",
           "Time from the request head to the end of the response, for responses a backend "
           "sent, by upstream.");
  for (size_t s = 0; s < upstreams_.labels.size(); ++s)
    w.histogram("sluice_upstream_response_seconds", {{"upstream", upstreams_.labels[s][0]}},
                t.upstreams[s].buckets.data(), kLatencyBoundsMs.data(), kLatencyBoundsMs.size(),
                t.upstreams[s].sum_ms);
  w.family("sluice_backend_response_seconds", "histogram",
           "Time from the request head to the end of the response, by backend.");
  for (size_t s = 0; s < backends_.labels.size(); ++s)
    w.histogram("sluice_backend_response_seconds",
                {{"upstream", backends_.labels[s][0]}, {"backend", backends_.labels[s][1]}},
                t.backends[s].buckets.data(), kLatencyBoundsMs.data(), kLatencyBoundsMs.size(),
                t.backends[s].sum_ms);

  // The backends of the serving config, each once (a backend listed twice is one server).
  struct Shown {
    const std::array<std::string, 2>* labels;
    const balancer::Backend* backend;
    uint32_t slot;
  };
  std::vector<Shown> shown;
  std::set<uint32_t> seen;
  for (const conf::Upstream& up : current.upstreams)
    for (const balancer::Backend& b : up.pool.backends)
      if (const uint32_t* slot = backends_.find(up.pool.name, b.address);
          slot && seen.insert(*slot).second)
        shown.push_back({&backends_.labels[*slot], &b, *slot});
  w.family("sluice_backend_up", "gauge",
           "1 when the backend takes requests (checks pass, not ejected), else 0.");
  for (const Shown& s : shown)
    w.sample("sluice_backend_up", {{"upstream", (*s.labels)[0]}, {"backend", (*s.labels)[1]}},
             uint64_t{s.backend->up() ? 1u : 0u});
  w.family("sluice_backend_in_flight", "gauge", "Requests at the backend now, all workers.");
  for (const Shown& s : shown)
    w.sample("sluice_backend_in_flight",
             {{"upstream", (*s.labels)[0]}, {"backend", (*s.labels)[1]}},
             static_cast<uint64_t>(s.backend->health().active()));
  w.family("sluice_backend_ejections_total", "counter", "Passive ejections of the backend.");
  for (const Shown& s : shown)
    w.sample("sluice_backend_ejections_total",
             {{"upstream", (*s.labels)[0]}, {"backend", (*s.labels)[1]}},
             ejections_locked(s.slot, *s.backend));

  write_cache_families(w, current, figures.caches);

  w.family("sluice_access_log_lines_dropped_total", "counter",
           "Access log lines dropped because the log could not keep up.");
  w.sample("sluice_access_log_lines_dropped_total", {}, figures.access_lines_dropped);
  return out;
}

}  // namespace sluice::metrics
