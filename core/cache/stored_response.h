// A response as the cache holds it: its head as it is served (hop-by-hop fields, framing and
// Age left out), its body in blocks that hits send without copying, the request fields its
// Vary names, and the times RFC 9111's freshness and age need. Immutable once stored, and
// shared by every worker; a 304 makes a new one with updated fields around the same body.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/http/http_head.h"
#include "core/io/buffer.h"

namespace sluice::core::cache {

// The body: appended to by the one exchange that fetches it, read by the exchanges it serves
// (on that worker while it grows; on any worker once `complete`, through the store).
class Body {
 public:
  static constexpr size_t kBlockBytes = 64 * 1024;
  // `expected` is the declared length when known (blocks are sized to it), else 0.
  explicit Body(uint64_t expected) : expected_(expected) {}
  Body(const Body&) = delete;
  Body& operator=(const Body&) = delete;

  void append(const char* data, size_t length);
  uint64_t size() const { return size_; }
  uint64_t allocated() const { return allocated_; }
  // The bytes [from, from + length) as pointers into the blocks, one span per block touched.
  template <typename Visit>
  void spans(uint64_t from, uint64_t length, Visit visit) const {
    for (const auto& block : blocks_) {
      if (length == 0) return;
      if (from >= block.used) {
        from -= block.used;
        continue;
      }
      const uint64_t n = std::min<uint64_t>(block.used - from, length);
      visit(block.bytes.get() + from, static_cast<size_t>(n));
      length -= n;
      from = 0;
    }
  }

 private:
  struct Stretch {
    std::unique_ptr<char[]> bytes;
    size_t capacity = 0;
    size_t used = 0;
  };
  std::vector<Stretch> blocks_;
  uint64_t expected_;
  uint64_t size_ = 0;
  uint64_t allocated_ = 0;
};

// One field the response's Vary names, with the request's value as it was normalised.
struct VaryField {
  std::string name;  // lower case
  std::string value;
  bool present = false;
};

struct StoredResponse {
  std::string key;  // "scheme://authority/target": the primary key
  MessageHead head;
  std::shared_ptr<Body> body;
  std::vector<VaryField> vary;
  bool vary_any = false;  // Vary: *, which no request matches
  // RFC 9111 4.2.3, in seconds since the epoch.
  int64_t request_time = 0;
  int64_t response_time = 0;
  int64_t corrected_initial_age = 0;
  int64_t freshness_lifetime = 0;
  // What binds reuse once stale, or at all.
  bool no_cache = false;         // revalidate on every use
  bool must_revalidate = false;  // must-revalidate, proxy-revalidate or s-maxage: never stale
  int64_t stale_while_revalidate = 0;
  int64_t stale_if_error = 0;
  std::string_view etag;           // into head, empty when none
  std::string_view last_modified;  // into head, empty when none
  uint64_t bytes = 0;              // charged against the cache's max_bytes
  // Bumped by a stale-while-revalidate hit that starts the one background refresh.
  mutable std::atomic<bool> refreshing{false};

  int64_t current_age(int64_t now) const { return corrected_initial_age + (now - response_time); }
  bool fresh(int64_t now) const { return freshness_lifetime > current_age(now); }
};

// Hits: a Block lending the stored body's bytes, holding the response alive until the last
// write that uses it is done. One per answer.
Block* lend(std::shared_ptr<const StoredResponse> response);

}  // namespace sluice::core::cache
