// One backend under active checks: a timer that starts an HTTP GET every interval, and the
// state machine that turns passes and failures into the backend's `up` flag and ends passive
// ejections of backends that pass again.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "conf/snapshot.h"
#include "core/http/http_parser.h"
#include "core/io/deadline.h"
#include "core/io/stream.h"
#include "core/io/transport.h"

namespace sluice::health {

// The passing checks counted towards ending one passive ejection early. Only checks that started
// during that ejection count: a check that started before it says nothing about the backend since.
struct EjectionPasses {
  uint64_t ejection = 0;  // the ejection counted in, by its ejected_until_ms; 0: none
  uint32_t passes = 0;    // passing checks in a row that started during it
};

// A failed check in words, as the log and the admin pages say it: "connect: connection refused",
// "status 500", "no response within 1000 ms".
std::string describe(const balancer::FailedCheck& failure);

class Probe final : public core::StreamHandler {
 public:
  Probe(uv_loop_t* loop, core::Connector& connector, core::BlockPool& blocks, core::HeadPool& heads,
        std::shared_ptr<const conf::Snapshot> snapshot, const conf::Upstream& upstream,
        const balancer::Backend& backend);
  void start();
  // Stops checking; the object frees itself once libuv has released its handles.
  void retire();

  // What this probe has counted towards ending an ejection, so that a probe replacing it (on
  // reload or a DNS change) goes on from there, as the backend's own state does.
  const balancer::BackendState* state() const { return backend_.state.get(); }
  const EjectionPasses& ejection_passes() const { return counted_; }
  void carry(const EjectionPasses& counted) { counted_ = counted; }

  // The ejection a check starting now falls in, for apply_pass when the check ends: the backend's
  // ejected_until_ms while it is passively ejected; 0 when it is not, or while the worker that
  // ejects it has yet to store when the ejection ends.
  static uint64_t ejection_at_start(const balancer::Backend& backend);
  // The outcome of one check, applied to the backend's state (public for the unit tests).
  // `started_in` is what ejection_at_start said when the check began. `rise` passes in a row
  // that started during an ejection end it early; once it has run out any pass ends it.
  static void apply_pass(const balancer::Backend& backend, const conf::Upstream& upstream,
                         uint64_t now_ms, uint64_t started_in, EjectionPasses& counted);
  static void apply_failure(const balancer::Backend& backend, const conf::Upstream& upstream,
                            const balancer::FailedCheck& failure, EjectionPasses& counted);

 private:
  ~Probe() = default;
  static void on_interval(uv_timer_t* timer);
  void on_connected(int status) override;
  static void on_deadline(void* self);
  void on_read(core::Block* block, const char* data, size_t length) override;
  void on_eof() override;
  void on_error(int uv_error) override;
  void begin_check();
  void finish(balancer::FailedCheck result);  // kind kNone: the check passed
  void release_handle();

  uv_timer_t interval_;
  core::Deadline deadline_;
  core::Connector& connector_;
  core::BlockPool& blocks_;
  core::HttpParser parser_;
  std::shared_ptr<const conf::Snapshot> snapshot_;  // keeps upstream_ and backend_ alive
  const conf::Upstream& upstream_;
  const balancer::Backend& backend_;
  core::Stream* stream_ = nullptr;
  uint64_t started_in_ = 0;  // ejection_at_start() of the running check
  EjectionPasses counted_;
  int open_handles_ = 2;
  bool retired_ = false;
};

}  // namespace sluice::health
