// Specification of answers from a stored response (RFC 9110 13, 14, 15.4.5): one byte range read
// from a Range value, and what a client is sent: the whole response, its head for HEAD, 304 for
// its own matching validators, 206 for one range, 416 for a range past the end.
#include "core/cache/answer.h"

#include <llhttp.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/cache/cache_control.h"
#include "core/cache/freshness.h"
#include "core/cache/http_date.h"
#include "core/http/http_parser.h"
#include "test/core/cache/heads.h"

using namespace sluice;
using namespace sluice::core;
using namespace sluice::core::cache;
using namespace sluice::core::cache::test;

namespace {

constexpr int64_t kNow = 1700000000;

// A client connection that keeps every slice sent to it.
class CollectingClient final : public ClientSide {
 public:
  CollectingClient() = default;
  CollectingClient(const CollectingClient&) = delete;
  CollectingClient& operator=(const CollectingClient&) = delete;
  ~CollectingClient() {
    for (const Slice& s : slices) block_unref(s.block);
  }

  std::string text() const {
    std::string all;
    for (const Slice& s : slices) all.append(s.data, s.length);
    return all;
  }

  void send(const Slice* sent, size_t count) override {
    for (size_t i = 0; i < count; ++i) {
      block_ref(sent[i].block);
      slices.push_back(sent[i]);
    }
  }
  void flush() override {}
  void discard_unsent() override {}
  bool backlogged() const override { return false; }
  void wait_for_client(bool) override {}
  void send_now() override {}
  void pause_request() override {}
  void resume_request() override {}
  void decline_upgrade() override {}
  bool keeps_alive() const override { return true; }
  void close_after() override {}
  void done() override {}
  void refuse(const LocalReply&) override {}
  void abort(Outcome) override {}
  Slice begin_tunnel() override { return {}; }
  void half_close() override {}
  std::string_view client_address() const override { return "127.0.0.1"; }
  const conf::IpAddress& client_ip_address() const override { return ip_; }
  uint16_t client_port() const override { return 40000; }
  uint64_t request_payload_bytes() const override { return 0; }
  int32_t listener() const override { return 0; }
  bool connection_endpoints(sockaddr_storage*, sockaddr_storage*) override { return false; }
  const TransportFacts* transport() const override { return nullptr; }

  std::vector<Slice> slices;

 private:
  void act_on_ending() override {}
  conf::IpAddress ip_;
};

std::string body_text(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('0' + i % 10);
  return s;
}

const std::string kETag = "\"v1\"";
const std::string kLastModified = date(kNow - 1000);

// As a fill stores it: no framing fields, fetched 10 seconds before kNow, with `body`.
std::shared_ptr<const StoredResponse> stored(const std::string& body,
                                             const char* status_line = "HTTP/1.1 200 OK") {
  std::string text(status_line);
  text.append("\r\n");
  text.append(field("Date", date(kNow - 10)));
  text.append(field("Cache-Control", "max-age=60"));
  text.append(field("ETag", kETag));
  text.append(field("Last-Modified", kLastModified));
  text.append(field("Content-Type", "text/plain"));
  text.append("\r\n");
  auto s = std::make_shared<StoredResponse>();
  s->key = "http://example.com/r";
  s->head = parse_head(HttpParser::Kind::kResponse, text);
  s->body = std::make_shared<Body>(body.size());
  s->body->append(body.data(), body.size());
  note_freshness(s->head, cache_control_of(s->head), {}, kNow - 10, kNow - 10, s.get());
  return s;
}

// What the client got.
struct Sent {
  CachedAnswer answer;
  MessageHead head;
  std::string body;
  uint64_t bytes = 0;
  std::string field(std::string_view name) const {
    std::string_view value;
    return head.find(name, &value) ? std::string(value) : "(absent)";
  }
};

Sent answer_to(const MessageHead& req, const std::shared_ptr<const StoredResponse>& s) {
  BlockPool blocks;
  CollectingClient client;
  const CacheQuery query{req, "http", ResponseRewrite{}, blocks};
  Sent out;
  out.answer = answer(s, query, client, "sluice; hit", kNow);
  const std::string text = client.text();
  size_t end = 0;
  out.head = parse_head(HttpParser::Kind::kResponse, text, &end);
  out.body = text.substr(end);
  out.bytes = text.size();
  return out;
}

RangeKind range(std::string_view value, uint64_t size, uint64_t* first, uint64_t* last) {
  *first = *last = 12345;
  return parse_range(value, size, first, last);
}

}  // namespace

// One byte range.

TEST_CASE("bytes=a-b is the range from a to b", "[cache]") {
  uint64_t first, last;
  REQUIRE(range("bytes=2-5", 10, &first, &last) == RangeKind::kRange);
  CHECK(first == 2);
  CHECK(last == 5);
}

TEST_CASE("bytes=a- runs to the end of the body", "[cache]") {
  uint64_t first, last;
  REQUIRE(range("bytes=3-", 10, &first, &last) == RangeKind::kRange);
  CHECK(first == 3);
  CHECK(last == 9);
}

TEST_CASE("bytes=-n is the last n bytes, or the whole of a shorter body", "[cache]") {
  uint64_t first, last;
  REQUIRE(range("bytes=-4", 10, &first, &last) == RangeKind::kRange);
  CHECK(first == 6);
  CHECK(last == 9);
  REQUIRE(range("bytes=-40", 10, &first, &last) == RangeKind::kRange);
  CHECK(first == 0);
  CHECK(last == 9);
}

TEST_CASE("a range starting past the end is unsatisfiable", "[cache]") {
  uint64_t first, last;
  CHECK(range("bytes=10-20", 10, &first, &last) == RangeKind::kUnsatisfiable);
  CHECK(range("bytes=10-", 10, &first, &last) == RangeKind::kUnsatisfiable);
  CHECK(range("bytes=0-", 0, &first, &last) == RangeKind::kUnsatisfiable);
}

TEST_CASE("a last position past the end is taken as the last byte", "[cache]") {
  uint64_t first, last;
  REQUIRE(range("bytes=5-100", 10, &first, &last) == RangeKind::kRange);
  CHECK(first == 5);
  CHECK(last == 9);
}

TEST_CASE("bytes=-0 is unsatisfiable", "[cache]") {
  uint64_t first, last;
  CHECK(range("bytes=-0", 10, &first, &last) == RangeKind::kUnsatisfiable);
}

TEST_CASE("several ranges are answered with the whole body", "[cache]") {
  uint64_t first, last;
  CHECK(range("bytes=0-1, 4-5", 10, &first, &last) == RangeKind::kNone);
}

TEST_CASE("a range unit other than bytes is ignored", "[cache]") {
  uint64_t first, last;
  CHECK(range("items=0-1", 10, &first, &last) == RangeKind::kNone);
}

TEST_CASE("a malformed Range is ignored", "[cache]") {
  uint64_t first, last;
  for (std::string_view value : {"bytes=", "bytes=-", "bytes=a-b", "bytes=5", "bytes 0-1", "0-1"}) {
    INFO(value);
    CHECK(range(value, 10, &first, &last) == RangeKind::kNone);
  }
}

TEST_CASE("a range whose last position is before its first is ignored", "[cache]") {
  uint64_t first, last;
  CHECK(range("bytes=5-2", 10, &first, &last) == RangeKind::kNone);
}

// Answers.

TEST_CASE("a hit sends the whole body with Age, Content-Length and Cache-Status", "[cache]") {
  const std::string body = body_text(5000);
  auto s = stored(body);
  const Sent sent = answer_to(request(), s);
  CHECK(sent.head.status == 200);
  CHECK(sent.answer.status == 200);
  CHECK(sent.field("Age") == std::to_string(s->current_age(kNow)));
  CHECK(sent.field("Content-Length") == std::to_string(body.size()));
  CHECK(sent.field("Cache-Status") == "sluice; hit");
  CHECK(sent.field("ETag") == kETag);
  CHECK(sent.body == body);
  CHECK(sent.answer.bytes == sent.bytes);
}

TEST_CASE("a hit sends the body as slices of the stored blocks, not copies", "[cache]") {
  const std::string body = body_text(200000);
  auto s = stored(body);
  BlockPool blocks;
  CollectingClient client;
  const MessageHead req = request();
  answer(s, CacheQuery{req, "http", ResponseRewrite{}, blocks}, client, "sluice; hit", kNow);
  std::vector<const char*> stored_at;
  s->body->spans(0, body.size(), [&](const char* data, size_t) { stored_at.push_back(data); });
  REQUIRE(stored_at.size() > 1);
  REQUIRE(client.slices.size() == 1 + stored_at.size());
  for (size_t i = 0; i < stored_at.size(); ++i) CHECK(client.slices[i + 1].data == stored_at[i]);
}

TEST_CASE("a HEAD hit gets the head alone, with the body's length", "[cache]") {
  const std::string body = body_text(100);
  const Sent sent = answer_to(request({}, "HEAD"), stored(body));
  CHECK(sent.head.status == 200);
  CHECK(sent.field("Content-Length") == std::to_string(body.size()));
  CHECK(sent.body.empty());
  CHECK(sent.answer.bytes == sent.bytes);
}

TEST_CASE("a matching If-None-Match gets a 304 without a body", "[cache]") {
  const Sent sent = answer_to(request(field("If-None-Match", kETag)), stored(body_text(100)));
  CHECK(sent.head.status == 304);
  CHECK(sent.answer.status == 304);
  CHECK(sent.field("ETag") == kETag);
  CHECK(sent.field("Cache-Status") == "sluice; hit");
  CHECK(sent.body.empty());
}

TEST_CASE("one range gets a 206 with its Content-Range", "[cache]") {
  const std::string body = body_text(100);
  const Sent sent = answer_to(request(field("Range", "bytes=10-19")), stored(body));
  CHECK(sent.head.status == 206);
  CHECK(sent.answer.status == 206);
  CHECK(sent.field("Content-Range") == "bytes 10-19/100");
  CHECK(sent.field("Content-Length") == "10");
  CHECK(sent.body == body.substr(10, 10));
  CHECK(sent.answer.bytes == sent.bytes);
}

TEST_CASE("a range past the end gets a 416 naming the body's length", "[cache]") {
  const Sent sent = answer_to(request(field("Range", "bytes=100-")), stored(body_text(100)));
  CHECK(sent.head.status == 416);
  CHECK(sent.answer.status == 416);
  CHECK(sent.field("Content-Range") == "bytes */100");
  CHECK(sent.field("Content-Length") == "0");
  CHECK(sent.body.empty());
}

TEST_CASE("If-Range with the stored ETag gets the range", "[cache]") {
  std::string fields = field("Range", "bytes=0-4");
  fields.append(field("If-Range", kETag));
  const Sent sent = answer_to(request(fields), stored(body_text(100)));
  CHECK(sent.head.status == 206);
}

TEST_CASE("If-Range with another validator gets the whole body with a 200", "[cache]") {
  const std::string body = body_text(100);
  for (const std::string& validator :
       {std::string("\"v2\""), std::string("W/\"v1\""), date(kNow - 999)}) {
    std::string fields = field("Range", "bytes=0-4");
    fields.append(field("If-Range", validator));
    const Sent sent = answer_to(request(fields), stored(body));
    INFO(validator);
    CHECK(sent.head.status == 200);
    CHECK(sent.field("Content-Range") == "(absent)");
    CHECK(sent.body == body);
  }
}

TEST_CASE("If-Range with the stored Last-Modified gets the range", "[cache]") {
  std::string fields = field("Range", "bytes=0-4");
  fields.append(field("If-Range", kLastModified));
  const Sent sent = answer_to(request(fields), stored(body_text(100)));
  CHECK(sent.head.status == 206);
  CHECK(sent.body == body_text(5));
}

TEST_CASE("a Range on a stored 404 gets the 404 whole", "[cache]") {
  const std::string body = body_text(100);
  const Sent sent =
      answer_to(request(field("Range", "bytes=0-4")), stored(body, "HTTP/1.1 404 Not Found"));
  CHECK(sent.head.status == 404);
  CHECK(sent.answer.status == 404);
  CHECK(sent.field("Content-Range") == "(absent)");
  CHECK(sent.body == body);
}
