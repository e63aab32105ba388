// The tickets of requests that go to the backend for a cached route. A Fill fetches: a miss,
// a revalidation of a stale response (its validators sent, a 304 refreshing it), or the one
// background refresh of stale-while-revalidate (the client already has its answer); it stores
// the response if it may and streams it to the requests that wait on it. A Wait is such a
// request, on any worker. An Invalidation follows an unsafe method and drops what it changed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/cache/cache_control.h"
#include "core/cache/flight.h"
#include "core/cache/route_cache.h"
#include "core/cache/stored_response.h"
#include "core/proxy/upstream.h"

namespace sluice::core::cache {

class Fill final : public CacheTicket, public UpstreamUser {
 public:
  enum class Mode : uint8_t { kMiss, kRevalidate, kRefresh };
  Fill(WorkerCache& cache, const CacheQuery& query, ClientSide& client, std::string key,
       const CacheControl& request_cc, std::shared_ptr<const StoredResponse> stale, Mode mode);
  ~Fill() override;

  std::string_view request_fields() const override { return validators_; }
  TapStep on_response_head(const MessageHead& response, std::string_view* extra,
                           CachedAnswer* answer) override;
  void on_body(const char* data, size_t length) override;
  void on_end(bool complete) override;
  bool on_error(CachedAnswer* answer) override;
  std::string_view outcome() const override { return outcome_; }
  bool carry_on(const CarriedFetch& fetch) override;
  // Ends a carried fetch now (the worker is stopping).
  void abandon() { end_carried(false); }

  // UpstreamUser: a carried fetch reads the rest of the body itself (carried.cpp).
  void on_upstream_connected(int) override {}
  void on_upstream_read(Block* block, const char* data, size_t length) override;
  void on_upstream_eof() override;
  void on_upstream_error(int) override { end_carried(false); }
  void on_upstream_drained() override {}
  void on_upstream_timeout() override { end_carried(false); }

 private:
  static void carried_body(void* self, const char* data, size_t length);
  void end_carried(bool complete);
  TapStep on_not_modified(const MessageHead& response, CachedAnswer* answer, int64_t now);
  bool serve_stale_for_error(int status, CachedAnswer* answer, int64_t now);
  void make_stored(const MessageHead& response, const CacheControl& response_cc, int64_t now);
  // Nothing of this fetch will be shared: waiters fetch for themselves (or break off).
  void drop_flight();

  WorkerCache& cache_;
  const CacheQuery query_;
  ClientSide& client_;
  const std::string key_;
  const CacheControl request_cc_;
  std::shared_ptr<const StoredResponse> stale_;  // what is revalidated or refreshed
  const Mode mode_;
  const int64_t request_time_;
  std::string validators_;
  std::string extra_;
  std::shared_ptr<StoredResponse> stored_;  // the response being stored, while it may be
  int64_t length_ = -1;
  std::shared_ptr<Flight> flight_;  // a miss's, which other misses wait on
  // A carried fetch: the connection it reads, and what it holds until it ends.
  UpstreamConnection* conn_ = nullptr;
  WorkerContext* ctx_ = nullptr;
  Generation* generation_ = nullptr;
  uint32_t response_timeout_ms_ = 0;
  balancer::BackendState* counted_ = nullptr;
  const balancer::BackendState* slot_ = nullptr;
  std::string_view upstream_;
  std::string_view outcome_ = "miss";
  bool ended_ = false;
};

// A miss that waits on another request's fetch of the same response, on any worker.
class Wait final : public CacheTicket {
 public:
  Wait(WorkerCache& cache, std::shared_ptr<Flight> flight, const CacheQuery& query,
       ClientSide& client, CacheWaiter* waiter);
  ~Wait() override;

  std::string_view request_fields() const override { return {}; }
  TapStep on_response_head(const MessageHead&, std::string_view*, CachedAnswer*) override {
    return TapStep::kRelay;
  }
  void on_body(const char*, size_t) override {}
  void on_end(bool) override {}
  bool on_error(CachedAnswer*) override { return false; }
  std::string_view outcome() const override { return fetched_ ? "miss" : "collapsed"; }

  // Sends what the flight holds beyond what went already; ends, or fetches for itself, when
  // the flight says so. Runs on this request's worker when woken.
  void advance();
  // Fetches for itself if collapse_wait_ms passed before anything could be sent.
  void expire();

 private:
  void leave();

  std::shared_ptr<Flight> flight_;
  std::shared_ptr<WorkerWake> wake_;
  const CacheQuery query_;
  ClientSide& client_;
  CacheWaiter* waiter_;
  std::shared_ptr<const StoredResponse> stored_;  // once its head went to the client
  uint64_t sent_ = 0;                             // body bytes sent so far
  const uint64_t deadline_ns_;                    // when waiting for the head ends
  bool chunked_ = false;
  bool fetched_ = false;  // waiting ended without an answer: it went to the backend
};

class Invalidation final : public CacheTicket {
 public:
  Invalidation(WorkerCache& cache, const MessageHead& request, std::string key,
               std::string_view scheme)
      : cache_(cache), request_(request), key_(std::move(key)), scheme_(scheme) {}
  std::string_view request_fields() const override { return {}; }
  TapStep on_response_head(const MessageHead& response, std::string_view* extra,
                           CachedAnswer* answer) override;
  void on_body(const char*, size_t) override {}
  void on_end(bool) override {}
  bool on_error(CachedAnswer*) override { return false; }
  std::string_view outcome() const override { return "bypass"; }

 private:
  void invalidate_location(std::string_view value);

  WorkerCache& cache_;
  const MessageHead& request_;
  const std::string key_;
  const std::string_view scheme_;
};

}  // namespace sluice::core::cache
