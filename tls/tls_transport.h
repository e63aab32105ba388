// TLS as a transport kind: an Acceptor that wraps a listener's accepted sockets in TLS with the
// listener's current context, and a Connector that opens TLS connections to one upstream's
// backends and keeps each backend's last session for resumption. Both belong to one worker.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "core/io/transport.h"
#include "tls/client_context.h"
#include "tls/server_context.h"

namespace sluice::tls {

class TlsAcceptor final : public core::Acceptor {
 public:
  TlsAcceptor(uv_loop_t* loop, core::BlockPool& blocks, core::Acceptor& plain,
              std::shared_ptr<const ServerContext> context)
      : loop_(loop), blocks_(blocks), plain_(plain), context_(std::move(context)) {}
  // New connections get `context`; those already open keep theirs. Worker thread only.
  void use(std::shared_ptr<const ServerContext> context) { context_ = std::move(context); }
  core::Stream* accept(int fd) override;

 private:
  uv_loop_t* loop_;
  core::BlockPool& blocks_;
  core::Acceptor& plain_;
  std::shared_ptr<const ServerContext> context_;
};

class TlsConnector final : public core::Connector {
 public:
  // `timeout_ms` bounds connect and handshake together.
  TlsConnector(uv_loop_t* loop, core::BlockPool& blocks, core::Connector& plain,
               std::shared_ptr<const ClientContext> context, uint32_t timeout_ms)
      : loop_(loop),
        blocks_(blocks),
        plain_(plain),
        context_(std::move(context)),
        timeout_ms_(timeout_ms) {}
  // The preface goes to the plain connector: it precedes the TLS handshake on the wire.
  core::Stream* connect(const sockaddr* address, std::string_view preface,
                        core::StreamHandler* handler, int* error) override;
  const ClientContext& context() const { return *context_; }

 private:
  uv_loop_t* loop_;
  core::BlockPool& blocks_;
  core::Connector& plain_;
  std::shared_ptr<const ClientContext> context_;
  uint32_t timeout_ms_;
  std::unordered_map<std::string, std::unique_ptr<SessionSlot>> sessions_;  // by address
};

}  // namespace sluice::tls
