// The forward proxy's OriginSource, one per worker: first the listener's users (Basic
// credentials, verified with scrypt on libuv's thread pool, never on the loop; logins.cpp),
// then the destination: checked against the allow list, names resolved off the loop (c-ares on
// the thread pool) and kept for their TTL in a bounded cache, private addresses refused unless
// allowed (origins.cpp). The exchange gets an Origin: a one-backend upstream whose
// connections pool under its address and "host:port".
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "conf/config.h"
#include "core/proxy/origin.h"

namespace sluice::forward {

class ForwardOrigins final : public core::OriginSource {
 public:
  explicit ForwardOrigins(uv_loop_t* loop) : loop_(loop) {}
  ~ForwardOrigins() override;
  ForwardOrigins(const ForwardOrigins&) = delete;
  ForwardOrigins& operator=(const ForwardOrigins&) = delete;

  // Where names are resolved (the config's "resolver"); answers cached so far are kept.
  void configure(const conf::ResolverConfig& resolver) { resolver_ = resolver; }
  void find(const core::OriginQuery& query, core::OriginWaiter* waiter) override;
  void cancel(core::OriginWaiter* waiter) override;

  static constexpr size_t kMaxNames = 4096;    // names and origins cached, each
  static constexpr uint32_t kMaxTtlS = 3600;   // a longer TTL is cut to this
  static constexpr uint32_t kFailureTtlS = 1;  // a failed lookup is repeated after this
  // Names being resolved at once, per worker: each holds a thread of libuv's pool (shared with
  // DNS backends and logins) for up to the resolver's timeout. Past it: 503.
  static constexpr size_t kLookupsAtOnce = 32;
  static constexpr size_t kLoginsAtOnce = 4;     // scrypt verifications running, per worker
  static constexpr size_t kLoginsWaiting = 256;  // queued behind them; past it: 503
  static constexpr size_t kRemembered = 4096;    // credentials accepted and remembered

 private:
  struct Answer {
    std::vector<conf::SocketAddress> addresses;  // empty: the lookup failed
    std::string error;
    uint64_t expires_ms = 0;
  };
  struct Waiting {
    core::OriginWaiter* waiter;
    std::string host;  // as the request wrote it
    uint16_t port;
    bool allow_private;
  };
  struct Lookup;
  static void resolve(uv_work_t* work);
  static void on_resolved(uv_work_t* work, int status);

  void find_destination(const core::OriginQuery& query, core::OriginWaiter* waiter);
  void answer(const Answer& answer, const Waiting& w);

  // Users (logins.cpp).
  using Digest = std::array<uint8_t, 32>;
  struct DigestHash {
    size_t operator()(const Digest& d) const;
  };
  struct Login;
  void log_in(const core::OriginQuery& query, core::OriginWaiter* waiter);
  void start_logins();
  static void verify(uv_work_t* work);  // runs on the thread pool
  static void on_verified(uv_work_t* work, int status);
  void forget_login(core::OriginWaiter* waiter);
  void orphan_logins();
  void refuse_login(core::OriginWaiter* waiter);
  void reply(core::OriginWaiter* waiter, int status, const std::string& detail,
             int retry_after_s = 0);
  std::shared_ptr<const core::Origin> origin(std::string_view host, uint16_t port,
                                             const conf::SocketAddress& address);

  uv_loop_t* loop_;
  conf::ResolverConfig resolver_;
  std::unordered_map<std::string, Answer> names_;                  // by lower-case name
  std::unordered_map<std::string, std::vector<Waiting>> pending_;  // by name, lookups in flight
  std::unordered_map<std::string, std::shared_ptr<const core::Origin>> origins_;  // "host:port"
  std::unordered_set<Lookup*> lookups_;  // in flight on the pool: orphaned if we go first
  std::unordered_set<Digest, DigestHash> accepted_;         // users' hash and credentials, digested
  std::unordered_map<core::OriginWaiter*, Login*> logins_;  // waiting or running
  std::deque<Login*> queued_;  // not started yet, oldest first (a cancelled one has no waiter)
  size_t running_ = 0;
};

}  // namespace sluice::forward
