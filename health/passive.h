// Passive outlier detection: the workers report how each request to a backend went, and a run
// of failures ejects the backend for a while (doubling on repeats, capped). Only atomics are
// touched, so any worker may report without locking; the checker lets ejected backends back:
// when the ejection runs out, or earlier when active checks see the backend healthy again.
#pragma once

#include <cstdint>
#include <string_view>

#include "balancer/backend.h"
#include "conf/config.h"

namespace sluice::health {

// The backend answered (any status below 500).
void record_success(const balancer::Backend& backend);
// A connect failure, a reset before the response, or a 5xx answer. Returns true when this
// failure ejected the backend (logged once, naming `cause`, what the last failure was).
bool record_failure(const balancer::Backend& backend, const conf::PassiveHealthConfig& config,
                    uint64_t now_ms, std::string_view upstream, std::string_view cause);

// Called periodically off the workers: lets backends whose ejection ran out back in. With
// active checks the probe does it instead (so a still-dead backend stays out): on the first
// passing check once the time is up, or on `rise` passing checks in a row during the ejection.
void release_expired(const balancer::Backend& backend, const conf::UpstreamConfig& upstream,
                     uint64_t now_ms);

// Ends an ejection now, off the workers: the backend is back on probation (one more failure
// ejects it again, for twice as long) and its slow start begins. `why` ends the log line.
void end_ejection(const balancer::Backend& backend, const conf::UpstreamConfig& upstream,
                  uint64_t now_ms, std::string_view why);

}  // namespace sluice::health
