// c-ares lookups on the thread pool. A blocking loop per lookup keeps the c-ares channel
// private to one thread, and the pool keeps it off the main loop too.
#include "health/dns_watch.h"

#include <ares.h>
#include <arpa/inet.h>
#include <sys/select.h>

#include <algorithm>
#include <mutex>

#include "core/io/log.h"

namespace sluice::health {

using core::LogLevel;

struct DnsWatch::Lookup {
  uv_work_t work;
  DnsWatch* owner;
  std::string key, name;
  uint16_t port;
  conf::ResolverConfig resolver;
  int status = ARES_SUCCESS;
  std::vector<conf::SocketAddress> addresses;
};

namespace {

constexpr uint64_t kTickMs = 250;

void ensure_library() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

void collect(void* arg, int status, int, ares_addrinfo* result) {
  auto* out = static_cast<std::pair<int*, std::vector<conf::SocketAddress>*>*>(arg);
  *out->first = status;
  if (status != ARES_SUCCESS || result == nullptr) return;
  for (ares_addrinfo_node* n = result->nodes; n != nullptr; n = n->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    uint16_t port = 0;
    if (n->ai_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(n->ai_addr);
      inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
      port = ntohs(sin->sin_port);
    } else if (n->ai_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(n->ai_addr);
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
      port = ntohs(sin6->sin6_port);
    } else {
      continue;
    }
    std::string host;
    if (n->ai_family == AF_INET6)
      host.append("[").append(text).append("]");
    else
      host.append(text);
    host.append(":").append(std::to_string(port));
    if (auto parsed = conf::parse_socket_address(host)) out->second->push_back(std::move(*parsed));
  }
  ares_freeaddrinfo(result);
}

}  // namespace

DnsWatch::DnsWatch(uv_loop_t* loop, std::function<void()> on_change)
    : loop_(loop), on_change_(std::move(on_change)) {
  ensure_library();
  uv_timer_init(loop, &tick_);
  tick_.data = this;
}

DnsWatch::~DnsWatch() {
  stop();
}

void DnsWatch::configure(const conf::Config& config) {
  std::vector<Target> next;
  for (const conf::UpstreamConfig& upstream : config.upstreams) {
    for (const conf::BackendConfig& backend : upstream.backends) {
      if (!backend.from_dns()) continue;
      const std::string key = conf::dns_key(backend);
      if (std::any_of(next.begin(), next.end(), [&](const Target& t) { return t.key == key; }))
        continue;
      Target t;
      t.key = key;
      t.name = backend.dns_name;
      t.port = backend.dns_port;
      t.refresh_s = backend.refresh_s;
      for (const Target& old : targets_)
        if (old.key == key) t.in_flight = old.in_flight, t.failing = old.failing;
      next.push_back(std::move(t));
    }
  }
  targets_ = std::move(next);
  resolver_ = config.resolver;
  for (auto it = answers_.begin(); it != answers_.end();) {
    const bool listed = std::any_of(targets_.begin(), targets_.end(),
                                    [&](const Target& t) { return t.key == it->first; });
    it = listed ? std::next(it) : answers_.erase(it);
  }
  if (!targets_.empty() && !stopped_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(&tick_)))
    uv_timer_start(&tick_, &DnsWatch::on_tick, 0, kTickMs);
}

void DnsWatch::on_tick(uv_timer_t* timer) {
  auto* watch = static_cast<DnsWatch*>(timer->data);
  const uint64_t now = uv_now(watch->loop_);
  for (Target& t : watch->targets_)
    if (!t.in_flight && now >= t.next_due_ms) watch->start_lookup(t);
}

void DnsWatch::start_lookup(Target& target) {
  target.in_flight = true;
  target.next_due_ms = uv_now(loop_) + uint64_t{target.refresh_s} * 1000;
  auto* lookup = new Lookup{{}, this, target.key, target.name, target.port, resolver_, 0, {}};
  lookup->work.data = lookup;
  uv_queue_work(loop_, &lookup->work, &DnsWatch::resolve, &DnsWatch::on_resolved);
}

void DnsWatch::resolve(uv_work_t* work) {
  auto* lookup = static_cast<Lookup*>(work->data);
  ares_channel channel;
  ares_options options{};
  options.timeout = static_cast<int>(lookup->resolver.timeout_ms);
  options.tries = 2;
  if (ares_init_options(&channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS) {
    lookup->status = ARES_ENOMEM;
    return;
  }
  std::string servers;
  for (const std::string& s : lookup->resolver.nameservers) {
    if (!servers.empty()) servers += ',';
    servers += s;
  }
  if (!servers.empty()) ares_set_servers_ports_csv(channel, servers.c_str());
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NUMERICSERV;
  const std::string service = std::to_string(lookup->port);
  lookup->status = ARES_ETIMEOUT;
  std::pair<int*, std::vector<conf::SocketAddress>*> sink{&lookup->status, &lookup->addresses};
  ares_getaddrinfo(channel, lookup->name.c_str(), service.c_str(), &hints, &collect, &sink);
  for (;;) {
    fd_set readers, writers;
    FD_ZERO(&readers);
    FD_ZERO(&writers);
    const int nfds = ares_fds(channel, &readers, &writers);
    if (nfds == 0) break;
    timeval tv;
    timeval* wait = ares_timeout(channel, nullptr, &tv);
    select(nfds, &readers, &writers, nullptr, wait);
    ares_process(channel, &readers, &writers);
  }
  ares_destroy(channel);
}

void DnsWatch::on_resolved(uv_work_t* work, int) {
  auto* lookup = static_cast<Lookup*>(work->data);
  if (!lookup->owner->stopped_) lookup->owner->apply(*lookup);
  delete lookup;
}

void DnsWatch::apply(Lookup& lookup) {
  auto target = std::find_if(targets_.begin(), targets_.end(),
                             [&](const Target& t) { return t.key == lookup.key; });
  if (target == targets_.end()) return;  // no longer configured
  target->in_flight = false;
  if (lookup.status != ARES_SUCCESS || lookup.addresses.empty()) {
    if (!target->failing)
      core::log(LogLevel::kWarn, "dns %s: lookup failed (%s); keeping the last good answer",
                lookup.key.c_str(),
                lookup.status == ARES_SUCCESS ? "no addresses" : ares_strerror(lookup.status));
    target->failing = true;
    return;
  }
  if (target->failing)
    core::log(LogLevel::kInfo, "dns %s: lookups succeed again", lookup.key.c_str());
  target->failing = false;
  auto by_text = [](const conf::SocketAddress& a, const conf::SocketAddress& b) {
    return a.text < b.text;
  };
  std::sort(lookup.addresses.begin(), lookup.addresses.end(), by_text);
  lookup.addresses.erase(std::unique(lookup.addresses.begin(), lookup.addresses.end(),
                                     [](const auto& a, const auto& b) { return a.text == b.text; }),
                         lookup.addresses.end());
  std::vector<conf::SocketAddress>& current = answers_[lookup.key];
  const bool same = current.size() == lookup.addresses.size() &&
                    std::equal(current.begin(), current.end(), lookup.addresses.begin(),
                               [](const auto& a, const auto& b) { return a.text == b.text; });
  if (same) return;
  std::string list;
  for (const auto& a : lookup.addresses) list += " " + a.text;
  core::log(LogLevel::kInfo, "dns %s: %zu addresses:%s", lookup.key.c_str(),
            lookup.addresses.size(), list.c_str());
  current = std::move(lookup.addresses);
  on_change_();
}

void DnsWatch::stop() {
  if (stopped_) return;
  stopped_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
}

}  // namespace sluice::health
