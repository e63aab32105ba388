// A client's HTTP/1 connection: reading and parsing requests, answering them strictly in order
// (pipelined bytes wait, unparsed, while an exchange runs), the header, idle, send and linger
// deadlines, batching response writes, and closing. Each request gets a fresh Exchange, built
// in storage this object owns; the connection only carries it.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <vector>

#include "core/http/http_parser.h"
#include "core/io/deadline.h"
#include "core/io/stream.h"
#include "core/proxy/client_side.h"
#include "core/proxy/exchange.h"
#include "core/proxy/worker_context.h"

namespace sluice::core {

class Downstream final : public StreamHandler, public ClientSide {
 public:
  // Takes an accepted client stream; the connection then lives until it closes itself. `peer`
  // is the client; `destination`, when given, the address it connected to (both from a PROXY
  // header, where the listener reads one); else the socket's own address, asked when needed.
  // `listener` is the listener's id (kAdminListener for the admin listener).
  static void open(WorkerContext& ctx, Stream* stream, const sockaddr_storage& peer,
                   int32_t listener, const sockaddr_storage* destination = nullptr);
  // The worker is shutting down: finish the current exchange, then close; close now if idle.
  void begin_drain();
  // Closes at once, whatever is in flight (the drain deadline passed).
  void close_now() { destroy(); }

  Downstream* prev = nullptr;
  Downstream* next = nullptr;

 private:
  static constexpr size_t kHighWater = 256 * 1024;  // response bytes the client has not taken
  enum class Phase : uint8_t { kWaiting, kExchange, kTunnel, kClosing };
  enum class Wait : uint8_t { kNone, kHeader, kIdle, kSend, kLinger };
  enum class Ending : uint8_t { kNone, kDone, kRefuse, kAbort };

  Downstream(WorkerContext& ctx, Stream* stream);
  ~Downstream() = default;

  // StreamHandler: the client's stream.
  void on_read(Block* block, const char* data, size_t length) override;
  void on_eof() override;
  void on_error(int uv_error) override;
  void on_drained() override;
  static void on_deadline(void* self);

  // ClientSide: what the exchange asks of this connection.
  void send(const Slice* slices, size_t count) override;
  void flush() override;
  void discard_unsent() override;
  bool backlogged() const override { return stream_->queued_bytes() > kHighWater; }
  void wait_for_client(bool bounded) override;
  void send_now() override { stream_->send_immediately(); }
  void pause_request() override { stream_->read_stop(); }
  void resume_request() override;
  void decline_upgrade() override { parser_.decline_upgrade(); }
  bool keeps_alive() const override { return keep_alive_; }
  void close_after() override { keep_alive_ = false; }
  void done() override;
  void refuse(const LocalReply& reply) override;
  void abort(Outcome outcome) override;
  Slice begin_tunnel() override;
  void half_close() override { stream_->shutdown_write(); }
  void act_on_ending() override;
  std::string_view client_address() const override { return client_ip_; }
  const conf::IpAddress& client_ip_address() const override { return client_address_; }
  uint16_t client_port() const override { return client_port_; }
  uint64_t request_payload_bytes() const override { return parser_.chunk_data_bytes(); }
  int32_t listener() const override { return listener_; }
  bool connection_endpoints(sockaddr_storage* source, sockaddr_storage* destination) override;
  const TransportFacts* transport() const override { return stream_->transport(); }

  void consume(Block* block, const char* data, size_t length);
  bool request_ended(Block* block, const char* data, size_t length, size_t consumed);
  void begin_exchange(std::unique_ptr<MessageHead> request);
  void end_exchange(Outcome fallback);
  void stash(Block* block, const char* data, size_t length);
  void resume();
  bool hold_for_client();
  void reject(const LocalReply& reply);
  void wait_for(Wait wait, uint32_t ms);
  const conf::Timeouts& timeouts() const { return ctx_.current->snapshot->config.timeouts; }
  void close_gracefully();
  void destroy();

  WorkerContext& ctx_;
  Stream* stream_;
  HttpParser parser_;
  Deadline deadline_;
  Slice pending_;               // client bytes that arrived while an exchange was running
  std::vector<Slice> out_;      // bytes for the client, written once the event is handled
  std::vector<Slice> backlog_;  // lent to each exchange: body bytes waiting for the upstream
  std::optional<Exchange> exchange_;
  LocalReply refusal_;  // what refuse() asked for, until settle()
  Outcome abort_outcome_ = Outcome::kClientAbort;
  size_t send_unsent_seen_ = 0;  // bytes a slow client had not taken at its last deadline
  Phase phase_ = Phase::kWaiting;
  Wait wait_ = Wait::kNone;
  Ending ending_ = Ending::kNone;  // what the exchange asked for, acted on by settle()
  bool keep_alive_ = true;         // the connection outlives the current exchange
  bool eof_ = false;               // the client half-closed
  bool closed_ = false;
  bool local_error_ = false;         // the client sent something we refused; it may send more
  bool close_when_drained_ = false;  // closing without lingering, once the last bytes are out
  bool held_ = false;  // the next request waits until the client takes the answers before it
  char client_ip_[48] = {};
  uint16_t client_port_ = 0;
  int32_t listener_ = 0;
  // The client's address and port, and the one it connected to; sa_family 0 while unknown.
  // A sockaddr_in6's room each, not a sockaddr_storage's: this is per idle connection.
  union Endpoint {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
  };
  Endpoint client_{};
  Endpoint local_{};
  conf::IpAddress client_address_;  // client_ as the access tables match it
};

}  // namespace sluice::core
