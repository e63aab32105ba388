// A request for a name waits on the one lookup in flight for it, so a burst of requests for a
// new origin makes one DNS query. Every address a name has must be public (unless
// allow_private): a name that resolves both ways could otherwise be made to point inward.
#include "core/forward/origins.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "balancer/policy.h"
#include "conf/ip_address.h"
#include "core/forward/private_address.h"
#include "core/io/log.h"
#include "health/dns_lookup.h"

namespace sluice::forward {

struct ForwardOrigins::Lookup {
  uv_work_t work;
  ForwardOrigins* owner;
  std::string name;
  conf::ResolverConfig resolver;
  health::DnsResult result;
};

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
  return out;
}

bool literal_address(std::string_view host, uint16_t port, conf::SocketAddress* out) {
  std::string text(host);
  text.append(":").append(std::to_string(port));
  auto parsed = conf::parse_socket_address(text);
  if (!parsed) return false;
  *out = std::move(*parsed);
  return true;
}

}  // namespace

ForwardOrigins::~ForwardOrigins() {
  for (Lookup* lookup : lookups_) lookup->owner = nullptr;
  orphan_logins();
}

void ForwardOrigins::reply(core::OriginWaiter* waiter, int status, const std::string& detail,
                           int retry_after_s) {
  const core::Outcome outcome = status == 403 ? core::Outcome::kDenied : core::Outcome::kLocalReply;
  const core::LocalReply refusal{status, detail, retry_after_s, outcome};
  waiter->on_origin(nullptr, &refusal);
}

void ForwardOrigins::find(const core::OriginQuery& query, core::OriginWaiter* waiter) {
  if (!query.forward->users.empty()) return log_in(query, waiter);  // users first (logins.cpp)
  find_destination(query, waiter);
}

void ForwardOrigins::find_destination(const core::OriginQuery& query, core::OriginWaiter* waiter) {
  const conf::ForwardConfig& forward = *query.forward;
  std::string where(query.host);
  where.append(":").append(std::to_string(query.port));
  const conf::DestinationVerdict verdict = forward.allow.check(query.host, query.port);
  if (verdict == conf::DestinationVerdict::kRefused)
    return reply(waiter, 403, "this proxy does not go to " + where);
  conf::IpAddress ip;
  if (conf::host_literal(query.host, &ip)) {
    conf::SocketAddress address;
    if (verdict == conf::DestinationVerdict::kAllowed && !forward.allow_private &&
        private_address(ip))
      return reply(waiter, 403, where + " is a private address");
    if (!literal_address(query.host, query.port, &address))
      return reply(waiter, 400, "cannot read the address " + where);
    return waiter->on_origin(origin(query.host, query.port, address), nullptr);
  }
  Waiting waiting{waiter, std::string(query.host), query.port, forward.allow_private};
  const std::string name = lower(query.host);
  auto cached = names_.find(name);
  if (cached != names_.end() && cached->second.expires_ms > uv_now(loop_))
    return answer(cached->second, waiting);
  if (!pending_.count(name) && lookups_.size() >= kLookupsAtOnce)
    return reply(waiter, 503, "too many names being resolved at once", 1);
  auto [in_flight, first] = pending_.try_emplace(name);
  in_flight->second.push_back(std::move(waiting));
  if (!first) return;
  auto* lookup = new Lookup{{}, this, name, resolver_, {}};
  lookup->work.data = lookup;
  lookups_.insert(lookup);
  uv_queue_work(loop_, &lookup->work, &ForwardOrigins::resolve, &ForwardOrigins::on_resolved);
}

void ForwardOrigins::cancel(core::OriginWaiter* waiter) {
  forget_login(waiter);
  for (auto& [name, waiting] : pending_)
    std::erase_if(waiting, [waiter](const Waiting& w) { return w.waiter == waiter; });
}

void ForwardOrigins::resolve(uv_work_t* work) {
  auto* lookup = static_cast<Lookup*>(work->data);
  lookup->result = health::lookup_name(lookup->name, 80, lookup->resolver, false);  // port later
}

void ForwardOrigins::on_resolved(uv_work_t* work, int) {
  std::unique_ptr<Lookup> lookup(static_cast<Lookup*>(work->data));
  ForwardOrigins* self = lookup->owner;
  if (!self) return;
  self->lookups_.erase(lookup.get());
  Answer fresh;
  const health::DnsResult& result = lookup->result;
  const bool ok = result.status == 0 && !result.addresses.empty();
  if (ok) fresh.addresses = result.addresses;
  if (!ok) fresh.error = result.error();
  const uint32_t ttl = ok ? std::min(result.ttl_s, kMaxTtlS) : kFailureTtlS;
  fresh.expires_ms = uv_now(self->loop_) + uint64_t{ttl} * 1000;
  if (self->names_.size() >= kMaxNames) {
    std::erase_if(self->names_,
                  [&](const auto& e) { return e.second.expires_ms <= uv_now(self->loop_); });
    if (self->names_.size() >= kMaxNames) self->names_.erase(self->names_.begin());
  }
  const Answer& stored = self->names_[lookup->name] = std::move(fresh);
  auto node = self->pending_.extract(lookup->name);
  if (node.empty()) return;
  for (const Waiting& w : node.mapped()) self->answer(stored, w);
}

void ForwardOrigins::answer(const Answer& answer, const Waiting& w) {
  if (answer.addresses.empty())
    return reply(w.waiter, 502, "cannot resolve " + w.host + ": " + answer.error);
  if (!w.allow_private) {
    for (const conf::SocketAddress& a : answer.addresses) {
      const conf::IpAddress ip = conf::ip_address(a.storage);
      if (!private_address(ip)) continue;
      char text[64];
      conf::format_ip_address(ip, text, sizeof text);
      return reply(w.waiter, 403, w.host + " resolves to a private address (" + text + ")");
    }
  }
  conf::SocketAddress address = answer.addresses.front();
  const bool v6 = address.storage.ss_family == AF_INET6;
  if (v6)
    reinterpret_cast<sockaddr_in6*>(&address.storage)->sin6_port = htons(w.port);
  else
    reinterpret_cast<sockaddr_in*>(&address.storage)->sin_port = htons(w.port);
  char ip[64], text[80];
  conf::format_ip_address(conf::ip_address(address.storage), ip, sizeof ip);
  std::snprintf(text, sizeof text, v6 ? "[%s]:%u" : "%s:%u", ip, unsigned{w.port});
  address.text = text;
  w.waiter->on_origin(origin(w.host, w.port, address), nullptr);
}

// The origin for "host:port" at `address`, kept while its address stays the same.
std::shared_ptr<const core::Origin> ForwardOrigins::origin(std::string_view host, uint16_t port,
                                                           const conf::SocketAddress& address) {
  std::string key = lower(host);
  key.append(":").append(std::to_string(port));
  auto it = origins_.find(key);
  if (it != origins_.end()) {
    const balancer::Backend& b = it->second->pool.backends.front();
    if (b.sockaddr_len == address.length &&
        std::memcmp(&b.sockaddr, &address.storage, b.sockaddr_len) == 0)
      return it->second;
  }
  if (origins_.size() >= kMaxNames) origins_.erase(origins_.begin());
  auto made = std::make_shared<core::Origin>();
  made->pool.name = key;
  made->settings.retries = 0;  // one address: nowhere else to go
  // Idle connections pool under the address as well as the name: one made to an address that
  // was checked for another listener (allow_private there), or that the name no longer has,
  // never serves this one. It also keeps them apart from a reverse backend's.
  balancer::Backend backend;
  backend.address.reserve(address.text.size() + 5 + key.size());
  backend.address.append(address.text).append(" for ").append(key);
  backend.address_hash = balancer::hash_key(backend.address);
  backend.sockaddr = address.storage;
  backend.sockaddr_len = address.length;
  made->pool.backends.push_back(std::move(backend));
  origins_[key] = made;
  return made;
}

}  // namespace sluice::forward
