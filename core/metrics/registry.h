// The proxy's counters, kept per worker and summed on a scrape.
//
// Each worker has a WorkerPart that only it writes (relaxed loads and stores, no locked
// instruction). Series are kept by stable names: a route by its host and path prefix with its
// upstream's name, an upstream by its name, a backend by its upstream's name and its address.
// The names map to slots; a slot, once made, stays for the life of the process, so a reload
// that keeps a name keeps counting on from where it was, and one that drops it only stops it.
// At adopt time a worker gets an observer for its new generation that points straight at the
// slots of that generation's routes, upstreams and backends: per request there is no lookup,
// no allocation and no lock. The one lock is the registry's: taken when a worker adopts a
// snapshot (slots may be added) and by a scrape, which may run on any worker.
//
// Workers come and go with reloads that change their number: a new one adds a part, and a
// retired one's counts are folded into the registry's own part once its thread is done, so no
// counter goes back.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "conf/snapshot.h"
#include "core/metrics/cache_families.h"
#include "core/proxy/counters.h"
#include "core/proxy/phases.h"

namespace sluice::core {
struct WorkerContext;
}

namespace sluice::metrics {

using core::LocalCounter;

// Upper bounds of the latency buckets, in ms (exposed in seconds); one more bucket past them.
inline constexpr std::array<uint32_t, 13> kLatencyBoundsMs = {1,   2,   5,    10,   25,   50,   100,
                                                              250, 500, 1000, 2500, 5000, 10000};
inline constexpr size_t kStatusClasses = 6;  // none (no response), 1xx, 2xx, 3xx, 4xx, 5xx
inline constexpr size_t kOutcomes = 12;      // core::Outcome's values
static_assert(kOutcomes == static_cast<size_t>(core::Outcome::kRateLimited) + 1);
inline constexpr size_t kStatuses = 600;  // local replies by status; 0 holds any other

struct Histogram {
  std::array<LocalCounter, kLatencyBoundsMs.size() + 1> buckets;  // per bucket, not cumulative
  LocalCounter sum_ms;
  void observe(uint64_t ms) {
    size_t i = 0;
    while (i < kLatencyBoundsMs.size() && ms > kLatencyBoundsMs[i]) ++i;
    buckets[i].add();
    sum_ms.add(ms);
  }
};

// Requests of one route (or of none: the unrouted slot) to its upstream.
struct RouteSeries {
  std::array<LocalCounter, kStatusClasses> classes;
  LocalCounter request_bytes;   // request body bytes taken from clients
  LocalCounter response_bytes;  // bytes sent to clients, heads included
};

// One worker's counters. Slot i of `routes`, `upstreams` and `backends` is the registry's
// name i of that kind; a worker has slots up to the highest name its generations used.
struct WorkerPart {
  const core::WorkerContext* context = nullptr;  // its connection counters and idle pool
  std::array<LocalCounter, kOutcomes> outcomes;
  std::array<LocalCounter, kStatuses> local_replies;
  std::deque<RouteSeries> routes;  // a deque: slots stay put as more are added
  std::deque<Histogram> upstreams;
  std::deque<Histogram> backends;
};

// What the process knows beyond the workers' counters, filled in for each scrape.
struct ProcessFigures {
  std::string version;
  uint64_t generation = 0;       // the config generation the scraping worker serves
  int64_t config_loaded_ms = 0;  // Unix ms of the last successful (re)load
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  uint64_t access_lines_dropped = 0;
  bool draining = false;
  std::vector<RouteCacheFigures> caches;  // the cached routes of the rendered snapshot
};

// Sums of every worker's counters, by slot (for the unit tests and the text).
struct Totals {
  std::array<uint64_t, kOutcomes> outcomes{};
  std::array<uint64_t, kStatuses> local_replies{};
  std::vector<std::array<uint64_t, kStatusClasses>> route_classes;
  std::vector<uint64_t> route_request_bytes, route_response_bytes;
  struct Latency {
    std::array<uint64_t, kLatencyBoundsMs.size() + 1> buckets{};
    uint64_t sum_ms = 0;
  };
  std::vector<Latency> upstreams, backends;
  uint64_t clients_accepted = 0, clients_open = 0, clients_refused = 0;
  uint64_t upstream_opened = 0, upstream_reused = 0, upstream_idle = 0, retries = 0;
};

class Registry {
 public:
  explicit Registry(size_t workers);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  WorkerPart& worker(size_t index) { return *parts_[index]; }
  size_t workers() const { return parts_.size(); }
  // A part for a worker that starts now (a reload raised the worker count).
  WorkerPart& add_worker();
  // The worker of `part` is done (its thread has ended): its counts, those of its connections
  // included, stay in the sums, and the part is gone.
  void retire(WorkerPart& part);
  // The worker whose connection counters and idle pool `part` reports. Before it runs.
  void attach(WorkerPart& part, const core::WorkerContext* context);

  // On the worker's thread when it adopts `snapshot`: the observer that counts that
  // generation's exchanges into `part`. It lives as long as the generation.
  std::shared_ptr<core::ExchangeObserver> observer(WorkerPart& part,
                                                   const conf::Snapshot& snapshot);

  // Every worker's counters summed, under the lock.
  Totals sum();
  // The whole exposition: the sums, the backends of `current` (health, in-flight, ejections)
  // and the process figures, its cached routes' included.
  std::string render(const conf::Snapshot& current, const ProcessFigures& figures);

  // The stable names: "HOST/PATH" (HOST "*" for any host) for a route.
  static std::string route_name(const conf::RouteConfig& route);

 private:
  struct Names {
    std::vector<std::array<std::string, 2>> labels;  // by slot
    std::map<std::string, uint32_t> slots;           // by key
    uint32_t slot(const std::string& a, const std::string& b);
    const uint32_t* find(const std::string& a, const std::string& b) const;
  };
  // A backend's passive ejections as a counter that never goes back: when the backend's state
  // is made anew (it left the config and came back) the count goes on from what was shown.
  struct Ejections {
    std::weak_ptr<const balancer::BackendState> state;
    uint64_t base = 0;
    uint64_t shown = 0;
  };
  Totals sum_locked();
  static void add_part(Totals& t, const WorkerPart& part);
  uint64_t ejections_locked(uint32_t slot, const balancer::Backend& backend);

  std::mutex mutex_;
  std::vector<std::unique_ptr<WorkerPart>> parts_;
  WorkerPart retired_;                   // what retired workers counted, summed
  core::ProxyCounters retired_clients_;  // ... and their connection counters
  Names routes_, upstreams_, backends_;
  std::vector<Ejections> ejections_;  // by backend slot
};

}  // namespace sluice::metrics
