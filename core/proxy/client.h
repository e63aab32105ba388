// A client connection and the exchange (one request and its response) it is running. Requests
// on a connection are answered strictly in order: pipelined bytes wait, unparsed, until the
// current exchange ends. client.cpp holds the client side, exchange.cpp the upstream side.
#pragma once

#include <memory>
#include <vector>

#include "balancer/policy.h"
#include "core/io/deadline.h"
#include "core/http/http_parser.h"
#include "core/io/stream.h"
#include "core/proxy/upstream.h"
#include "core/proxy/worker_context.h"

namespace sluice::core {

class ClientConnection final : public StreamHandler, public UpstreamUser {
 public:
  // Takes an accepted socket; the connection then lives until it closes itself.
  static void accept(WorkerContext& ctx, int fd, const sockaddr_storage& peer);
  // The worker is shutting down: finish the current exchange, then close; close now if idle.
  void begin_drain();
  // Closes at once, whatever is in flight (the drain deadline passed).
  void close_now() { abort(); }

  ClientConnection* prev = nullptr;
  ClientConnection* next = nullptr;

 private:
  // Past this many queued bytes toward one side, reading from the other side pauses.
  static constexpr size_t kHighWater = 256 * 1024;
  enum class Retry : uint8_t { kNo, kOtherBackend, kFreshConnection };
  enum class Phase : uint8_t { kWaiting, kExchange, kTunnel, kClosing };
  enum class Wait : uint8_t { kNone, kHeader, kIdle, kSend, kLinger };

  ClientConnection(WorkerContext& ctx, Stream* stream);
  ~ClientConnection() = default;

  // Client side (client.cpp).
  void on_read(Block* block, const char* data, size_t length) override;
  void on_eof() override;
  void on_error(int uv_error) override;
  void on_drained() override;
  static void on_deadline(void* self);
  void consume(Block* block, const char* data, size_t length);
  bool handle_request_end(Block* block, const char* data, size_t length, size_t consumed);
  void stash(Block* block, const char* data, size_t length);
  void resume_after_exchange();
  void reject(int status, const char* detail);
  void send_local(int status, const char* detail, int retry_after_s = 0);
  void wait_for(Wait wait, uint32_t ms);
  void close_gracefully();
  void destroy();

  // Upstream side (exchange.cpp).
  void start_exchange();
  void connect_upstream(bool fresh);
  void send_request_head();
  void forward_request_body(Block* block, const char* data, size_t length);
  void on_upstream_connected(int status) override;
  void on_upstream_read(Block* block, const char* data, size_t length) override;
  void on_upstream_eof() override;
  void on_upstream_error(int uv_error) override;
  void on_upstream_drained() override;
  void on_upstream_timeout() override;
  bool relay_response(Block* block, const char* data, size_t length);
  void on_response_head();
  void relay_body(Block* block, const char* data, size_t length);
  void finish_exchange(bool reusable);
  void upstream_failed(int status, const char* detail, Retry retry);
  bool retry_upstream(Retry retry);
  void respond_locally(int status, const char* detail, int retry_after_s = 0);
  static void dechunked_body(void* self, const char* data, size_t length);
  const conf::Timeouts& timeouts() const {
    return (generation_ ? generation_ : ctx_.current)->snapshot->config.timeouts;
  }
  const conf::Upstream& upstream_config() const {
    return generation_->snapshot->upstreams[upstream_index_];
  }
  void enter_tunnel(Block* block, const char* data, size_t length);
  void release_upstream(bool reusable);
  void end_exchange_state();
  void abort();
  void report_backend(bool ok, const char* cause);
  void uncount_active();
  void write_client(const Slice* slices, size_t count);
  void flush_client();

  WorkerContext& ctx_;
  Stream* client_;
  HttpParser parser_;
  Deadline deadline_;
  Slice pending_;                  // client bytes that arrived while an exchange was running
  std::vector<Slice> client_out_;  // bytes for the client, written once the event is handled

  // The current exchange.
  Generation* generation_ = nullptr;
  std::unique_ptr<MessageHead> request_;
  Slice request_head_;          // rewritten head, kept until a response byte arrives (for a retry)
  std::vector<Slice> backlog_;  // request body waiting for the upstream connection
  UpstreamConnection* upstream_ = nullptr;
  size_t upstream_index_ = 0;
  int backend_ = -1;
  balancer::BackendState* counted_ = nullptr;  // the backend whose in-flight count we raised
  balancer::TriedBackends tried_;              // a retry moves on to a backend not tried yet
  size_t body_unsent_seen_ = 0;  // request bytes the backend had not taken at its last deadline
  size_t send_unsent_seen_ = 0;  // bytes a slow client had not taken at its last deadline
  uint8_t attempts_ = 0;

  Phase phase_ = Phase::kWaiting;
  Wait wait_ = Wait::kNone;
  bool request_done_ = false;      // the whole request has been read from the client
  bool body_sent_ = false;         // some request body bytes went to the upstream
  bool response_started_ = false;  // some response bytes went to the client
  bool keep_alive_ = true;         // the client connection outlives this exchange
  bool client_eof_ = false;
  bool upstream_eof_ = false;    // tunnel: the backend half-closed
  bool local_response_ = false;  // the proxy answered itself; the request body is discarded
  bool interim_ = false;         // relaying a 1xx response; the final one follows
  bool tunnel_pending_ = false;  // a 101 was relayed; switch to raw bytes after its head
  bool dechunk_ = false;         // de-chunking the response for an HTTP/1.0 client
  bool stale_retried_ = false;
  bool closed_ = false;
  bool local_error_ = false;         // the client sent something we refused; it may send more
  bool close_when_drained_ = false;  // closing without lingering, once the last bytes are out
  Block* relay_block_ = nullptr;     // the block being parsed, for dechunked_body()
  char client_ip_[48] = {};
};

}  // namespace sluice::core
