// The access gates. Each check is one prefix-tree lookup; nothing here allocates or locks.
#include "core/proxy/access_gates.h"

#include <memory>

#include "core/io/log.h"
#include "core/proxy/worker_context.h"

namespace sluice::core {

Admission ListenerAccessGate::admit(const ConnectionInput& input) const {
  if (input.listener < 0 || static_cast<size_t>(input.listener) >= tables_.listeners.size())
    return Admission::kAdmit;  // the admin listener has no access list
  if (tables_.listeners[input.listener].allows(input.address)) return Admission::kAdmit;
  log(LogLevel::kDebug, "client %.*s: refused by listener %d's access list",
      static_cast<int>(input.client.size()), input.client.data(), input.listener);
  return Admission::kRefuse;
}

GateVerdict RouteAccessGate::check(const GateInput& input, LocalReply* reply) const {
  if (input.route < 0 || static_cast<size_t>(input.route) >= tables_.routes.size())
    return GateVerdict::kPass;
  if (tables_.routes[input.route].allows(input.address)) return GateVerdict::kPass;
  *reply = LocalReply{403, "access to this route is denied for the client's address", 0,
                      Outcome::kDenied};
  return GateVerdict::kAnswer;
}

void wire_access_gates(Generation& generation) {
  const conf::AccessTables& tables = generation.snapshot->access;
  if (tables.any_listener) {
    auto gate = std::make_shared<ListenerAccessGate>(tables);
    generation.chains.connection_gates.push_back(gate.get());
    generation.owned.push_back(std::move(gate));
  }
  if (tables.any_route) {
    auto gate = std::make_shared<RouteAccessGate>(tables);
    generation.chains.request_gates.push_back(gate.get());
    generation.owned.push_back(std::move(gate));
  }
}

}  // namespace sluice::core
