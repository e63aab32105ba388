// Storage and lookups for parsed message heads.
#include "core/http/http_head.h"

namespace sluice::core {

namespace {

// Inlined into finalize(), which runs it on every field of every head.
[[gnu::always_inline]] inline FieldKind classify(std::string_view name) {
  // Dispatch on length, then on the first letter: most fields fail one of the two at once.
  if (name.empty()) return FieldKind::kOther;
  const char first = static_cast<char>(name[0] | 0x20);
  const auto is = [&](std::string_view lower) {
    return first == lower[0] && equals_ignore_case(name.substr(1), lower.substr(1));
  };
  switch (name.size()) {
    case 2:
      if (is("te")) return FieldKind::kTe;
      break;
    case 3:
      if (is("via")) return FieldKind::kVia;
      break;
    case 4:
      if (is("host")) return FieldKind::kHost;
      break;
    case 6:
      if (is("expect")) return FieldKind::kExpect;
      break;
    case 9:
      if (is("forwarded")) return FieldKind::kForwarded;
      if (is("x-real-ip")) return FieldKind::kXRealIp;
      break;
    case 7:
      if (is("trailer")) return FieldKind::kTrailer;
      if (is("upgrade")) return FieldKind::kUpgrade;
      break;
    case 12:
      if (is("x-request-id")) return FieldKind::kXRequestId;
      break;
    case 10:
      if (is("connection")) return FieldKind::kConnection;
      if (is("keep-alive")) return FieldKind::kKeepAlive;
      break;
    case 14:
      if (is("content-length")) return FieldKind::kContentLength;
      if (is("http2-settings")) return FieldKind::kHttp2Settings;
      break;
    case 15:
      if (is("x-forwarded-for")) return FieldKind::kXForwardedFor;
      break;
    case 16:
      if (is("proxy-connection")) return FieldKind::kProxyConnection;
      if (is("x-forwarded-host")) return FieldKind::kXForwardedHost;
      break;
    case 19:
      if (is("proxy-authorization")) return FieldKind::kProxyAuthorization;
      break;
    case 17:
      if (is("transfer-encoding")) return FieldKind::kTransferEncoding;
      if (is("x-forwarded-proto")) return FieldKind::kXForwardedProto;
      break;
    default:
      break;
  }
  // Every other X-Forwarded-* name; only names starting with an x pay for the comparison.
  if (first == 'x' && name.size() >= 12 && equals_ignore_case(name.substr(1, 11), "-forwarded-"))
    return FieldKind::kXForwardedOther;
  return FieldKind::kOther;
}

}  // namespace

FieldKind classify_field(std::string_view name) {
  return classify(name);
}

static std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool next_list_item(std::string_view* list, std::string_view* item) {
  if (list->empty()) return false;
  const size_t comma = list->find(',');
  *item = trim(list->substr(0, comma));
  list->remove_prefix(comma == std::string_view::npos ? list->size() : comma + 1);
  return true;
}

bool list_contains(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    if (equals_ignore_case(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

void MessageHead::clear() {
  bytes_.clear();
  fields_.clear();
  target_offset_ = target_length_ = 0;
  host_offset_ = host_length_ = 0;
  origin_offset_ = origin_length_ = 0;
  absolute_form_ = false;
  connection_names_fields_ = false;
  method = 0;
  version_major = version_minor = 1;
  status = 0;
  framing = Framing::kNone;
  content_length = 0;
  keep_alive = true;
  upgrade = false;
  expect_continue = false;
}

void MessageHead::finalize() {
  connection_names_fields_ = false;
  for (Field& f : fields_) {
    while (f.value_length > 0 &&
           (bytes_[f.value_offset] == ' ' || bytes_[f.value_offset] == '\t')) {
      ++f.value_offset;
      --f.value_length;
    }
    while (f.value_length > 0 && (bytes_[f.value_offset + f.value_length - 1] == ' ' ||
                                  bytes_[f.value_offset + f.value_length - 1] == '\t'))
      --f.value_length;
    f.kind = classify(slice(f.name_offset, f.name_length));
    if (f.kind != FieldKind::kConnection) continue;
    std::string_view list = slice(f.value_offset, f.value_length);
    while (!list.empty()) {
      const size_t comma = list.find(',');
      const std::string_view item = trim(list.substr(0, comma));
      if (!item.empty() && !equals_ignore_case(item, "close") &&
          !equals_ignore_case(item, "keep-alive") && !equals_ignore_case(item, "upgrade"))
        connection_names_fields_ = true;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
}

bool MessageHead::find(std::string_view wanted, std::string_view* out) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (equals_ignore_case(name(i), wanted)) {
      *out = value(i);
      return true;
    }
  }
  *out = {};
  return false;
}

bool MessageHead::find(FieldKind wanted, std::string_view* out) const {
  for (const Field& f : fields_) {
    if (f.kind == wanted) {
      *out = slice(f.value_offset, f.value_length);
      return true;
    }
  }
  *out = {};
  return false;
}

std::string_view MessageHead::path() const {
  const std::string_view t = origin_target();
  return t.substr(0, t.find_first_of("?#"));
}

void MessageHead::set_absolute_form(std::string_view authority, std::string_view rest) {
  set_host(authority);
  absolute_form_ = true;
  if (!rest.empty() && rest.front() == '/') {
    origin_offset_ = offset_of(rest);
    origin_length_ = static_cast<uint32_t>(rest.size());
    return;
  }
  // "http://h?q" has an empty path, which origin-form writes as "/": the copy goes after the
  // head's bytes (rare enough that growing the pooled buffer does not matter).
  const size_t from = rest.empty() ? 0 : offset_of(rest);
  const size_t at = bytes_.size();
  bytes_.resize(at + 1 + rest.size());
  bytes_[at] = '/';
  bytes_.copy(bytes_.data() + at + 1, rest.size(), from);
  origin_offset_ = static_cast<uint32_t>(at);
  origin_length_ = static_cast<uint32_t>(1 + rest.size());
}

std::unique_ptr<MessageHead> HeadPool::acquire() {
  if (free_.empty()) return std::make_unique<MessageHead>();
  std::unique_ptr<MessageHead> head = std::move(free_.back());
  free_.pop_back();
  head->clear();
  return head;
}

void HeadPool::release(std::unique_ptr<MessageHead> head) {
  // Keep a bounded number of warm heads; an unusually large one is not worth hoarding.
  if (!head || free_.size() >= 256 || head->capacity_bytes() > 16384) return;
  free_.push_back(std::move(head));
}

}  // namespace sluice::core
