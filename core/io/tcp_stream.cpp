// TCP transport. Writes go out immediately with uv_try_write when nothing is queued (the common
// case: one writev system call, no request object); only what the kernel refuses is queued.
#include "core/io/tcp_stream.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <new>

namespace sluice::core {
namespace {

constexpr size_t kSlicesPerWrite = 16;

struct WriteRequest {
  uv_write_t req;
  size_t count;
  Slice slices[kSlicesPerWrite];
};

}  // namespace

TcpStream::TcpStream(uv_loop_t* loop, BlockPool& pool) : pool_(pool) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
}

TcpStream* TcpStream::adopt(uv_loop_t* loop, BlockPool& pool, int fd) {
  auto* s = new TcpStream(loop, pool);
  if (uv_tcp_open(&s->tcp_, fd) != 0) {
    s->close();
    return nullptr;
  }
  return s;
}

TcpStream* TcpStream::connect(uv_loop_t* loop, BlockPool& pool, const sockaddr* address,
                              StreamHandler* handler, int* error) {
  auto* s = new TcpStream(loop, pool);
  s->handler_ = handler;
  s->connect_req_ = new uv_connect_t;
  s->connect_req_->data = s;
  *error = uv_tcp_connect(s->connect_req_, &s->tcp_, address, &TcpStream::on_connect);
  if (*error != 0) {
    delete s->connect_req_;
    s->connect_req_ = nullptr;
    s->close();
    return nullptr;
  }
  s->send_immediately();  // pooled upstream connections carry many exchanges
  return s;
}

void TcpStream::on_connect(uv_connect_t* req, int status) {
  auto* s = static_cast<TcpStream*>(req->data);
  delete req;
  s->connect_req_ = nullptr;
  if (!s->closing_ && s->handler_) s->handler_->on_connected(status);
}

void TcpStream::read_start() {
  if (reading_ || closing_) return;
  reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &TcpStream::on_alloc, &TcpStream::on_read);
}

void TcpStream::read_stop() {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void TcpStream::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* s = static_cast<TcpStream*>(handle->data);
  BlockPool& pool = s->bulk_pool_ && s->last_read_filled_ ? *s->bulk_pool_ : s->pool_;
  s->reading_block_ = pool.acquire();
  buf->base = s->reading_block_->data();
  buf->len = s->reading_block_->size;
}

void TcpStream::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* s = static_cast<TcpStream*>(stream->data);
  Block* block = s->reading_block_;
  s->reading_block_ = nullptr;
  s->last_read_filled_ = block && nread == static_cast<ssize_t>(block->size);
  if (nread > 0 && s->handler_) {
    s->handler_->on_read(block, block->data(), static_cast<size_t>(nread));
  } else if (nread < 0 && s->handler_) {
    s->read_stop();
    if (nread == UV_EOF)
      s->handler_->on_eof();
    else
      s->handler_->on_error(static_cast<int>(nread));
  }
  if (block) block_unref(block);
}

int TcpStream::write(const Slice* slices, size_t count) {
  if (closing_) return UV_ECANCELED;
  size_t written = 0;
  if (pending_writes_ == 0) {
    uv_buf_t bufs[kSlicesPerWrite];
    const size_t n = count < kSlicesPerWrite ? count : kSlicesPerWrite;
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      bufs[i] =
          uv_buf_init(const_cast<char*>(slices[i].data), static_cast<unsigned>(slices[i].length));
      total += slices[i].length;
    }
    const int r =
        uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), bufs, static_cast<unsigned>(n));
    if (r < 0 && r != UV_EAGAIN) return r;
    written = r > 0 ? static_cast<size_t>(r) : 0;
    if (written == total && n == count) return 0;
  }
  return queue_write(slices, count, written);
}

int TcpStream::queue_write(const Slice* slices, size_t count, size_t skip_bytes) {
  size_t i = 0;
  while (i < count) {
    auto* w = new WriteRequest;
    uv_buf_t bufs[kSlicesPerWrite];
    w->count = 0;
    for (; i < count && w->count < kSlicesPerWrite; ++i) {
      Slice s = slices[i];
      if (skip_bytes >= s.length) {
        skip_bytes -= s.length;
        continue;
      }
      s.data += skip_bytes;
      s.length -= skip_bytes;
      skip_bytes = 0;
      block_ref(s.block);
      bufs[w->count] = uv_buf_init(const_cast<char*>(s.data), static_cast<unsigned>(s.length));
      w->slices[w->count++] = s;
    }
    if (w->count == 0) {
      delete w;
      continue;
    }
    w->req.data = this;
    const int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs,
                           static_cast<unsigned>(w->count), &TcpStream::on_write);
    if (r != 0) {
      for (size_t k = 0; k < w->count; ++k) block_unref(w->slices[k].block);
      delete w;
      return r;
    }
    ++pending_writes_;
  }
  return 0;
}

void TcpStream::on_write(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteRequest*>(req);
  auto* s = static_cast<TcpStream*>(req->data);
  for (size_t k = 0; k < w->count; ++k) block_unref(w->slices[k].block);
  delete w;
  --s->pending_writes_;
  if (s->closing_ || !s->handler_) return;
  if (status < 0) {
    s->handler_->on_error(status);
    return;
  }
  if (s->pending_writes_ == 0 && s->want_drained_) {
    s->want_drained_ = false;
    s->handler_->on_drained();
  }
}

void TcpStream::send_immediately() {
  if (no_delay_ || closing_) return;
  no_delay_ = true;
  uv_tcp_nodelay(&tcp_, 1);
}

size_t TcpStream::queued_bytes() const {
  return tcp_.write_queue_size;
}

size_t TcpStream::unsent_bytes() const {
  uv_os_fd_t fd;
  int in_kernel = 0;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0 ||
      ioctl(fd, SIOCOUTQ, &in_kernel) != 0 || in_kernel < 0)
    in_kernel = 0;
  return tcp_.write_queue_size + static_cast<size_t>(in_kernel);
}

bool TcpStream::local_address(sockaddr_storage* out) const {
  int length = sizeof *out;
  return uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(out), &length) == 0;
}

void TcpStream::shutdown_write() {
  if (closing_) return;
  auto* req = new uv_shutdown_t;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_),
                  [](uv_shutdown_t* r, int) { delete r; }) != 0)
    delete req;
}

void TcpStream::close() {
  if (closing_) return;
  closing_ = true;
  handler_ = nullptr;
  reading_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &TcpStream::on_close);
}

void TcpStream::on_close(uv_handle_t* handle) {
  delete static_cast<TcpStream*>(handle->data);
}

Stream* TcpAcceptor::accept(int fd) {
  TcpStream* s = TcpStream::adopt(loop_, blocks_, fd);
  if (!s) {
    ::close(fd);
    return nullptr;
  }
  s->use_bulk_blocks(bulk_);
  return s;
}

Stream* TcpConnector::connect(const sockaddr* address, std::string_view preface,
                              StreamHandler* handler, int* error) {
  TcpStream* s = TcpStream::connect(loop_, blocks_, address, handler, error);
  if (!s) return nullptr;
  s->use_bulk_blocks(bulk_);
  if (preface.empty()) return s;
  // libuv holds writes made while connecting and sends them, in order, once connected: the
  // preface goes out before anything the handler writes after on_connected().
  Block* block = blocks_.acquire(preface.size());
  std::memcpy(block->data(), preface.data(), preface.size());
  const Slice slice{block, block->data(), preface.size()};
  *error = s->write(&slice, 1);
  block_unref(block);
  if (*error == 0) return s;
  s->close();
  return nullptr;
}

}  // namespace sluice::core
