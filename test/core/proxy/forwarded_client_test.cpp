// Specification of the X-Forwarded-For walk (trusted_proxies): right to left over every field,
// past trusted proxies, to the first address that is not one; all trusted: the leftmost; a
// malformed entry ends the walk at the last good one. And the X-Forwarded-For sent on: the
// entries left of the client, then the client, the trusted hops after it left out.
#include "core/proxy/forwarded_client.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "conf/socket_address.h"
#include "core/http/head_writer.h"
#include "core/http/http_parser.h"

using namespace sluice::core;
using sluice::conf::IpAddress;
using sluice::conf::PrefixTree;

namespace {

PrefixTree trusted(std::initializer_list<const char*> networks) {
  PrefixTree::Builder builder;
  for (const char* text : networks) {
    std::string problem;
    auto cidr = sluice::conf::parse_cidr(text, &problem);
    INFO(text << ": " << problem);
    REQUIRE(cidr.has_value());
    builder.add(*cidr, 1);
  }
  return builder.build();
}

// The trusted proxies of most tests: built on first use, inside a test (it may REQUIRE).
const PrefixTree& standard_trusted() {
  static const PrefixTree tree = trusted({"10.0.0.0/8", "2001:db8::/32"});
  return tree;
}

// A request with the given X-Forwarded-For fields (each one a field).
struct Request {
  HeadPool heads;
  std::unique_ptr<MessageHead> head;

  explicit Request(std::initializer_list<std::string> fields) {
    std::string text = "GET / HTTP/1.1\r\nHost: app.test\r\n";
    for (const std::string& value : fields) text += "X-Forwarded-For: " + value + "\r\n";
    text += "\r\n";
    HttpParser parser(HttpParser::Kind::kRequest, heads, {});
    const ParseStep step = parser.execute(text.data(), text.size());
    REQUIRE(step.event == ParseEvent::kHead);
    head = parser.release_head();
  }
};

// The client the walk settles on, or "<peer>" when the connection's address stands.
std::string client_of(std::initializer_list<std::string> fields) {
  const Request request(fields);
  ForwardedClient found;
  if (!forwarded_client(*request.head, standard_trusted(), &found)) return "<peer>";
  return found.text;
}

// The X-Forwarded-For line sent to the backend for a request from trusted peer 10.0.0.1.
std::string sent_on(std::initializer_list<std::string> fields) {
  const Request request(fields);
  ForwardedClient found;
  RequestRewrite how{"10.0.0.1"};
  if (forwarded_client(*request.head, standard_trusted(), &found)) {
    how.client_ip = found.text;
    how.forwarded_field = found.field;
    how.forwarded_start = found.start;
  }
  HeadPool heads;
  BlockPool blocks;
  Slice out = write_request_head(blocks, *request.head, how);
  const std::string wire(out.data, out.length);
  block_unref(out.block);
  const size_t at = wire.find("X-Forwarded-For: ");
  REQUIRE(at != std::string::npos);
  REQUIRE(wire.find("X-Forwarded-For: ", at + 1) == std::string::npos);  // one field only
  return wire.substr(at + 17, wire.find("\r\n", at) - at - 17);
}

}  // namespace

TEST_CASE("forwarded client: the rightmost address that is not a trusted proxy",
          "[core][forwarded_for]") {
  CHECK(client_of({"203.0.113.7"}) == "203.0.113.7");
  CHECK(client_of({"198.51.100.1, 203.0.113.7, 10.0.0.2"}) == "203.0.113.7");
  CHECK(client_of({"198.51.100.1, 203.0.113.7, 10.0.0.2, 10.9.9.9"}) == "203.0.113.7");
  CHECK(client_of({"2001:db8::5, 2001:db9::1, 2001:db8::7"}) == "2001:db9::1");
  CHECK(client_of({"203.0.113.7,10.0.0.2"}) == "203.0.113.7");  // no space after the comma
}

TEST_CASE("forwarded client: several fields are one list, the last field rightmost",
          "[core][forwarded_for]") {
  CHECK(client_of({"203.0.113.7", "10.0.0.2"}) == "203.0.113.7");
  CHECK(client_of({"198.51.100.1", "203.0.113.7, 10.0.0.3", "10.0.0.2"}) == "203.0.113.7");
  CHECK(client_of({"198.51.100.1", "10.0.0.3", "10.0.0.2"}) == "198.51.100.1");
}

TEST_CASE("forwarded client: all trusted, the leftmost; none, the connection's own",
          "[core][forwarded_for]") {
  CHECK(client_of({"10.0.0.3, 10.0.0.2"}) == "10.0.0.3");
  CHECK(client_of({}) == "<peer>");
  CHECK(client_of({""}) == "<peer>");
  CHECK(client_of({" , ,"}) == "<peer>");
}

TEST_CASE("forwarded client: a malformed entry ends the walk at the last good one",
          "[core][forwarded_for]") {
  CHECK(client_of({"203.0.113.7, unknown"}) == "<peer>");
  CHECK(client_of({"203.0.113.7, bogus, 10.0.0.2"}) == "10.0.0.2");
  CHECK(client_of({"203.0.113.7", "bogus", "10.0.0.2"}) == "10.0.0.2");
  CHECK(client_of({"198.51.100.1, 10.0.0.2 10.0.0.3"}) == "<peer>");
  CHECK(client_of({"300.1.1.1"}) == "<peer>");
  CHECK(client_of({"_hidden, 10.0.0.2"}) == "10.0.0.2");  // RFC 7239 obfuscated: not an IP
  // Past the client, nothing more is read: garbage to its left is no concern.
  CHECK(client_of({"garbage!!, 203.0.113.7, 10.0.0.2"}) == "203.0.113.7");
}

TEST_CASE("forwarded client: entries with ports and brackets", "[core][forwarded_for]") {
  CHECK(client_of({"203.0.113.7:5000, 10.0.0.2:443"}) == "203.0.113.7");
  CHECK(client_of({"[2001:db9::1]:5000"}) == "2001:db9::1");
  CHECK(client_of({"[2001:db9::1]"}) == "2001:db9::1");
  CHECK(client_of({"203.0.113.7:99999"}) == "<peer>");
  CHECK(client_of({"203.0.113.7:"}) == "<peer>");
  CHECK(client_of({"[203.0.113.7]"}) == "<peer>");
  CHECK(client_of({"[2001:db9::1"}) == "<peer>");
  CHECK(client_of({"[2001:db9::1]x"}) == "<peer>");
  CHECK(client_of({"2001:db9::1:80x"}) == "<peer>");
}

TEST_CASE("forwarded client: IPv4-mapped entries count as IPv4", "[core][forwarded_for]") {
  CHECK(client_of({"203.0.113.7, ::ffff:10.0.0.2"}) == "203.0.113.7");  // a trusted proxy
  CHECK(client_of({"::ffff:203.0.113.7"}) == "203.0.113.7");
}

TEST_CASE("forwarded client: entry parsing", "[core][forwarded_for]") {
  IpAddress a;
  CHECK(parse_forwarded_entry("192.0.2.1", &a));
  CHECK(a.family == AF_INET);
  CHECK(parse_forwarded_entry("192.0.2.1:0", &a));
  CHECK(parse_forwarded_entry("::1", &a));
  CHECK(a.family == AF_INET6);
  CHECK(parse_forwarded_entry("[::1]:65535", &a));
  CHECK_FALSE(parse_forwarded_entry("", &a));
  CHECK_FALSE(parse_forwarded_entry("[]", &a));
  CHECK_FALSE(parse_forwarded_entry("::1:", &a));
  CHECK_FALSE(parse_forwarded_entry("192.0.2.1:+80", &a));
  CHECK_FALSE(parse_forwarded_entry("fe80::1%eth0", &a));
  CHECK_FALSE(parse_forwarded_entry(" 192.0.2.1", &a));  // the walk trims; the parser does not
}

TEST_CASE("X-Forwarded-For sent on: the client ends it, the trusted hops after it left out",
          "[core][forwarded_for]") {
  // No header from the trusted peer: the peer itself, as always.
  CHECK(sent_on({}) == "10.0.0.1");
  CHECK(sent_on({"203.0.113.7"}) == "203.0.113.7");
  CHECK(sent_on({"198.51.100.1, 203.0.113.7, 10.0.0.2"}) == "198.51.100.1, 203.0.113.7");
  CHECK(sent_on({"198.51.100.1", "203.0.113.7:80, 10.0.0.3", "10.0.0.2"}) ==
        "198.51.100.1, 203.0.113.7");
  CHECK(sent_on({"10.0.0.3, 10.0.0.2"}) == "10.0.0.3");
  CHECK(sent_on({"[2001:DB9::1]:8080"}) == "2001:db9::1");  // the canonical form
  // A malformed entry right of everything: the peer stands, the header is passed on whole.
  CHECK(sent_on({"203.0.113.7, bogus"}) == "203.0.113.7, bogus, 10.0.0.1");
  CHECK(sent_on({"203.0.113.7, bogus, 10.0.0.2"}) == "203.0.113.7, bogus, 10.0.0.2");
}
