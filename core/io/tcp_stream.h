// Stream over a libuv TCP handle: the plain-text transport for clients and backends.
#pragma once

#include <uv.h>

#include "core/io/stream.h"
#include "core/io/transport.h"

namespace sluice::core {

class TcpStream final : public Stream {
 public:
  // Takes over an open, non-blocking socket (accepted or connecting). Returns nullptr on failure.
  static TcpStream* adopt(uv_loop_t* loop, BlockPool& pool, int fd);
  // Starts a non-blocking connect; `handler` gets on_connected(status) once. nullptr on failure.
  static TcpStream* connect(uv_loop_t* loop, BlockPool& pool, const sockaddr* address,
                            StreamHandler* handler, int* error);

  // After a read that fills its whole block, the next read lands in one of `bulk`'s larger
  // blocks; a read that does not fill its block switches back. A body in bulk then moves in a
  // quarter of the reads, writes and peer wake-ups, while small messages keep small blocks.
  void use_bulk_blocks(BlockPool* bulk) { bulk_pool_ = bulk; }

  void read_start() override;
  void read_stop() override;
  bool reading() const override { return reading_; }
  int write(const Slice* slices, size_t count) override;
  size_t queued_bytes() const override;
  size_t unsent_bytes() const override;
  bool local_address(sockaddr_storage* out) const override;
  void notify_drained() override { want_drained_ = true; }
  void send_immediately() override;
  void shutdown_write() override;
  void close() override;

 private:
  TcpStream(uv_loop_t* loop, BlockPool& pool);
  ~TcpStream() override = default;
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_connect(uv_connect_t* req, int status);
  static void on_close(uv_handle_t* handle);
  int queue_write(const Slice* slices, size_t count, size_t skip_bytes);

  uv_tcp_t tcp_;
  BlockPool& pool_;
  BlockPool* bulk_pool_ = nullptr;
  Block* reading_block_ = nullptr;
  uv_connect_t* connect_req_ = nullptr;
  bool reading_ = false;
  bool want_drained_ = false;
  bool closing_ = false;
  bool no_delay_ = false;
  bool last_read_filled_ = false;  // the previous read filled its whole block
  unsigned pending_writes_ = 0;
};

// Plain TCP both ways, for one worker. Bodies that arrive in bulk move through `bulk` blocks.
class TcpAcceptor final : public Acceptor {
 public:
  TcpAcceptor(uv_loop_t* loop, BlockPool& blocks, BlockPool* bulk)
      : loop_(loop), blocks_(blocks), bulk_(bulk) {}
  Stream* accept(int fd) override;

 private:
  uv_loop_t* loop_;
  BlockPool& blocks_;
  BlockPool* bulk_;
};

class TcpConnector final : public Connector {
 public:
  TcpConnector(uv_loop_t* loop, BlockPool& blocks, BlockPool* bulk)
      : loop_(loop), blocks_(blocks), bulk_(bulk) {}
  // The preface is queued while the connect runs, so it leaves first once connected.
  Stream* connect(const sockaddr* address, std::string_view preface, StreamHandler* handler,
                  int* error) override;

 private:
  uv_loop_t* loop_;
  BlockPool& blocks_;
  BlockPool* bulk_;
};

}  // namespace sluice::core
