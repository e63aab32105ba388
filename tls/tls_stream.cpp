// The TLS stream. OpenSSL is driven from the transport's events: each read hands the block to
// the BIO as `input_`, and whatever OpenSSL writes meanwhile (handshake flights, records, alerts)
// collects in pooled blocks that go to the transport in one write when the event is done.
#include "tls/tls_stream.h"

#include <openssl/err.h>

#include <cctype>
#include <cstring>

#include "core/io/log.h"

namespace sluice::tls {

using core::Block;
using core::LogLevel;
using core::Slice;

namespace {

constexpr size_t kRecord = 16384;  // the largest TLS plaintext record
constexpr uint64_t kRepeatQuietMs = 60000;

// Small slices of one write (a response head and a short body) share one record.
thread_local char t_staging[kRecord];

}  // namespace

struct Bio {
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice");
      BIO_meth_set_write(made, &Bio::write);
      BIO_meth_set_read(made, &Bio::read);
      BIO_meth_set_ctrl(made, &Bio::ctrl);
      BIO_meth_set_create(made, [](BIO* b) {
        BIO_set_init(b, 1);
        return 1;
      });
      return made;
    }();
    return m;
  }
  static TlsStream* of(BIO* b) { return static_cast<TlsStream*>(BIO_get_data(b)); }
  static int write(BIO* b, const char* data, int length) {
    BIO_clear_retry_flags(b);
    return of(b)->bio_write(data, length);
  }
  static int read(BIO* b, char* out, int length) {
    BIO_clear_retry_flags(b);
    const int n = of(b)->bio_read(out, length);
    if (n > 0) return n;
    BIO_set_retry_read(b);
    return -1;
  }
  static long ctrl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }
};

TlsStream::TlsStream(uv_loop_t* loop, core::BlockPool& pool, SSL* ssl,
                     std::shared_ptr<const void> keep, bool server)
    : pool_(pool), ssl_(ssl), keep_(std::move(keep)), server_(server) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  BIO* bio = BIO_new(Bio::method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  if (server_)
    SSL_set_accept_state(ssl_);
  else
    SSL_set_connect_state(ssl_);
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);
  if (input_held_) core::block_unref(input_.block);
  for (size_t i = 0; i < out_count_; ++i) core::block_unref(out_[i].block);
  if (out_block_) core::block_unref(out_block_);
}

TlsStream* TlsStream::accept(uv_loop_t* loop, core::BlockPool& pool, core::Stream* transport,
                             SSL* ssl, std::shared_ptr<const void> keep, uint32_t timeout_ms) {
  auto* s = new TlsStream(loop, pool, ssl, std::move(keep), true);
  s->inner_ = transport;
  s->connected_ = true;
  transport->set_handler(s);
  uv_timer_start(&s->timer_, &TlsStream::on_timer, timeout_ms, 0);
  s->track_reading();  // the ClientHello
  return s;
}

TlsStream* TlsStream::connect(uv_loop_t* loop, core::BlockPool& pool, core::Connector& transport,
                              const sockaddr* address, std::string_view preface, SSL* ssl,
                              std::shared_ptr<const void> keep, uint32_t timeout_ms,
                              core::StreamHandler* handler, int* error) {
  auto* s = new TlsStream(loop, pool, ssl, std::move(keep), false);
  s->handler_ = handler;
  s->inner_ = transport.connect(address, preface, s, error);
  if (!s->inner_) {
    s->close();
    return nullptr;
  }
  uv_timer_start(&s->timer_, &TlsStream::on_timer, timeout_ms, 0);
  return s;
}

void TlsStream::on_connected(int status) {
  if (closing_) return;
  if (status != 0) return fail(status);
  connected_ = true;
  pump();
}

void TlsStream::on_read(Block* block, const char* data, size_t length) {
  if (closing_ || state_ == State::kFailed || state_ == State::kRefusing) return;
  if (server_ && !saw_bytes_) {
    saw_bytes_ = true;
    if (static_cast<unsigned char>(data[0]) != 0x16) {  // not a TLS handshake record
      if (std::isupper(static_cast<unsigned char>(data[0]))) return refuse_plain_http();
      core::log(LogLevel::kDebug, "TLS: a client sent bytes that are not TLS; closing");
      return fail(UV_EPROTO);
    }
  }
  input_ = Slice{block, data, length};
  input_held_ = false;
  pump();
  if (input_.length > 0 && !input_held_) {  // kept until the handler reads again
    core::block_ref(block);
    input_held_ = true;
  }
}

void TlsStream::on_eof() {
  if (closing_) return;
  if (state_ != State::kOpen) return fail(UV_ECONNRESET);
  if (peer_closed_) return;
  peer_closed_ = true;  // without close_notify: the framing above tells a cut-short message
  track_reading();
  if (handler_) handler_->on_eof();
}

void TlsStream::on_error(int uv_error) {
  if (!closing_) fail(uv_error);
}

void TlsStream::on_drained() {
  if (!closing_ && handler_) handler_->on_drained();
}

void TlsStream::pump() {
  if (state_ == State::kHandshake && connected_) handshake();
  if (state_ == State::kOpen && want_read_ && !closing_) read_plaintext();
  track_reading();
}

void TlsStream::handshake() {
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  // The queue is per thread and shared by every connection of this worker: read the reason and
  // empty it before anything else can return, or the next connection's SSL_get_error misreads.
  const int error = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
  const std::string reason =
      error == SSL_ERROR_NONE || error == SSL_ERROR_WANT_READ ? "" : openssl_error_text();
  const int sent = flush_output();
  if (r == 1 && sent == 0) {
    state_ = State::kOpen;
    uv_timer_stop(&timer_);
    describe_peer();
    if (!server_ && handler_) handler_->on_connected(0);
    return;
  }
  if (sent != 0) return fail(sent);
  if (error == SSL_ERROR_WANT_READ) return;
  if (server_) {
    core::log(LogLevel::kDebug, "TLS handshake with a client failed: %s", reason.c_str());
  } else {
    const long verify = SSL_get_verify_result(ssl_);
    std::string line = "TLS handshake with a backend failed: " + reason;
    if (verify != X509_V_OK) line += std::string(": ") + X509_verify_cert_error_string(verify);
    // Every retry and health check would say the same: once a minute per thread is enough.
    thread_local std::string last_line;
    thread_local uint64_t last_ms = 0;
    const uint64_t now = uv_now(timer_.loop);
    const bool repeat = line == last_line && last_ms != 0 && now - last_ms < kRepeatQuietMs;
    if (!repeat) {
      last_line = line;
      last_ms = now;
    }
    core::log(repeat ? LogLevel::kDebug : LogLevel::kWarn, "%s", line.c_str());
  }
  fail(UV_EPROTO);
}

void TlsStream::read_plaintext() {
  while (want_read_ && !closing_ && state_ == State::kOpen && !peer_closed_) {
    Block* block = pool_.acquire();
    size_t used = 0;
    int error = SSL_ERROR_NONE;
    // The error queue is empty here: every failure path below empties it, and SSL_get_error
    // is reliable only then. Clearing it before each call costs more than the read itself.
    while (used < block->size) {
      const int n = SSL_read(ssl_, block->data() + used, static_cast<int>(block->size - used));
      if (n <= 0) {
        error = SSL_get_error(ssl_, n);
        break;
      }
      used += static_cast<size_t>(n);
      // Records are read whole, one at a time: with no ciphertext left and nothing decrypted
      // waiting, the next call could only say "want read".
      if (input_.length == 0 && SSL_pending(ssl_) == 0) {
        error = SSL_ERROR_WANT_READ;
        break;
      }
    }
    // Taken (and the thread's queue emptied) before the handler runs: it may close this stream.
    const std::string reason =
        error == SSL_ERROR_NONE || error == SSL_ERROR_WANT_READ || error == SSL_ERROR_ZERO_RETURN
            ? ""
            : openssl_error_text();
    if (used > 0 && handler_) handler_->on_read(block, block->data(), used);
    core::block_unref(block);
    if (error == SSL_ERROR_NONE) continue;  // the block filled up: more may wait
    const int sent = flush_output();        // alerts and key updates OpenSSL answered
    if (closing_ || state_ != State::kOpen) return;
    if (sent != 0) return fail(sent);
    if (error == SSL_ERROR_WANT_READ) return;
    if (error == SSL_ERROR_ZERO_RETURN) {  // close_notify: the peer's data ended cleanly
      peer_closed_ = true;
      track_reading();
      if (handler_) handler_->on_eof();
      return;
    }
    core::log(LogLevel::kDebug, "TLS read failed: %s", reason.c_str());
    return fail(UV_EPROTO);
  }
}

void TlsStream::fail(int uv_error) {
  if (state_ == State::kFailed) return;
  const bool connecting = !server_ && state_ == State::kHandshake;
  state_ = State::kFailed;
  ERR_clear_error();  // whatever this connection left must not reach the next one
  uv_timer_stop(&timer_);
  track_reading();
  if (!handler_ || closing_) return;
  if (connecting)
    handler_->on_connected(uv_error);
  else
    handler_->on_error(uv_error);
}

// As nginx does: a plain HTTP request on a TLS port gets a readable 400, not a TLS alert, then
// the rest of what the client sends is read and dropped until it closes or the deadline passes.
void TlsStream::refuse_plain_http() {
  static constexpr char kBody[] = "This port speaks HTTPS; the request was plain HTTP.\n";
  char reply[256];
  const int n = std::snprintf(reply, sizeof reply,
                              "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                              sizeof kBody - 1, kBody);
  state_ = State::kRefusing;
  Block* block = pool_.acquire();
  std::memcpy(block->data(), reply, static_cast<size_t>(n));
  const Slice slice{block, block->data(), static_cast<size_t>(n)};
  inner_->write(&slice, 1);
  core::block_unref(block);
  inner_->shutdown_write();
  core::log(LogLevel::kDebug, "TLS: a client sent plain HTTP; answered 400");
}

void TlsStream::track_reading() {
  if (!inner_ || closing_) return;
  const bool want = connected_ && !peer_closed_ &&
                    (state_ == State::kHandshake || state_ == State::kRefusing ||
                     (state_ == State::kOpen && want_read_ && !has_input()));
  if (want && !inner_->reading())
    inner_->read_start();
  else if (!want && inner_->reading())
    inner_->read_stop();
}

bool TlsStream::has_input() const {
  return input_.length > 0 || SSL_pending(ssl_) > 0;
}

void TlsStream::read_start() {
  want_read_ = true;
  if (closing_) return;
  // Bytes already here would never wake the transport: deliver them from the loop, not from
  // inside the caller.
  if (state_ == State::kOpen && has_input()) uv_timer_start(&timer_, &TlsStream::on_timer, 0, 0);
  track_reading();
}

void TlsStream::read_stop() {
  want_read_ = false;
  track_reading();
}

void TlsStream::on_timer(uv_timer_t* timer) {
  auto* s = static_cast<TlsStream*>(timer->data);
  if (s->closing_) return;
  if (s->state_ == State::kOpen) return s->pump();
  if (s->state_ == State::kHandshake || s->state_ == State::kRefusing) {
    core::log(LogLevel::kDebug, "TLS handshake timed out");
    s->fail(UV_ETIMEDOUT);
  }
}

int TlsStream::write(const Slice* slices, size_t count) {
  if (closing_ || state_ == State::kFailed) return UV_ECANCELED;
  if (state_ != State::kOpen) return UV_ENOTCONN;
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) total += slices[i].length;
  int r = 0;
  if (count > 1 && total <= kRecord) {
    size_t at = 0;
    for (size_t i = 0; i < count; ++i) {
      std::memcpy(t_staging + at, slices[i].data, slices[i].length);
      at += slices[i].length;
    }
    r = encrypt(t_staging, total);
  } else {
    for (size_t i = 0; i < count && r == 0; ++i) r = encrypt(slices[i].data, slices[i].length);
  }
  const int sent = flush_output();
  return r != 0 ? r : sent;
}

int TlsStream::encrypt(const char* data, size_t length) {
  if (length == 0) return 0;
  // The BIO takes every byte, so SSL_write completes whole or fails.
  if (SSL_write(ssl_, data, static_cast<int>(length)) > 0) return 0;
  core::log(LogLevel::kDebug, "TLS write failed: %s", openssl_error_text().c_str());
  return UV_EPROTO;
}

int TlsStream::bio_read(char* out, int length) {
  if (input_.length == 0) return 0;
  const size_t n =
      input_.length < static_cast<size_t>(length) ? input_.length : static_cast<size_t>(length);
  std::memcpy(out, input_.data, n);
  input_.data += n;
  input_.length -= n;
  if (input_.length == 0 && input_held_) {
    core::block_unref(input_.block);
    input_held_ = false;
  }
  if (input_.length == 0) input_ = Slice{};
  return static_cast<int>(n);
}

int TlsStream::bio_write(const char* data, int length) {
  size_t left = static_cast<size_t>(length);
  while (left > 0) {
    if (!out_block_ || out_used_ == out_block_->size) {
      retire_out_block();
      out_block_ = pool_.acquire();
      out_used_ = out_sent_ = 0;
    }
    const size_t room = out_block_->size - out_used_;
    const size_t n = left < room ? left : room;
    std::memcpy(out_block_->data() + out_used_, data, n);
    out_used_ += n;
    data += n;
    left -= n;
  }
  return length;
}

// Moves the current block's new ciphertext onto the list for the transport, and lets the block
// go: the transport holds its own reference while the bytes wait in its queue.
void TlsStream::retire_out_block() {
  if (!out_block_) return;
  if (out_used_ > out_sent_) {
    if (out_count_ == kMaxOut) flush_list();
    core::block_ref(out_block_);
    out_[out_count_++] = Slice{out_block_, out_block_->data() + out_sent_, out_used_ - out_sent_};
  }
  core::block_unref(out_block_);
  out_block_ = nullptr;
}

void TlsStream::flush_list() {
  if (out_count_ == 0) return;
  const int r = inner_ ? inner_->write(out_, out_count_) : UV_ECANCELED;
  for (size_t i = 0; i < out_count_; ++i) core::block_unref(out_[i].block);
  out_count_ = 0;
  if (r != 0 && out_error_ == 0) out_error_ = r;
}

int TlsStream::flush_output() {
  retire_out_block();
  flush_list();
  const int error = out_error_;
  out_error_ = 0;
  return error;
}

void TlsStream::describe_peer() {
  facts_.version = SSL_get_version(ssl_);
  if (const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name))
    facts_.server_name = name;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_length = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_length);
  if (alpn) facts_.alpn = std::string_view(reinterpret_cast<const char*>(alpn), alpn_length);
  X509* peer = server_ ? SSL_get0_peer_certificate(ssl_) : nullptr;
  if (peer && SSL_get_verify_result(ssl_) == X509_V_OK) {
    BIO* text = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(text, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(text, &data);
    if (n > 0) subject_.assign(data, static_cast<size_t>(n));
    BIO_free(text);
    facts_.client_subject = subject_;
  }
}

void TlsStream::shutdown_write() {
  if (closing_ || !inner_) return;
  end_cleanly();
  inner_->shutdown_write();
}

void TlsStream::end_cleanly() {
  if (closing_ || state_ != State::kOpen || sent_close_notify_) return;
  sent_close_notify_ = true;
  SSL_shutdown(ssl_);
  ERR_clear_error();  // a peer already gone is no news here
  flush_output();
}

void TlsStream::close() {
  if (closing_) return;
  closing_ = true;
  handler_ = nullptr;
  want_read_ = false;
  // OpenSSL takes a session that ends without a shutdown for a broken one and stops it being
  // resumed; a connection closed while healthy is not broken.
  if (state_ == State::kOpen) SSL_set_shutdown(ssl_, SSL_get_shutdown(ssl_) | SSL_SENT_SHUTDOWN);
  if (inner_) inner_->close();
  inner_ = nullptr;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_),
           [](uv_handle_t* h) { delete static_cast<TlsStream*>(h->data); });
}

std::string openssl_error_text() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "connection closed";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace sluice::tls
