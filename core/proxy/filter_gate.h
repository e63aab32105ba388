// Request filters as a gate of the phase contract: on every request of a route with "filters",
// the route's compiled deny rules (conf/request_filter.h) are matched, and a request one of them
// matches gets 403. wire_filter_gate() adds the gate to a generation only when some route has
// filters, so routes without them cost nothing.
#pragma once

#include <vector>

#include "conf/request_filter.h"
#include "conf/snapshot.h"
#include "core/proxy/phases.h"

namespace sluice::core {

struct Generation;

// 3. By route, after the access gate. A request that matched no route passes: its 404 follows.
class RouteFilterGate final : public RequestGate {
 public:
  explicit RouteFilterGate(const std::vector<conf::Route>& routes) : routes_(routes) {}
  GateVerdict check(const GateInput& input, LocalReply* reply) const override;

 private:
  const std::vector<conf::Route>& routes_;  // the snapshot's, which the generation holds
  // Regex match space. Each worker wires its own gates, so one worker's thread alone uses it.
  mutable conf::FilterScratch scratch_;
};

// Adds the gate to the generation's chains (and to what it owns) when its snapshot asks for it.
void wire_filter_gate(Generation& generation);

}  // namespace sluice::core
