// Specification of a stored body: bytes appended in pieces of any size read back exactly over
// any range, and what the blocks cost with and without a declared length.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/cache/stored_response.h"

using namespace sluice::core::cache;

namespace {

// `size` bytes that differ from block to block and within one.
std::string pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return s;
}

// Appends `bytes` in pieces of the given sizes, cycling through them.
void append_in_pieces(Body* body, const std::string& bytes, const std::vector<size_t>& pieces) {
  size_t at = 0;
  for (size_t i = 0; at < bytes.size(); ++i) {
    const size_t n = std::min(pieces[i % pieces.size()], bytes.size() - at);
    body->append(bytes.data() + at, n);
    at += n;
  }
}

struct Read {
  std::string bytes;
  std::vector<size_t> spans;  // the length of each span
};

Read read(const Body& body, uint64_t from, uint64_t length) {
  Read out;
  body.spans(from, length, [&](const char* data, size_t n) {
    out.bytes.append(data, n);
    out.spans.push_back(n);
  });
  return out;
}

}  // namespace

TEST_CASE("a body reads back whole after appends across block boundaries", "[cache]") {
  const std::string source = pattern(300000);
  Body body(0);
  append_in_pieces(&body, source, {1000, 3333, 17, 70000});
  CHECK(body.size() == source.size());
  const Read all = read(body, 0, body.size());
  CHECK(all.bytes == source);
  CHECK(all.spans.size() > 1);
}

TEST_CASE("one append larger than a block spreads over several blocks", "[cache]") {
  const std::string source = pattern(3 * Body::kBlockBytes + 5);
  Body body(0);
  body.append(source.data(), source.size());
  const Read all = read(body, 0, body.size());
  CHECK(all.bytes == source);
  for (size_t n : all.spans) CHECK(n <= Body::kBlockBytes);
}

TEST_CASE("spans() gives exactly the bytes of any range", "[cache]") {
  const std::string source = pattern(40000);
  Body body(0);
  append_in_pieces(&body, source, {999, 5000});
  for (uint64_t from : {0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 16384, 30000, 39999}) {
    for (uint64_t length : {1, 2, 100, 4096, 8192, 12289, 40000}) {
      const uint64_t wanted = std::min<uint64_t>(length, source.size() - from);
      const Read part = read(body, from, length);
      INFO("from " << from << " length " << length);
      CHECK(part.bytes == source.substr(from, wanted));
      for (size_t n : part.spans) CHECK(n > 0);
    }
  }
}

TEST_CASE("spans() past the end gives only the bytes there are", "[cache]") {
  const std::string source = pattern(5000);
  Body body(0);
  body.append(source.data(), source.size());
  CHECK(read(body, 4990, 100).bytes == source.substr(4990));
  CHECK(read(body, 5000, 10).spans.empty());
  CHECK(read(body, 100, 0).spans.empty());
}

TEST_CASE("a body of a declared length allocates just that length", "[cache]") {
  for (uint64_t declared : {uint64_t{100}, uint64_t{10000}, uint64_t{150000}}) {
    Body body(declared);
    append_in_pieces(&body, pattern(declared), {777});
    CHECK(body.size() == declared);
    CHECK(body.allocated() == declared);
    CHECK(read(body, 0, declared).bytes == pattern(declared));
  }
}

TEST_CASE("a body of unknown length allocates at most about twice its size", "[cache]") {
  for (size_t size : {size_t{100}, size_t{10000}, size_t{150000}, size_t{1000000}}) {
    Body body(0);
    append_in_pieces(&body, pattern(size), {1500});
    INFO("size " << size);
    CHECK(body.allocated() >= body.size());
    CHECK(body.allocated() <= 2 * body.size() + 4096);
  }
}

TEST_CASE("an empty body spans nothing and allocates nothing", "[cache]") {
  Body body(0);
  CHECK(body.size() == 0);
  CHECK(body.allocated() == 0);
  CHECK(read(body, 0, 10).spans.empty());
}
