// Phase 3 on forward listeners with "users": Proxy-Authorization Basic credentials, checked
// against the users' scrypt hashes; without valid ones, 407 with Proxy-Authenticate. A worker
// remembers the credentials it has accepted (by digest), so scrypt runs once per client
// credential and worker, not per request.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_set>

#include "conf/snapshot.h"
#include "core/proxy/phases.h"

namespace sluice::core {
struct Generation;
}

namespace sluice::forward {

class ProxyAuthGate final : public core::RequestGate {
 public:
  explicit ProxyAuthGate(const conf::Snapshot& snapshot) : snapshot_(snapshot) {}
  core::GateVerdict check(const core::GateInput& input, core::LocalReply* reply) const override;

 private:
  using Digest = std::array<uint8_t, 32>;
  struct DigestHash {
    size_t operator()(const Digest& d) const;
  };
  static constexpr size_t kRemembered = 4096;  // past it, the set starts again

  bool valid(const conf::ForwardConfig& forward, std::string_view credentials) const;

  const conf::Snapshot& snapshot_;  // the generation holds it
  // Digests of (listener, credentials) accepted before: one worker's, so no lock.
  mutable std::unordered_set<Digest, DigestHash> accepted_;
};

// Adds the gate to a generation whose snapshot has a forward listener with users.
void wire_forward_gates(core::Generation& generation);

}  // namespace sluice::forward
