// Consecutive-failure ejection with a doubling backoff.
#include "health/passive.h"

#include <algorithm>

#include "core/io/log.h"

namespace sluice::health {

using core::LogLevel;

void record_success(const balancer::Backend& backend) {
  balancer::BackendState& s = *backend.state;
  // Read first: the common case writes nothing, so workers do not fight over the cache line.
  if (s.consecutive_failures.load(std::memory_order_relaxed) != 0)
    s.consecutive_failures.store(0, std::memory_order_relaxed);
  if (s.ejections.load(std::memory_order_relaxed) != 0 &&
      !s.ejected.load(std::memory_order_relaxed))
    s.ejections.store(0, std::memory_order_relaxed);
}

bool record_failure(const balancer::Backend& backend, const conf::PassiveHealthConfig& config,
                    uint64_t now_ms, std::string_view upstream, std::string_view cause) {
  if (config.failures == 0) return false;
  balancer::BackendState& s = *backend.state;
  const uint32_t failures = s.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (failures < config.failures) return false;
  bool expected = false;
  if (!s.ejected.compare_exchange_strong(expected, true)) return false;  // another worker did
  const uint32_t repeat = std::min<uint32_t>(s.ejections.fetch_add(1), 20);
  const uint64_t backoff =
      std::min<uint64_t>(uint64_t{config.ejection_ms} << repeat, config.max_ejection_ms);
  s.ejected_until_ms.store(now_ms + backoff);
  s.ejected_at_ms.store(balancer::unix_ms_now(), std::memory_order_relaxed);
  s.ejections_total.fetch_add(1, std::memory_order_relaxed);
  s.consecutive_failures.store(0, std::memory_order_relaxed);
  core::log(LogLevel::kWarn,
            "upstream %.*s: backend %s ejected for %llu ms after %u failures in a row (last: %.*s)",
            static_cast<int>(upstream.size()), upstream.data(), backend.address.c_str(),
            static_cast<unsigned long long>(backoff), failures, static_cast<int>(cause.size()),
            cause.data());
  return true;
}

void release_expired(const balancer::Backend& backend, const conf::UpstreamConfig& upstream,
                     uint64_t now_ms) {
  balancer::BackendState& s = *backend.state;
  if (!s.ejected.load(std::memory_order_relaxed) || upstream.health.enabled) return;
  if (now_ms < s.ejected_until_ms.load(std::memory_order_relaxed)) return;
  end_ejection(backend, upstream, now_ms, "after its ejection");
}

void end_ejection(const balancer::Backend& backend, const conf::UpstreamConfig& upstream,
                  uint64_t now_ms, std::string_view why) {
  balancer::BackendState& s = *backend.state;
  // On probation: one more failure ejects it again, for twice as long.
  const uint32_t threshold = upstream.passive.failures;
  s.consecutive_failures.store(threshold > 0 ? threshold - 1 : 0, std::memory_order_relaxed);
  s.up_since_ms.store(now_ms, std::memory_order_relaxed);
  s.changed_at_ms.store(balancer::unix_ms_now(), std::memory_order_relaxed);
  s.ejected_until_ms.store(UINT64_MAX);
  s.ejected.store(false);
  core::log(LogLevel::kInfo, "upstream %s: backend %s back in %.*s", upstream.name.c_str(),
            backend.address.c_str(), static_cast<int>(why.size()), why.data());
}

}  // namespace sluice::health
