// Rewrites message heads on their way through the proxy: hop-by-hop fields are dropped, the
// forwarding fields are kept, extended or removed by the anonymity level, and the result is
// written into a pooled Block ready for writev, in one pass over the head. Also writes the
// proxy's own answers (400, 502, 503, 504 ...).
#pragma once

#include <cstdint>
#include <string_view>

#include "core/http/http_head.h"
#include "core/io/buffer.h"

namespace sluice::core {

// What the origin learns of the client and of the proxy (docs/anonymity.md has the table).
//  kTransparent: X-Forwarded-For gains the client, X-Forwarded-Proto and X-Forwarded-Host are
//                set, Forwarded (RFC 7239) gains an element and Via names the proxy, both ways.
//  kAnonymous:   Via only, both ways; the client's X-Forwarded-*, Forwarded and X-Real-IP go.
//  kElite:       nothing: no Via either way, and the client's forwarding fields and Via go.
enum class ForwardedMode : uint8_t { kTransparent, kAnonymous, kElite };

// The name the proxy gives itself in Via ("1.1 sluice"): a pseudonym (RFC 9110 7.6.3), so
// neither the host name nor the address of the proxy reaches either side.
inline constexpr std::string_view kViaPseudonym = "sluice";

struct RequestRewrite {
  std::string_view client_ip;
  std::string_view scheme = "http";  // X-Forwarded-Proto
  bool tunnel = false;               // keep Upgrade: the client asks for a protocol switch
  // Sent as Host when the request has none (HTTP/1.0 allows that; the HTTP/1.1 we send does not).
  std::string_view host_if_missing = {};
  // Sent as X-Request-Id in place of any the client sent; empty: the client's fields pass.
  std::string_view request_id = {};
  ForwardedMode forwarded = ForwardedMode::kTransparent;
  // client_ip came out of X-Forwarded-For (trusted_proxies): it stands in for its own entry,
  // which starts at byte `forwarded_start` of field `forwarded_field`, and for the trusted
  // proxies' entries after it, which are left out. -1: every X-Forwarded-For value is kept.
  int32_t forwarded_field = -1;
  uint32_t forwarded_start = 0;
  // A forward proxy that asked for credentials took them: Proxy-Authorization stays here.
  bool drop_proxy_authorization = false;
  // A cache revalidating what it holds sends its own validators in place of the client's
  // (If-None-Match, If-Modified-Since), and no Range or If-Range: it wants the whole response.
  bool drop_conditionals = false;
  std::string_view extra_fields = {};  // more fields, each "Name: value\r\n", sent as they are
};

struct ResponseRewrite {
  bool keep_alive = true;               // the client connection stays open after this response
  bool http10_client = false;           // say keep-alive explicitly to HTTP/1.0 clients
  bool tunnel = false;                  // a 101: keep Upgrade and say Connection: upgrade
  bool drop_transfer_encoding = false;  // the body is being de-chunked for an HTTP/1.0 client
  std::string_view request_id = {};     // added as X-Request-Id unless the response has one
  ForwardedMode forwarded = ForwardedMode::kTransparent;  // kElite: no Via of ours
  uint16_t status = 0;                 // the status sent, with its usual reason (0: the head's)
  std::string_view extra_fields = {};  // more fields, each "Name: value\r\n" (Age, Cache-Status)
};

// Each returns a Slice holding one reference to a fresh Block.
Slice write_request_head(BlockPool& pool, const MessageHead& request, const RequestRewrite& how);
Slice write_response_head(BlockPool& pool, const MessageHead& response, const ResponseRewrite& how);
// `header`, when not empty, is one more field as "Name: value" (a 407's Proxy-Authenticate).
Slice write_error_response(BlockPool& pool, int status, std::string_view detail, bool keep_alive,
                           int retry_after_s = 0, std::string_view request_id = {},
                           std::string_view header = {});
// A response the proxy serves itself with a body of its own (admin pages).
Slice write_local_response(BlockPool& pool, int status, std::string_view content_type,
                           std::string_view body, bool keep_alive, std::string_view request_id);

// True when some Connection field of `head` lists `name`.
bool named_in_connection(const MessageHead& head, std::string_view name);

// True when field `i` describes one connection and must not be forwarded (RFC 9110 7.6.1),
// including every field named in the message's Connection header, except Host, Content-Length
// and Transfer-Encoding: dropping those would change how the backend frames what follows.
// Inline: the writers ask it of every field, and nearly every field is an ordinary one.
inline bool is_hop_by_hop(const MessageHead& head, size_t i) {
  const FieldKind kind = head.kind(i);
  if (kind >= FieldKind::kConnection) return true;  // the hop-by-hop kinds come last
  if (!head.connection_names_fields()) return false;
  return kind != FieldKind::kHost && kind != FieldKind::kContentLength &&
         kind != FieldKind::kTransferEncoding && named_in_connection(head, head.name(i));
}

const char* status_reason(int status);

}  // namespace sluice::core
