// Head rewriting into pooled blocks.
#include "core/http/head_writer.h"

#include <llhttp.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cstring>

namespace sluice::core {
namespace {

// Appends into a Block sized up front from the head it copies, so it never overflows. `spare`
// bytes past `capacity` are scratch room for the writer (see ChainNotes), never sent.
class HeadBuilder {
 public:
  HeadBuilder(BlockPool& pool, size_t capacity, size_t spare = 0)
      : block_(pool.acquire(capacity + spare)), spare_(block_->data() + capacity) {}
  char* spare() const { return spare_; }
  HeadBuilder& add(std::string_view s) {
    if (s.empty()) return *this;  // an empty view may hold no pointer, which memcpy may not take
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
  char* spare_;
  size_t used_ = 0;
};

// The fields whose lists the proxy extends (X-Forwarded-For, Forwarded, Via), noted by index
// during the one pass over a head and written after it, each list with the proxy's element
// last. The notes live in the head's block past the room for the head (4 bytes a field at
// most), so taking them allocates nothing.
// `value` without the separators (spaces, tabs, commas) at its end.
std::string_view trim_list_end(std::string_view value) {
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == ','))
    value.remove_suffix(1);
  return value;
}

// The fields a cache replaces when it revalidates what it holds: the client's validators, and
// its range (the cache fetches the whole response and answers the range from it).
bool is_cache_validator(std::string_view name) {
  return equals_ignore_case(name, "If-None-Match") ||
         equals_ignore_case(name, "If-Modified-Since") || equals_ignore_case(name, "Range") ||
         equals_ignore_case(name, "If-Range");
}

class ChainNotes {
 public:
  explicit ChainNotes(char* room) : room_(room) {}
  static size_t room_for(const MessageHead& head) { return head.field_count() * sizeof(uint32_t); }
  void note(size_t i) {
    const auto index = static_cast<uint32_t>(i);
    std::memcpy(room_ + count_ * sizeof index, &index, sizeof index);
    ++count_;
  }
  // Starts field `name` with the values of the noted fields of `kind`, in the order they came,
  // each followed by ", ": the caller adds the proxy's element and the CRLF. With `cut_field`
  // (not -1), the chain ends before byte `cut_start` of that field: the entry there and the
  // ones after it are left out (trusted_proxies named the client there).
  void open(HeadBuilder& out, const MessageHead& head, FieldKind kind, std::string_view name,
            int32_t cut_field = -1, uint32_t cut_start = 0) const {
    out.add(name).add(": ");
    for (size_t n = 0; n < count_; ++n) {
      uint32_t i;
      std::memcpy(&i, room_ + n * sizeof i, sizeof i);
      if (head.kind(i) != kind) continue;
      std::string_view value = head.value(i);
      if (cut_field >= 0 && i >= static_cast<uint32_t>(cut_field)) {
        if (i > static_cast<uint32_t>(cut_field)) break;
        value = trim_list_end(value.substr(0, cut_start));
      }
      if (!value.empty()) out.add(value).add(", ");
    }
  }

 private:
  char* room_;
  size_t count_ = 0;
};

// What happens to a forwarding field the client (or the backend, for Via) sent, by level.
enum class Keep : uint8_t { kPass, kDrop, kChain };
constexpr size_t kForwardingKinds =
    static_cast<size_t>(FieldKind::kVia) - static_cast<size_t>(FieldKind::kXForwardedFor) + 1;
static_assert(kForwardingKinds == 7, "a column of kKeep for every forwarding field kind");
// Rows: ForwardedMode. Columns: X-Forwarded-For, -Proto, -Host, other X-Forwarded-*,
// Forwarded, X-Real-IP, Via. Transparent replaces -Proto and -Host with its own.
constexpr Keep kKeep[3][kForwardingKinds] = {
    {Keep::kChain, Keep::kDrop, Keep::kDrop, Keep::kPass, Keep::kChain, Keep::kPass, Keep::kChain},
    {Keep::kDrop, Keep::kDrop, Keep::kDrop, Keep::kDrop, Keep::kDrop, Keep::kDrop, Keep::kChain},
    {Keep::kDrop, Keep::kDrop, Keep::kDrop, Keep::kDrop, Keep::kDrop, Keep::kDrop, Keep::kDrop},
};

bool is_forwarding(FieldKind kind) {
  return kind >= FieldKind::kXForwardedFor && kind <= FieldKind::kVia;
}

Keep keep_of(ForwardedMode mode, FieldKind kind) {
  return kKeep[static_cast<size_t>(mode)]
              [static_cast<size_t>(kind) - static_cast<size_t>(FieldKind::kXForwardedFor)];
}

// The characters of a token (tchar, RFC 9110 5.6.2), looked up rather than tested one class at
// a time: every Forwarded element a transparent route writes checks its host against it.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> chars{};
  for (int c = '0'; c <= '9'; ++c) chars[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) chars[c] = chars[c - 'a' + 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) chars[static_cast<unsigned char>(c)] = true;
  return chars;
}();

bool is_token(std::string_view value) {
  for (unsigned char c : value)
    if (!kTokenChars[c]) return false;
  return !value.empty();
}

// A Forwarded parameter value: a token as it is, anything else as a quoted-string (RFC 7239 4).
void add_forwarded_value(HeadBuilder& out, std::string_view value) {
  if (is_token(value)) {
    out.add(value);
    return;
  }
  out.add("\"");
  // A host never holds a quote or a backslash (the parser checked it), but a quoted-string
  // must escape them wherever the value came from.
  for (size_t at; (at = value.find_first_of("\"\\")) != std::string_view::npos;) {
    out.add(value.substr(0, at)).add("\\").add(value.substr(at, 1));
    value.remove_prefix(at + 1);
  }
  out.add(value).add("\"");
}

// The proxy's Forwarded element: for=192.0.2.1;proto=http;host=example.com. An IPv6 address
// goes in brackets and quotes (RFC 7239 6), and an unknown client as "unknown" (6.3).
void add_forwarded_element(HeadBuilder& out, std::string_view client, std::string_view scheme,
                           std::string_view host) {
  out.add("for=");
  if (client.empty())
    out.add("unknown");
  else if (client.find(':') != std::string_view::npos)
    out.add("\"[").add(client).add("]\"");
  else
    out.add(client);
  out.add(";proto=").add(scheme);
  if (!host.empty()) {
    out.add(";host=");
    add_forwarded_value(out, host);
  }
  out.add("\r\n");
}

// The proxy's Via element after the list `open` started: the version of the message as it was
// received, then the pseudonym (RFC 9110 7.6.3).
void add_via_element(HeadBuilder& out, const MessageHead& received) {
  const char version[3] = {static_cast<char>('0' + received.version_major % 10), '.',
                           static_cast<char>('0' + received.version_minor % 10)};
  out.add(std::string_view(version, sizeof version)).add(" ").add(kViaPseudonym).add("\r\n");
}

// The forwarding fields the proxy writes at the end of a request head, by the route's level.
void add_request_forwarding(HeadBuilder& out, const MessageHead& request, const ChainNotes& chains,
                            const RequestRewrite& how) {
  if (how.forwarded == ForwardedMode::kElite) return;
  if (how.forwarded == ForwardedMode::kTransparent) {
    chains.open(out, request, FieldKind::kXForwardedFor, "X-Forwarded-For", how.forwarded_field,
                how.forwarded_start);
    out.add(how.client_ip).add("\r\n");
    out.field("X-Forwarded-Proto", how.scheme);
    // The host the client asked for, whichever way it named it (RFC 9112 3.2.2).
    const std::string_view host = request.host();
    if (!host.empty()) out.field("X-Forwarded-Host", host);
    chains.open(out, request, FieldKind::kForwarded, "Forwarded");
    add_forwarded_element(out, how.client_ip, how.scheme, host);
  }
  chains.open(out, request, FieldKind::kVia, "Via");
  add_via_element(out, request);
}

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
  // The head's bytes go out once (the extended lists move to the end, not repeated); beside
  // them ", " per list value, the host up to four more times (Host for an absolute form,
  // X-Forwarded-Host, Forwarded's quoted host), the client twice, and fixed text.
  const size_t room = head_capacity(request) + request.field_count() * 2 +
                      request.host().size() * 5 + (how.client_ip.size() + how.scheme.size()) * 2 +
                      how.host_if_missing.size() + how.request_id.size() + how.extra_fields.size();
  HeadBuilder out(pool, room, ChainNotes::room_for(request));
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
  ChainNotes chains(out.spare());
  for (size_t i = 0; i < request.field_count(); ++i) {
    const FieldKind kind = request.kind(i);
    if (is_forwarding(kind)) {
      const Keep keep = keep_of(how.forwarded, kind);
      if (keep == Keep::kDrop || is_hop_by_hop(request, i)) continue;
      if (keep == Keep::kChain) {
        chains.note(i);
        continue;
      }
    }
    if (absolute && kind == FieldKind::kHost) continue;
    if (kind == FieldKind::kXRequestId && !how.request_id.empty()) continue;
    if (kind == FieldKind::kProxyAuthorization && how.drop_proxy_authorization) continue;
    if (how.drop_conditionals && is_cache_validator(request.name(i))) continue;
    if (how.tunnel && kind == FieldKind::kUpgrade) {
      add_upgrade_field(out, request.name(i), request.value(i));
      continue;
    }
    if (is_hop_by_hop(request, i)) continue;
    out.field(request.name(i), request.value(i));
  }
  add_request_forwarding(out, request, chains, how);
  if (!how.request_id.empty()) out.field("X-Request-Id", how.request_id);
  out.add(how.extra_fields);
  if (how.tunnel) out.field("Connection", "upgrade");
  return out.finish();
}

Slice write_response_head(BlockPool& pool, const MessageHead& response,
                          const ResponseRewrite& how) {
  const bool via = how.forwarded != ForwardedMode::kElite;
  HeadBuilder out(pool,
                  head_capacity(response) + response.field_count() * 2 + how.request_id.size() +
                      how.extra_fields.size() + 64,
                  ChainNotes::room_for(response));
  if (how.status == 0)
    out.add("HTTP/1.1 ").add(response.status).add(" ").add(response.reason()).add("\r\n");
  else
    out.add("HTTP/1.1 ").add(how.status).add(" ").add(status_reason(how.status)).add("\r\n");
  ChainNotes chains(out.spare());
  bool has_request_id = false;
  for (size_t i = 0; i < response.field_count(); ++i) {
    const FieldKind kind = response.kind(i);
    has_request_id = has_request_id || kind == FieldKind::kXRequestId;
    const bool keep_upgrade = how.tunnel && kind == FieldKind::kUpgrade;
    if (!keep_upgrade && is_hop_by_hop(response, i)) continue;
    if (how.drop_transfer_encoding && kind == FieldKind::kTransferEncoding) continue;
    if (via && kind == FieldKind::kVia) {  // the backend's Via, which ours extends
      chains.note(i);
      continue;
    }
    out.field(response.name(i), response.value(i));
  }
  if (via) {
    chains.open(out, response, FieldKind::kVia, "Via");
    add_via_element(out, response);
  }
  if (!how.request_id.empty() && !has_request_id) out.field("X-Request-Id", how.request_id);
  out.add(how.extra_fields);
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
                           int retry_after_s, std::string_view request_id,
                           std::string_view header) {
  const std::string_view reason = status_reason(status);
  HeadBuilder out(pool,
                  256 + reason.size() * 2 + detail.size() + request_id.size() + header.size());
  // Body: "502 Bad Gateway: detail\n".
  const size_t body = 4 + reason.size() + (detail.empty() ? 0 : 2 + detail.size()) + 1;
  out.add("HTTP/1.1 ").add(static_cast<uint64_t>(status)).add(" ").add(reason).add("\r\n");
  out.add("Content-Type: text/plain\r\nContent-Length: ").add(body).add("\r\n");
  if (retry_after_s > 0)
    out.add("Retry-After: ").add(static_cast<uint64_t>(retry_after_s)).add("\r\n");
  if (!request_id.empty()) out.field("X-Request-Id", request_id);
  if (!header.empty()) out.add(header).add("\r\n");
  out.add(keep_alive ? "" : "Connection: close\r\n").add("\r\n");
  out.add(static_cast<uint64_t>(status)).add(" ").add(reason);
  if (!detail.empty()) out.add(": ").add(detail);
  return out.add("\n").take();
}

const char* status_reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
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
