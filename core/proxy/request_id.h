// X-Request-Id values: 32 hex digits (128 bits) from a generator each worker owns, seeded from
// the kernel, so making one costs a few instructions and no system call or lock.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::core {

class RequestIds {
 public:
  static constexpr size_t kLength = 32;
  RequestIds();
  void next(char out[kLength]);

 private:
  uint64_t state_[2];
};

// Whether a client's X-Request-Id may be kept: 1 to 128 visible ASCII characters, none of which
// would need escaping in a log line (no quote, no backslash).
bool acceptable_request_id(std::string_view id);

}  // namespace sluice::core
