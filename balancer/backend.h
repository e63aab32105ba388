// Backends and pools: what a request can be sent to. A Backend's BackendState is shared by every
// worker; health/ writes it and policies only read it, so nothing locks on the request path.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::balancer {

class PolicyTable;

// Live state of one backend. Survives a config reload when the upstream name and address stay.
struct BackendState {
  std::atomic<bool> up{true};
  std::atomic<int32_t> active{0};  // in-flight requests, summed over all workers
  std::atomic<uint32_t> consecutive_failures{0};
};

struct Backend {
  std::string address;  // "host:port" as configured, for logs and errors
  sockaddr_storage sockaddr{};
  socklen_t sockaddr_len = 0;
  uint32_t weight = 1;
  bool backup = false;
  std::shared_ptr<BackendState> state = std::make_shared<BackendState>();

  bool up() const { return state->up.load(std::memory_order_relaxed); }
};

// A named set of backends with the policy that spreads requests over them.
struct Pool {
  std::string name;
  std::string policy = "round_robin";
  std::vector<Backend> backends;
  std::shared_ptr<const PolicyTable> table;  // the policy's shared per-snapshot state, if any
};

}  // namespace sluice::balancer
