// The rate gate. Buckets are read on one clock every worker shares (the steady clock, not the
// loop's cached time, which differs from worker to worker); nothing here allocates or locks.
#include "core/proxy/rate_gate.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "core/proxy/worker_context.h"

namespace sluice::core {

namespace {

uint64_t steady_now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Whole seconds until a token is back, rounded up: a client that waits that long gets in.
int retry_after_s(uint64_t wait_ns) {
  constexpr uint64_t kNsPerSecond = 1'000'000'000;
  const uint64_t seconds = (wait_ns + kNsPerSecond - 1) / kNsPerSecond;
  return static_cast<int>(std::clamp<uint64_t>(seconds, 1, 86400));
}

}  // namespace

GateVerdict RateGate::check(const GateInput& input, LocalReply* reply) const {
  if (input.route < 0 || static_cast<size_t>(input.route) >= rates_.size())
    return GateVerdict::kPass;
  conf::RouteRate* rate = rates_[input.route].get();
  if (rate == nullptr) return GateVerdict::kPass;
  const conf::RateVerdict verdict = rate->admit(input.address, steady_now_ns());
  if (verdict.refused == conf::RateRefusal::kNone) return GateVerdict::kPass;
  const bool client = verdict.refused == conf::RateRefusal::kClient;
  *reply = LocalReply{429,
                      client ? "the client is over this route's request rate"
                             : "this route is over its request rate",
                      retry_after_s(verdict.wait_ns), Outcome::kRateLimited};
  return GateVerdict::kAnswer;
}

void wire_rate_gate(Generation& generation) {
  const conf::RouteRates& rates = generation.snapshot->rates;
  if (std::none_of(rates.begin(), rates.end(), [](const auto& rate) { return rate != nullptr; }))
    return;
  auto gate = std::make_shared<RateGate>(rates);
  generation.chains.request_gates.push_back(gate.get());
  generation.owned.push_back(std::move(gate));
}

}  // namespace sluice::core
