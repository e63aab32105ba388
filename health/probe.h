// One backend under active checks: a timer that starts an HTTP GET every interval, and the
// state machine that turns passes and failures into the backend's `up` flag.
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

class Probe final : public core::StreamHandler {
 public:
  Probe(uv_loop_t* loop, core::Connector& connector, core::BlockPool& blocks, core::HeadPool& heads,
        std::shared_ptr<const conf::Snapshot> snapshot, const conf::Upstream& upstream,
        const balancer::Backend& backend);
  void start();
  // Stops checking; the object frees itself once libuv has released its handles.
  void retire();

  // The outcome of one check, applied to the backend's state (public for the unit tests).
  static void apply_pass(const balancer::Backend& backend, const conf::Upstream& upstream,
                         uint64_t now_ms);
  static void apply_failure(const balancer::Backend& backend, const conf::Upstream& upstream,
                            const std::string& reason);

 private:
  ~Probe() = default;
  static void on_interval(uv_timer_t* timer);
  void on_connected(int status) override;
  static void on_deadline(void* self);
  void on_read(core::Block* block, const char* data, size_t length) override;
  void on_eof() override;
  void on_error(int uv_error) override;
  void begin_check();
  void finish(bool passed, const std::string& reason);
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
  int open_handles_ = 2;
  bool retired_ = false;
};

}  // namespace sluice::health
