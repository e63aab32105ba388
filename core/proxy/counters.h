// Counters a worker keeps about its connections, for the metrics: written only by the worker
// that owns them, read by any thread (a scrape sums every worker's). Always present, so the
// hooks that bump them need no check; each bump is a relaxed load and store, no locked
// instruction and no shared cache line.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice::core {

// A count with one writer. Readers on other threads see some recent value, never a torn one.
class LocalCounter {
 public:
  void add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// What the exchange's record cannot say: one bump each where it happens.
struct ProxyCounters {
  LocalCounter clients_accepted;  // client connections admitted (Downstream::open)
  LocalCounter clients_closed;    // ... and closed again (open = accepted - closed)
  LocalCounter clients_refused;   // closed at accept by a connection gate (an access list)
  LocalCounter upstream_opened;   // connections opened to backends for requests
  LocalCounter upstream_reused;   // requests sent on a pooled keep-alive connection
  LocalCounter retries;           // attempts after the first (another backend, or a fresh
                                  // connection after a stale pooled one)
};

}  // namespace sluice::core
