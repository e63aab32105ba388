// The harness: a worker's context built as core/server builds it, with memory transports.
#include "test/core/proxy/proxy_harness.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "conf/snapshot.h"
#include "core/io/log.h"
#include "core/proxy/downstream.h"

namespace sluice::test {
namespace {

conf::Config harness_config(const HarnessSetup& setup) {
  conf::Config config;
  conf::UpstreamConfig up;
  up.name = "app";
  up.balance = setup.balance;
  up.retries = setup.retries;
  up.send_proxy_protocol = setup.send_proxy_protocol;
  up.max_connections = setup.max_connections;
  up.queue_max = setup.queue_max;
  up.queue_timeout_ms = setup.queue_timeout_ms;
  for (const char* address : setup.backends) {
    conf::BackendConfig backend;
    backend.address = *conf::parse_socket_address(address);
    if (up.backends.size() < setup.backend_limits.size())
      backend.max_connections = setup.backend_limits[up.backends.size()];
    up.backends.push_back(backend);
  }
  config.upstreams.push_back(up);
  conf::RouteConfig route;
  route.host = "app.test";
  route.upstream = "app";
  route.forwarded = setup.forwarded;
  route.access = setup.route_access;
  route.rate_limit = setup.route_rate_limit;
  config.routes.push_back(route);
  if (setup.listener_access) {  // the index clients come in on (open_client says 0)
    conf::ListenerConfig listener;
    listener.access = setup.listener_access;
    config.listeners.push_back(listener);
  }
  config.trusted_proxies = setup.trusted_proxies;
  config.timeouts = setup.timeouts;
  config.request_id = setup.request_id;
  return config;
}

sockaddr_storage client_address() {
  sockaddr_storage storage{};
  auto* in = reinterpret_cast<sockaddr_in*>(&storage);
  in->sin_family = AF_INET;
  in->sin_port = htons(40000);
  inet_pton(AF_INET, kClientIp, &in->sin_addr);
  return storage;
}

}  // namespace

ProxyHarness::ProxyHarness(const HarnessSetup& setup) : setup_(setup) {
  core::set_log_level(core::LogLevel::kError);  // refusals and failures are what tests do
  uv_loop_init(&loop_);
  ctx_ = std::make_unique<core::WorkerContext>(&loop_);
  auto connector = std::make_unique<MemoryConnector>(&loop_, ctx_->blocks);
  connector_ = connector.get();
  ctx_->connector = std::move(connector);  // before adopt: every upstream takes this connector
  ctx_->adopt(conf::build_snapshot(harness_config(setup), nullptr));
  ctx_->current->chains.observers.push_back(this);
}

// Closes everything as a worker's drain deadline does, then lets the loop release it all: a
// stream or timer the proxy forgot to close keeps uv_loop_close() from succeeding.
ProxyHarness::~ProxyHarness() {
  while (ctx_->clients) ctx_->clients->close_now();
  ctx_->upstreams.close_all();
  for (int i = 0; i < 100 && uv_loop_alive(&loop_); ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  ctx_.reset();
  const int closed = uv_loop_close(&loop_);
  CHECK(closed == 0);
  core::set_log_level(core::LogLevel::kInfo);
}

MemoryPeer& ProxyHarness::open_client() {
  return open_client(client_address(), nullptr);
}

MemoryPeer& ProxyHarness::open_client(const sockaddr_storage& address,
                                      const sockaddr_storage* destination) {
  std::shared_ptr<MemoryPeer> peer;
  MemoryStream* stream = MemoryStream::make(&loop_, ctx_->blocks, &peer);
  clients_.push_back(peer);
  uv_update_time(&loop_);  // accepted now: the header deadline counts from here
  core::Downstream::open(*ctx_, stream, address, 0, destination);
  return *peer;
}

MemoryPeer& ProxyHarness::backend(size_t n) {
  REQUIRE(n < connector_->made().size());
  return *connector_->made()[n];
}

int ProxyHarness::backend_index(const MemoryPeer& connection) {
  if (connection.address() == kBackendA) return 0;
  if (connection.address() == kBackendB) return 1;
  return -1;
}

balancer::BackendState& ProxyHarness::backend_state(size_t index) {
  return *ctx_->current->snapshot->upstreams[0].pool.backends.at(index).state;
}

const core::ExchangeRecord& ProxyHarness::record(size_t n) const {
  REQUIRE(n < finished_.size());
  return finished_[n].record;
}

void ProxyHarness::reload() {
  ctx_->adopt(conf::build_snapshot(harness_config(setup_), ctx_->current->snapshot.get()));
  ctx_->current->chains.observers.push_back(this);
}

void ProxyHarness::drain() {
  ctx_->draining = true;
  ctx_->upstreams.close_all();
  for (core::Downstream* c = ctx_->clients; c;) {
    core::Downstream* next = c->next;
    c->begin_drain();
    c = next;
  }
}

void ProxyHarness::pump() {
  for (int i = 0; i < 16; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
}

bool ProxyHarness::run_until(const std::function<bool()>& done, uint64_t limit_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
  for (;;) {
    pump();
    if (done()) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void ProxyHarness::on_finish(const core::ExchangeRecord& record, const core::MessageHead* request) {
  Finished f{record, "", std::string(record.request_id), std::string(record.client_ip)};
  if (request) {
    f.request = llhttp_method_name(static_cast<llhttp_method_t>(request->method));
    f.request.append(" ").append(request->target());
  }
  finished_.push_back(std::move(f));
  Finished& kept = finished_.back();
  kept.record.request_id = kept.request_id;
  kept.record.client_ip = kept.client_ip;
  kept.record.tls = nullptr;  // the connection's, gone with it
}

}  // namespace sluice::test
