// Head rewriting into pooled blocks.
#include "core/http/head_writer.h"

#include <llhttp.h>

#include <cctype>
#include <charconv>
#include <cstring>

namespace sluice::core {
namespace {

// Appends into a Block sized up front from the head it copies, so it never overflows.
class HeadBuilder {
 public:
  HeadBuilder(BlockPool& pool, size_t capacity) : block_(pool.acquire(capacity)) {}
  HeadBuilder& add(std::string_view s) {
    std::memcpy(block_->data() + used_, s.data(), s.size());
    used_ += s.size();
    return *this;
  }
  HeadBuilder& add(uint64_t n) {
    char digits[24];
    auto r = std::to_chars(digits, digits + sizeof digits, n);
    return add(std::string_view(digits, static_cast<size_t>(r.ptr - digits)));
  }
  HeadBuilder& field(std::string_view name, std::string_view value) {
    return add(name).add(": ").add(value).add("\r\n");
  }
  Slice finish() { return add("\r\n").take(); }
  Slice take() { return Slice{block_, block_->data(), used_}; }

 private:
  Block* block_;
  size_t used_ = 0;
};

size_t head_capacity(const MessageHead& head) {
  return head.content_bytes() + head.field_count() * 4 + 512;
}

// A name that can stand as a Host value as it is (an upstream's name may hold any character).
bool host_safe(std::string_view name) {
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '.' && c != '-' && c != '_') return false;
  return !name.empty();
}

// The client may offer h2c beside the protocol it upgrades to; the backend must not pick it (the
// proxy does not pass h2c on), so h2c leaves the list. A list without it goes out unchanged.
void add_upgrade_field(HeadBuilder& out, std::string_view name, std::string_view list) {
  if (!list_contains(list, "h2c")) {
    out.field(name, list);
    return;
  }
  bool first = true;
  std::string_view item;
  while (next_list_item(&list, &item)) {
    if (item.empty() || equals_ignore_case(item, "h2c")) continue;
    if (first)
      out.add(name).add(": ");
    else
      out.add(", ");
    out.add(item);
    first = false;
  }
  if (!first) out.add("\r\n");
}

}  // namespace

bool named_in_connection(const MessageHead& head, std::string_view name) {
  for (size_t i = 0; i < head.field_count(); ++i)
    if (head.kind(i) == FieldKind::kConnection && list_contains(head.value(i), name)) return true;
  return false;
}

Slice write_request_head(BlockPool& pool, const MessageHead& request, const RequestRewrite& how) {
  // The forwarded-for chain repeats earlier values, so reserve room for the head twice.
  HeadBuilder out(pool, head_capacity(request) * 2 + how.client_ip.size() +
                            how.host_if_missing.size() + how.request_id.size() + 16);
  out.add(llhttp_method_name(static_cast<llhttp_method_t>(request.method)))
      .add(" ")
      .add(request.origin_target())
      .add(" HTTP/1.1\r\n");
  // RFC 9112 3.2.2: the authority of an absolute-form target wins over any Host field, and the
  // backend gets it the only way an origin-form request can carry it.
  const bool absolute = request.absolute_form();
  if (absolute)
    out.field("Host", request.host());
  else if (host_safe(how.host_if_missing))
    out.field("Host", how.host_if_missing);
  for (size_t i = 0; i < request.field_count(); ++i) {
    const FieldKind kind = request.kind(i);
    if (kind == FieldKind::kXForwardedProto || kind == FieldKind::kXForwardedFor) continue;
    if (absolute && kind == FieldKind::kHost) continue;
    if (kind == FieldKind::kXRequestId && !how.request_id.empty()) continue;
    if (how.tunnel && kind == FieldKind::kUpgrade) {
      add_upgrade_field(out, request.name(i), request.value(i));
      continue;
    }
    if (is_hop_by_hop(request, i)) continue;
    out.field(request.name(i), request.value(i));
  }
  out.add("X-Forwarded-For: ");
  for (size_t i = 0; i < request.field_count(); ++i) {
    if (request.kind(i) != FieldKind::kXForwardedFor) continue;
    std::string_view value = request.value(i);
    if (how.forwarded_field >= 0 && i >= static_cast<size_t>(how.forwarded_field)) {
      if (i > static_cast<size_t>(how.forwarded_field)) break;
      value = value.substr(0, how.forwarded_start);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == ','))
        value.remove_suffix(1);
    }
    if (!value.empty()) out.add(value).add(", ");
  }
  out.add(how.client_ip).add("\r\n");
  out.field("X-Forwarded-Proto", how.scheme);
  if (!how.request_id.empty()) out.field("X-Request-Id", how.request_id);
  if (how.tunnel) out.field("Connection", "upgrade");
  return out.finish();
}

Slice write_response_head(BlockPool& pool, const MessageHead& response,
                          const ResponseRewrite& how) {
  HeadBuilder out(pool, head_capacity(response) + how.request_id.size() + 16);
  out.add("HTTP/1.1 ").add(response.status).add(" ").add(response.reason()).add("\r\n");
  bool has_request_id = false;
  for (size_t i = 0; i < response.field_count(); ++i) {
    const FieldKind kind = response.kind(i);
    has_request_id = has_request_id || kind == FieldKind::kXRequestId;
    const bool keep_upgrade = how.tunnel && kind == FieldKind::kUpgrade;
    if (!keep_upgrade && is_hop_by_hop(response, i)) continue;
    if (how.drop_transfer_encoding && kind == FieldKind::kTransferEncoding) continue;
    out.field(response.name(i), response.value(i));
  }
  if (!how.request_id.empty() && !has_request_id) out.field("X-Request-Id", how.request_id);
  if (how.tunnel)
    out.field("Connection", "upgrade");
  else if (!how.keep_alive)
    out.field("Connection", "close");
  else if (how.http10_client)
    out.field("Connection", "keep-alive");
  return out.finish();
}

Slice write_local_response(BlockPool& pool, int status, std::string_view content_type,
                           std::string_view body, bool keep_alive, std::string_view request_id) {
  const std::string_view reason = status_reason(status);
  HeadBuilder out(pool,
                  256 + reason.size() + content_type.size() + request_id.size() + body.size());
  out.add("HTTP/1.1 ").add(static_cast<uint64_t>(status)).add(" ").add(reason).add("\r\n");
  out.add("Content-Type: ").add(content_type).add("\r\nContent-Length: ").add(body.size());
  out.add("\r\nCache-Control: no-store\r\n");
  if (!request_id.empty()) out.field("X-Request-Id", request_id);
  out.add(keep_alive ? "" : "Connection: close\r\n").add("\r\n");
  return out.add(body).take();
}

Slice write_error_response(BlockPool& pool, int status, std::string_view detail, bool keep_alive,
                           int retry_after_s, std::string_view request_id) {
  const std::string_view reason = status_reason(status);
  HeadBuilder out(pool, 256 + reason.size() * 2 + detail.size() + request_id.size());
  // Body: "502 Bad Gateway: detail\n".
  const size_t body = 4 + reason.size() + (detail.empty() ? 0 : 2 + detail.size()) + 1;
  out.add("HTTP/1.1 ").add(static_cast<uint64_t>(status)).add(" ").add(reason).add("\r\n");
  out.add("Content-Type: text/plain\r\nContent-Length: ").add(body).add("\r\n");
  if (retry_after_s > 0)
    out.add("Retry-After: ").add(static_cast<uint64_t>(retry_after_s)).add("\r\n");
  if (!request_id.empty()) out.field("X-Request-Id", request_id);
  out.add(keep_alive ? "" : "Connection: close\r\n").add("\r\n");
  out.add(static_cast<uint64_t>(status)).add(" ").add(reason);
  if (!detail.empty()) out.add(": ").add(detail);
  return out.add("\n").take();
}

const char* status_reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

}  // namespace sluice::core
