// Active health checks: each backend of an upstream with a "health" block gets an HTTP GET on
// its interval, off the workers' loops. `rise` passing checks bring a backend up, `fall` failing
// ones take it down; every change is logged once with its reason. The checker also lets
// passively ejected backends back in: when their ejection runs out, or, for an upstream with
// checks, as soon as `rise` checks in a row that started during the ejection have passed.
#pragma once

#include <uv.h>

#include <memory>
#include <vector>

#include "conf/snapshot.h"
#include "core/http/http_head.h"
#include "core/io/buffer.h"
#include "core/io/transport.h"

namespace sluice::health {

class Probe;

class Checker {
 public:
  // Checks connect through `connector` (bound to `loop`), which outlives the checker.
  Checker(uv_loop_t* loop, core::Connector& connector);
  ~Checker();
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  // Checks the backends of `snapshot` from now on: at start, on reload, when DNS changes.
  // `connectors` has one entry per upstream (TLS to its backends, say); a missing or null
  // entry checks through the checker's own connector. Each outlives the checks it serves.
  void watch(std::shared_ptr<const conf::Snapshot> snapshot,
             const std::vector<core::Connector*>& connectors = {});
  // Stops every check; the loop may then end.
  void stop();

 private:
  static void on_sweep(uv_timer_t* timer);

  uv_loop_t* loop_;
  core::Connector& connector_;
  uv_timer_t sweep_;
  bool stopped_ = false;
  std::shared_ptr<const conf::Snapshot> snapshot_;
  std::vector<Probe*> probes_;
  core::BlockPool blocks_{16 * 1024, 16};
  core::HeadPool heads_;
};

}  // namespace sluice::health
