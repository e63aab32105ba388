// The admin listener's pages, served by the same HTTP code as the proxy (an exchange on the
// admin listener asks its worker's PageSource; GET and HEAD, but for the one POST):
//   /healthz  200 "ok": the process is alive and its worker answers
//   /readyz   200 when the listeners are open, the config is loaded and every upstream that a
//             route uses has a usable backend; 503 naming the first that has none, or while
//             draining
//   /status   JSON: version, config, listeners, routes, each backend's state, why and since
//   /metrics  Prometheus text format 0.0.4 (core/metrics)
//   POST /cache/purge?url=U or ?prefix=P  drops stored responses of every cached route, for
//             loopback clients only; JSON {"purged": N}
// Every worker has its own Pages over the ProcessInfo they share; a page reads the config
// generation its worker serves.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conf/snapshot.h"
#include "core/metrics/registry.h"
#include "core/proxy/phases.h"

namespace sluice::core {
struct WorkerContext;
struct Generation;
}  // namespace sluice::core

namespace sluice::admin {

// What the pages know of the process beyond a worker's config. core/server fills the plain
// fields before the workers start; the main thread writes the atomics later.
struct ProcessInfo {
  std::string version;
  std::string config_path;
  int64_t started_ms = 0;  // Unix ms
  metrics::Registry* registry = nullptr;
  uint64_t (*access_lines_dropped)() = nullptr;  // null: not counted
  // Drops from the caches of `generation`'s routes the responses stored under `key`, or with
  // `prefix` under any key that starts with it; returns how many went. Null: nothing is
  // cached. Set by core/server, which knows the caches' types.
  size_t (*purge_caches)(const core::Generation& generation, std::string_view key,
                         bool prefix) = nullptr;

  std::atomic<uint32_t> workers{0};          // the worker count now (reloads change it)
  std::atomic<int64_t> config_loaded_ms{0};  // the last successful load, Unix ms
  std::atomic<uint64_t> reloads_ok{0};
  std::atomic<uint64_t> reloads_failed{0};
  std::atomic<bool> listening{false};  // every worker accepts on every listener
  std::atomic<bool> draining{false};   // SIGTERM or SIGINT came
};

struct Readiness {
  bool ready = false;
  std::string why;  // one line: what is not ready
};
// Ready when listening, not draining, and each upstream some route uses has a usable backend.
Readiness readiness(const conf::Snapshot& snapshot, bool listening, bool draining);

// The /status document. Its listeners are those of `snapshot`: the open ones (a reload that
// changes them opens and closes sockets before it publishes the snapshot).
std::string status_json(const conf::Snapshot& snapshot, const ProcessInfo& info);

// "2026-12-01T10:00:00.123Z"
std::string iso_time(int64_t unix_ms);

class Pages final : public core::PageSource {
 public:
  Pages(const core::WorkerContext& ctx, ProcessInfo& info) : ctx_(ctx), info_(info) {}
  void serve(const core::MessageHead& request, const conf::IpAddress& client,
             core::LocalPage* page) override;

 private:
  void metrics(const conf::Snapshot& snapshot, core::LocalPage* page);
  void purge(const core::MessageHead& request, const conf::IpAddress& client,
             core::LocalPage* page);

  const core::WorkerContext& ctx_;
  ProcessInfo& info_;
};

}  // namespace sluice::admin
