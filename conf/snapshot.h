// An immutable Snapshot: everything a request needs from config, shared by all workers through
// a shared_ptr. A request keeps the snapshot it started with, so a reload never changes a
// request halfway; backends keep their live state across reloads when name and address stay.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "balancer/backend.h"
#include "conf/access_list.h"
#include "conf/config.h"
#include "conf/rate_buckets.h"

namespace sluice::conf {

struct Upstream {
  balancer::Pool pool;
  UpstreamConfig settings;
};

struct Route {
  RouteConfig config;
  size_t upstream = 0;  // index into Snapshot::upstreams
};

struct Snapshot {
  Config config;
  std::vector<Upstream> upstreams;
  std::vector<Route> routes;
  AccessTables access;  // access lists by listener and route, and the trusted proxies
  RouteRates rates;     // per route: its rate_limit's buckets, shared by every worker; or null
  uint64_t generation = 0;

  // First route (in config order) whose host and path prefix match; nullptr when none does.
  // `host` may carry a port, which is ignored; matching is case-insensitive on the host.
  const Route* match(std::string_view host, std::string_view path) const;
};

// The current addresses of DNS-discovered backends, keyed by "name:port" as configured.
using DnsAnswers = std::map<std::string, std::vector<SocketAddress>>;
std::string dns_key(const BackendConfig& backend);

// Builds a snapshot from a validated config. Backend states are carried over from `previous`
// for every backend whose upstream name and address are unchanged. A DNS backend entry becomes
// one backend per address in `dns` (none while it has not resolved yet); one that appears on a
// later snapshot of an upstream with health checks waits for its first good check.
std::shared_ptr<const Snapshot> build_snapshot(Config config, const Snapshot* previous,
                                               const DnsAnswers* dns = nullptr);

}  // namespace sluice::conf
