// Specification of response parsing (HttpParser::Kind::kResponse) and its framing decisions:
// how a response body is delimited, which responses have none, how interim and protocol-switching
// responses end, and which malformed or truncated responses are errors (502 for the client).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/http/http_parser.h"

using namespace sluice::core;

namespace {

struct Response {
  std::vector<ParseEvent> events;  // every event but kNeedMore, finish()'s last when closed
  std::vector<int> statuses;       // the status of every head, in order
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;
  size_t body_bytes = 0;  // bytes between the end of the last head and the end of its message
  size_t consumed = 0;    // bytes the parser took as HTTP
  int error_status = 0;
};

struct Feed {
  bool head_request = false;  // the request was HEAD: expect_no_body() before parsing
  bool closed = false;        // the backend closes after the last byte: finish()
  size_t step = 0;            // split the input into reads of this many bytes (0: one read)
};

// Parses `text` as the responses on one backend connection. Stops at an error, and at kUpgrade
// (what follows is another protocol).
Response parse_response(const std::string& text, Feed feed = {}) {
  HeadPool heads;
  HttpParser parser(HttpParser::Kind::kResponse, heads, {});
  if (feed.head_request) parser.expect_no_body();
  Response out;
  bool in_body = false;
  size_t offset = 0;
  auto record_error = [&] {
    out.events.push_back(ParseEvent::kError);
    out.error_status = parser.error_status();
  };
  while (offset <= text.size()) {
    size_t piece = feed.step ? std::min(feed.step, text.size() - offset) : text.size() - offset;
    const char* data = text.data() + offset;
    for (;;) {
      const ParseStep s = parser.execute(data, piece);
      if (s.event == ParseEvent::kError) {
        record_error();
        return out;
      }
      if (s.event != ParseEvent::kNeedMore) out.events.push_back(s.event);
      if (in_body) out.body_bytes += s.consumed;
      if (s.event == ParseEvent::kHead) {
        const MessageHead* h = parser.head();
        out.statuses.push_back(h->status);
        out.framing = h->framing;
        out.content_length = h->content_length;
        out.keep_alive = h->keep_alive;
        out.body_bytes = 0;
        in_body = true;
      }
      if (s.event == ParseEvent::kEnd || s.event == ParseEvent::kUpgrade) in_body = false;
      out.consumed += s.consumed;
      data += s.consumed;
      piece -= s.consumed;
      offset += s.consumed;
      if (s.event == ParseEvent::kUpgrade) return out;
      if (s.event == ParseEvent::kNeedMore || (piece == 0 && s.event == ParseEvent::kEnd)) break;
    }
    if (offset >= text.size()) break;
  }
  if (feed.closed) {
    const ParseStep s = parser.finish();
    if (s.event == ParseEvent::kError)
      record_error();
    else
      out.events.push_back(s.event);
  }
  return out;
}

const std::vector<ParseEvent> kOneMessage{ParseEvent::kHead, ParseEvent::kEnd};
const std::vector<ParseEvent> kTwoMessages{ParseEvent::kHead, ParseEvent::kEnd, ParseEvent::kHead,
                                           ParseEvent::kEnd};

}  // namespace

TEST_CASE("a Content-Length response body is delimited by its length", "[response]") {
  // The bytes after the fifth body byte are the next response, not more body.
  Response r = parse_response(
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  CHECK(r.events == kTwoMessages);
  CHECK(r.statuses == std::vector<int>{200, 200});
  CHECK(r.framing == Framing::kLength);
  CHECK(r.content_length == 2);
  CHECK(r.body_bytes == 2);
  CHECK(r.keep_alive);
}

TEST_CASE("a chunked response body is delimited by its last chunk, trailers included",
          "[response]") {
  const std::string body = "3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n";
  Response r = parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body +
                              "HTTP/1.1 204 No Content\r\n\r\n");
  CHECK(r.events == kTwoMessages);
  CHECK(r.statuses == std::vector<int>{200, 204});
  Response first = parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body);
  CHECK(first.framing == Framing::kChunked);
  CHECK(first.body_bytes == body.size());
  CHECK(first.keep_alive);
}

TEST_CASE("a final chunked after other transfer codings frames the response as chunked",
          "[response]") {
  Response r = parse_response(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n");
  CHECK(r.events == kOneMessage);
  CHECK(r.framing == Framing::kChunked);
}

TEST_CASE("a response split into one-byte reads parses the same as in one read", "[response]") {
  const std::string text =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
  Response whole = parse_response(text);
  Response bytewise = parse_response(text, {.step = 1});
  CHECK(bytewise.events == whole.events);
  CHECK(bytewise.statuses == whole.statuses);
  CHECK(bytewise.body_bytes == whole.body_bytes);
  CHECK(bytewise.consumed == text.size());
}

TEST_CASE("a response without Content-Length or chunked coding runs until the backend closes",
          "[response]") {
  // No length: every byte up to the close is body, and the connection cannot be reused.
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
  const std::string body = "hello, HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  Response open = parse_response(head + body, {.step = 10});
  CHECK(open.events == std::vector<ParseEvent>{ParseEvent::kHead});
  CHECK(open.framing == Framing::kUntilClose);
  CHECK_FALSE(open.keep_alive);
  CHECK(open.body_bytes == body.size());

  Response closed = parse_response(head + body, {.closed = true, .step = 10});
  CHECK(closed.events == kOneMessage);
  CHECK(closed.body_bytes == body.size());
}

TEST_CASE("a response to a HEAD request has no body even with Content-Length", "[response]") {
  // The message ends with its head: nothing waits for the five bytes the length names.
  Response r =
      parse_response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", {.head_request = true});
  CHECK(r.events == kOneMessage);
  CHECK(r.framing == Framing::kNone);
  CHECK(r.body_bytes == 0);
  CHECK(r.keep_alive);
}

TEST_CASE("a response to a HEAD request has no body even when chunked", "[response]") {
  Response r = parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                              {.head_request = true});
  CHECK(r.events == kOneMessage);
  CHECK(r.framing == Framing::kNone);
}

TEST_CASE("expect_no_body() covers only the response that follows it", "[response]") {
  // The second response answers another request: its Content-Length delimits a body again.
  const std::string to_head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
  const std::string to_get = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  Response r = parse_response(to_head + to_get, {.head_request = true});
  CHECK(r.events == kTwoMessages);
  CHECK(r.framing == Framing::kLength);
  CHECK(r.body_bytes == 2);
  CHECK(r.consumed == to_head.size() + to_get.size());
}

TEST_CASE("an interim response before the answer to HEAD leaves the answer without a body",
          "[response]") {
  Response r =
      parse_response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                     {.head_request = true, .closed = true});
  CHECK(r.events == std::vector<ParseEvent>{ParseEvent::kHead, ParseEvent::kEnd, ParseEvent::kHead,
                                            ParseEvent::kEnd, ParseEvent::kEnd});
  CHECK(r.statuses == std::vector<int>{100, 200});
  CHECK(r.framing == Framing::kNone);
}

TEST_CASE("204 and 304 responses have no body even with Content-Length or chunked coding",
          "[response]") {
  for (const char* status : {"204 No Content", "304 Not Modified"}) {
    for (const char* field : {"Content-Length: 5", "Transfer-Encoding: chunked"}) {
      const std::string text = std::string("HTTP/1.1 ") + status + "\r\n" + field + "\r\n\r\n";
      INFO(text);
      // What follows the head is the next response.
      Response r = parse_response(text + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      CHECK(r.events == kTwoMessages);
      Response alone = parse_response(text);
      CHECK(alone.events == kOneMessage);
      CHECK(alone.framing == Framing::kNone);
      CHECK(alone.body_bytes == 0);
      CHECK(alone.keep_alive);
    }
  }
}

TEST_CASE("a 100 Continue ends after its head and the final response follows on the same parser",
          "[response]") {
  const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
  const std::string final_response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  // The final response may arrive in the same read or in a later one.
  for (size_t step : {size_t{0}, interim.size()}) {
    INFO("read size " << step);
    Response r = parse_response(interim + final_response, {.step = step});
    CHECK(r.events == kTwoMessages);
    CHECK(r.statuses == std::vector<int>{100, 200});
    CHECK(r.framing == Framing::kLength);
    CHECK(r.body_bytes == 2);
  }
}

TEST_CASE("a 101 Switching Protocols ends in kUpgrade and leaves the tunnelled bytes unparsed",
          "[response]") {
  // The message ends right after its head; the bytes behind it (not HTTP) belong to the new
  // protocol, so they are neither consumed nor an error.
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  Response r = parse_response(head + "\x81\x05hello not HTTP\r\n\r\n");
  CHECK(r.events.back() == ParseEvent::kUpgrade);
  CHECK(r.events ==
        std::vector<ParseEvent>{ParseEvent::kHead, ParseEvent::kEnd, ParseEvent::kUpgrade});
  CHECK(r.statuses == std::vector<int>{101});
  CHECK(r.framing == Framing::kNone);
  CHECK(r.consumed == head.size());
  CHECK(r.error_status == 0);
}

TEST_CASE("a response transfer coding other than a final chunked is an error answered with 502",
          "[response]") {
  const char* codings[] = {"gzip", "chunked, gzip", "xchunked",
                           "chunked\r\nTransfer-Encoding: chunked", "identity"};
  for (const char* coding : codings) {
    const std::string text =
        std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: ") + coding + "\r\n\r\n0\r\n\r\n";
    INFO(text);
    Response r = parse_response(text, {.closed = true});
    CHECK(r.events == std::vector<ParseEvent>{ParseEvent::kError});
    CHECK(r.error_status == 502);
  }
}

TEST_CASE(
    "Content-Length together with Transfer-Encoding in a response is an error answered "
    "with 502",
    "[response]") {
  const char* heads[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
  };
  for (const char* head : heads) {
    INFO(head);
    Response r = parse_response(std::string(head) + "0\r\n\r\n", {.closed = true});
    CHECK(r.events == std::vector<ParseEvent>{ParseEvent::kError});
    CHECK(r.error_status == 502);
  }
}

TEST_CASE("a response cut in the middle of its Content-Length body is an error at the close",
          "[response]") {
  Response r =
      parse_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", {.closed = true});
  CHECK(r.events == std::vector<ParseEvent>{ParseEvent::kHead, ParseEvent::kError});
  CHECK(r.body_bytes == 5);
  CHECK(r.error_status == 502);
}

TEST_CASE("a response cut in the middle of its chunked body is an error at the close",
          "[response]") {
  Response r = parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                              {.closed = true});
  CHECK(r.events == std::vector<ParseEvent>{ParseEvent::kHead, ParseEvent::kError});
  CHECK(r.error_status == 502);
}
