// Passive outlier detection: the workers report how each request to a backend went, and a run
// of failures ejects the backend for a while (doubling on repeats, capped). Only atomics are
// touched, so any worker may report without locking; the checker lets ejected backends back.
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
// active checks the next passing check does it instead (so a still-dead backend stays out).
void release_expired(const balancer::Backend& backend, const conf::UpstreamConfig& upstream,
                     uint64_t now_ms);

}  // namespace sluice::health
