// Rate buckets. Every atomic here is read and written relaxed: each bucket and each key is one
// word on its own, and no other memory is published through them.
#include "conf/rate_buckets.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "conf/snapshot.h"

namespace sluice::conf {

namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;
constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr int kClaimTries = 4;  // a set changed under us this often: let the client through

uint64_t mix(uint64_t h) {  // MurmurHash3's finalizer
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

}  // namespace

RateShape rate_shape(uint32_t per_second, uint32_t burst) {
  RateShape shape;
  if (per_second == 0) return shape;
  shape.interval_ns = kNsPerSecond / per_second;
  shape.window_ns = shape.interval_ns * std::max<uint32_t>(burst, 1);
  return shape;
}

uint64_t take_token(std::atomic<uint64_t>& bucket, const RateShape& shape, uint64_t now_ns) {
  uint64_t full_at = bucket.load(kRelaxed);
  for (;;) {
    const uint64_t next = std::max(full_at, now_ns) + shape.interval_ns;
    if (next - now_ns > shape.window_ns) return next - now_ns - shape.window_ns;
    if (bucket.compare_exchange_weak(full_at, next, kRelaxed, kRelaxed)) return 0;
  }
}

void return_token(std::atomic<uint64_t>& bucket, const RateShape& shape) {
  uint64_t full_at = bucket.load(kRelaxed);
  uint64_t back;
  do {
    back = full_at > shape.interval_ns ? full_at - shape.interval_ns : 0;
  } while (!bucket.compare_exchange_weak(full_at, back, kRelaxed, kRelaxed));
}

ClientBuckets::ClientBuckets(RateShape shape, uint32_t max_clients)
    : shape_(shape),
      sets_(std::max<size_t>(1, (max_clients + kWays - 1) / kWays)),
      slots_(std::make_unique<Slot[]>(sets_ * kWays)) {}

// The client's slot, claimed when it has none. The victim's bucket is reset to full only if
// nobody charged it between our look and our claim (then the charge was the new owner's).
std::atomic<uint64_t>* ClientBuckets::claim(uint64_t key) {
  Slot* set = set_of(key);
  for (int attempt = 0; attempt < kClaimTries; ++attempt) {
    size_t victim = 0;
    uint64_t victim_key = 0, victim_full = 0;
    for (size_t i = 0; i < kWays; ++i) {
      const uint64_t k = set[i].key.load(kRelaxed);
      if (k == key) return &set[i].full_at;
      const uint64_t full = set[i].full_at.load(kRelaxed);
      const bool better = i == 0 || (victim_key != 0 && (k == 0 || full < victim_full));
      if (better) victim = i, victim_key = k, victim_full = full;
    }
    if (set[victim].key.compare_exchange_strong(victim_key, key, kRelaxed, kRelaxed)) {
      set[victim].full_at.compare_exchange_strong(victim_full, 0, kRelaxed, kRelaxed);
      return &set[victim].full_at;
    }
  }
  return nullptr;
}

uint64_t ClientBuckets::take(uint64_t key, uint64_t now_ns) {
  std::atomic<uint64_t>* bucket = claim(key);
  return bucket == nullptr ? 0 : take_token(*bucket, shape_, now_ns);
}

void ClientBuckets::give_back(uint64_t key) {
  Slot* set = set_of(key);
  for (size_t i = 0; i < kWays; ++i) {
    if (set[i].key.load(kRelaxed) != key) continue;
    return_token(set[i].full_at, shape_);
    return;
  }
}

size_t ClientBuckets::clients() const {
  size_t count = 0;
  for (size_t i = 0; i < capacity(); ++i) count += slots_[i].key.load(kRelaxed) != 0;
  return count;
}

RouteRate::RouteRate(const RateLimitConfig& settings)
    : settings_(settings),
      seed_((uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()),
      route_shape_(rate_shape(settings.rps, settings.rps)) {
  if (settings.per_client_rps > 0)
    clients_ = std::make_unique<ClientBuckets>(rate_shape(settings.per_client_rps, settings.burst),
                                               settings.max_clients);
}

uint64_t RouteRate::client_key(const IpAddress& client) const {
  uint64_t words[2];
  std::memcpy(words, client.bytes, sizeof(words));
  uint64_t h = mix(seed_ ^ words[0]);
  h = mix(h ^ words[1]);
  h = mix(h ^ client.family);
  return h == 0 ? 1 : h;
}

RateVerdict RouteRate::admit(const IpAddress& client, uint64_t now_ns) {
  uint64_t key = 0;
  if (clients_) {
    key = client_key(client);
    if (const uint64_t wait = clients_->take(key, now_ns)) return {RateRefusal::kClient, wait};
  }
  if (settings_.rps > 0) {
    if (const uint64_t wait = take_token(route_bucket_, route_shape_, now_ns)) {
      if (clients_) clients_->give_back(key);
      return {RateRefusal::kRoute, wait};
    }
  }
  return {};
}

RouteRates build_route_rates(const Config& config, const Snapshot* previous) {
  RouteRates rates;
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    if (!route.rate_limit) {
      rates.push_back(nullptr);
      continue;
    }
    if (previous != nullptr && i < previous->rates.size() && previous->rates[i]) {
      const RouteConfig& before = previous->config.routes[i];
      if (before.host == route.host && before.path_prefix == route.path_prefix &&
          before.rate_limit == route.rate_limit) {
        rates.push_back(previous->rates[i]);
        continue;
      }
    }
    rates.push_back(std::make_shared<RouteRate>(*route.rate_limit));
  }
  return rates;
}

}  // namespace sluice::conf
