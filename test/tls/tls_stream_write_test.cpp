// Specification of the TLS stream's writing, server side: slices gathered into records, large
// and many writes intact and in order, backpressure passed through, and writes the transport or
// the unfinished handshake refuse.
#include <uv.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "test/tls/tls_stream_fixture.h"
#include "tls/tls_stream.h"

using namespace sluice;
using namespace sluice::test;
using namespace sluice::test::tls_stream;

namespace {

// The TLS records in `wire`: their content types, in order.
std::vector<int> record_types(const std::string& wire) {
  std::vector<int> types;
  size_t at = 0;
  while (at + 5 <= wire.size()) {
    types.push_back(static_cast<unsigned char>(wire[at]));
    const size_t length =
        (static_cast<unsigned char>(wire[at + 3]) << 8) | static_cast<unsigned char>(wire[at + 4]);
    at += 5 + length;
  }
  CHECK(at == wire.size());
  return types;
}

}  // namespace

TEST_CASE("several small slices written at once leave as one record", "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.peer().take_received();
  REQUIRE(write_slices(*s.stream, s.loop.pool(),
                       {"HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n\r\n", "hello"}) == 0);
  const std::string wire = s.peer().take_received();
  CHECK(record_types(wire) == std::vector<int>{0x17});
  s.client->feed(wire);
  CHECK(s.client->read() == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
}

TEST_CASE("a 1 MiB write arrives intact", "[tls][stream]") {
  Accepted s;
  s.handshake();
  const std::string big = pattern(1 << 20);
  REQUIRE(write_slices(*s.stream, s.loop.pool(), {big}) == 0);
  const std::string got = s.client_reads();
  REQUIRE(got.size() == big.size());
  CHECK(got == big);
}

TEST_CASE("several slices larger together than a record arrive intact and in order",
          "[tls][stream]") {
  Accepted s;
  s.handshake();
  const std::string a(10000, 'a'), b = pattern(70000), c(3, 'c');
  REQUIRE(write_slices(*s.stream, s.loop.pool(), {a, b, c}) == 0);
  CHECK(s.client_reads() == a + b + c);
}

TEST_CASE("many writes in a row arrive intact and in order", "[tls][stream]") {
  Accepted s;
  s.handshake();
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    const std::string part = "part " + std::to_string(i) + " " + std::string(i * 37, 'x') + "\n";
    REQUIRE(write_slices(*s.stream, s.loop.pool(), {part}) == 0);
    expected += part;
  }
  CHECK(s.client_reads() == expected);
}

TEST_CASE("backpressure passes through: queued ciphertext counts and drained is reported",
          "[tls][stream]") {
  Accepted s;
  s.handshake();
  s.peer().hold();
  REQUIRE(write_slices(*s.stream, s.loop.pool(), {pattern(200 * 1024)}) == 0);
  CHECK(s.stream->queued_bytes() > 200 * 1024);  // records, with their overhead
  s.stream->notify_drained();
  CHECK(s.handler.drains == 0);
  s.peer().release();
  CHECK(s.stream->queued_bytes() == 0);
  CHECK(s.handler.drains == 1);
  CHECK(s.client_reads() == pattern(200 * 1024));
}

TEST_CASE("a write the transport refuses returns the transport's error", "[tls][stream]") {
  Accepted s({.breakable = true});
  s.handshake();
  s.breakable->break_writes = true;
  CHECK(write_slices(*s.stream, s.loop.pool(), {"nowhere to go"}) == UV_EPIPE);
}

TEST_CASE("a write before the handshake finished returns UV_ENOTCONN", "[tls][stream]") {
  Accepted s;
  CHECK(write_slices(*s.stream, s.loop.pool(), {"too soon"}) == UV_ENOTCONN);
  s.client->handshake();
  s.peer().send(s.client->drain());
  CHECK(write_slices(*s.stream, s.loop.pool(), {"still too soon"}) == UV_ENOTCONN);
}
