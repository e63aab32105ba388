// Accepting with accept4 on a polled socket rather than uv_listen: libuv answers EMFILE by
// accepting and dropping the waiting connections; pausing keeps them queued in the kernel
// until descriptors free up.
#include "core/server/listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/io/log.h"
#include "core/proxy/downstream.h"
#include "core/proxy/worker_context.h"
#include "core/server/original_destination.h"

namespace sluice::core {
namespace {
// One accept per readiness, as nginx does by default: the level-triggered poll reports the socket
// again while connections wait, and no accept4 is spent just to learn the queue is empty.
constexpr int kAcceptsPerWake = 1;
constexpr uint64_t kPauseMs = 100;     // wait after EMFILE before trying again
constexpr uint64_t kFullPauseMs = 20;  // wait at max_connections before looking again
}  // namespace

int open_listening_socket(const conf::SocketAddress& address, std::string* error) {
  const sockaddr* sa = reinterpret_cast<const sockaddr*>(&address.storage);
  int fd = ::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = address.text + ": socket: " + std::strerror(errno);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (sa->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, sa, address.length) != 0 || ::listen(fd, 4096) != 0) {
    *error = address.text + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

uint32_t connection_share(uint32_t limit, uint32_t workers) {
  if (workers == 0) workers = 1;
  return static_cast<uint32_t>((uint64_t{limit} + workers - 1) / workers);
}

Listener::Listener(WorkerContext& ctx, Acceptor& acceptor, int fd, int32_t id)
    : ctx_(ctx), acceptor_(acceptor), fd_(fd), id_(id) {
  uv_poll_init(ctx.loop, &poll_, fd);
  uv_timer_init(ctx.loop, &pause_);
  poll_.data = this;
  pause_.data = this;
  uv_poll_start(&poll_, UV_READABLE, &Listener::on_readable);
}

void Listener::on_readable(uv_poll_t* poll, int status, int) {
  if (status == 0) static_cast<Listener*>(poll->data)->accept_batch();
}

// limits.max_connections, shared evenly by the workers: at this worker's share the listener
// stops polling and looks again after a pause, leaving new connections queued in the kernel.
// Both the limit and the worker count are read as they are now, so a reload changes them.
bool Listener::at_capacity() {
  const uint32_t limit = ctx_.current->snapshot->config.limits.max_connections;
  if (limit == 0 || id_ < 0 || static_cast<size_t>(id_) >= ctx_.open_by_listener.size())
    return false;
  if (ctx_.open_by_listener[id_] < connection_share(limit, ctx_.worker_count)) return false;
  uv_poll_stop(&poll_);
  uv_timer_start(&pause_, &Listener::on_resume, kFullPauseMs, 0);
  return true;
}

void Listener::accept_batch() {
  for (int i = 0; i < kAcceptsPerWake; ++i) {
    if (at_capacity()) return;
    sockaddr_storage peer;
    socklen_t peer_length = sizeof peer;
    const int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_length,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (proxy_headers_)
        proxy_headers_->take(fd, peer);  // the header first; then the acceptor
      else
        open_client(fd, peer);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      log(LogLevel::kWarn, "accept: %s; pausing accepts for %llu ms", std::strerror(errno),
          static_cast<unsigned long long>(kPauseMs));
      uv_poll_stop(&poll_);
      uv_timer_start(&pause_, &Listener::on_resume, kPauseMs, 0);
    }
    return;  // EAGAIN: the queue is empty
  }
}

void Listener::open_client(int fd, const sockaddr_storage& peer) {
  sockaddr_storage destination;
  const bool redirected = intercept_ && original_destination(fd, &destination);
  if (Stream* stream = acceptor_.accept(fd))
    Downstream::open(ctx_, stream, peer, id_, redirected ? &destination : nullptr);
}

void Listener::on_resume(uv_timer_t* timer) {
  auto* l = static_cast<Listener*>(timer->data);
  uv_poll_start(&l->poll_, UV_READABLE, &Listener::on_readable);
}

void Listener::read_proxy_headers(std::vector<conf::Cidr> from) {
  if (proxy_headers_)
    proxy_headers_->admit_from(std::move(from));
  else
    proxy_headers_ = std::make_unique<ProxyHeaderReader>(ctx_, acceptor_, std::move(from), id_);
}

void Listener::close() {
  if (proxy_headers_) proxy_headers_->close_all();
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &Listener::on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&pause_), &Listener::on_closed);
  ::close(fd_);
}

void Listener::on_closed(uv_handle_t* handle) {
  auto* l = static_cast<Listener*>(handle->data);
  if (--l->open_handles_ == 0) delete l;
}

}  // namespace sluice::core
