// A Stream that carries TLS over another Stream (TCP). OpenSSL reads and writes through a BIO of
// our own that takes ciphertext straight from the transport's pooled read blocks and writes
// records straight into pooled blocks for the transport, so each byte is copied once each way
// besides the cipher itself. Above it nothing knows TLS is there: backpressure, drain
// notifications and half-closes pass through; the handshake has its own deadline.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <memory>
#include <string>

#include "core/io/stream.h"
#include "core/io/transport.h"

namespace sluice::tls {

class TlsStream final : public core::Stream, private core::StreamHandler {
 public:
  // Server side over an accepted `transport`: the handshake starts at once. `keep` holds what
  // `ssl`'s callbacks point into (the listener's context) for as long as the stream lives.
  static TlsStream* accept(uv_loop_t* loop, core::BlockPool& pool, core::Stream* transport,
                           SSL* ssl, std::shared_ptr<const void> keep, uint32_t timeout_ms);
  // Client side: connects through `transport` (which writes `preface` first), then shakes
  // hands; `handler` hears on_connected() once, after the handshake (0) or when either step
  // failed.
  static TlsStream* connect(uv_loop_t* loop, core::BlockPool& pool, core::Connector& transport,
                            const sockaddr* address, std::string_view preface, SSL* ssl,
                            std::shared_ptr<const void> keep, uint32_t timeout_ms,
                            core::StreamHandler* handler, int* error);

  void read_start() override;
  void read_stop() override;
  bool reading() const override { return want_read_; }
  int write(const core::Slice* slices, size_t count) override;
  size_t queued_bytes() const override { return inner_ ? inner_->queued_bytes() : 0; }
  size_t unsent_bytes() const override { return inner_ ? inner_->unsent_bytes() : 0; }
  void notify_drained() override {
    if (inner_) inner_->notify_drained();
  }
  void send_immediately() override {
    if (inner_) inner_->send_immediately();
  }
  void shutdown_write() override;
  void end_cleanly() override;
  void close() override;
  const core::TransportFacts* transport() const override { return &facts_; }
  bool local_address(sockaddr_storage* out) const override {
    return inner_ && inner_->local_address(out);
  }

 private:
  enum class State { kHandshake, kOpen, kRefusing, kFailed };
  static constexpr size_t kMaxOut = 16;

  TlsStream(uv_loop_t* loop, core::BlockPool& pool, SSL* ssl, std::shared_ptr<const void> keep,
            bool server);
  ~TlsStream() override;

  // The transport's events.
  void on_connected(int status) override;
  void on_read(core::Block* block, const char* data, size_t length) override;
  void on_eof() override;
  void on_error(int uv_error) override;
  void on_drained() override;

  void pump();
  void handshake();
  void read_plaintext();
  void fail(int uv_error);
  void refuse_plain_http();
  void track_reading();
  bool has_input() const;
  int encrypt(const char* data, size_t length);
  int flush_output();
  void flush_list();
  void retire_out_block();
  void describe_peer();
  static void on_timer(uv_timer_t* timer);

  // The BIO's side.
  friend struct Bio;
  int bio_read(char* out, int length);
  int bio_write(const char* data, int length);

  uv_timer_t timer_;  // handshake deadline, then deferred delivery after read_start()
  core::BlockPool& pool_;
  core::Stream* inner_ = nullptr;
  SSL* ssl_;
  std::shared_ptr<const void> keep_;
  core::Slice input_;  // ciphertext not yet taken by OpenSSL
  bool input_held_ = false;
  core::Block* out_block_ = nullptr;  // ciphertext being written into
  size_t out_used_ = 0, out_sent_ = 0;
  core::Slice out_[kMaxOut];  // ciphertext ready for the transport, referenced
  size_t out_count_ = 0;
  int out_error_ = 0;
  State state_ = State::kHandshake;
  bool server_;
  bool connected_ = false;    // the transport is up (at once for accepted ones)
  bool peer_closed_ = false;  // the peer's data ended (close_notify or EOF)
  bool want_read_ = false;
  bool closing_ = false;
  bool sent_close_notify_ = false;
  bool saw_bytes_ = false;
  core::TransportFacts facts_;
  std::string subject_;
};

// The last OpenSSL error on this thread as text, cleared.
std::string openssl_error_text();

}  // namespace sluice::tls
