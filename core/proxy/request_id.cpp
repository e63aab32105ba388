// xorshift128+: not for secrets, only for names that must not repeat; two outputs per ID.
#include "core/proxy/request_id.h"

#include <sys/random.h>

#include <chrono>

namespace sluice::core {

RequestIds::RequestIds() {
  if (getrandom(state_, sizeof state_, 0) != sizeof state_) {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    state_[0] = static_cast<uint64_t>(now) | 1;
    state_[1] = reinterpret_cast<uintptr_t>(this) ^ 0x9E3779B97F4A7C15ull;
  }
  if ((state_[0] | state_[1]) == 0) state_[0] = 1;
}

void RequestIds::next(char out[kLength]) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int half = 0; half < 2; ++half) {
    uint64_t a = state_[0];
    const uint64_t b = state_[1];
    state_[0] = b;
    a ^= a << 23;
    state_[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    uint64_t v = state_[1] + b;
    for (int i = 15; i >= 0; --i, v >>= 4) out[half * 16 + i] = kHex[v & 0xF];
  }
}

bool acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c <= ' ' || c > '~' || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace sluice::core
