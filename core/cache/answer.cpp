// Answers from stored responses. The extra fields are written into a stack buffer: Age,
// Content-Length, Content-Range and Cache-Status are bounded, and the status text is ours.
#include "core/cache/answer.h"

#include <llhttp.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "core/cache/freshness.h"
#include "core/cache/http_date.h"

namespace sluice::core::cache {

namespace {

// The extra fields of one answer head.
class Extra {
 public:
  void add(std::string_view text) {
    const size_t n = std::min(text.size(), sizeof bytes_ - used_);
    std::copy_n(text.data(), n, bytes_ + used_);
    used_ += n;
  }
  void number(uint64_t n) {
    char digits[24];
    auto r = std::to_chars(digits, digits + sizeof digits, n);
    add(std::string_view(digits, static_cast<size_t>(r.ptr - digits)));
  }
  void common(int64_t age, std::string_view status_text) {
    add("Age: ");
    number(static_cast<uint64_t>(std::max<int64_t>(age, 0)));
    add("\r\nCache-Status: ");
    add(status_text);
    add("\r\n");
  }
  std::string_view text() const { return std::string_view(bytes_, used_); }

 private:
  char bytes_[512];
  size_t used_ = 0;
};

uint64_t send_head(const StoredResponse& stored, const CacheQuery& query, ClientSide& client,
                   uint16_t status, const Extra& extra, bool until_close = false) {
  ResponseRewrite how = query.rewrite;
  how.status = status;
  if (until_close) how.keep_alive = false;
  how.extra_fields = extra.text();
  Slice head = write_response_head(query.blocks, stored.head, how);
  client.send(&head, 1);
  block_unref(head.block);
  return head.length;
}

// If-Range (RFC 9110 13.1.5): the range applies only while the validator still names this
// response: a strong entity-tag match, or exactly its Last-Modified date.
bool if_range_holds(const MessageHead& request, const StoredResponse& stored) {
  std::string_view value;
  if (!request.find("If-Range", &value)) return true;
  if (!value.empty() && (value[0] == '"' || value.starts_with("W/")))
    return strong_match(value, stored.etag);
  return !stored.last_modified.empty() && value == stored.last_modified;
}

bool read_number(std::string_view s, uint64_t* n) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  std::from_chars(s.data(), s.data() + s.size(), *n);
  return true;
}

}  // namespace

RangeKind parse_range(std::string_view value, uint64_t size, uint64_t* first, uint64_t* last) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  value = trim(value);
  if (value.size() < 6 || !equals_ignore_case(value.substr(0, 6), "bytes="))
    return RangeKind::kNone;
  const std::string_view spec = trim(value.substr(6));
  if (spec.find(',') != std::string_view::npos) return RangeKind::kNone;
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeKind::kNone;
  const std::string_view a = trim(spec.substr(0, dash)), b = trim(spec.substr(dash + 1));
  uint64_t x = 0, y = 0;
  if (a.empty()) {  // a suffix: the last y bytes
    if (!read_number(b, &y)) return RangeKind::kNone;
    if (y == 0 || size == 0) return RangeKind::kUnsatisfiable;
    *first = size - std::min(y, size);
    *last = size - 1;
    return RangeKind::kRange;
  }
  if (!read_number(a, &x) || (!b.empty() && !read_number(b, &y))) return RangeKind::kNone;
  if (!b.empty() && y < x) return RangeKind::kNone;  // invalid: ignored (RFC 9110 14.1.1)
  if (x >= size) return RangeKind::kUnsatisfiable;
  *first = x;
  *last = b.empty() ? size - 1 : std::min(y, size - 1);
  return RangeKind::kRange;
}

uint64_t answer_body(const std::shared_ptr<const StoredResponse>& stored, uint64_t from,
                     uint64_t to, bool chunked, ClientSide& client, BlockPool& blocks) {
  if (to <= from) return 0;
  uint64_t sent = 0;
  if (chunked) {
    char line[24];
    const int n =
        std::snprintf(line, sizeof line, "%llx\r\n", static_cast<unsigned long long>(to - from));
    Block* b = blocks.acquire();
    std::copy_n(line, n, b->data());
    Slice s{b, b->data(), static_cast<size_t>(n)};
    client.send(&s, 1);
    block_unref(b);
    sent += static_cast<uint64_t>(n);
  }
  Block* lent = lend(stored);
  stored->body->spans(from, to - from, [&](const char* data, size_t length) {
    Slice s{lent, data, length};
    client.send(&s, 1);
    sent += length;
  });
  block_unref(lent);
  if (chunked) {
    static const char kCrlf[] = "\r\n";
    Block* b = blocks.acquire();
    std::copy_n(kCrlf, 2, b->data());
    Slice s{b, b->data(), 2};
    client.send(&s, 1);
    block_unref(b);
    sent += 2;
  }
  return sent;
}

uint64_t answer_last_chunk(ClientSide& client, BlockPool& blocks) {
  Block* b = blocks.acquire();
  std::copy_n("0\r\n\r\n", 5, b->data());
  Slice s{b, b->data(), 5};
  client.send(&s, 1);
  block_unref(b);
  return 5;
}

CachedAnswer answer(const std::shared_ptr<const StoredResponse>& stored, const CacheQuery& query,
                    ClientSide& client, std::string_view status_text, int64_t now) {
  const MessageHead& request = query.request;
  const uint64_t size = stored->body->size();
  Extra extra;
  extra.common(stored->current_age(now), status_text);
  CachedAnswer out;
  if (not_modified(request, *stored)) {
    out.status = 304;
    out.bytes = send_head(*stored, query, client, 304, extra);
    return out;
  }
  uint64_t first = 0, last = size ? size - 1 : 0;
  std::string_view range;
  RangeKind kind = RangeKind::kNone;
  // Ranges are of a representation: a stored error answers whole (RFC 9110 14.2).
  if (request.method == HTTP_GET && stored->head.status == 200 && request.find("Range", &range) &&
      if_range_holds(request, *stored))
    kind = parse_range(range, size, &first, &last);
  if (kind == RangeKind::kUnsatisfiable) {
    extra.add("Content-Range: bytes */");
    extra.number(size);
    extra.add("\r\nContent-Length: 0\r\n");
    out.status = 416;
    out.bytes = send_head(*stored, query, client, 416, extra);
    return out;
  }
  const uint64_t length = kind == RangeKind::kRange ? last - first + 1 : size;
  if (kind == RangeKind::kRange) {
    extra.add("Content-Range: bytes ");
    extra.number(first);
    extra.add("-");
    extra.number(last);
    extra.add("/");
    extra.number(size);
    extra.add("\r\n");
  }
  if (stored->head.status != 204) {  // a 204 has no Content-Length (RFC 9110 8.6)
    extra.add("Content-Length: ");
    extra.number(length);
    extra.add("\r\n");
  }
  out.status = kind == RangeKind::kRange ? 206 : stored->head.status;
  out.bytes = send_head(*stored, query, client, kind == RangeKind::kRange ? 206 : 0, extra);
  if (request.method != HTTP_HEAD && length > 0)
    out.bytes += answer_body(stored, first, first + length, false, client, query.blocks);
  return out;
}

CachedAnswer answer_head(const StoredResponse& stored, const CacheQuery& query, ClientSide& client,
                         std::string_view status_text, int64_t length, int64_t now, bool* chunked) {
  Extra extra;
  extra.common(stored.current_age(now), status_text);
  const MessageHead& request = query.request;
  const bool http10 = request.version_major == 1 && request.version_minor == 0;
  *chunked = false;
  if (stored.head.status == 204) {
    // no body and no Content-Length (RFC 9110 8.6)
  } else if (length >= 0) {
    extra.add("Content-Length: ");
    extra.number(static_cast<uint64_t>(length));
    extra.add("\r\n");
  } else if (!http10) {
    extra.add("Transfer-Encoding: chunked\r\n");
    *chunked = true;
  } else {
    client.close_after();  // an HTTP/1.0 client reads this body up to the close
  }
  CachedAnswer out;
  out.status = stored.head.status;
  out.bytes = send_head(stored, query, client, 0, extra, length < 0 && http10);
  return out;
}

}  // namespace sluice::core::cache
