// The cache's two clocks: wall-clock seconds for what HTTP dates and ages measure, the same on
// every worker, and a steady nanosecond clock for recency and waiting, which never goes back.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace sluice::core::cache {

inline int64_t wall_seconds() {
  timespec now;
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  return static_cast<int64_t>(now.tv_sec);
}

inline uint64_t steady_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace sluice::core::cache
