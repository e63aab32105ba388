// c-ares lookups on the thread pool. A blocking loop per lookup keeps the c-ares channel
// private to one thread, and the pool keeps it off the main loop too.
#include "health/dns_watch.h"

#include <ares.h>

#include <algorithm>

#include "core/io/log.h"
#include "health/dns_lookup.h"

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

}  // namespace

DnsWatch::DnsWatch(uv_loop_t* loop, std::function<void()> on_change)
    : loop_(loop), on_change_(std::move(on_change)) {
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
  DnsResult result = lookup_name(lookup->name, lookup->port, lookup->resolver);
  lookup->status = result.status;
  lookup->addresses = std::move(result.addresses);
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
