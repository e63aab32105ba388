// One request and its response, built fresh for each request in storage its connection owns,
// so nothing of one request can reach the next. It runs the phases of core/proxy/phases.h:
// gates, target, the upstream relay with its attempts and retries, the 101 tunnel, and
// finish(), the one place an exchange ends. It speaks to its client only through ClientSide.
// exchange.cpp: the phases and the end; attempt.cpp: upstream attempts; relay.cpp: the
// response; tunnel.cpp: raw bytes after a protocol switch.
#pragma once

#include <memory>
#include <vector>

#include "balancer/policy.h"
#include "core/http/head_writer.h"
#include "core/http/http_parser.h"
#include "core/proxy/backend_slots.h"
#include "core/proxy/client_side.h"
#include "core/proxy/exchange_record.h"
#include "core/proxy/forwarded_client.h"
#include "core/proxy/origin.h"
#include "core/proxy/response_cache.h"
#include "core/proxy/retry.h"
#include "core/proxy/upstream.h"
#include "core/proxy/worker_context.h"

namespace sluice::core {

class Exchange final : public UpstreamUser,
                       public SlotWaiter,
                       public OriginWaiter,
                       public CacheWaiter {
 public:
  // `request` is null for a request refused before its head was complete. `backlog` is the
  // connection's scratch list for body bytes that wait for the upstream: empty on entry.
  Exchange(WorkerContext& ctx, ClientSide& client, std::unique_ptr<MessageHead> request,
           std::vector<Slice>& backlog);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Phases 3 to 5: request gates, the target, the response source.
  void start();
  // The one path for an answer the proxy makes itself.
  void reply_locally(const LocalReply& reply);
  // Bytes from the client: the request body as it arrives (raw, chunk framing included), or
  // anything once tunnelling.
  void on_request_body(Block* block, const char* data, size_t length);
  void on_request_end() { request_done_ = true; }
  void on_client_drained();
  void on_client_eof();  // tunnelling only: the client half-closed
  // Phase 8: closes the record (with `fallback` as the outcome unless one was set) and hands
  // it to the observers. Runs once; the connection calls it before destroying the exchange.
  void finish(Outcome fallback);

  bool request_done() const { return request_done_; }
  bool answered_locally() const { return stage_ == Stage::kAnswered; }
  bool response_started() const { return response_started_; }
  bool tunnelling() const { return stage_ == Stage::kTunnel; }
  const ExchangeRecord& record() const { return record_; }

  // UpstreamUser: events of the upstream connection this exchange holds.
  void on_upstream_connected(int status) override;
  void on_upstream_read(Block* block, const char* data, size_t length) override;
  void on_upstream_eof() override;
  void on_upstream_error(int uv_error) override;
  void on_upstream_drained() override;
  void on_upstream_timeout() override;

  // SlotWaiter: waiting for room at a backend of its upstream (max_connections).
  bool on_room() override;
  void on_queue_timeout() override;

  // OriginWaiter: where a forward proxy's request goes, or why it may not.
  void on_origin(std::shared_ptr<const Origin> origin, const LocalReply* refusal) override;

  // CacheWaiter: served from another exchange's fetch of the same response (cached.cpp).
  void on_cache_head(const CachedAnswer& answer) override;
  void on_cache_body(uint64_t bytes) override;
  void on_cache_end(bool complete) override;
  void on_cache_fetch() override;

 private:
  // Past this many queued bytes toward one side, reading from the other side pauses.
  static constexpr size_t kHighWater = 256 * 1024;
  enum class Stage : uint8_t { kStarting, kUpstream, kAnswered, kDone, kTunnel, kFinished };

  const conf::Timeouts& timeouts() const { return generation_->snapshot->config.timeouts; }
  const conf::Upstream& upstream_config() const {
    return origin_ ? *origin_ : generation_->snapshot->upstreams[record_.upstream];
  }

  // Upstream attempts (attempt.cpp).
  enum class Pick : uint8_t { kPicked, kNone, kAllBusy };
  void attempt(RetryWhere where);
  Pick pick_backend(uint64_t now_ms);
  void connect(bool fresh, uint64_t now_ms);
  // Waiting for room (backend_wait.cpp).
  void wait_for_room(uint64_t now_ms);
  void give_back_slot();
  void send_request_head();
  void send_body(const Slice& body);
  void report_backend(bool ok, const char* cause);
  void name_request();
  void send_upstream();
  bool resolve_client();
  // Forward and intercept listeners (forward.cpp).
  void start_forward(const conf::ListenerConfig& listener);
  void start_intercept(const conf::ListenerConfig& listener);
  void open_tunnel();
  bool pass_gates();
  void serve_page();
  void body_too_large();
  void prepare_local_answer();
  void answer_locally(Slice s, int status, Outcome outcome);
  void uncount_active() {
    if (!counted_) return;
    counted_->active.fetch_sub(1, std::memory_order_relaxed);
    counted_ = nullptr;
  }
  void attempt_failed(int status, const char* detail, AttemptFailure failure);
  bool retry(AttemptFailure failure);
  void release_upstream(bool reusable);

  // The response (relay.cpp).
  void relay(Block* block, const char* data, size_t length);
  void relay_response(Block* block, const char* data, size_t length);
  void on_response_head();
  void relay_interim(const MessageHead& head);
  void relay_body(Block* block, const char* data, size_t length);
  void throttle_for_client();
  void complete(bool reusable);
  void abort(Outcome outcome);

  // A route's cache (cached.cpp).
  bool consult_cache(ResponseCache& cache);
  void answered_from_cache(const CachedAnswer& answer);
  bool cache_head(const MessageHead& head, std::string_view* extra);
  bool cache_error();
  void end_refresh();
  bool hand_over_refresh(const char* unread, size_t length);
  bool hand_over_fetch(const char* unread, size_t length);
  static void response_body(void* self, const char* data, size_t length);

  // After a 101 (tunnel.cpp).
  void enter_tunnel(Block* block, const char* data, size_t length);
  void tunnel_to_backend(Block* block, const char* data, size_t length);
  void tunnel_to_client(Block* block, const char* data, size_t length);
  void on_tunnel_eof();

  WorkerContext& ctx_;
  ClientSide& client_;
  Generation* generation_;
  std::unique_ptr<MessageHead> request_;
  std::vector<Slice>& backlog_;  // request body waiting for the upstream connection
  Slice request_head_;           // rewritten head, kept until a response byte arrives (a retry)
  UpstreamConnection* upstream_ = nullptr;
  balancer::BackendState* counted_ = nullptr;     // the backend whose in-flight count we raised
  const balancer::BackendState* slot_ = nullptr;  // the limited backend whose slot we hold
  uint64_t queued_since_ms_ = 0;                  // when it last joined its upstream's queue
  uint32_t queued_ms_ = 0;                        // time spent waiting so far, all waits
  balancer::TriedBackends tried_;                 // a retry moves on to a backend not tried yet
  Block* relay_block_ = nullptr;                  // the block being parsed, for response_body()
  size_t body_unsent_seen_ = 0;  // request bytes the backend had not taken at its last deadline
  ExchangeRecord record_;
  uint64_t max_body_ = 0;  // request body bytes allowed: the route's limit, else the global one
  std::shared_ptr<const Origin> origin_;  // a forward proxy's destination, in place of a route
  std::unique_ptr<CacheTicket> cache_;    // the route's cache's part in this request
  // The request's client: its connection's, or the one X-Forwarded-For names when the
  // connection comes from a trusted proxy (resolve_client). Hashing, the log and the
  // X-Forwarded-For sent on use it.
  std::string_view client_ip_;
  ForwardedClient named_client_;
  char request_id_[RequestIds::kLength];  // one made here; record_.request_id points at it
  bool outcome_set_ = false;
  bool replace_request_id_ = false;  // the client's X-Request-Id (if any) gives way to ours
  Stage stage_ = Stage::kStarting;
  ForwardedMode forwarded_ = ForwardedMode::kTransparent;  // the route's anonymity level
  bool request_done_ = false;      // the whole request has been read from the client
  bool body_sent_ = false;         // some request body bytes went to the upstream
  bool response_started_ = false;  // some response bytes went to the client
  bool response_on_wire_ = false;  // ... and were written, not only batched
  bool interim_ = false;           // relaying a 1xx response; the final one follows
  bool tunnel_pending_ = false;    // a 101 was relayed; switch to raw bytes after its head
  bool dechunk_ = false;           // de-chunking the response for an HTTP/1.0 client
  bool stale_retried_ = false;
  bool forward_ = false;             // on a forward or intercept listener
  bool connect_ = false;             // CONNECT: a tunnel once the origin's connection opens
  bool finding_origin_ = false;      // the OriginSource has not answered yet
  bool starting_ = false;            // inside start(): the connection settles after it returns
  bool waiting_for_client_ = false;  // backend reads stopped until a slow client catches up
  bool cache_served_ = false;        // the cache answered: the backend's response is not relayed
  bool refreshing_ = false;          // the client has its (stale) answer; the backend refreshes it
  bool client_eof_ = false;          // tunnel: the client half-closed
  bool upstream_eof_ = false;        // tunnel: the backend half-closed
};

}  // namespace sluice::core
