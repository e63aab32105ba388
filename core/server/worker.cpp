// Worker threads: adopting snapshots between requests and draining on shutdown.
#include "core/server/worker.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "core/accesslog/access_log.h"
#include "core/admin/pages.h"
#include "core/forward/origins.h"
#include "core/io/log.h"
#include "core/io/tcp_stream.h"
#include "core/metrics/registry.h"
#include "core/proxy/access_gates.h"
#include "core/proxy/downstream.h"
#include "core/proxy/filter_gate.h"
#include "core/proxy/rate_gate.h"
#include "core/proxy/worker_context.h"
#include "core/server/listener.h"
#include "core/server/worker_listeners.h"

namespace sluice::core {

void WorkerContext::adopt(std::shared_ptr<const conf::Snapshot> snapshot,
                          const std::vector<Connector*>& connectors,
                          const std::vector<int32_t>& listener_ids) {
  auto g = std::make_unique<Generation>();
  const size_t listeners = snapshot->config.listeners.size();
  for (size_t i = 0; i < listeners; ++i) {
    const int32_t id = i < listener_ids.size() ? listener_ids[i] : static_cast<int32_t>(i);
    if (static_cast<size_t>(id) >= g->listener_index.size()) g->listener_index.resize(id + 1, -1);
    g->listener_index[id] = static_cast<int32_t>(i);
  }
  for (size_t i = 0; i < snapshot->upstreams.size(); ++i) {
    const conf::Upstream& up = snapshot->upstreams[i];
    const balancer::PolicyType* type = balancer::find_policy(up.pool.policy);
    g->policies.push_back(type->make(up.pool, up.pool.table.get()));
    g->needs_key.push_back(type->uses_key);
    g->counts_active.push_back(type->counts_active);
    Connector* chosen = i < connectors.size() ? connectors[i] : nullptr;
    g->connectors.push_back(chosen ? chosen : connector.get());
  }
  const conf::Limits& l = snapshot->config.limits;
  g->limits = ParseLimits{l.request_line_bytes, l.header_bytes, l.header_count};
  g->max_body = l.max_request_body_bytes;
  g->snapshot = std::move(snapshot);
  wire_access_gates(*g);
  wire_filter_gate(*g);
  wire_rate_gate(*g);  // after access: a refused client spends no tokens
  Generation* old = current;
  current = g.get();
  generations.push_back(std::move(g));
  if (old && old->users == 0) retire(old);  // nobody holds it any more
}

void WorkerContext::retire(Generation* g) {
  auto it = std::find_if(generations.begin(), generations.end(),
                         [g](const auto& owned) { return owned.get() == g; });
  if (it != generations.end()) generations.erase(it);
}

Worker::Worker(ListenSockets sockets, std::shared_ptr<const Runtime> runtime) {
  uv_loop_init(&loop_);
  ctx_ = std::make_unique<WorkerContext>(&loop_);
  // TCP underneath everything; bodies that arrive in bulk move through the larger blocks.
  ctx_->connector = std::make_unique<TcpConnector>(&loop_, ctx_->blocks, &ctx_->bulk_blocks);
  acceptor_ = std::make_unique<TcpAcceptor>(&loop_, ctx_->blocks, &ctx_->bulk_blocks);
  listeners_ = std::make_unique<WorkerListeners>(*ctx_, *acceptor_);
  origins_ = std::make_unique<forward::ForwardOrigins>(&loop_);
  ctx_->origins = origins_.get();
  access_log_ = std::make_unique<accesslog::WorkerLog>(&loop_, accesslog::Writer::process(),
                                                       std::vector<std::string>{});
  // Requests here that wait on a cache fetch (on any worker) are woken through wake_, and
  // looked at every 100 ms while any waits (collapse_wait_ms).
  uv_timer_init(&loop_, &cache_timer_);
  cache_timer_.data = this;
  cache_wake_ = std::make_shared<cache::WorkerWake>([this] { uv_async_send(&wake_); },
                                                    [this] { arm_cache_timer(); });
  adopt(*runtime, std::move(sockets));  // the listeners poll once the thread runs the loop
  uv_async_init(&loop_, &wake_, &Worker::on_wake);
  wake_.data = this;

  uv_timer_init(&loop_, &drain_timer_);
  drain_timer_.data = this;
}

Worker::~Worker() {
  if (next_admin_fd_ >= 0) ::close(next_admin_fd_);
  listeners_.reset();
  ctx_.reset();
  origins_.reset();
  uv_loop_close(&loop_);
}

// Upstream TLS contexts pick (or make) their connector; the listeners follow the new runtime's
// (kept ones swap their TLS context in place).
void Worker::adopt(const Runtime& runtime, ListenSockets added) {
  std::vector<Connector*> connectors;
  const uint32_t connect_ms = runtime.snapshot->config.timeouts.upstream_connect_ms;
  for (const auto& client : runtime.upstream_tls) {
    if (!client) {
      connectors.push_back(nullptr);
      continue;
    }
    std::unique_ptr<tls::TlsConnector>& c = tls_connectors_[client.get()];
    if (!c)
      c = std::make_unique<tls::TlsConnector>(&loop_, ctx_->blocks, *ctx_->connector, client,
                                              connect_ms);
    connectors.push_back(c.get());
  }
  ctx_->adopt(runtime.snapshot, connectors, runtime.listener_ids);
  wire_caches(*ctx_->current, runtime);
  origins_->configure(runtime.snapshot->config.resolver);
  ctx_->worker_count = runtime.workers;
  listeners_->adopt(runtime, std::move(added));
  const auto& configs = runtime.snapshot->config.listeners;
  for (size_t i = 0; i < configs.size() && i < runtime.listener_ids.size(); ++i)
    access_log_->name_listener(static_cast<size_t>(runtime.listener_ids[i]),
                               configs[i].address.text);
  if (metrics_ && runtime.snapshot->config.admin.enabled) count_metrics(*ctx_->current);
  wire_access_log();
}

// Each cached route gets this worker's face of its shared cache, living as long as the
// generation (the fetches in flight on this worker are known there).
void Worker::wire_caches(Generation& generation, const Runtime& runtime) const {
  for (size_t i = 0; i < runtime.route_caches.size(); ++i) {
    if (!runtime.route_caches[i]) continue;
    auto cache = std::make_shared<cache::WorkerCache>(runtime.route_caches[i], cache_wake_);
    generation.caches.resize(runtime.route_caches.size(), nullptr);
    generation.caches[i] = cache.get();
    generation.owned.push_back(std::move(cache));
  }
}

cache::WorkerCache* worker_cache(const Generation& generation, size_t route) {
  return static_cast<cache::WorkerCache*>(generation.cache_of(static_cast<int32_t>(route)));
}

size_t purge_caches(const Generation& generation, std::string_view key, bool prefix) {
  size_t purged = 0;
  std::vector<const cache::SharedCache*> done;
  for (size_t i = 0; i < generation.caches.size(); ++i) {
    cache::WorkerCache* route_cache = worker_cache(generation, i);
    if (!route_cache) continue;
    cache::SharedCache& shared = route_cache->shared();
    if (std::find(done.begin(), done.end(), &shared) != done.end()) continue;
    done.push_back(&shared);
    purged += prefix ? shared.store.erase_prefix(key) : shared.store.erase(std::string(key));
  }
  return purged;
}

void Worker::enable_admin(int fd, admin::ProcessInfo* info, metrics::Registry* registry,
                          metrics::WorkerPart* part) {
  admin_fd_ = fd;
  pages_ = std::make_unique<admin::Pages>(*ctx_, *info);
  ctx_->pages = pages_.get();
  metrics_ = registry;
  metrics_part_ = part;
  registry->attach(*part, ctx_.get());
  // Adopted in the constructor, before any exchange.
  if (ctx_->current->snapshot->config.admin.enabled) count_metrics(*ctx_->current);
}

// The generation's exchanges are counted by an observer that lives as long as it does. With
// the admin on, every upstream keeps in-flight counts, for /status and /metrics.
void Worker::count_metrics(Generation& generation) {
  std::shared_ptr<ExchangeObserver> observer =
      metrics_->observer(*metrics_part_, *generation.snapshot);
  generation.chains.observers.push_back(observer.get());
  generation.owned.push_back(std::move(observer));
  generation.counts_active.assign(generation.counts_active.size(), true);
}

void Worker::close_admin() {
  if (admin_listener_) admin_listener_->close();
  admin_listener_ = nullptr;
  admin_fd_ = -1;
}

void Worker::open_admin(int fd) {
  admin_fd_ = fd;
  if (fd >= 0) admin_listener_ = new Listener(*ctx_, *acceptor_, fd, kAdminListener);
}

// The access log reads every exchange of the new generation, unless its config turns it off.
void Worker::wire_access_log() {
  Generation& g = *ctx_->current;
  std::unique_ptr<ExchangeObserver> observer = access_log_->observer(*g.snapshot);
  if (!observer) return;
  g.chains.observers.push_back(observer.get());
  g.owned.push_back(std::shared_ptr<ExchangeObserver>(std::move(observer)));
}

void Worker::start() {
  open_admin(admin_fd_);
  thread_ = std::thread([this] { run(); });
  // Named here rather than by the thread itself, so the name is there once start() returns.
  pthread_setname_np(thread_.native_handle(), "sluice-worker");  // for top -H, perf, /proc
}

void Worker::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  access_log_->close();  // the last lines go to the writer; the loop runs on to close its timer
  uv_run(&loop_, UV_RUN_DEFAULT);
  finished_.store(true, std::memory_order_release);
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::publish(std::shared_ptr<const Runtime> runtime, ListenSockets added) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    next_runtime_ = std::move(runtime);
    next_sockets_.insert(next_sockets_.end(), added.begin(), added.end());
  }
  uv_async_send(&wake_);
}

void Worker::replace_admin(int fd) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (next_admin_fd_ >= 0) ::close(next_admin_fd_);  // two reloads before the worker woke
    next_admin_fd_ = fd;
  }
  uv_async_send(&wake_);
}

void Worker::drain() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    drain_requested_ = true;
  }
  uv_async_send(&wake_);
}

void Worker::on_wake(uv_async_t* async) {
  auto* w = static_cast<Worker*>(async->data);
  std::shared_ptr<const Runtime> next;
  ListenSockets sockets;
  int admin_fd;
  bool drain;
  {
    std::lock_guard<std::mutex> lock(w->mutex_);
    next = std::move(w->next_runtime_);
    sockets.swap(w->next_sockets_);
    admin_fd = std::exchange(w->next_admin_fd_, kNoAdminChange);
    drain = w->drain_requested_;
  }
  if (next && !w->draining_) {
    w->adopt(*next, std::move(sockets));
  } else {
    for (const ListenSocket& s : sockets) ::close(s.fd);  // draining: nothing opens any more
  }
  if (admin_fd != kNoAdminChange && w->draining_) {
    if (admin_fd >= 0) ::close(admin_fd);  // the drain keeps the admin it has to the end
  } else if (admin_fd != kNoAdminChange) {
    w->close_admin();
    w->open_admin(admin_fd);
  }
  if (drain && !w->draining_) w->begin_drain();
  w->cache_wake_->advance();
}

void Worker::arm_cache_timer() {
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&cache_timer_))) return;
  uv_timer_start(&cache_timer_, &Worker::on_cache_tick, 100, 100);
}

void Worker::on_cache_tick(uv_timer_t* timer) {
  auto* w = static_cast<Worker*>(timer->data);
  w->cache_wake_->expire();
  if (!w->cache_wake_->waiting()) uv_timer_stop(timer);
}

void Worker::begin_drain() {
  draining_ = true;
  ctx_->draining = true;
  listeners_->close_all();
  ctx_->upstreams.close_all();
  for (Downstream* c = ctx_->clients; c;) {
    Downstream* next = c->next;
    c->begin_drain();
    c = next;
  }
  drain_deadline_ = uv_now(&loop_) + ctx_->current->snapshot->config.timeouts.drain_ms;
  uv_timer_start(&drain_timer_, &Worker::on_drain_tick, 0, 50);
}

// Polls until the last connection has closed, forcing the stragglers out at the drain deadline.
void Worker::on_drain_tick(uv_timer_t* timer) {
  auto* w = static_cast<Worker*>(timer->data);
  WorkerContext& ctx = *w->ctx_;
  if (ctx.client_count > 0 && uv_now(&w->loop_) >= w->drain_deadline_) {
    log(LogLevel::kWarn, "drain deadline passed; closing %zu connections", ctx.client_count);
    while (ctx.clients) ctx.clients->close_now();
  }
  ctx.upstreams.close_all();
  if (ctx.client_count > 0) return;
  // Fetches carried on may be read by requests on workers still running: they end on their
  // own, or at the drain deadline.
  if (w->cache_wake_->carrying() && uv_now(&w->loop_) < w->drain_deadline_) return;
  w->cache_wake_->abandon_carried();
  w->close_admin();
  uv_close(reinterpret_cast<uv_handle_t*>(&w->drain_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->cache_timer_), nullptr);
  w->cache_wake_->close();  // fetches on other workers wake this one no more
  uv_close(reinterpret_cast<uv_handle_t*>(&w->wake_), nullptr);
}

}  // namespace sluice::core
