// Feeds arbitrary bytes to the request or the response parser, in reads of a fuzzer-chosen size,
// and checks the invariants the proxy relies on: no step consumes more than it was given, a
// completed head has a decided framing and a valid host, an error always carries the status the
// peer is owed, and every chunked body the parser lets through is valid chunked coding by an
// independent reading, with a body sink getting exactly its data.
//
// Input: byte 0 selects the setup (bit 0: response parser; bit 1: the first response answers HEAD;
// bits 2-7: read size, 0 for one read); the rest is what the peer sends.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/http/http_parser.h"
#include "core/http/request_target.h"

using sluice::core::Framing;
using sluice::core::HeadPool;
using sluice::core::HttpParser;
using sluice::core::MessageHead;
using sluice::core::ParseEvent;
using sluice::core::ParseLimits;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  const int lower = c | 0x20;
  return lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
}

// A second reading of chunked coding, written over a whole body rather than byte by byte:
// returns false unless `body` is exactly one valid chunked body; appends its data to `*data`.
bool reference_dechunk(std::string_view body, std::string* data) {
  for (;;) {
    const size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) return false;
    const std::string_view line = body.substr(0, eol);
    if (line.find_first_of("\r\n") != std::string_view::npos) return false;
    size_t digits = 0;
    uint64_t size = 0;
    for (char c : line) {
      const int v = hex_digit(c);
      if (v < 0) break;
      if (size >> 60) return false;
      size = size * 16 + static_cast<unsigned>(v);
      ++digits;
    }
    if (digits == 0) return false;
    if (digits < line.size() && line[digits] != ';' && line[digits] != ' ' && line[digits] != '\t')
      return false;
    body.remove_prefix(eol + 2);
    if (size == 0) break;
    if (body.size() < 2 || body.size() - 2 < size || body.substr(size, 2) != "\r\n") return false;
    data->append(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
  for (;;) {  // trailer lines, then the empty line that ends the body
    const size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) return false;
    const std::string_view line = body.substr(0, eol);
    body.remove_prefix(eol + 2);
    if (line.empty()) return body.empty();
    if (line.find_first_of("\r\n") != std::string_view::npos || line.find(':') == 0 ||
        line.find(':') == std::string_view::npos || line[0] == ' ' || line[0] == '\t')
      return false;
  }
}

void collect(void* context, const char* data, size_t length) {
  static_cast<std::string*>(context)->append(data, length);
}

struct Connection {
  HttpParser& parser;
  HeadPool& heads;
  bool response;
  std::string body;  // raw bytes of the current chunked body
  std::string sunk;  // what the body sink received for it
  bool chunked = false;
  bool upgrade = false;  // the current request asks for a protocol switch
};

void check_head(Connection& c) {
  const MessageHead* head = c.parser.head();
  check(head != nullptr);
  if (head->framing == Framing::kLength) check(head->content_length > 0);
  c.chunked = head->framing == Framing::kChunked;
  c.body.clear();
  c.sunk.clear();
  if (c.chunked) c.parser.set_body_sink(&collect, &c.sunk);
  if (c.response) return;
  check(head->framing != Framing::kUntilClose);  // requests never run to close
  check(sluice::core::valid_host(head->host()));
  const std::string_view origin = head->origin_target();
  if (head->absolute_form()) check(!head->host().empty() && !origin.empty() && origin[0] == '/');
  // Like the proxy, which takes a request's head at kHead: the rest must parse without it.
  c.upgrade = head->upgrade;
  c.heads.release(c.parser.release_head());
}

void check_end(Connection& c) {
  if (!c.chunked) return;
  std::string data;
  check(reference_dechunk(c.body, &data));
  check(data == c.sunk);
  c.chunked = false;
}

// Runs the parser over [data, data+size) like a connection would; returns false on error.
bool feed(Connection& c, const char* data, size_t size) {
  for (int guard = 0; guard < 100000; ++guard) {
    const bool in_body = c.parser.in_body();
    const auto step = c.parser.execute(data, size);
    check(step.consumed <= size);
    if (in_body && c.chunked && step.event != ParseEvent::kError)
      c.body.append(data, step.consumed);
    switch (step.event) {
      case ParseEvent::kError:
        check(c.response ? c.parser.error_status() == 502
                         : c.parser.error_status() >= 400 && c.parser.error_status() < 500);
        return false;
      case ParseEvent::kNeedMore:
        return true;
      case ParseEvent::kHead:
        check_head(c);
        break;
      case ParseEvent::kEnd:
        check_end(c);
        break;
      case ParseEvent::kUpgrade:
        if (c.response) return false;  // the rest is another protocol
        break;
    }
    data += step.consumed;
    size -= step.consumed;
    // As when the backend answers an Upgrade request without a 101: HTTP goes on.
    if (!c.response &&
        (step.event == ParseEvent::kUpgrade || (step.event == ParseEvent::kEnd && c.upgrade)))
      c.parser.decline_upgrade();
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 1) return 0;
  const bool response = bytes[0] & 1;
  HeadPool heads;
  HttpParser parser(response ? HttpParser::Kind::kResponse : HttpParser::Kind::kRequest, heads,
                    ParseLimits{256, 1024, 16});
  Connection c{parser, heads, response, {}, {}, false, false};
  if (response && (bytes[0] & 2)) parser.expect_no_body();
  const size_t piece = bytes[0] >> 2;
  const char* data = reinterpret_cast<const char*>(bytes + 1);
  size_t length = size - 1;
  while (length > 0) {
    const size_t n = piece == 0 || piece > length ? length : piece;
    if (!feed(c, data, n)) return 0;
    data += n;
    length -= n;
  }
  const auto end = parser.finish();
  check(end.event == ParseEvent::kEnd || end.event == ParseEvent::kError);
  return 0;
}
