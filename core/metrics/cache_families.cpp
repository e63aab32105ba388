// The sluice_cache_* families, one table row each, so a figure and its name stay together.
#include "core/metrics/cache_families.h"

#include <set>
#include <string>
#include <utility>

#include "core/metrics/registry.h"

namespace sluice::metrics {
namespace {

struct CacheFamily {
  const char* name;
  const char* type;
  const char* help;
  uint64_t core::CacheFigures::*value;
};

constexpr CacheFamily kCacheFamilies[] = {
    {"sluice_cache_hits_total", "counter", "Requests answered from a fresh stored response.",
     &core::CacheFigures::hits},
    {"sluice_cache_misses_total", "counter",
     "Requests sent to the backend because nothing usable was stored, or to revalidate a stored "
     "response.",
     &core::CacheFigures::misses},
    {"sluice_cache_stale_total", "counter",
     "Requests answered with a stale stored response (max-stale, stale-while-revalidate, "
     "stale-if-error).",
     &core::CacheFigures::stale},
    {"sluice_cache_revalidated_total", "counter",
     "Stored responses refreshed by a 304 from the backend.", &core::CacheFigures::revalidated},
    {"sluice_cache_collapsed_total", "counter",
     "Requests that waited on another request's fetch of the same response.",
     &core::CacheFigures::collapsed},
    {"sluice_cache_bypassed_total", "counter",
     "Requests the cache let pass (unsafe methods, no-store, HEAD without a stored response).",
     &core::CacheFigures::bypassed},
    {"sluice_cache_stored_total", "counter", "Responses stored.", &core::CacheFigures::stored},
    {"sluice_cache_evictions_total", "counter",
     "Stored responses evicted to keep the cache within max_bytes.", &core::CacheFigures::evicted},
    {"sluice_cache_invalidations_total", "counter",
     "Stored responses dropped after unsafe methods and by purges.",
     &core::CacheFigures::invalidated},
    {"sluice_cache_bytes", "gauge", "Bytes the stored responses take now.",
     &core::CacheFigures::bytes},
    {"sluice_cache_entries", "gauge", "Stored responses now, each Vary variant counted.",
     &core::CacheFigures::entries},
    {"sluice_cache_max_bytes", "gauge", "The cache's size limit (its max_bytes).",
     &core::CacheFigures::max_bytes},
};

}  // namespace

void write_cache_families(TextWriter& w, const conf::Snapshot& current,
                          const std::vector<RouteCacheFigures>& caches) {
  struct Shown {
    std::string route;
    const std::string* upstream;
    const core::CacheFigures* figures;
  };
  std::vector<Shown> shown;
  std::set<std::pair<std::string, std::string>> seen;
  for (const RouteCacheFigures& c : caches) {
    if (c.route >= current.routes.size()) continue;
    const conf::Route& route = current.routes[c.route];
    const std::string& upstream = current.upstreams[route.upstream].pool.name;
    std::string name = Registry::route_name(route.config);
    if (!seen.emplace(name, upstream).second) continue;
    shown.push_back({std::move(name), &upstream, &c.figures});
  }
  for (const CacheFamily& family : kCacheFamilies) {
    w.family(family.name, family.type, family.help);
    for (const Shown& s : shown)
      w.sample(family.name, {{"route", s.route}, {"upstream", *s.upstream}},
               (*s.figures).*family.value);
  }
}

}  // namespace sluice::metrics
