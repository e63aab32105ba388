// The cache families of /metrics: for each cached route of the serving config, what its cache
// has counted and holds. A route's cache is shared by every worker, so its figures are read
// once per scrape, from the scraping worker's caches, and never summed over workers.
#pragma once

#include <cstddef>
#include <vector>

#include "conf/snapshot.h"
#include "core/metrics/prometheus.h"
#include "core/proxy/response_cache.h"

namespace sluice::metrics {

struct RouteCacheFigures {
  size_t route = 0;  // the route's index in the snapshot the scrape renders
  core::CacheFigures figures;
};

// Every sluice_cache_* family, with one sample per cached route labelled as the request
// families label it (route and upstream names). A route whose labels an earlier route has
// already shown is left out: first match wins, so it never serves a request.
void write_cache_families(TextWriter& w, const conf::Snapshot& current,
                          const std::vector<RouteCacheFigures>& caches);

}  // namespace sluice::metrics
