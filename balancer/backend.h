// Backends and pools: what a request can be sent to. A Backend's BackendState is shared by every
// worker; health/ writes it and policies only read it, so nothing locks on the request path.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::balancer {

class PolicyTable;

// What an active check that failed ran into. `detail` is a libuv error code (kConnect, kWrite,
// kRead), the HTTP status (kStatus) or the timeout in ms (kTimeout); health/ words it.
enum class CheckFailure : uint8_t {
  kNone,
  kConnect,
  kWrite,
  kRead,
  kClosed,
  kInvalid,
  kStatus,
  kTimeout
};
struct FailedCheck {
  CheckFailure kind = CheckFailure::kNone;
  int32_t detail = 0;
  // Both in one word, so that another thread never reads the kind of one and detail of another.
  uint64_t pack() const { return uint64_t{static_cast<uint8_t>(kind)} << 32 | uint32_t(detail); }
  static FailedCheck unpack(uint64_t word) {
    return {static_cast<CheckFailure>(word >> 32), static_cast<int32_t>(word & 0xffffffffu)};
  }
};

inline int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Live state of one backend. Survives a config reload when the upstream name and address stay.
// health/ writes it (the active checker on the main thread, passive detection on the workers);
// policies only read it.
struct BackendState {
  std::atomic<bool> up{true};                     // active checks pass (or none are configured)
  std::atomic<bool> ejected{false};               // passive detection took it out for a while
  std::atomic<int32_t> active{0};                 // in-flight requests, summed over all workers
  std::atomic<uint32_t> consecutive_failures{0};  // connect failures or 5xx in a row
  std::atomic<uint32_t> ejections{0};             // ejections in a row, for the backoff
  // Monotonic ms; the maximum while no ejection is running, so a reader that sees `ejected` set
  // before the ejecting worker stored the real end never takes the ejection for expired.
  std::atomic<uint64_t> ejected_until_ms{UINT64_MAX};
  std::atomic<uint64_t> up_since_ms{0};  // when it last came up (slow start); 0: long ago
  // The active checker's counters; only the checker's thread touches them.
  uint32_t check_passes = 0;
  uint32_t check_failures = 0;
  // For the admin pages; health/ writes them, anyone reads them (relaxed).
  std::atomic<uint64_t> last_check_failure{0};  // FailedCheck::pack(); the checker's thread
  // When the active checks last took it up or down, or an ejection ended (Unix ms; at first,
  // when this state was made): the checker's thread. The ejecting worker stores ejected_at_ms.
  std::atomic<int64_t> changed_at_ms{unix_ms_now()};
  std::atomic<int64_t> ejected_at_ms{0};
  std::atomic<uint64_t> ejections_total{0};  // passive ejections so far, never reset
};

// The HealthView seam: what a policy may read of a backend's live state. Read-only, so only
// health/ (and the proxy's in-flight bookkeeping) change it; reads are relaxed loads.
class HealthView {
 public:
  explicit HealthView(const BackendState& state) : state_(state) {}
  bool usable() const {
    return state_.up.load(std::memory_order_relaxed) &&
           !state_.ejected.load(std::memory_order_relaxed);
  }
  // In-flight requests summed over all workers; never negative (counts race a little).
  int64_t active() const {
    const int32_t n = state_.active.load(std::memory_order_relaxed);
    return n > 0 ? n : 0;
  }
  uint64_t up_since_ms() const { return state_.up_since_ms.load(std::memory_order_relaxed); }

 private:
  const BackendState& state_;
};

struct Backend {
  std::string address;        // "host:port" as configured, for logs and errors
  uint64_t address_hash = 0;  // hash_key(address): finds the backend's idle connections fast
  sockaddr_storage sockaddr{};
  socklen_t sockaddr_len = 0;
  uint32_t weight = 1;
  // Requests in flight to it allowed at once (0: any). The proxy shares it out by worker.
  uint32_t max_connections = 0;
  bool backup = false;
  bool from_dns = false;
  std::shared_ptr<BackendState> state = std::make_shared<BackendState>();

  HealthView health() const { return HealthView(*state); }
  bool up() const { return health().usable(); }
};

// A named set of backends with the policy that spreads requests over them.
struct Pool {
  std::string name;
  std::string policy = "round_robin";
  std::vector<Backend> backends;
  std::shared_ptr<const PolicyTable> table;  // the policy's shared per-snapshot state, if any
  uint32_t slow_start_ms = 0;  // a backend that came up ramps its weight over this long
  bool limited = false;        // some backend has max_connections: picks ask about room
};

// `backend`'s weight now: during slow start it grows linearly from a tenth to the full weight.
uint32_t effective_weight(const Pool& pool, const Backend& backend, uint64_t now_ms);

}  // namespace sluice::balancer
