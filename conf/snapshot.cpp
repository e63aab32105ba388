// Builds snapshots from validated configs and matches requests to routes. Runs on the main
// thread at load and reload; match() runs on every request, so it allocates nothing.
#include "conf/snapshot.h"

#include <cstring>
#include <stdexcept>

#include "balancer/policy.h"

namespace sluice::conf {
namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// "example.com:8080" -> "example.com", "[::1]:8080" -> "[::1]"; a trailing dot (the fully
// qualified form) names the same host, so it goes too.
std::string_view bare_host(std::string_view host) {
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    if (close != std::string_view::npos) return host.substr(0, close + 1);
    return host;
  }
  host = host.substr(0, host.find(':'));
  if (host.ends_with('.')) host.remove_suffix(1);
  return host;
}

bool host_matches(std::string_view pattern, std::string_view host) {
  if (pattern.empty()) return true;
  if (pattern.starts_with("*.")) {
    // "*.example.com" wants at least one label before ".example.com", so not the apex itself.
    const std::string_view suffix = pattern.substr(1);
    return host.size() > suffix.size() &&
           equal_ignoring_case(host.substr(host.size() - suffix.size()), suffix);
  }
  return equal_ignoring_case(pattern, host);
}

const balancer::Pool* find_pool(const Snapshot* snapshot, std::string_view name) {
  if (snapshot == nullptr) return nullptr;
  for (const Upstream& upstream : snapshot->upstreams)
    if (upstream.pool.name == name) return &upstream.pool;
  return nullptr;
}

balancer::Backend make_backend(const UpstreamConfig& settings, const BackendConfig& config,
                               const SocketAddress& address, const balancer::Pool* previous) {
  balancer::Backend backend;
  backend.max_connections = config.max_connections.value_or(settings.max_connections);
  backend.address = address.text;
  backend.address_hash = balancer::hash_key(backend.address);
  std::memcpy(&backend.sockaddr, &address.storage, sizeof backend.sockaddr);
  backend.sockaddr_len = address.length;
  backend.weight = config.weight;
  backend.backup = config.backup;
  backend.from_dns = config.from_dns();
  // Same upstream, same address: the same server, so its health and in-flight count carry
  // over. A backend listed twice shares one state, which is what the server would see.
  if (previous != nullptr) {
    for (const balancer::Backend& old : previous->backends) {
      if (old.address == backend.address) {
        backend.state = old.state;
        return backend;
      }
    }
  }
  return backend;
}

bool known_to(const balancer::Pool* previous, const std::string& address) {
  if (previous == nullptr) return false;
  for (const balancer::Backend& old : previous->backends)
    if (old.address == address) return true;
  return false;
}

balancer::Pool make_pool(const UpstreamConfig& settings, const balancer::Pool* previous,
                         const DnsAnswers* dns) {
  balancer::Pool pool;
  pool.name = settings.name;
  pool.policy = settings.balance;
  pool.slow_start_ms = settings.slow_start_ms;
  for (const BackendConfig& config : settings.backends) {
    if (!config.from_dns()) {
      pool.backends.push_back(make_backend(settings, config, config.address, previous));
      continue;
    }
    if (dns == nullptr) continue;
    auto found = dns->find(dns_key(config));
    if (found == dns->end()) continue;
    for (const SocketAddress& address : found->second) {
      const bool is_new = previous != nullptr && !known_to(previous, address.text);
      pool.backends.push_back(make_backend(settings, config, address, previous));
      // A backend that appears while traffic flows gets requests only after a good check.
      if (is_new && settings.health.enabled) pool.backends.back().state->up = false;
    }
  }
  for (const balancer::Backend& backend : pool.backends)
    pool.limited = pool.limited || backend.max_connections > 0;
  return pool;
}

// Built here, once per snapshot on the main thread, so workers only ever read the table.
void prepare_table(balancer::Pool& pool) {
  const balancer::PolicyType* type = balancer::find_policy(pool.policy);
  // parse_config guarantees this; a hand-built Config that breaks it is a programming error.
  if (type == nullptr)
    throw std::invalid_argument("upstream \"" + pool.name + "\" names unknown policy \"" +
                                pool.policy + "\"");
  if (type->prepare != nullptr) pool.table = type->prepare(pool);
}

}  // namespace

const Route* Snapshot::match(std::string_view host, std::string_view path) const {
  const std::string_view bare = bare_host(host);
  for (const Route& route : routes) {
    if (host_matches(route.config.host, bare) && path.starts_with(route.config.path_prefix))
      return &route;
  }
  return nullptr;
}

std::string dns_key(const BackendConfig& backend) {
  return backend.dns_name + ":" + std::to_string(backend.dns_port);
}

std::shared_ptr<const Snapshot> build_snapshot(Config config, const Snapshot* previous,
                                               const DnsAnswers* dns) {
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->generation = previous == nullptr ? 1 : previous->generation + 1;
  for (const UpstreamConfig& settings : config.upstreams) {
    snapshot->upstreams.push_back(
        Upstream{make_pool(settings, find_pool(previous, settings.name), dns), settings});
  }
  // Tables are prepared only now, with every pool at its final address, so a table may keep
  // pointers into its pool.
  for (Upstream& upstream : snapshot->upstreams) prepare_table(upstream.pool);
  for (const RouteConfig& route : config.routes) {
    size_t index = 0;
    while (index < config.upstreams.size() && config.upstreams[index].name != route.upstream)
      ++index;
    // parse_config guarantees this; a hand-built Config that breaks it is a programming error.
    if (index == config.upstreams.size())
      throw std::invalid_argument("route names unknown upstream \"" + route.upstream + "\"");
    snapshot->routes.push_back(Route{route, index});
  }
  snapshot->access = build_access_tables(config);
  snapshot->rates = build_route_rates(config, previous);
  snapshot->config = std::move(config);
  return snapshot;
}

}  // namespace sluice::conf
