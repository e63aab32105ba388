// The access-log line: field order and names are docs/logging.md's table.
#include "core/accesslog/access_line.h"

#include <llhttp.h>

#include <array>
#include <charconv>
#include <cstring>

namespace sluice::accesslog {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// The length of the valid UTF-8 sequence starting at `p` (2 to 4 bytes), or 0 when it is not one
// (overlong forms, surrogates and code points past U+10FFFF are not).
size_t utf8_sequence(const unsigned char* p, size_t left) {
  const unsigned char b = p[0];
  size_t length;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    length = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    length = 3;
    if (b == 0xE0) low = 0xA0;
    if (b == 0xED) high = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    length = 4;
    if (b == 0xF0) low = 0x90;
    if (b == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (left < length || p[1] < low || p[1] > high) return 0;
  for (size_t i = 2; i < length; ++i)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return length;
}

void append_escaped_byte(std::string* out, unsigned char c) {
  const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
  out->append(escaped, sizeof escaped);
}

template <typename T>
void append_number(std::string* out, T value) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, value);
  out->append(digits, result.ptr);
}

void two_digits(char* at, unsigned value) {
  at[0] = static_cast<char>('0' + value / 10);
  at[1] = static_cast<char>('0' + value % 10);
}

// A field after the first, given as its whole prefix: `,"name":`.
void key(std::string* out, std::string_view prefix) {
  out->append(prefix);
}

void string_or_null(std::string* out, std::string_view prefix, std::string_view value,
                    bool present) {
  key(out, prefix);
  if (present)
    append_json_string(out, value);
  else
    out->append("null", 4);
}

template <typename T>
void number_or_null(std::string* out, std::string_view prefix, T value, bool present) {
  key(out, prefix);
  if (present)
    append_number(out, value);
  else
    out->append("null", 4);
}

// Per byte: true when it is printable ASCII other than `"` and `\`, so it goes out as it is.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x7F; ++c) plain[c] = c != '"' && c != '\\';
  return plain;
}();

// True when none of the 8 bytes at `p` needs escaping: no control character, DEL, `"`, `\` or
// byte past ASCII. (Eight at once: some byte of `v` is below `n` exactly when
// `(v - n * 0x0101..01) & ~v` has a high bit set, for n up to 0x80.)
bool all_plain(const unsigned char* p) {
  constexpr uint64_t kOnes = 0x0101010101010101, kHigh = 0x8080808080808080;
  uint64_t w;
  std::memcpy(&w, p, 8);
  const auto zero_byte = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
  return ((w & kHigh) | below_space | zero_byte(w ^ (kOnes * '"')) | zero_byte(w ^ (kOnes * '\\')) |
          zero_byte(w ^ (kOnes * 0x7F))) == 0;
}

// `text` as the inside of a JSON string (append_json_string without the quotes).
void append_escaped(std::string* out, std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t plain = 0;  // start of the run of bytes that need no escaping
  for (size_t i = 0; i < n;) {
    if (n - i >= 8 && all_plain(p + i)) {
      i += 8;
      continue;
    }
    const unsigned char c = p[i];
    if (kPlain[c]) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (const size_t length = utf8_sequence(p + i, n - i)) {
        i += length;
        continue;
      }
    }
    out->append(text.data() + plain, i - plain);
    switch (c) {
      case '"':
        out->append("\\\"", 2);
        break;
      case '\\':
        out->append("\\\\", 2);
        break;
      case '\n':
        out->append("\\n", 2);
        break;
      case '\r':
        out->append("\\r", 2);
        break;
      case '\t':
        out->append("\\t", 2);
        break;
      default:
        append_escaped_byte(out, c);
    }
    plain = ++i;
  }
  out->append(text.data() + plain, n - plain);
}

}  // namespace

void append_json_string(std::string* out, std::string_view text) {
  out->push_back('"');
  append_escaped(out, text);
  out->push_back('"');
}

void TimeFormat::append(std::string* out, int64_t unix_ms) {
  int64_t second = unix_ms / 1000, ms = unix_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --second;
  }
  if (second != second_) {
    second_ = second;
    int64_t days = second / 86400, of_day = second % 86400;
    if (of_day < 0) {
      of_day += 86400;
      --days;
    }
    // The civil date of a day count (H. Hinnant's days_from_civil, inverted).
    const int64_t z = days + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned day = doy - (153 * mp + 2) / 5 + 1;
    const unsigned month = mp < 10 ? mp + 3 : mp - 9;
    const int64_t year = static_cast<int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
    const auto y = static_cast<unsigned>(year < 0 ? 0 : year > 9999 ? 9999 : year);
    two_digits(text_, y / 100);
    two_digits(text_ + 2, y % 100);
    text_[4] = '-';
    two_digits(text_ + 5, month);
    text_[7] = '-';
    two_digits(text_ + 8, day);
    text_[10] = 'T';
    two_digits(text_ + 11, static_cast<unsigned>(of_day / 3600));
    text_[13] = ':';
    two_digits(text_ + 14, static_cast<unsigned>(of_day / 60 % 60));
    text_[16] = ':';
    two_digits(text_ + 17, static_cast<unsigned>(of_day % 60));
  }
  const auto m = static_cast<unsigned>(ms);
  const char fraction[5] = {'.', static_cast<char>('0' + m / 100),
                            static_cast<char>('0' + m / 10 % 10), static_cast<char>('0' + m % 10),
                            'Z'};
  out->append(text_, 19);
  out->append(fraction, sizeof fraction);
}

void append_access_line(std::string* out, TimeFormat& time, const LineNames& names,
                        int64_t clock_offset_ms, const core::ExchangeRecord& record,
                        const core::MessageHead* request) {
  const conf::Snapshot& snapshot = *names.snapshot;
  out->append("{\"time\":\"", 9);
  time.append(out, static_cast<int64_t>(record.start_ms) + clock_offset_ms);
  out->push_back('"');
  string_or_null(out, ",\"client_ip\":", record.client_ip, !record.client_ip.empty());
  number_or_null(out, ",\"client_port\":", record.client_port, record.client_port != 0);

  key(out, ",\"listener\":");
  if (record.listener == core::kAdminListener) {
    out->append("\"admin\"", 7);
  } else {
    const bool known = names.listeners && record.listener >= 0 &&
                       static_cast<size_t>(record.listener) < names.listeners->size();
    if (known)
      append_json_string(out, (*names.listeners)[record.listener]);
    else
      out->append("null", 4);
  }

  const char* method =
      request ? llhttp_method_name(static_cast<llhttp_method_t>(request->method)) : nullptr;
  string_or_null(out, ",\"method\":", method ? method : "", method != nullptr);
  string_or_null(out, ",\"target\":", request ? request->target() : "", request != nullptr);
  key(out, ",\"protocol\":");
  if (request) {  // "HTTP/1.1"
    out->append("\"HTTP/", 6);
    out->push_back(static_cast<char>('0' + request->version_major % 10));
    out->push_back('.');
    out->push_back(static_cast<char>('0' + request->version_minor % 10));
    out->push_back('"');
  } else {
    out->append("null", 4);
  }
  number_or_null(out, ",\"status\":", record.status, record.status != 0);
  number_or_null(out, ",\"bytes_in\":", record.request_bytes, true);
  number_or_null(out, ",\"bytes_out\":", record.response_bytes, true);

  const bool routed =
      record.route >= 0 && static_cast<size_t>(record.route) < snapshot.routes.size();
  number_or_null(out, ",\"route\":", record.route, routed);
  key(out, ",\"route_match\":");
  if (routed) {  // "app.test/api", or "/api" for a route on any host
    const conf::RouteConfig& route = snapshot.routes[record.route].config;
    out->push_back('"');
    append_escaped(out, route.host);
    append_escaped(out, route.path_prefix);
    out->push_back('"');
  } else {
    out->append("null", 4);
  }

  const bool has_upstream =
      record.upstream >= 0 && static_cast<size_t>(record.upstream) < snapshot.upstreams.size();
  const balancer::Pool* pool = has_upstream ? &snapshot.upstreams[record.upstream].pool : nullptr;
  string_or_null(out, ",\"upstream\":", pool ? std::string_view(pool->name) : "", pool != nullptr);
  const bool has_backend =
      pool && record.backend >= 0 && static_cast<size_t>(record.backend) < pool->backends.size();
  // A forward proxy's origin stands where a route's backend would.
  const std::string_view backend =
      has_backend ? std::string_view(pool->backends[record.backend].address) : record.origin;
  string_or_null(out, ",\"backend\":", backend, !backend.empty());
  number_or_null(out, ",\"attempts\":", record.attempts, true);
  key(out, ",\"outcome\":");
  out->push_back('"');
  out->append(core::outcome_name(record.outcome));
  out->push_back('"');
  string_or_null(out, ",\"cache\":", record.cache, !record.cache.empty());
  string_or_null(out, ",\"request_id\":", record.request_id, !record.request_id.empty());
  const uint64_t end = record.end_ms > record.start_ms ? record.end_ms : record.start_ms;
  number_or_null(out, ",\"duration_ms\":", end - record.start_ms, true);
  const uint64_t first =
      record.first_byte_ms > record.start_ms ? record.first_byte_ms - record.start_ms : 0;
  number_or_null(out, ",\"upstream_first_byte_ms\":", first, record.first_byte_ms != 0);
  const core::TransportFacts* tls = record.tls;
  string_or_null(out, ",\"tls_version\":", tls ? tls->version : "", tls && !tls->version.empty());
  string_or_null(out, ",\"sni\":", tls ? tls->server_name : "", tls && !tls->server_name.empty());
  out->append("}\n", 2);
}

}  // namespace sluice::accesslog
