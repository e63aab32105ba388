// What one worker's connections share: its loop, its pools and the config generation it serves.
// Everything here belongs to one thread, so nothing in it is locked or atomic.
#pragma once

#include <uv.h>

#include <memory>
#include <vector>

#include "balancer/policy.h"
#include "conf/snapshot.h"
#include "core/http/http_head.h"
#include "core/http/http_parser.h"
#include "core/io/buffer.h"
#include "core/io/transport.h"
#include "core/proxy/backend_slots.h"
#include "core/proxy/counters.h"
#include "core/proxy/origin.h"
#include "core/proxy/phases.h"
#include "core/proxy/request_id.h"
#include "core/proxy/response_cache.h"
#include "core/proxy/upstream.h"

namespace sluice::core {

class Downstream;

// A snapshot as one worker uses it: with the worker's own policy instances, and a plain
// (non-atomic) count of the exchanges still running on it.
struct Generation {
  std::shared_ptr<const conf::Snapshot> snapshot;
  std::vector<std::unique_ptr<balancer::Policy>> policies;  // one per snapshot upstream
  std::vector<bool> needs_key;         // per upstream: its policy hashes a request key
  std::vector<bool> counts_active;     // per upstream: its policy reads in-flight counts
  std::vector<Connector*> connectors;  // per upstream: how connections to its backends are made
  PhaseChains chains;
  std::vector<std::shared_ptr<void>> owned;  // what the chains point at, freed with them
  ParseLimits limits;
  uint64_t max_body = 0;  // request body bytes allowed (0: any)
  uint32_t users = 0;
  // Listener ids (kept across reloads) to their index in this snapshot's config, where the
  // per-listener tables are: after a reload removes a listener, the two differ.
  std::vector<int32_t> listener_index;
  // Per route: its cache on this worker, or null; empty when no route has one.
  std::vector<ResponseCache*> caches;
  ResponseCache* cache_of(int32_t route) const {
    return route >= 0 && static_cast<size_t>(route) < caches.size() ? caches[route] : nullptr;
  }
  int32_t index_of_listener(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < listener_index.size() ? listener_index[id] : -1;
  }
};

struct WorkerContext {
  explicit WorkerContext(uv_loop_t* l) : loop(l) {}

  Generation* hold() {
    ++current->users;
    return current;
  }
  void release(Generation* g) {
    if (g->users > 0) --g->users;
    if (g->users == 0 && g != current) retire(g);
  }
  void retire(Generation* g);  // frees a generation nobody holds any more
  // Serves `snapshot` from now on. `connectors` has one entry per upstream (TLS to its backends,
  // say); a missing or null entry takes the worker's plain `connector`. `listener_ids` has the
  // id of each config listener; empty: ids are the indexes.
  void adopt(std::shared_ptr<const conf::Snapshot> snapshot,
             const std::vector<Connector*>& connectors = {},
             const std::vector<int32_t>& listener_ids = {});

  uv_loop_t* loop;
  BlockPool blocks;
  BlockPool bulk_blocks{256 * 1024, 16};  // for bodies that arrive faster than a block a read
  HeadPool heads;
  UpstreamPool upstreams;
  BackendSlots backend_slots{loop};  // max_connections: requests in flight, and those waiting
  RequestIds request_ids;
  PageSource* pages = nullptr;      // the admin listener's pages, when it is on
  OriginSource* origins = nullptr;  // forward and intercept listeners' destinations
  ProxyCounters counters;           // for the metrics: bumped where the record cannot say it
  Generation* current = nullptr;
  std::vector<std::unique_ptr<Generation>> generations;  // current and retired-but-in-use
  std::unique_ptr<Connector> connector;                  // the worker's plain transport
  Downstream* clients = nullptr;                         // intrusive list, for draining
  size_t client_count = 0;
  std::vector<uint32_t> open_by_listener;  // client connections open, per listener index
  uint32_t worker_count = 1;               // limits.max_connections is shared out by this
  bool draining = false;
};

}  // namespace sluice::core
