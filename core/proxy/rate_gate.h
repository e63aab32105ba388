// Rate limits as a request gate: a route's "rate_limit" charges the request's client (after
// trusted_proxies) and the route in the snapshot's shared buckets; past either, 429 with
// Retry-After. wire_rate_gate() adds it, after the access gates, only when some route has one.
#pragma once

#include "conf/rate_buckets.h"
#include "core/proxy/phases.h"

namespace sluice::core {

struct Generation;

class RateGate final : public RequestGate {
 public:
  explicit RateGate(const conf::RouteRates& rates) : rates_(rates) {}
  GateVerdict check(const GateInput& input, LocalReply* reply) const override;

 private:
  const conf::RouteRates& rates_;  // the snapshot's, which the generation holds
};

// Adds the gate to the generation's chains (and to what it owns) when its snapshot limits rates.
void wire_rate_gate(Generation& generation);

}  // namespace sluice::core
