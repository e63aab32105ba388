// Waiting for a PROXY header on an accepted socket. Whenever the header is still incomplete,
// every byte seen so far belongs to it (the parser would have said done or error otherwise), so
// those bytes are taken off the socket and kept here: the level-triggered poll then reports the
// socket again only when more arrive, and the bytes after the header are never read.
#include "core/server/proxy_header_wait.h"

#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/io/log.h"
#include "core/io/peer_address.h"
#include "core/io/proxy_protocol.h"
#include "core/proxy/downstream.h"
#include "core/proxy/worker_context.h"

namespace sluice::core {

class HeaderWait {
 public:
  enum class Step { kDone, kWait, kFail };

  HeaderWait(ProxyHeaderReader* reader, int fd, const sockaddr_storage& peer)
      : reader_(reader), fd_(fd), peer_(peer) {}

  // Looks at what the socket holds; takes the header's bytes, and no others.
  Step read();
  // Polls the socket until the header is whole, for at most `timeout_ms`; false on failure.
  bool start(uv_loop_t* loop, uint64_t timeout_ms);
  // The header is whole: the socket goes on to the listener's acceptor.
  void hand_over();
  // Closes the connection without a word.
  void fail();
  // The reader is closing (it has unlinked this already): close with it.
  void abandon() {
    reader_ = nullptr;
    problem_ = "the listener is closing";
    fail();
  }

  HeaderWait* prev = nullptr;
  HeaderWait* next = nullptr;

 private:
  ~HeaderWait() = default;
  static void on_readable(uv_poll_t* poll, int status, int events);
  static void on_timeout(uv_timer_t* timer);
  static void on_closed(uv_handle_t* handle);
  bool consume(size_t count);
  void release();  // leaves the list, closes the handles, frees this once libuv lets go

  ProxyHeaderReader* reader_;
  int fd_;
  sockaddr_storage peer_;
  ProxyHeader header_;
  const char* problem_ = "";
  uv_poll_t poll_;
  uv_timer_t timer_;
  int open_handles_ = 0;
  bool listed_ = false;
  size_t have_ = 0;  // header bytes taken off the socket so far
  char bytes_[kProxyHeaderMaxLength];
};

HeaderWait::Step HeaderWait::read() {
  ssize_t n;
  do {
    n = ::recv(fd_, bytes_ + have_, sizeof bytes_ - have_, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Step::kWait;
  if (n < 0) {
    problem_ = std::strerror(errno);
    return Step::kFail;
  }
  if (n == 0) {
    problem_ = have_ == 0 ? "closed before sending a header" : "closed in the middle of its header";
    return Step::kFail;
  }
  const size_t seen = have_ + static_cast<size_t>(n);
  header_ = parse_proxy_header(bytes_, seen);
  switch (header_.status) {
    case ProxyParse::kError:
      problem_ = header_.error;
      return Step::kFail;
    case ProxyParse::kNeedMore:
      return consume(static_cast<size_t>(n)) ? Step::kWait : Step::kFail;
    case ProxyParse::kDone:
      break;
  }
  return consume(header_.length - have_) ? Step::kDone : Step::kFail;
}

// Reads `count` bytes that a peek has just shown are there.
bool HeaderWait::consume(size_t count) {
  while (count > 0) {
    const ssize_t n = ::recv(fd_, bytes_ + have_, count, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      problem_ = n == 0 ? "closed in the middle of its header" : std::strerror(errno);
      return false;
    }
    have_ += static_cast<size_t>(n);
    count -= static_cast<size_t>(n);
  }
  return true;
}

bool HeaderWait::start(uv_loop_t* loop, uint64_t timeout_ms) {
  if (uv_poll_init(loop, &poll_, fd_) != 0) {
    problem_ = "cannot poll the socket";
    return false;
  }
  uv_timer_init(loop, &timer_);
  poll_.data = this;
  timer_.data = this;
  open_handles_ = 2;
  uv_poll_start(&poll_, UV_READABLE, &HeaderWait::on_readable);
  uv_timer_start(&timer_, &HeaderWait::on_timeout, timeout_ms, 0);
  ProxyHeaderReader& r = *reader_;
  next = r.waiting_;
  if (next) next->prev = this;
  r.waiting_ = this;
  ++r.waiting_count_;
  listed_ = true;
  return true;
}

void HeaderWait::on_readable(uv_poll_t* poll, int status, int) {
  auto* w = static_cast<HeaderWait*>(poll->data);
  if (status < 0) {
    w->problem_ = uv_strerror(status);
    return w->fail();
  }
  switch (w->read()) {
    case Step::kDone:
      return w->hand_over();
    case Step::kFail:
      return w->fail();
    case Step::kWait:
      return;
  }
}

void HeaderWait::on_timeout(uv_timer_t* timer) {
  auto* w = static_cast<HeaderWait*>(timer->data);
  w->problem_ = w->have_ == 0 ? "no header within client_header_ms"
                              : "the header did not end within client_header_ms";
  w->fail();
}

void HeaderWait::hand_over() {
  ProxyHeaderReader* reader = reader_;
  const int fd = fd_;
  fd_ = -1;
  sockaddr_storage client = header_.has_addresses ? header_.source : peer_;
  sockaddr_storage destination = header_.destination;
  const bool named = header_.has_addresses;
  // The poll lets go of the socket (uv_close stops it at once) before a stream takes it.
  release();
  if (!reader) return (void)::close(fd);
  if (Stream* stream = reader->acceptor_.accept(fd))
    Downstream::open(reader->ctx_, stream, client, reader->listener_,
                     named ? &destination : nullptr);
}

void HeaderWait::fail() {
  char ip[INET6_ADDRSTRLEN];
  peer_address(peer_, ip, sizeof ip);
  log(LogLevel::kDebug, "PROXY header from %s: %s; closing", ip, problem_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  release();
}

void HeaderWait::release() {
  if (listed_ && reader_) {
    ProxyHeaderReader& r = *reader_;
    if (prev)
      prev->next = next;
    else
      r.waiting_ = next;
    if (next) next->prev = prev;
    --r.waiting_count_;
  }
  listed_ = false;
  if (open_handles_ == 0) {
    delete this;
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &HeaderWait::on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &HeaderWait::on_closed);
}

void HeaderWait::on_closed(uv_handle_t* handle) {
  auto* w = static_cast<HeaderWait*>(handle->data);
  if (--w->open_handles_ == 0) delete w;
}

ProxyHeaderReader::ProxyHeaderReader(WorkerContext& ctx, Acceptor& acceptor,
                                     std::vector<conf::Cidr> from, int32_t listener)
    : ctx_(ctx), acceptor_(acceptor), from_(std::move(from)), listener_(listener) {}

void ProxyHeaderReader::take(int fd, const sockaddr_storage& peer) {
  if (!from_.empty() && std::none_of(from_.begin(), from_.end(),
                                     [&](const conf::Cidr& cidr) { return cidr.contains(peer); })) {
    char ip[INET6_ADDRSTRLEN];
    peer_address(peer, ip, sizeof ip);
    log(LogLevel::kDebug, "PROXY header: %s is not in proxy_protocol_from; closing", ip);
    ::close(fd);
    return;
  }
  auto* wait = new HeaderWait(this, fd, peer);
  switch (wait->read()) {  // the header is often there already, with the connection
    case HeaderWait::Step::kDone:
      return wait->hand_over();
    case HeaderWait::Step::kFail:
      return wait->fail();
    case HeaderWait::Step::kWait:
      break;
  }
  if (!wait->start(ctx_.loop, ctx_.current->snapshot->config.timeouts.client_header_ms))
    wait->fail();
}

void ProxyHeaderReader::close_all() {
  while (waiting_) {
    HeaderWait* w = waiting_;
    waiting_ = w->next;
    if (waiting_) waiting_->prev = nullptr;
    --waiting_count_;
    w->abandon();
  }
}

}  // namespace sluice::core
