// Specification of the chunked-coding checker on its own: which bodies it accepts, where it says
// a body ends, which deviation it refuses, and that the answer does not depend on how the bytes
// are split into reads.
#include "core/http/chunk_framing.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

using namespace sluice::core;

namespace {

struct Checked {
  ChunkFraming::Status status = ChunkFraming::Status::kMore;
  size_t used = 0;  // bytes the checker took as this body's, over all reads
  std::string error;
};

// Feeds `body` in reads of `step` bytes (0: one read) until the checker ends or refuses.
Checked check(const std::string& body, size_t step = 0, uint32_t max_trailer = 1024) {
  ChunkFraming chunks;
  chunks.begin(max_trailer);
  Checked out;
  for (size_t offset = 0; offset < body.size() || offset == 0;) {
    const size_t piece = step ? std::min(step, body.size() - offset) : body.size() - offset;
    size_t used = 0;
    out.status = chunks.scan(body.data() + offset, piece, &used);
    out.used += used;
    offset += piece;
    if (out.status != ChunkFraming::Status::kMore || body.empty()) break;
  }
  out.error = chunks.error();
  return out;
}

// The same body in one read, in every split into two reads, and byte by byte.
std::vector<Checked> check_every_split(const std::string& body) {
  std::vector<Checked> all{check(body), check(body, 1)};
  for (size_t first = 1; first < body.size(); ++first) {
    ChunkFraming chunks;
    chunks.begin(1024);
    Checked out;
    size_t used = 0;
    out.status = chunks.scan(body.data(), first, &used);
    out.used = used;
    if (out.status == ChunkFraming::Status::kMore) {
      out.status = chunks.scan(body.data() + first, body.size() - first, &used);
      out.used += used;
    }
    out.error = chunks.error();
    all.push_back(out);
  }
  return all;
}

const std::string kValidBodies[] = {
    "0\r\n\r\n",
    "5\r\nhello\r\n0\r\n\r\n",
    "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n",
    "1a\r\n" + std::string(26, 'x') + "\r\n0\r\n\r\n",
    "1A\r\n" + std::string(26, 'x') + "\r\n0\r\n\r\n",
    "0005\r\nhello\r\n000\r\n\r\n",
    "5;name\r\nhello\r\n0\r\n\r\n",
    "5;name=value;other=\"quoted \\\" \\\\ text\"\r\nhello\r\n0;last\r\n\r\n",
    "5 ;a=b\r\nhello\r\n0\t; a = b\r\n\r\n",
    "5\r\nhe\r\nl\r\n0\r\n\r\n",  // chunk data may hold CR and LF
    "0\r\nX-Trailer: 1\r\nOther:\r\n\r\n",
    "0\r\nX-Trailer: a \t b\x80\r\n\r\n",
};

}  // namespace

TEST_CASE("valid chunked bodies end exactly at their final CRLF in any split of reads",
          "[chunked]") {
  for (const std::string& body : kValidBodies) {
    INFO(body);
    for (const Checked& c : check_every_split(body)) {
      CHECK(c.status == ChunkFraming::Status::kEnd);
      CHECK(c.used == body.size());
    }
  }
}

TEST_CASE("bytes after the final CRLF are not taken as part of the body", "[chunked]") {
  const std::string body = "5\r\nhello\r\n0\r\n\r\n";
  Checked c = check(body + "GET / HTTP/1.1\r\n\r\n");
  CHECK(c.status == ChunkFraming::Status::kEnd);
  CHECK(c.used == body.size());
}

TEST_CASE("a body cut short is neither an end nor an error", "[chunked]") {
  for (const char* part : {"5", "5\r", "5\r\nhel", "5\r\nhello\r", "0\r\n", "0\r\nX: 1\r\n"}) {
    INFO(part);
    Checked c = check(part);
    CHECK(c.status == ChunkFraming::Status::kMore);
    CHECK(c.used == std::string(part).size());
  }
}

TEST_CASE("chunk data not followed by CRLF is refused at the first wrong byte", "[chunked]") {
  // Each body with the offset of its first byte that cannot be chunk framing.
  const std::pair<std::string, size_t> bodies[] = {{"5\r\nhelloXX0\r\n\r\n", 8},
                                                   {"5\r\nhello\n0\r\n\r\n", 8},
                                                   {"5\r\nhello\rX0\r\n\r\n", 9},
                                                   {"3\r\nhello\r\n0\r\n\r\n", 6}};
  for (const auto& [body, offset] : bodies) {
    INFO(body);
    for (const Checked& c : check_every_split(body)) {
      CHECK(c.status == ChunkFraming::Status::kError);
      CHECK(c.error == "chunk data not followed by CRLF");
    }
    CHECK(check(body).used == offset);
  }
}

TEST_CASE("chunk data shorter than its size runs into the next size line and is refused",
          "[chunked]") {
  // "hel\r\n" and the "0\r" after it make the five data bytes; what follows is no size line.
  Checked c = check("5\r\nhel\r\n0\r\n\r\n");
  CHECK(c.status == ChunkFraming::Status::kError);
}

TEST_CASE("a chunk size that is not hex digits is refused", "[chunked]") {
  for (const char* body : {"\r\nhello\r\n0\r\n\r\n", "zz\r\n", "-5\r\nhello\r\n", "+5\r\nhello\r\n",
                           "0x5\r\nhello\r\n", " 5\r\nhello\r\n", ";a\r\n", "5g\r\n"}) {
    INFO(body);
    Checked c = check(body);
    CHECK(c.status == ChunkFraming::Status::kError);
    CHECK(c.error == "invalid chunk size");
  }
}

TEST_CASE("a chunk size beyond 64 bits is refused instead of wrapping", "[chunked]") {
  CHECK(check("ffffffffffffffff\r\n").status == ChunkFraming::Status::kMore);
  Checked c = check("10000000000000000\r\nhello\r\n0\r\n\r\n");
  CHECK(c.status == ChunkFraming::Status::kError);
  CHECK(c.error == "chunk size too large");
}

TEST_CASE("a chunk size line ended by a bare LF or a lone CR is refused", "[chunked]") {
  for (const char* body : {"5\nhello\r\n0\r\n\r\n", "5\rhello\r\n0\r\n\r\n",
                           "5;a=b\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\n\r\n"}) {
    INFO(body);
    CHECK(check(body).status == ChunkFraming::Status::kError);
  }
}

TEST_CASE("whitespace after a chunk size without an extension is refused", "[chunked]") {
  // RFC 9112 allows BWS only before the ';' of an extension.
  CHECK(check("5 \r\nhello\r\n0\r\n\r\n").status == ChunkFraming::Status::kError);
}

TEST_CASE("a chunk extension with a control byte, LF or unterminated quote is refused",
          "[chunked]") {
  const std::string bodies[] = {
      "5;a=\x01\r\nhello\r\n0\r\n\r\n",       "5;a\x7f\r\nhello\r\n0\r\n\r\n",
      "5;a\nb\r\nhello\r\n0\r\n\r\n",         "5;a=\"b\r\nhello\r\n0\r\n\r\n",
      "5;a=\"b\\\r\nhello\r\n0\r\n\r\n",      "5;a=\"b\nc\"\r\nhello\r\n0\r\n\r\n",
      std::string("5;a=\0\r\nhello\r\n", 14), "5;a(b)\r\nhello\r\n0\r\n\r\n",
  };
  for (const std::string& body : bodies) {
    INFO(body);
    for (const Checked& c : check_every_split(body))
      CHECK(c.status == ChunkFraming::Status::kError);
  }
}

TEST_CASE("a chunk size line of 4096 bytes passes and one byte more is refused", "[chunked]") {
  const std::string longest = "5;" + std::string(ChunkFraming::kMaxLineBytes - 2, 'a');
  Checked ok = check(longest + "\r\nhello\r\n0\r\n\r\n");
  CHECK(ok.status == ChunkFraming::Status::kEnd);
  Checked too_long = check(longest + "a\r\nhello\r\n0\r\n\r\n", 1);
  CHECK(too_long.status == ChunkFraming::Status::kError);
  CHECK(too_long.error == "chunk size line too long");
  CHECK(too_long.used == ChunkFraming::kMaxLineBytes);
}

TEST_CASE("an endless chunk extension is refused once the line bound is passed", "[chunked]") {
  // However it arrives, no more than the bound is accepted before the refusal.
  ChunkFraming chunks;
  chunks.begin(1024);
  const std::string block = ";" + std::string(999, 'x');
  size_t accepted = 0;
  ChunkFraming::Status status = chunks.scan("1", 1, &accepted);
  for (int i = 0; i < 100 && status == ChunkFraming::Status::kMore; ++i) {
    size_t used = 0;
    status = chunks.scan(block.data(), block.size(), &used);
    accepted += used;
  }
  CHECK(status == ChunkFraming::Status::kError);
  CHECK(accepted == ChunkFraming::kMaxLineBytes);
}

TEST_CASE("the line bound applies to each chunk size line on its own", "[chunked]") {
  const std::string ext = ";" + std::string(ChunkFraming::kMaxLineBytes - 2, 'e');
  std::string body;
  for (int i = 0; i < 4; ++i) body += "1" + ext + "\r\nx\r\n";
  CHECK(check(body + "0\r\n\r\n").status == ChunkFraming::Status::kEnd);
}

TEST_CASE("a last chunk not followed by CRLF or trailers is refused", "[chunked]") {
  for (const char* body : {"0\r\n\n", "0\r\n\rX", "0\r\n X", "0\r\n\r\r\n"}) {
    INFO(body);
    CHECK(check(body).status == ChunkFraming::Status::kError);
  }
}

TEST_CASE("malformed trailer fields are refused", "[chunked]") {
  const std::string bodies[] = {
      "0\r\nX: a\r\n b\r\n\r\n",  // obs-fold
      "0\r\nX\r\n\r\n",           // no colon
      "0\r\nX : a\r\n\r\n",       // space before the colon
      "0\r\n: a\r\n\r\n",         // empty name
      "0\r\nX: a\n\r\n",          // bare LF
      "0\r\nX: a\rb\r\n\r\n",     // bare CR
      "0\r\nX: a\x01\r\n\r\n",    // control byte
      "0\r\nX: a\r\n\n",          // final line a bare LF
      "0\r\n\tX: a\r\n\r\n",      // line starting with whitespace
      "0\r\nX(y): a\r\n\r\n",     // delimiter in the name
  };
  for (const std::string& body : bodies) {
    INFO(body);
    for (const Checked& c : check_every_split(body))
      CHECK(c.status == ChunkFraming::Status::kError);
  }
}

TEST_CASE("a trailer section larger than its bound is refused, one at the bound passes",
          "[chunked]") {
  // The bound counts the whole section: field lines and the final CRLF.
  const std::string field = "X: " + std::string(93, 'v') + "\r\n";  // 98 bytes
  const std::string at_bound = "0\r\n" + field + "\r\n";            // section of 100 bytes
  CHECK(check(at_bound, 0, 100).status == ChunkFraming::Status::kEnd);
  Checked over = check(at_bound, 0, 99);
  CHECK(over.status == ChunkFraming::Status::kError);
  CHECK(over.error == "trailer section too large");
}

TEST_CASE("once refused, the checker refuses every later byte", "[chunked]") {
  ChunkFraming chunks;
  chunks.begin(1024);
  size_t used = 0;
  REQUIRE(chunks.scan("zz", 2, &used) == ChunkFraming::Status::kError);
  CHECK(chunks.scan("0\r\n\r\n", 5, &used) == ChunkFraming::Status::kError);
  CHECK(used == 0);
}

TEST_CASE("begin() starts a fresh body after an ended or refused one", "[chunked]") {
  ChunkFraming chunks;
  size_t used = 0;
  chunks.begin(1024);
  REQUIRE(chunks.scan("zz", 2, &used) == ChunkFraming::Status::kError);
  chunks.begin(1024);
  CHECK(chunks.scan("0\r\n\r\n", 5, &used) == ChunkFraming::Status::kEnd);
  chunks.begin(1024);
  CHECK(chunks.scan("3\r\nabc\r\n0\r\n\r\n", 13, &used) == ChunkFraming::Status::kEnd);
  CHECK(used == 13);
}
