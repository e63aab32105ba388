// The in-memory stream: reads come from the test's sends, writes collect in the peer's string.
#include "test/core/proxy/memory_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace sluice::test {
namespace {

std::string address_text(const sockaddr* address) {
  char ip[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    port = ntohs(in->sin_port);
  } else if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    port = ntohs(in6->sin6_port);
    char text[INET6_ADDRSTRLEN + 10];
    std::snprintf(text, sizeof text, "[%s]:%u", ip, static_cast<unsigned>(port));
    return text;
  }
  char text[INET6_ADDRSTRLEN + 10];
  std::snprintf(text, sizeof text, "%s:%u", ip, static_cast<unsigned>(port));
  return text;
}

}  // namespace

// An event from the network reaches the proxy with the loop's clock read just before, as libuv
// reads it after each poll: deadlines the proxy sets from it count from the event.
MemoryStream* MemoryPeer::event() {
  if (stream_) uv_update_time(stream_->wake_.loop);
  return stream_;
}

void MemoryPeer::send(std::string_view bytes) {
  MemoryStream* s = event();
  if (!s) return;
  s->inbox_.append(bytes);
  s->deliver();
}

void MemoryPeer::send_eof() {
  MemoryStream* s = event();
  if (!s) return;
  s->inbox_eof_ = true;
  s->deliver();
}

void MemoryPeer::fail(int uv_error) {
  MemoryStream* s = event();
  if (!s || !s->handler_) return;
  s->failed_ = true;
  s->reading_ = false;
  s->handler_->on_error(uv_error);
}

void MemoryPeer::finish_connect(int status) {
  if (MemoryStream* s = event()) s->connect_done(status);
}

void MemoryPeer::hold() {
  if (stream_) stream_->held_ = true;
}

void MemoryPeer::take(size_t bytes) {
  if (MemoryStream* s = event()) s->drain(bytes);
}

void MemoryPeer::release() {
  MemoryStream* s = event();
  if (!s) return;
  s->held_ = false;
  s->drain(SIZE_MAX);
}

std::string MemoryPeer::take_received() {
  std::string fresh = received_.substr(taken_);
  taken_ = received_.size();
  return fresh;
}

size_t MemoryPeer::queued_bytes() const {
  return stream_ ? stream_->queued_bytes() : 0;
}

bool MemoryPeer::reading() const {
  return stream_ && stream_->reading();
}

MemoryStream* MemoryStream::make(uv_loop_t* loop, core::BlockPool& pool,
                                 std::shared_ptr<MemoryPeer>* peer) {
  *peer = std::make_shared<MemoryPeer>();
  auto* stream = new MemoryStream(loop, pool, *peer);
  (*peer)->stream_ = stream;
  return stream;
}

MemoryStream::MemoryStream(uv_loop_t* loop, core::BlockPool& pool, std::shared_ptr<MemoryPeer> peer)
    : pool_(pool), peer_(std::move(peer)) {
  uv_idle_init(loop, &wake_);
  wake_.data = this;
}

MemoryStream::~MemoryStream() = default;

void MemoryStream::read_start() {
  if (closing_ || failed_ || reading_) return;
  reading_ = true;
  // Like a socket, what waited is read on a later loop turn, never inside this call.
  if (!inbox_.empty() || inbox_eof_) wake();
}

void MemoryStream::wake() {
  if (!closing_) uv_idle_start(&wake_, &MemoryStream::on_wake);
}

void MemoryStream::on_wake(uv_idle_t* idle) {
  auto* s = static_cast<MemoryStream*>(idle->data);
  uv_idle_stop(idle);
  if (s->connect_status_ != kNoConnectDue) s->connect_done(s->connect_status_);
  s->deliver();
}

void MemoryStream::connect_done(int status) {
  connect_status_ = kNoConnectDue;
  if (closing_ || !handler_) return;
  handler_->on_connected(status);
}

// Hands waiting bytes to the handler, one pooled block at a time, as a socket's reads would.
void MemoryStream::deliver() {
  while (!closing_ && reading_ && handler_ && !inbox_.empty()) {
    core::Block* block = pool_.acquire();
    const size_t n = std::min<size_t>(inbox_.size(), block->size);
    std::memcpy(block->data(), inbox_.data(), n);
    inbox_.erase(0, n);
    handler_->on_read(block, block->data(), n);
    core::block_unref(block);
  }
  if (closing_ || !reading_ || !handler_ || !inbox_.empty() || !inbox_eof_) return;
  reading_ = false;  // a socket at its end reports it again to every later read, as here
  handler_->on_eof();
}

int MemoryStream::write(const core::Slice* slices, size_t count) {
  if (closing_) return UV_ECANCELED;
  if (failed_) return UV_EPIPE;
  for (size_t i = 0; i < count; ++i) {
    if (!held_ && out_.empty()) {
      peer_->received_.append(slices[i].data, slices[i].length);
      continue;
    }
    core::block_ref(slices[i].block);
    out_.push_back(slices[i]);
    queued_bytes_ += slices[i].length;
  }
  return 0;
}

void MemoryStream::drain(size_t limit) {
  size_t taken = 0;
  while (!out_.empty() && taken < limit) {
    core::Slice& s = out_.front();
    const size_t n = std::min(s.length, limit - taken);
    peer_->received_.append(s.data, n);
    taken += n;
    s.data += n;
    s.length -= n;
    if (s.length > 0) break;
    core::block_unref(s.block);
    out_.pop_front();
  }
  queued_bytes_ -= taken;
  if (taken == 0 || queued_bytes_ > 0 || !want_drained_ || !handler_ || closing_) return;
  want_drained_ = false;
  handler_->on_drained();
}

void MemoryStream::shutdown_write() {
  if (!closing_) peer_->shut_down_ = true;
}

void MemoryStream::close() {
  if (closing_) return;
  closing_ = true;
  handler_ = nullptr;
  reading_ = false;
  for (core::Slice& s : out_) core::block_unref(s.block);  // abandoned, as a socket's would be
  out_.clear();
  queued_bytes_ = 0;
  peer_->closed_ = true;
  peer_->stream_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&wake_),
           [](uv_handle_t* h) { delete static_cast<MemoryStream*>(h->data); });
}

core::Stream* MemoryConnector::connect(const sockaddr* address, std::string_view preface,
                                       core::StreamHandler* handler, int* error) {
  if (fail_next_ != 0) {
    *error = fail_next_;
    fail_next_ = 0;
    return nullptr;
  }
  std::shared_ptr<MemoryPeer> peer;
  MemoryStream* stream = MemoryStream::make(loop_, pool_, &peer);
  peer->address_ = address_text(address);
  peer->received_ = std::string(preface);
  stream->set_handler(handler);
  if (!by_hand_) {  // the caller learns of the stream first, so the result comes a turn later
    stream->connect_status_ = 0;
    stream->wake();
  }
  made_.push_back(std::move(peer));
  *error = 0;
  return stream;
}

}  // namespace sluice::test
