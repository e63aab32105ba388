// A parsed HTTP/1 message head: request line or status line plus header slices, stored compactly
// in one reusable byte buffer. Heads are recycled through a per-worker HeadPool so that parsing a
// request allocates nothing once the pool is warm.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::core {

// How the body of a message is delimited, decided once when the head is complete.
enum class Framing : uint8_t {
  kNone,        // no body (GET without length, HEAD response, 204, 304, 1xx)
  kLength,      // Content-Length bytes
  kChunked,     // chunked transfer coding
  kUntilClose,  // response body runs to connection close
};

// The fields the proxy itself acts on, recognised once per head so that rewriting and framing
// checks compare a byte instead of a name.
enum class FieldKind : uint8_t {
  kOther,
  kHost,
  kContentLength,
  kTransferEncoding,
  kExpect,
  kXRequestId,
  kProxyAuthorization,  // a forward proxy's credentials: consumed there, not passed on
  // The fields that tell the origin about the client and the proxies on the way, which a
  // route's anonymity level keeps, extends or removes. Together, from kXForwardedFor to kVia.
  kXForwardedFor,
  kXForwardedProto,
  kXForwardedHost,
  kXForwardedOther,  // any other X-Forwarded-* (X-Forwarded-Port, X-Forwarded-Server, ...)
  kForwarded,        // RFC 7239
  kXRealIp,
  kVia,
  // Hop-by-hop fields (RFC 9110 7.6.1), never forwarded as they are.
  kConnection,
  kKeepAlive,
  kProxyConnection,
  kTe,
  kTrailer,
  kUpgrade,
  kHttp2Settings,  // belongs to an h2c upgrade, which the proxy never passes on
};

// Which FieldKind `name` is (case-insensitive).
FieldKind classify_field(std::string_view name);

class MessageHead {
 public:
  struct Field {
    uint32_t name_offset, name_length, value_offset, value_length;
    FieldKind kind;
  };

  void clear();

  std::string_view target() const { return slice(target_offset_, target_length_); }
  std::string_view reason() const { return target(); }  // responses keep the reason there
  size_t field_count() const { return fields_.size(); }
  std::string_view name(size_t i) const {
    return slice(fields_[i].name_offset, fields_[i].name_length);
  }
  std::string_view value(size_t i) const {
    return slice(fields_[i].value_offset, fields_[i].value_length);
  }
  FieldKind kind(size_t i) const { return fields_[i].kind; }
  // First field with this name (case-insensitive); empty view and false when absent.
  bool find(std::string_view name, std::string_view* value) const;
  // First field of this kind (valid once the head is complete).
  bool find(FieldKind kind, std::string_view* value) const;
  // The path part of the target: "/a/b" for "/a/b?x" and for "http://host/a/b?x".
  std::string_view path() const;
  // Requests: the host the request is for (RFC 9112 3.2.2): the authority of an absolute-form
  // target, else the Host field's value; empty when there is neither. Route on this, not on
  // the Host field: for an absolute-form request the two may disagree.
  std::string_view host() const { return slice(host_offset_, host_length_); }
  // Requests: the target as a backend gets it: "/p?q" for "http://h/p?q" and "/" for
  // "http://h"; any other target as it came.
  std::string_view origin_target() const {
    return absolute_form_ ? slice(origin_offset_, origin_length_) : target();
  }
  bool absolute_form() const { return absolute_form_; }

  // Building, used by the parser (inline: llhttp calls them for every piece of every field).
  void append_target(const char* data, size_t length) {
    if (target_length_ == 0) target_offset_ = static_cast<uint32_t>(bytes_.size());
    bytes_.append(data, length);
    target_length_ += static_cast<uint32_t>(length);
  }
  void append_name(const char* data, size_t length, bool starts_field) {
    if (starts_field) {
      const auto at = static_cast<uint32_t>(bytes_.size());
      fields_.push_back(Field{at, 0, at, 0, FieldKind::kOther});
    }
    bytes_.append(data, length);
    fields_.back().name_length += static_cast<uint32_t>(length);
    fields_.back().value_offset = static_cast<uint32_t>(bytes_.size());
  }
  void append_value(const char* data, size_t length, bool starts_value) {
    if (starts_value) fields_.back().value_offset = static_cast<uint32_t>(bytes_.size());
    bytes_.append(data, length);
    fields_.back().value_length += static_cast<uint32_t>(length);
  }
  // Called once the head is complete: trims values, classifies every field and notes what the
  // Connection field names, so lookups while rewriting are cheap.
  void finalize();
  // Set by the request parser once the target is checked. Views point into this head.
  void set_host(std::string_view host) {
    host_offset_ = host.empty() ? 0 : offset_of(host);
    host_length_ = static_cast<uint32_t>(host.size());
  }
  // An absolute-form target: `authority` becomes host(), `rest` (path and query, both views into
  // target()) becomes origin_target(), with the "/" an empty path stands for.
  void set_absolute_form(std::string_view authority, std::string_view rest);
  // True when some Connection field names a field other than close, keep-alive or upgrade,
  // which then must not be forwarded either.
  bool connection_names_fields() const { return connection_names_fields_; }
  size_t capacity_bytes() const { return bytes_.capacity(); }
  size_t content_bytes() const { return bytes_.size(); }

  uint8_t method = 0;  // llhttp_method_t
  uint8_t version_major = 1, version_minor = 1;
  uint16_t status = 0;
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;  // the sender allows another message on this connection
  bool upgrade = false;    // request asks for a protocol switch / response is 101
  bool expect_continue = false;

 private:
  std::string_view slice(uint32_t offset, uint32_t length) const {
    return std::string_view(bytes_).substr(offset, length);
  }
  uint32_t offset_of(std::string_view inside) const {
    return static_cast<uint32_t>(inside.data() - bytes_.data());
  }
  std::string bytes_;
  std::vector<Field> fields_;
  uint32_t target_offset_ = 0, target_length_ = 0;
  uint32_t host_offset_ = 0, host_length_ = 0;
  uint32_t origin_offset_ = 0, origin_length_ = 0;
  bool absolute_form_ = false;
  bool connection_names_fields_ = false;
};

// Recycles heads so steady-state traffic does not allocate. One per worker (not thread-safe).
class HeadPool {
 public:
  std::unique_ptr<MessageHead> acquire();
  void release(std::unique_ptr<MessageHead> head);

 private:
  std::vector<std::unique_ptr<MessageHead>> free_;
};

// ASCII case-insensitive equality (field names and tokens are ASCII; no locale involved).
inline bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x - 'A' < 26u) x += 32;
    if (y - 'A' < 26u) y += 32;
    if (x != y) return false;
  }
  return true;
}
// Takes the next item off the front of a comma-separated list, spaces trimmed (an item may be
// empty: "a,,b"). False once the list is used up.
bool next_list_item(std::string_view* list, std::string_view* item);
// True when the comma-separated list `list` holds `token` (case-insensitive, spaces trimmed).
bool list_contains(std::string_view list, std::string_view token);

}  // namespace sluice::core
