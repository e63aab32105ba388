// Opening, keeping and closing one worker's listeners as reloads change them, and draining the
// connections of the ones that close.
#include "core/server/worker_listeners.h"

#include <unistd.h>

#include <algorithm>

#include "core/io/log.h"
#include "core/proxy/downstream.h"
#include "core/proxy/worker_context.h"

namespace sluice::core {
namespace {
constexpr uint64_t kTickMs = 50;  // how often a draining listener's connections are looked at
}  // namespace

WorkerListeners::WorkerListeners(WorkerContext& ctx, Acceptor& plain) : ctx_(ctx), plain_(plain) {
  uv_timer_init(ctx.loop, &tick_);
  tick_.data = this;
}

void WorkerListeners::adopt(const Runtime& runtime, ListenSockets sockets) {
  const auto& configs = runtime.snapshot->config.listeners;
  std::vector<bool> named(open_.size(), false);
  for (size_t i = 0; i < configs.size() && i < runtime.listener_ids.size(); ++i) {
    const int32_t id = runtime.listener_ids[i];
    std::shared_ptr<const tls::ServerContext> tls =
        i < runtime.listener_tls.size() ? runtime.listener_tls[i] : nullptr;
    auto kept =
        std::find_if(open_.begin(), open_.end(), [id](const Open& o) { return o.id == id; });
    if (kept != open_.end()) {
      named[kept - open_.begin()] = true;
      if (kept->tls && tls) kept->tls->use(std::move(tls));
      if (configs[i].proxy_protocol)
        kept->listener->read_proxy_headers(configs[i].proxy_protocol_from);
      kept->listener->intercept(configs[i].mode == conf::ListenerMode::kIntercept);
      continue;
    }
    auto socket = std::find_if(sockets.begin(), sockets.end(),
                               [id](const ListenSocket& s) { return s.id == id; });
    if (socket == sockets.end()) {
      log(LogLevel::kError, "listener %s: no socket for this worker",
          configs[i].address.text.c_str());
      continue;
    }
    open(id, socket->fd, configs[i], std::move(tls));
    sockets.erase(socket);
  }
  // Closed from the back, so the indexes in `named` stay right.
  for (size_t j = named.size(); j-- > 0;)
    if (!named[j]) close(open_[j]), open_.erase(open_.begin() + static_cast<ptrdiff_t>(j));
  for (const ListenSocket& s : sockets) ::close(s.fd);  // a later reload dropped it already
}

void WorkerListeners::open(int32_t id, int fd, const conf::ListenerConfig& config,
                           std::shared_ptr<const tls::ServerContext> tls) {
  if (ctx_.open_by_listener.size() <= static_cast<size_t>(id)) ctx_.open_by_listener.resize(id + 1);
  Open o{id, nullptr, nullptr};
  if (tls)
    o.tls = std::make_unique<tls::TlsAcceptor>(ctx_.loop, ctx_.blocks, plain_, std::move(tls));
  Acceptor& acceptor = o.tls ? static_cast<Acceptor&>(*o.tls) : plain_;
  o.listener = new Listener(ctx_, acceptor, fd, id);
  if (config.proxy_protocol) o.listener->read_proxy_headers(config.proxy_protocol_from);
  o.listener->intercept(config.mode == conf::ListenerMode::kIntercept);
  open_.push_back(std::move(o));
}

// The listener stops accepting; its connections finish their exchange and close, by the drain
// deadline of the config that dropped it.
void WorkerListeners::close(Open& listener) {
  listener.listener->close();  // after this it calls its acceptor no more
  listener.tls.reset();
  for (Downstream* c = ctx_.clients; c;) {
    Downstream* next = c->next;
    if (static_cast<const ClientSide*>(c)->listener() == listener.id) c->begin_drain();
    c = next;
  }
  if (open_connections(listener.id) == 0) return;
  const uint64_t drain_ms = ctx_.current->snapshot->config.timeouts.drain_ms;
  draining_.push_back({listener.id, uv_now(ctx_.loop) + drain_ms});
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&tick_)))
    uv_timer_start(&tick_, &WorkerListeners::on_tick, kTickMs, kTickMs);
}

size_t WorkerListeners::open_connections(int32_t id) const {
  return static_cast<size_t>(id) < ctx_.open_by_listener.size() ? ctx_.open_by_listener[id] : 0;
}

void WorkerListeners::on_tick(uv_timer_t* timer) {
  auto* self = static_cast<WorkerListeners*>(timer->data);
  WorkerContext& ctx = self->ctx_;
  const uint64_t now = uv_now(ctx.loop);
  for (const Draining& d : self->draining_) {
    if (now < d.deadline || self->open_connections(d.id) == 0) continue;
    log(LogLevel::kWarn, "drain deadline passed for a removed listener; closing %zu connections",
        self->open_connections(d.id));
    for (Downstream* c = ctx.clients; c;) {
      Downstream* next = c->next;
      if (static_cast<const ClientSide*>(c)->listener() == d.id) c->close_now();
      c = next;
    }
  }
  auto& draining = self->draining_;
  draining.erase(
      std::remove_if(draining.begin(), draining.end(),
                     [self](const Draining& d) { return self->open_connections(d.id) == 0; }),
      draining.end());
  if (draining.empty()) uv_timer_stop(&self->tick_);
}

void WorkerListeners::close_all() {
  if (closed_) return;
  closed_ = true;
  for (Open& o : open_) {
    o.listener->close();
    o.tls.reset();
  }
  open_.clear();
  draining_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
}

}  // namespace sluice::core
