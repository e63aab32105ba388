// The checker owns one Probe per actively checked backend and re-plans them per snapshot.
#include "health/checker.h"

#include <unordered_map>

#include "core/io/log.h"
#include "health/passive.h"
#include "health/probe.h"

namespace sluice::health {
namespace {
constexpr uint64_t kSweepMs = 250;  // how often expired passive ejections are looked at
}  // namespace

Checker::Checker(uv_loop_t* loop, core::Connector& connector) : loop_(loop), connector_(connector) {
  uv_timer_init(loop, &sweep_);
  sweep_.data = this;
  uv_timer_start(&sweep_, &Checker::on_sweep, kSweepMs, kSweepMs);
}

Checker::~Checker() {
  stop();
}

void Checker::watch(std::shared_ptr<const conf::Snapshot> snapshot,
                    const std::vector<core::Connector*>& connectors) {
  if (stopped_) return;
  // Passes counted towards ending an ejection carry over to a backend's new probe.
  std::unordered_map<const balancer::BackendState*, EjectionPasses> counted;
  for (Probe* p : probes_) {
    counted.emplace(p->state(), p->ejection_passes());
    p->retire();
  }
  probes_.clear();
  snapshot_ = std::move(snapshot);
  for (size_t i = 0; i < snapshot_->upstreams.size(); ++i) {
    const conf::Upstream& upstream = snapshot_->upstreams[i];
    core::Connector* connector =
        i < connectors.size() && connectors[i] ? connectors[i] : &connector_;
    if (!upstream.settings.health.enabled) {
      // Without checks nothing else would ever bring a backend up that checks took down.
      for (const balancer::Backend& backend : upstream.pool.backends) {
        if (!backend.state->up.exchange(true)) {
          backend.state->changed_at_ms.store(balancer::unix_ms_now(), std::memory_order_relaxed);
          core::log(core::LogLevel::kInfo,
                    "upstream %s: backend %s up (its health checks were removed)",
                    upstream.pool.name.c_str(), backend.address.c_str());
        }
        backend.state->check_passes = backend.state->check_failures = 0;
      }
      continue;
    }
    for (const balancer::Backend& backend : upstream.pool.backends) {
      auto* probe = new Probe(loop_, *connector, blocks_, heads_, snapshot_, upstream, backend);
      if (auto it = counted.find(backend.state.get()); it != counted.end())
        probe->carry(it->second);
      probe->start();
      probes_.push_back(probe);
    }
  }
}

void Checker::on_sweep(uv_timer_t* timer) {
  auto* checker = static_cast<Checker*>(timer->data);
  if (!checker->snapshot_) return;
  const uint64_t now = uv_now(checker->loop_);
  for (const conf::Upstream& upstream : checker->snapshot_->upstreams)
    for (const balancer::Backend& backend : upstream.pool.backends)
      release_expired(backend, upstream.settings, now);
}

void Checker::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (Probe* p : probes_) p->retire();
  probes_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&sweep_), nullptr);
}

}  // namespace sluice::health
