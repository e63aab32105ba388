// HTTP health checks: connect, GET the configured path with Connection: close, read the status
// line, judge it against the expected range. Connection, write and parse failures and the
// timeout all count as failed checks, each with its own reason in the log.
#include "health/probe.h"

#include <cstring>

#include "core/io/log.h"
#include "core/io/proxy_protocol.h"
#include "health/passive.h"

namespace sluice::health {

using core::LogLevel;

Probe::Probe(uv_loop_t* loop, core::Connector& connector, core::BlockPool& blocks,
             core::HeadPool& heads, std::shared_ptr<const conf::Snapshot> snapshot,
             const conf::Upstream& upstream, const balancer::Backend& backend)
    : connector_(connector),
      blocks_(blocks),
      parser_(core::HttpParser::Kind::kResponse, heads, core::ParseLimits{8192, 65536, 256}),
      snapshot_(std::move(snapshot)),
      upstream_(upstream),
      backend_(backend) {
  uv_timer_init(loop, &interval_);
  interval_.data = this;
  deadline_.init(loop, &Probe::on_deadline, this);
}

void Probe::start() {
  // Spread the first checks a little so a large farm is not probed in one burst.
  const uint64_t jitter = std::hash<std::string>{}(backend_.address) % 100;
  uv_timer_start(&interval_, &Probe::on_interval, jitter, upstream_.settings.health.interval_ms);
}

void Probe::on_interval(uv_timer_t* timer) {
  auto* probe = static_cast<Probe*>(timer->data);
  if (probe->stream_ == nullptr) probe->begin_check();  // the previous check is still running
}

void Probe::begin_check() {
  int error = 0;
  parser_.reset();
  started_in_ = ejection_at_start(backend_);
  // A backend that expects PROXY headers gets one on a check too, naming no client: the
  // check is the proxy's own connection (v2 LOCAL, v1 UNKNOWN).
  char preface[core::kProxyHeaderMaxWrite];
  size_t preface_length = 0;
  switch (upstream_.settings.send_proxy_protocol) {
    case conf::ProxyProtocolVersion::kNone:
      break;
    case conf::ProxyProtocolVersion::kV1:
      preface_length = core::write_proxy_v1(nullptr, nullptr, preface);
      break;
    case conf::ProxyProtocolVersion::kV2:
      preface_length = core::write_proxy_v2(nullptr, nullptr, preface);
      break;
  }
  stream_ = connector_.connect(reinterpret_cast<const sockaddr*>(&backend_.sockaddr),
                               std::string_view(preface, preface_length), this, &error);
  if (stream_ == nullptr) return finish({balancer::CheckFailure::kConnect, error});
  deadline_.set(upstream_.settings.health.timeout_ms);
}

void Probe::on_connected(int status) {
  Probe* probe = this;
  if (status < 0) return probe->finish({balancer::CheckFailure::kConnect, status});
  const conf::HealthCheckConfig& health = probe->upstream_.settings.health;
  const std::string& host = health.host.empty() ? probe->backend_.address : health.host;
  const std::string request = "GET " + health.path + " HTTP/1.1\r\nHost: " + host +
                              "\r\nUser-Agent: sluice-health-check\r\nConnection: close\r\n\r\n";
  core::Block* block = probe->blocks_.acquire(request.size());
  std::memcpy(block->data(), request.data(), request.size());
  core::Slice slice{block, block->data(), request.size()};
  const int r = probe->stream_->write(&slice, 1);
  core::block_unref(block);
  if (r != 0) return probe->finish({balancer::CheckFailure::kWrite, r});
  probe->stream_->read_start();
}

void Probe::on_read(core::Block*, const char* data, size_t length) {
  const core::ParseStep step = parser_.execute(data, length);
  if (step.event == core::ParseEvent::kError) return finish({balancer::CheckFailure::kInvalid});
  if (step.event != core::ParseEvent::kHead) return;
  const unsigned status = parser_.head()->status;
  const conf::HealthCheckConfig& health = upstream_.settings.health;
  if (status >= health.expect_min && status <= health.expect_max) return finish({});
  finish({balancer::CheckFailure::kStatus, static_cast<int32_t>(status)});
}

void Probe::on_eof() {
  finish({balancer::CheckFailure::kClosed});
}

void Probe::on_error(int uv_error) {
  finish({balancer::CheckFailure::kRead, uv_error});
}

void Probe::on_deadline(void* self) {
  auto* probe = static_cast<Probe*>(self);
  probe->finish({balancer::CheckFailure::kTimeout,
                 static_cast<int32_t>(probe->upstream_.settings.health.timeout_ms)});
}

void Probe::release_handle() {
  if (stream_) stream_->close();
  stream_ = nullptr;
  deadline_.clear();
}

void Probe::finish(balancer::FailedCheck result) {
  release_handle();
  if (retired_) return;
  if (result.kind == balancer::CheckFailure::kNone)
    apply_pass(backend_, upstream_, uv_now(interval_.loop), started_in_, counted_);
  else
    apply_failure(backend_, upstream_, result, counted_);
}

std::string describe(const balancer::FailedCheck& failure) {
  using balancer::CheckFailure;
  switch (failure.kind) {
    case CheckFailure::kNone:
      return "";
    case CheckFailure::kConnect:
      return std::string("connect: ") + uv_strerror(failure.detail);
    case CheckFailure::kWrite:
      return std::string("write: ") + uv_strerror(failure.detail);
    case CheckFailure::kRead:
      return uv_strerror(failure.detail);
    case CheckFailure::kClosed:
      return "closed without a response";
    case CheckFailure::kInvalid:
      return "invalid response";
    case CheckFailure::kStatus:
      return "status " + std::to_string(failure.detail);
    case CheckFailure::kTimeout:
      return "no response within " + std::to_string(failure.detail) + " ms";
  }
  return "?";
}

uint64_t Probe::ejection_at_start(const balancer::Backend& backend) {
  const balancer::BackendState& s = *backend.state;
  if (!s.ejected) return 0;
  const uint64_t until = s.ejected_until_ms;
  return until == UINT64_MAX ? 0 : until;
}

void Probe::apply_pass(const balancer::Backend& backend, const conf::Upstream& upstream,
                       uint64_t now_ms, uint64_t started_in, EjectionPasses& counted) {
  balancer::BackendState& s = *backend.state;
  const bool never_checked = s.check_passes == 0 && s.check_failures == 0;
  s.check_failures = 0;
  ++s.check_passes;
  const char* name = upstream.pool.name.c_str();
  const uint32_t rise = upstream.settings.health.rise;
  // A backend that was never checked (one DNS just found) needs only this first pass.
  if (!s.up && (never_checked || s.check_passes >= rise)) {
    s.up_since_ms = now_ms;
    s.changed_at_ms.store(balancer::unix_ms_now(), std::memory_order_relaxed);
    s.up = true;
    core::log(LogLevel::kInfo, "upstream %s: backend %s is up (%u passing checks)", name,
              backend.address.c_str(), s.check_passes);
  }
  if (!s.ejected) {
    counted = {};
    return;
  }
  const uint64_t until = s.ejected_until_ms;
  if (now_ms >= until) {
    counted = {};
    return end_ejection(backend, upstream.settings, now_ms, "after its ejection (check passed)");
  }
  if (started_in == 0 || started_in != until) return;  // began before this ejection: stale
  counted.passes = counted.ejection == until ? counted.passes + 1 : 1;
  counted.ejection = until;
  if (counted.passes < rise) return;
  const std::string why = "after " + std::to_string(counted.passes) + " passing checks, " +
                          std::to_string(until - now_ms) + " ms before its ejection ends";
  counted = {};
  end_ejection(backend, upstream.settings, now_ms, why);
}

void Probe::apply_failure(const balancer::Backend& backend, const conf::Upstream& upstream,
                          const balancer::FailedCheck& failure, EjectionPasses& counted) {
  balancer::BackendState& s = *backend.state;
  s.check_passes = 0;
  ++s.check_failures;
  counted.passes = 0;
  s.last_check_failure.store(failure.pack(), std::memory_order_relaxed);
  if (s.up && s.check_failures >= upstream.settings.health.fall) {
    const std::string reason = describe(failure);
    s.changed_at_ms.store(balancer::unix_ms_now(), std::memory_order_relaxed);
    s.up = false;
    core::log(LogLevel::kWarn, "upstream %s: backend %s is down (%u failed checks, last: %s)",
              upstream.pool.name.c_str(), backend.address.c_str(), s.check_failures,
              reason.c_str());
  }
}

void Probe::retire() {
  retired_ = true;
  release_handle();
  auto closed = [](void* self) {
    auto* probe = static_cast<Probe*>(self);
    if (--probe->open_handles_ == 0) delete probe;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&interval_), [](uv_handle_t* h) {
    auto* probe = static_cast<Probe*>(h->data);
    if (--probe->open_handles_ == 0) delete probe;
  });
  deadline_.close(closed);
}

}  // namespace sluice::health
