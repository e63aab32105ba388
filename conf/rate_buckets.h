// The token buckets of a route's "rate_limit", shared by every worker without a lock, held by
// the snapshot (one RouteRate per limited route) and read by core/proxy's rate gate. A bucket is
// one atomic word: the time at which it would be full again (the "theoretical arrival time" of
// GCRA, a token bucket in one number), so refill-and-take is one compare-exchange. See
// docs/access.md, "Rate limits".
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "conf/config.h"
#include "conf/prefix_tree.h"

namespace sluice::conf {

struct Snapshot;

// A rate and burst in the bucket's terms. A request may pass while the bucket's full-again time
// lies at most `window_ns` ahead of now; each one moves it `interval_ns` further.
struct RateShape {
  uint64_t interval_ns = 0;  // one token comes back every interval
  uint64_t window_ns = 0;    // burst × interval
};
RateShape rate_shape(uint32_t per_second, uint32_t burst);

// Takes a token from `bucket` at `now_ns` (any clock every caller shares; 0 in the bucket is
// "full since forever"): 0 when taken, else the time until one is back, in ns (at least 1).
uint64_t take_token(std::atomic<uint64_t>& bucket, const RateShape& shape, uint64_t now_ns);
// Puts back a token that was taken for a request another limit refused after all.
void return_token(std::atomic<uint64_t>& bucket, const RateShape& shape);

// A fixed table of client buckets in sets of kWays, a client's set chosen by its key. A new
// client takes an empty slot of its set, else the slot charged longest ago (the lowest full-again
// time: a bucket that is full anyway loses nothing). Two workers claiming slots at the same
// instant may cost a client a fresh bucket; that is the price of no lock.
class ClientBuckets {
 public:
  static constexpr size_t kWays = 8;

  ClientBuckets(RateShape shape, uint32_t max_clients);  // max_clients rounded up to sets of 8

  // As take_token, on the bucket of the client `key` (never 0).
  uint64_t take(uint64_t key, uint64_t now_ns);
  void give_back(uint64_t key);  // return_token, when the client still has a bucket

  size_t capacity() const { return sets_ * kWays; }
  size_t clients() const;  // slots that hold a client now

 private:
  struct Slot {
    std::atomic<uint64_t> key{0};      // the client's, 0 when empty
    std::atomic<uint64_t> full_at{0};  // the bucket
  };
  Slot* set_of(uint64_t key) const { return &slots_[(key % sets_) * kWays]; }
  std::atomic<uint64_t>* claim(uint64_t key);

  RateShape shape_;
  size_t sets_;
  std::unique_ptr<Slot[]> slots_;
};

enum class RateRefusal : uint8_t { kNone, kClient, kRoute };
struct RateVerdict {
  RateRefusal refused = RateRefusal::kNone;
  uint64_t wait_ns = 0;  // when refused: until the refusing bucket has a token again
};

// One route's limits: the client's bucket first (a client over its own rate spends nothing of
// the route's), then the route's; a request the route refuses gives the client its token back.
class RouteRate {
 public:
  explicit RouteRate(const RateLimitConfig& settings);

  RateVerdict admit(const IpAddress& client, uint64_t now_ns);
  const RateLimitConfig& settings() const { return settings_; }
  const ClientBuckets* clients() const { return clients_.get(); }
  // The client's key in this route's table: its address, hashed with a seed of the table's own
  // (so nobody can choose addresses that crowd one set of every proxy). Never 0.
  uint64_t client_key(const IpAddress& client) const;

 private:
  RateLimitConfig settings_;
  uint64_t seed_;
  std::unique_ptr<ClientBuckets> clients_;  // null without per_client_rps
  RateShape route_shape_;                   // rps, with a burst of as many
  std::atomic<uint64_t> route_bucket_{0};
};

using RouteRates = std::vector<std::shared_ptr<RouteRate>>;

// Per route of `config`: its RouteRate, or null without "rate_limit". A route of `previous` at
// the same index with the same host, path prefix and settings hands over its buckets, so a
// reload (or new DNS answers) that leaves a limit alone does not refill them.
RouteRates build_route_rates(const Config& config, const Snapshot* previous);

}  // namespace sluice::conf
