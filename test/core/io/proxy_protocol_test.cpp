// PROXY protocol headers: the specification's examples in both versions, every way a header can
// be refused, headers fed a byte at a time, and the writer read back by the parser.
#include "core/io/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "test/core/io/endpoint.h"

using sluice::core::kProxyHeaderMaxWrite;
using sluice::core::kProxyV1MaxLength;
using sluice::core::parse_proxy_header;
using sluice::core::ProxyHeader;
using sluice::core::ProxyParse;
using sluice::core::write_proxy_v1;
using sluice::core::write_proxy_v2;

namespace {

// A socket address from text (test/core/io/endpoint.h).
const auto& address = sluice::test::endpoint;

const std::string kSignature("\r\n\r\n\0\r\nQUIT\n", 12);

ProxyHeader parse(std::string_view bytes) {
  return parse_proxy_header(bytes.data(), bytes.size());
}

std::string hex(std::string_view text) {
  std::string out;
  for (size_t i = 0; i + 1 < text.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16));
  return out;
}

// "1.2.3.4:80" or "[::1]:80" of a parsed address.
std::string text_of(const sockaddr_storage& address) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    std::string out = "[";  // appended, not "[" + ...: GCC 12 warns falsely (-Wrestrict)
    out += ip;
    out += "]:";
    return out + std::to_string(ntohs(in6->sin6_port));
  }
  return "none";
}

const sockaddr* sa(const sockaddr_storage& s) {
  return reinterpret_cast<const sockaddr*>(&s);
}

// v2 header with `family` byte and `body` (addresses and TLVs) after the fixed part.
std::string v2(unsigned char command, unsigned char family, const std::string& body) {
  std::string out = kSignature;
  out += static_cast<char>(command);
  out += static_cast<char>(family);
  out += static_cast<char>(body.size() >> 8);
  out += static_cast<char>(body.size() & 0xff);
  return out + body;
}

const std::string kV4Block =
    hex("c0000201c6336405d4311f90");  // 192.0.2.1:54321 -> 198.51.100.5:8080
const std::string kV6Block =
    hex("20010db8000000000000000000000001"
        "20010db8000000000000000000000002"
        "04d201bb");  // [2001:db8::1]:1234 -> [2001:db8::2]:443

// Every prefix of a complete header asks for more, never past the header's end; the whole
// header, and the header with the connection's bytes after it, are done at its length.
void check_fed_byte_by_byte(const std::string& header) {
  INFO("header: " << header.size() << " bytes");
  for (size_t k = 0; k < header.size(); ++k) {
    const ProxyHeader h = parse(std::string_view(header).substr(0, k));
    INFO("after " << k << " bytes");
    REQUIRE(h.status == ProxyParse::kNeedMore);
    REQUIRE(h.need >= 1);
    REQUIRE(k + h.need <= header.size());
  }
  const ProxyHeader whole = parse(header);
  REQUIRE(whole.status == ProxyParse::kDone);
  REQUIRE(whole.length == header.size());
  const ProxyHeader followed = parse(header + "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  REQUIRE(followed.status == ProxyParse::kDone);
  REQUIRE(followed.length == header.size());
}

void check_refused(std::string_view bytes, std::string_view reason) {
  const ProxyHeader h = parse(bytes);
  INFO("refusing: " << std::string(bytes));
  REQUIRE(h.status == ProxyParse::kError);
  REQUIRE(h.error != nullptr);
  CHECK(std::string_view(h.error) == reason);
}

}  // namespace

TEST_CASE("v1: the specification's TCP4 example names both endpoints", "[proxy_protocol]") {
  const ProxyHeader h =
      parse("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n");
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.version == 1);
  CHECK(h.length == 47);
  CHECK(h.has_addresses);
  CHECK(text_of(h.source) == "192.168.0.1:56324");
  CHECK(text_of(h.destination) == "192.168.0.11:443");
}

TEST_CASE("v1: TCP6, compressed and full forms, and the longest lines", "[proxy_protocol]") {
  ProxyHeader h = parse("PROXY TCP6 2001:db8::1 2001:DB8::2 1234 443\r\n");
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(text_of(h.source) == "[2001:db8::1]:1234");
  CHECK(text_of(h.destination) == "[2001:db8::2]:443");

  const std::string v6_longest =
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "65535 65535\r\n";
  REQUIRE(v6_longest.size() == 104);
  h = parse(v6_longest);
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.length == 104);
  const std::string v4_longest = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
  REQUIRE(v4_longest.size() == 56);
  CHECK(parse(v4_longest).status == ProxyParse::kDone);
  h = parse("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n");
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(text_of(h.source) == "0.0.0.0:0");
  h = parse("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n");
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(text_of(h.source) == "[::ffff:192.0.2.1]:1");
}

TEST_CASE("v1: UNKNOWN keeps the socket's addresses, with or without fields", "[proxy_protocol]") {
  ProxyHeader h = parse("PROXY UNKNOWN\r\n");
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.length == 15);
  CHECK_FALSE(h.has_addresses);
  const std::string worst =
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "65535 65535\r\n";
  REQUIRE(worst.size() == kProxyV1MaxLength);
  h = parse(worst);
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.length == 107);
  CHECK_FALSE(h.has_addresses);
  h = parse("PROXY UNKNOWN anything at all\r\n");
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK_FALSE(h.has_addresses);
}

TEST_CASE("v1: headers fed a byte at a time", "[proxy_protocol]") {
  check_fed_byte_by_byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
  check_fed_byte_by_byte("PROXY TCP6 2001:db8::1 2001:db8::2 1234 443\r\n");
  check_fed_byte_by_byte("PROXY UNKNOWN\r\n");
  check_fed_byte_by_byte("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n");
}

TEST_CASE("v1: every malformed line is refused", "[proxy_protocol]") {
  check_refused("GET / HTTP/1.1\r\n", "not a PROXY protocol header");
  check_refused("PROXX TCP4", "not a PROXY protocol header");
  check_refused("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header");
  check_refused("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol family");
  check_refused("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol family");
  check_refused("PROXY UDP4", "unknown protocol family");  // refused before the line ends
  check_refused("PROXY UNKNOWNX\r\n", "unknown protocol family");
  check_refused("PROXY TCP4\r\n", "unknown protocol family");
  // Spaces: exactly one between fields, none at the end.
  check_refused("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "expected exactly one space between fields");
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "expected exactly one space between fields");
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "expected two addresses and two ports");
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "expected two addresses and two ports");
  // Line ends: CRLF only, within 107 bytes.
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "LF without CR");
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR without LF");
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "CR without LF");
  check_refused("PROXY UNKNOWN " + std::string(100, 'a'), "no CRLF within 107 bytes");
  check_refused("PROXY UNKNOWN " + std::string(92, 'a') + "\r\n", "no CRLF within 107 bytes");
  CHECK(parse("PROXY UNKNOWN " + std::string(91, 'a') + "\r\n").length == 107);
  check_refused(std::string("PROXY UNKNOWN \0\r\n", 17), "a byte that is not printable ASCII");
  check_refused("PROXY UNKNOWN \xff\r\n", "a byte that is not printable ASCII");
  // Ports: 0..65535, no leading zeros, digits only.
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n",
                "a port is not a number 0..65535 without leading zeros");
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 80 99999\r\n",
                "a port is not a number 0..65535 without leading zeros");
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n",
                "a port is not a number 0..65535 without leading zeros");
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 -1 80\r\n",
                "a port is not a number 0..65535 without leading zeros");
  check_refused("PROXY TCP4 1.2.3.4 5.6.7.8 8a 80\r\n",
                "a port is not a number 0..65535 without leading zeros");
  // Addresses: canonical, of the family named.
  for (const char* bad : {"256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1..3.4", "1.2.3.4.",
                          "::1", "a.b.c.d", "1.2.3.-4"}) {
    check_refused("PROXY TCP4 " + std::string(bad) + " 5.6.7.8 1 2\r\n",
                  "an address is not a canonical IPv4 address");
  }
  check_refused("PROXY TCP4 5.6.7.8 1.2.3.256 1 2\r\n",
                "an address is not a canonical IPv4 address");
  for (const char* bad :
       {"1.2.3.4", "2001:db8:::1", "2001:db8::1%eth0", "[::1]", "fe80::g", "1:2:3:4:5:6:7:8:9"}) {
    check_refused("PROXY TCP6 " + std::string(bad) + " ::1 1 2\r\n",
                  "an address is not an IPv6 address");
  }
}

TEST_CASE("v2: TCP over IPv4 and IPv6 name both endpoints", "[proxy_protocol]") {
  ProxyHeader h = parse(v2(0x21, 0x11, kV4Block) + "GET /");
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.version == 2);
  CHECK(h.length == 28);
  CHECK(h.has_addresses);
  CHECK(text_of(h.source) == "192.0.2.1:54321");
  CHECK(text_of(h.destination) == "198.51.100.5:8080");

  h = parse(v2(0x21, 0x21, kV6Block));
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.length == 52);
  CHECK(text_of(h.source) == "[2001:db8::1]:1234");
  CHECK(text_of(h.destination) == "[2001:db8::2]:443");
}

TEST_CASE("v2: LOCAL keeps the socket's addresses and skips its whole block", "[proxy_protocol]") {
  ProxyHeader h = parse(v2(0x20, 0x00, ""));
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.length == 16);
  CHECK_FALSE(h.has_addresses);
  // "Receivers MUST always consider this field to skip the appropriate number of bytes and
  // must not assume zero is presented for LOCAL connections"; the family is ignored.
  h = parse(v2(0x20, 0x11, kV4Block));
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.length == 28);
  CHECK_FALSE(h.has_addresses);
  h = parse(v2(0x20, 0xff, "xy"));
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.length == 18);
}

TEST_CASE("v2: families the proxy does not use fall back to the socket's addresses",
          "[proxy_protocol]") {
  for (unsigned char family : {0x00, 0x12, 0x22, 0x31, 0x32}) {
    const size_t block = family == 0 ? 0 : family >> 4 == 1 ? 12 : family >> 4 == 2 ? 36 : 216;
    const ProxyHeader h = parse(v2(0x21, family, std::string(block, '\x01')));
    INFO("family " << static_cast<int>(family));
    REQUIRE(h.status == ProxyParse::kDone);
    CHECK(h.length == 16 + block);
    CHECK_FALSE(h.has_addresses);
  }
}

TEST_CASE("v2: TLVs are skipped, and a CRC32C one is checked", "[proxy_protocol]") {
  // NOOP padding and an AWS-style custom TLV (0xEA) after the addresses.
  const std::string tlvs = hex("040003000000") + hex("ea000a01") + "vpce-1234";
  ProxyHeader h = parse(v2(0x21, 0x11, kV4Block + tlvs));
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.length == 28 + tlvs.size());
  CHECK(text_of(h.source) == "192.0.2.1:54321");

  // As HAProxy 2.6 sent it with "send-proxy-v2 proxy-v2-options crc32c,unique-id": the CRC
  // over the whole header with its own field zeroed, then an empty unique ID.
  const std::string haproxy =
      hex("0d0a0d0a000d0a515549540a"
          "21"
          "11"
          "0016"  // signature, PROXY, TCP4, 22 bytes
          "7f000001"
          "7f000001"
          "dab2"
          "dfef"  // 127.0.0.1:55986 -> 127.0.0.1:57327
          "03"
          "0004"
          "dab27153"  // CRC32C
          "05"
          "0000"          // unique ID, empty
          "68656c6c6f");  // "hello", the connection's own bytes
  h = parse(haproxy);
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(h.length == haproxy.size() - 5);  // "hello" follows
  CHECK(text_of(h.source) == "127.0.0.1:55986");
  CHECK(text_of(h.destination) == "127.0.0.1:57327");
  std::string broken = haproxy;
  broken[20] ^= 1;  // the destination address changed in transit
  check_refused(broken, "CRC32C mismatch");
  broken = haproxy;
  broken[32] ^= 1;  // the checksum itself
  check_refused(broken, "CRC32C mismatch");
}

TEST_CASE("v2: headers fed a byte at a time", "[proxy_protocol]") {
  check_fed_byte_by_byte(v2(0x21, 0x11, kV4Block));
  check_fed_byte_by_byte(v2(0x21, 0x21, kV6Block));
  check_fed_byte_by_byte(v2(0x20, 0x00, ""));
  check_fed_byte_by_byte(v2(0x21, 0x11, kV4Block + hex("040003000000")));
}

TEST_CASE("v2: every malformed header is refused", "[proxy_protocol]") {
  std::string bad_signature = v2(0x21, 0x11, kV4Block);
  bad_signature[7] = 'X';
  check_refused(bad_signature, "not a PROXY protocol header");
  check_refused(bad_signature.substr(0, 8), "not a PROXY protocol header");  // at once
  check_refused("\r\nGET", "not a PROXY protocol header");
  check_refused("\x16\x03\x01", "not a PROXY protocol header");  // a TLS ClientHello
  check_refused(v2(0x11, 0x11, kV4Block), "version is not 2");
  check_refused(v2(0x31, 0x11, kV4Block), "version is not 2");
  check_refused(v2(0x22, 0x11, kV4Block), "unknown command");
  check_refused(v2(0x2f, 0x11, kV4Block), "unknown command");
  for (unsigned char family : {0x01, 0x10, 0x13, 0x23, 0x41, 0xff})
    check_refused(v2(0x21, family, kV4Block), "unknown address family or protocol");
  // The address block must hold the family's addresses; TLVs must fill the rest exactly.
  check_refused(v2(0x21, 0x11, kV4Block.substr(0, 11)),
                "address block shorter than its family needs");
  check_refused(v2(0x21, 0x21, kV6Block.substr(0, 35)),
                "address block shorter than its family needs");
  check_refused(v2(0x21, 0x11, kV4Block + std::string("\x04\x00", 2)), "a TLV cut short");
  check_refused(v2(0x21, 0x11, kV4Block + hex("04000501")), "a TLV runs past the header");
  check_refused(v2(0x21, 0x11, kV4Block + hex("03000300000000")),
                "a CRC32C TLV that is not 4 bytes");
  // The length is refused from the fixed part alone, before any of it is awaited.
  const std::string too_long = kSignature + "\x21\x11" + hex("0401");
  check_refused(too_long, "longer than 1040 bytes");
  const ProxyHeader longest =
      parse(v2(0x21, 0x11, kV4Block + hex("0403f1") + std::string(1009, 'x')));
  REQUIRE(longest.status == ProxyParse::kDone);
  CHECK(longest.length == 1040);
  // Truncated: an incomplete header is never done; what it lacks is counted.
  const ProxyHeader partial = parse(v2(0x21, 0x11, kV4Block).substr(0, 20));
  REQUIRE(partial.status == ProxyParse::kNeedMore);
  CHECK(partial.need == 8);
}

TEST_CASE("nothing yet, and a first byte that fits neither version", "[proxy_protocol]") {
  const ProxyHeader empty = parse("");
  REQUIRE(empty.status == ProxyParse::kNeedMore);
  CHECK(empty.need == 1);
  CHECK(empty.version == 0);
  check_refused("G", "not a PROXY protocol header");
  check_refused(std::string(1, '\0'), "not a PROXY protocol header");
  CHECK(parse("P").version == 1);
  CHECK(parse("\r").version == 2);
}

TEST_CASE("writer: v1 and v2 headers read back as written", "[proxy_protocol]") {
  char out[kProxyHeaderMaxWrite];
  const sockaddr_storage v4_client = address("203.0.113.7", 40000);
  const sockaddr_storage v4_listener = address("10.0.0.1", 443);
  size_t n = write_proxy_v1(sa(v4_client), sa(v4_listener), out);
  CHECK(std::string(out, n) == "PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\r\n");
  ProxyHeader h = parse(std::string(out, n));
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(text_of(h.source) == "203.0.113.7:40000");
  CHECK(text_of(h.destination) == "10.0.0.1:443");

  n = write_proxy_v2(sa(v4_client), sa(v4_listener), out);
  CHECK(std::string(out, n) == v2(0x21, 0x11,
                                  hex("cb007107"
                                      "0a000001"
                                      "9c40"
                                      "01bb")));

  const sockaddr_storage v6_client = address("2001:db8::7", 1);
  const sockaddr_storage v6_listener = address("2001:db8::1", 65535);
  n = write_proxy_v1(sa(v6_client), sa(v6_listener), out);
  CHECK(std::string(out, n) == "PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n");
  n = write_proxy_v2(sa(v6_client), sa(v6_listener), out);
  REQUIRE(n == 52);
  h = parse(std::string(out, n));
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(text_of(h.source) == "[2001:db8::7]:1");
  CHECK(text_of(h.destination) == "[2001:db8::1]:65535");

  // One IPv4 and one IPv6 endpoint: both written as IPv6.
  n = write_proxy_v1(sa(v4_client), sa(v6_listener), out);
  CHECK(std::string(out, n) == "PROXY TCP6 ::ffff:203.0.113.7 2001:db8::1 40000 65535\r\n");
  n = write_proxy_v2(sa(v6_client), sa(v4_listener), out);
  h = parse(std::string(out, n));
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK(text_of(h.destination) == "[::ffff:10.0.0.1]:443");

  // The longest line fits.
  const sockaddr_storage wide = address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
  n = write_proxy_v1(sa(wide), sa(wide), out);
  CHECK(n == 104);
}

TEST_CASE("writer: without addresses, v1 UNKNOWN and v2 LOCAL", "[proxy_protocol]") {
  char out[kProxyHeaderMaxWrite];
  size_t n = write_proxy_v1(nullptr, nullptr, out);
  CHECK(std::string(out, n) == "PROXY UNKNOWN\r\n");
  n = write_proxy_v2(nullptr, nullptr, out);
  CHECK(std::string(out, n) == v2(0x20, 0x00, ""));
  sockaddr_storage unix_socket{};
  unix_socket.ss_family = AF_UNIX;
  const sockaddr_storage v4 = address("192.0.2.1", 80);
  n = write_proxy_v1(sa(v4), sa(unix_socket), out);
  CHECK(std::string(out, n) == "PROXY UNKNOWN\r\n");
  const ProxyHeader h = parse(std::string(out, write_proxy_v2(sa(unix_socket), sa(v4), out)));
  REQUIRE(h.status == ProxyParse::kDone);
  CHECK_FALSE(h.has_addresses);
}
