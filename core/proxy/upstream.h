// Upstream connections: one TCP connection to one backend, with its response parser and its
// deadline, lent to one exchange at a time and parked idle in the worker's UpstreamPool between
// exchanges (keep-alive). An idle connection that the backend closes is dropped from the pool.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/http/http_parser.h"
#include "core/io/deadline.h"
#include "core/io/stream.h"
#include "core/io/transport.h"
#include "core/proxy/counters.h"

namespace sluice::core {

struct WorkerContext;

// The idle connections of one backend address and transport, most recently parked first.
struct IdleList {
  class UpstreamConnection* head = nullptr;
  uint32_t count = 0;
};

// The exchange that currently uses an upstream connection.
class UpstreamUser {
 public:
  virtual void on_upstream_connected(int status) = 0;
  virtual void on_upstream_read(Block* block, const char* data, size_t length) = 0;
  virtual void on_upstream_eof() = 0;
  virtual void on_upstream_error(int uv_error) = 0;
  virtual void on_upstream_drained() = 0;
  virtual void on_upstream_timeout() = 0;

 protected:
  ~UpstreamUser() = default;
};

class UpstreamConnection final : public StreamHandler {
 public:
  // Starts connecting to `address` through `connector`, which writes `preface` (a PROXY
  // header, or empty) first; nullptr (with *error set) when no socket could be made. `key`
  // names the backend (its address text, and for connections that open with a PROXY header
  // the client they speak for) and `key_hash` is balancer::hash_key(key).
  static UpstreamConnection* open(WorkerContext& ctx, Connector& connector, std::string_view key,
                                  uint64_t key_hash, const sockaddr* address,
                                  std::string_view preface, UpstreamUser* user, int* error);

  void attach(UpstreamUser* user) { user_ = user; }
  Stream& stream() { return *stream_; }
  HttpParser& parser() { return parser_; }
  Deadline& deadline() { return deadline_; }
  const std::string& key() const { return key_; }
  uint64_t key_hash() const { return key_hash_; }
  const Connector* connector() const { return connector_; }
  bool connected() const { return connected_; }
  // True when this connection already carried a request (so a failure may mean it went stale).
  bool reused() const { return exchanges_ > 1; }
  void count_exchange() { ++exchanges_; }
  // How long the backend lets this connection idle, from its Keep-Alive header (0: unknown).
  void set_backend_idle_limit_ms(uint32_t ms) { backend_idle_limit_ms_ = ms; }
  uint64_t idle_since_ms() const { return idle_since_ms_; }
  void destroy();

  UpstreamConnection* idle_prev = nullptr;
  UpstreamConnection* idle_next = nullptr;
  bool idle = false;

 private:
  friend class UpstreamPool;  // parks it: the idle links, times and limit
  UpstreamConnection(WorkerContext& ctx, const Connector* connector, std::string_view key,
                     uint64_t key_hash);
  ~UpstreamConnection() = default;
  void on_connected(int status) override;
  static void on_deadline(void* self);
  void on_read(Block* block, const char* data, size_t length) override;
  void on_eof() override;
  void on_error(int uv_error) override;
  void on_drained() override;

  WorkerContext& ctx_;
  const Connector* connector_;  // connections are shared only within one transport setting
  Stream* stream_ = nullptr;
  UpstreamUser* user_ = nullptr;
  HttpParser parser_;
  Deadline deadline_;
  std::string key_;
  uint64_t key_hash_;
  uint32_t exchanges_ = 0;
  uint32_t backend_idle_limit_ms_ = 0;
  uint64_t idle_since_ms_ = 0;
  IdleList* idle_list_ = nullptr;  // its list in the pool, found once (the map's nodes stay put)
  bool connected_ = false;
};

// Per-worker idle connections, per backend address, most recently used first.
class UpstreamPool {
 public:
  // The most recently parked idle connection to the backend at `key` (whose hash_key is
  // `key_hash`) made through `connector`, if it has idled for less than `max_idle_ms` at
  // `now_ms`; else nullptr.
  UpstreamConnection* take(uint64_t key_hash, const std::string& key, const Connector* connector,
                           uint64_t now_ms, uint64_t max_idle_ms);
  // Parks `conn` for reuse, or closes it when `max_idle` are already parked for its backend.
  // It is closed after `idle_timeout_ms`, or before the backend's own limit when shorter.
  void put(UpstreamConnection* conn, uint32_t max_idle, uint32_t idle_timeout_ms, uint64_t now_ms);
  void remove(UpstreamConnection* conn);
  void close_all();
  size_t idle_count() const { return total_.get(); }  // any thread

 private:
  std::unordered_map<uint64_t, IdleList> idle_;  // by key hash: no string hashing per request
  LocalCounter total_;
};

// How long a backend keeps an idle connection open, from a response's `Keep-Alive: timeout=N`,
// less a margin so that we retire the connection first: N-1 s, or half of N when N is 1 s.
// 0 when the response names no timeout.
uint32_t backend_idle_limit_ms(const MessageHead& response);

}  // namespace sluice::core
