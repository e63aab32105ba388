// TLS acceptors and connectors: where a connection meets its context and, toward a backend, the
// session it may resume.
#include "tls/tls_transport.h"

#include <arpa/inet.h>
#include <uv.h>

#include <cstdio>
#include <cstring>

#include "core/io/peer_address.h"
#include "tls/tls_stream.h"

namespace sluice::tls {

core::Stream* TlsAcceptor::accept(int fd) {
  core::Stream* tcp = plain_.accept(fd);
  if (!tcp) return nullptr;
  SSL* ssl = context_->new_session();
  if (!ssl) {
    tcp->close();
    return nullptr;
  }
  return TlsStream::accept(loop_, blocks_, tcp, ssl, context_, context_->handshake_timeout_ms());
}

core::Stream* TlsConnector::connect(const sockaddr* address, std::string_view preface,
                                    core::StreamHandler* handler, int* error) {
  char host[64];
  sockaddr_storage storage{};
  const bool v6 = address->sa_family == AF_INET6;
  std::memcpy(&storage, address, v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  core::peer_address(storage, host, sizeof host);
  SSL* ssl = context_->new_session(host);
  if (!ssl) {
    *error = UV_ENOMEM;
    return nullptr;
  }
  const uint16_t port = ntohs(v6 ? reinterpret_cast<const sockaddr_in6*>(address)->sin6_port
                                 : reinterpret_cast<const sockaddr_in*>(address)->sin_port);
  char key[80];
  std::snprintf(key, sizeof key, "%s:%u", host, static_cast<unsigned>(port));
  std::unique_ptr<SessionSlot>& slot = sessions_[key];
  if (!slot) slot = std::make_unique<SessionSlot>();
  if (slot->session) SSL_set_session(ssl, slot->session);
  SSL_set_ex_data(ssl, ClientContext::session_slot_index(), slot.get());
  return TlsStream::connect(loop_, blocks_, plain_, address, preface, ssl, context_, timeout_ms_,
                            handler, error);
}

}  // namespace sluice::tls
