// Access control as two gates of the phase contract: the listener's access list at accept (a
// connection it refuses is closed before a byte is read) and the route's on every request (a
// refused request gets 403). Both read the prefix trees the snapshot built; wire_access_gates()
// puts them in a generation's chains only when some listener or route has a list.
#pragma once

#include "conf/access_list.h"
#include "core/proxy/phases.h"

namespace sluice::core {

struct Generation;

// 1. By listener, on the connection's address (the socket's, or the PROXY header's).
class ListenerAccessGate final : public ConnectionGate {
 public:
  explicit ListenerAccessGate(const conf::AccessTables& tables) : tables_(tables) {}
  Admission admit(const ConnectionInput& input) const override;

 private:
  const conf::AccessTables& tables_;  // the snapshot's, which the generation holds
};

// 3. By route, on the request's client (after trusted_proxies). A request that matched no route
// passes: its 404 follows.
class RouteAccessGate final : public RequestGate {
 public:
  explicit RouteAccessGate(const conf::AccessTables& tables) : tables_(tables) {}
  GateVerdict check(const GateInput& input, LocalReply* reply) const override;

 private:
  const conf::AccessTables& tables_;
};

// Adds the gates the generation's snapshot asks for to its chains (and to what it owns).
void wire_access_gates(Generation& generation);

}  // namespace sluice::core
