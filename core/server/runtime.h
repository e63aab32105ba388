// A Runtime is what the main thread hands to workers on start and on every reload: the config
// snapshot and the TLS contexts loaded from the files it names. Both are immutable; a worker
// swaps to a new runtime between connections, and each connection keeps what it started with.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conf/snapshot.h"
#include "core/cache/route_cache.h"
#include "tls/client_context.h"
#include "tls/server_context.h"

namespace sluice::core {

struct Runtime {
  std::shared_ptr<const conf::Snapshot> snapshot;
  // Per listener: its certificates and settings; null for a plain listener.
  std::vector<std::shared_ptr<const tls::ServerContext>> listener_tls;
  // Per upstream: how to speak TLS to its backends; null for plain TCP. Unchanged settings and
  // files keep the same context across reloads, so pooled connections stay usable.
  std::vector<std::shared_ptr<const tls::ClientContext>> upstream_tls;
  std::vector<std::string> upstream_tls_stamps;  // per upstream: settings and file times
  // Per listener: its id (ListenerSet), the same for as long as a reload keeps the listener.
  std::vector<int32_t> listener_ids;
  uint32_t workers = 1;  // how many workers serve this runtime (max_connections is shared out)
  // Per route: its cache, shared by every worker; null for a route without one. A reload keeps
  // a route's cache (and what it holds) while its host, path and cache settings stay.
  std::vector<std::shared_ptr<cache::SharedCache>> route_caches;
};

// Sets out->route_caches for `config`'s routes, taking each from `previous` where it can.
void keep_route_caches(const conf::Config& config, const Runtime* previous, Runtime* out);

// Loads every certificate, key, CA and OCSP file `config` names into `out` (whose snapshot is
// left alone). False when any fails, with one line per problem in `errors`; `warnings` gets
// certificates close to expiry. Contexts of `previous` are reused where nothing changed.
bool load_tls(const conf::Config& config, const Runtime* previous, Runtime* out,
              std::vector<std::string>* errors, std::vector<std::string>* warnings);

}  // namespace sluice::core
