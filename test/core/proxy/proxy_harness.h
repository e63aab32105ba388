// A worker's proxy without sockets, for exchange tests: a real libuv loop and WorkerContext
// serving one upstream ("app", two backends) on one route (host app.test), with clients and
// backend connections played through MemoryStreams, and the record of every exchange kept.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "core/proxy/phases.h"
#include "core/proxy/worker_context.h"
#include "test/core/proxy/memory_stream.h"

namespace sluice::test {

inline constexpr const char* kBackendA = "127.0.0.1:9001";
inline constexpr const char* kBackendB = "127.0.0.1:9002";
inline constexpr const char* kClientIp = "192.0.2.7";

struct HarnessSetup {
  uint32_t retries = 1;
  std::string balance = "round_robin";  // "hash" (on the client's address) keeps one backend
  conf::Timeouts timeouts;
  // Off unless a test is about request IDs, so heads compare without a random field.
  conf::RequestIdMode request_id = conf::RequestIdMode::kOff;
  std::vector<const char*> backends = {kBackendA, kBackendB};
  conf::ProxyProtocolVersion send_proxy_protocol = conf::ProxyProtocolVersion::kNone;
  // The upstream's max_connections and queue; backend_limits[i], when given, is backend i's own.
  uint32_t max_connections = 0;
  uint32_t queue_max = 1024;
  uint32_t queue_timeout_ms = 5000;
  std::vector<uint32_t> backend_limits;
  conf::ForwardedMode forwarded = conf::ForwardedMode::kTransparent;  // the route's level
  // Access control: the route's and listener 0's access lists, and the trusted proxies.
  std::optional<conf::AccessConfig> route_access;
  std::optional<conf::AccessConfig> listener_access;
  std::vector<conf::Cidr> trusted_proxies;
  std::optional<conf::RateLimitConfig> route_rate_limit;
};

// One finished exchange: its record and the request it answered ("GET /a"; "" when the head
// never completed).
struct Finished {
  core::ExchangeRecord record;  // its views (request_id, client_ip) point into the copies below
  std::string request;
  std::string request_id;
  std::string client_ip;
};

class ProxyHarness final : public core::ExchangeObserver {
 public:
  explicit ProxyHarness(const HarnessSetup& setup = {});
  ~ProxyHarness() override;
  ProxyHarness(const ProxyHarness&) = delete;
  ProxyHarness& operator=(const ProxyHarness&) = delete;

  // A client connection from kClientIp, accepted as a listener would.
  MemoryPeer& open_client();
  // A client connection from `peer`; `destination` is the address it connected to, as a
  // PROXY header names it (null: the stream cannot tell, as a MemoryStream cannot).
  MemoryPeer& open_client(const sockaddr_storage& peer, const sockaddr_storage* destination);
  // The n-th backend connection the proxy opened (0 first).
  MemoryPeer& backend(size_t n);
  size_t backend_connections() const { return connector_->made().size(); }
  MemoryConnector& connector() { return *connector_; }
  // The live state of a configured backend, shared with health checks (0: kBackendA).
  balancer::BackendState& backend_state(size_t index);
  core::WorkerContext& context() { return *ctx_; }
  // The index in the upstream (as ExchangeRecord::backend counts) of a connection's backend.
  static int backend_index(const MemoryPeer& connection);

  const std::deque<Finished>& finished() const { return finished_; }
  // The record of the n-th finished exchange; fails the test when there is none.
  const core::ExchangeRecord& record(size_t n = 0) const;

  // A config reload: the same config as a new generation (this harness observes it too).
  void reload();
  // The worker shutting down, as Worker::begin_drain does it.
  void drain();

  // Lets the loop run what is due now (deferred reads, connects), without waiting.
  void pump();
  // Runs the loop, timers included, until `done` holds or `limit_ms` pass. Returns done().
  bool run_until(const std::function<bool()>& done, uint64_t limit_ms = 2000);
  void run_for(uint64_t ms) {
    run_until([] { return false; }, ms);
  }

  void on_finish(const core::ExchangeRecord& record, const core::MessageHead* request) override;

 private:
  HarnessSetup setup_;
  uv_loop_t loop_;
  std::unique_ptr<core::WorkerContext> ctx_;
  MemoryConnector* connector_;  // owned by ctx_
  std::vector<std::shared_ptr<MemoryPeer>> clients_;
  std::deque<Finished> finished_;  // a deque: the views in each record stay valid
};

}  // namespace sluice::test
