// Feeds arbitrary bytes to what a forward proxy reads of a request's destination, and checks the
// invariants it relies on: an absolute-form target's authority splits into a non-empty host and a
// non-zero port, a CONNECT authority only with its port written, an allow-list pattern matches
// the destination it was written for (and only a literal pattern gives kAllowedLiteral), and a
// CONNECT request head either parses with its authority as host() or fails with a 4xx.
//
// Input: the whole of it is the target, the pattern and the CONNECT authority at once.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "conf/destination.h"
#include "core/http/http_parser.h"
#include "core/http/request_target.h"

using sluice::conf::DestinationList;
using sluice::conf::DestinationPattern;
using sluice::conf::DestinationVerdict;
using sluice::core::HeadPool;
using sluice::core::HttpParser;
using sluice::core::ParseEvent;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}

// A split authority is the authority itself, or it with ":" and the port's digits after the host.
void check_split(std::string_view authority, std::string_view host, uint16_t port) {
  check(!host.empty() && port != 0);
  check(authority.substr(0, host.size()) == host);
  if (host.front() == '[') check(host.back() == ']');
  if (host.size() < authority.size()) check(authority[host.size()] == ':');
}

void absolute_form(std::string_view input) {
  sluice::core::AbsoluteTarget target;
  if (sluice::core::parse_absolute_form(input, &target) != nullptr) return;
  check(!target.authority.empty() && sluice::core::valid_host(target.authority));
  check(target.rest.empty() || input.ends_with(target.rest));
  std::string_view host;
  uint16_t port = 0;
  if (!sluice::core::split_authority(target.authority, target.https ? 443 : 80, &host, &port))
    return;  // "http://a:0/": a valid host, but no port to go to
  check_split(target.authority, host, port);
  if (host.size() == target.authority.size()) check(port == (target.https ? 443 : 80));
}

void connect_authority(std::string_view input) {
  std::string_view host;
  uint16_t port = 0;
  if (!sluice::core::split_authority(input, 0, &host, &port)) return;
  check(sluice::core::valid_host(input));
  check_split(input, host, port);
  check(host.size() < input.size());  // CONNECT names its port
}

DestinationVerdict verdict(const DestinationList& list, std::string_view host, uint16_t port) {
  const DestinationVerdict v = list.check(host, port);
  const bool literal = list.patterns[0].kind == DestinationPattern::Host::kLiteral;
  if (v != DestinationVerdict::kRefused)
    check((v == DestinationVerdict::kAllowedLiteral) == literal);
  return v;
}

void destination(std::string_view input) {
  DestinationList list;
  std::string problem;
  DestinationPattern pattern;
  if (!sluice::conf::parse_destination(input, &pattern, &problem)) {
    check(!problem.empty());
    return;
  }
  list.patterns.push_back(pattern);
  for (std::string_view host : {"example.com", "a.example.com", "127.0.0.1", "[::1]", "10.0.0.1"})
    for (uint16_t port : {80, 443, 8080}) verdict(list, host, port);
  if (pattern.port == 0 && !pattern.any_port) {  // no port written: 80 and 443
    check(verdict(list, input, 80) != DestinationVerdict::kRefused);
    check(verdict(list, input, 443) != DestinationVerdict::kRefused);
    check(verdict(list, input, 8080) == DestinationVerdict::kRefused);
    return;
  }
  // A pattern lets through the destination it spells.
  const size_t colon = input.rfind(':');
  check(colon != std::string_view::npos);
  const std::string_view host = input.substr(0, colon), digits = input.substr(colon + 1);
  uint16_t port = 0;
  if (digits == "*")
    port = 1;
  else
    check(std::from_chars(digits.data(), digits.data() + digits.size(), port).ec == std::errc());
  check(port == 1 || port == pattern.port);
  check(verdict(list, host, port) != DestinationVerdict::kRefused);
}

void connect_request(std::string_view input) {
  std::string text = "CONNECT ";
  text.append(input).append(" HTTP/1.1\r\nHost: x\r\n\r\n");
  HeadPool heads;
  HttpParser parser(HttpParser::Kind::kRequest, heads, {});
  parser.allow_connect(true);
  const auto step = parser.execute(text.data(), text.size());
  check(step.consumed <= text.size());
  if (step.event == ParseEvent::kError) {
    check(parser.error_status() >= 400 && parser.error_status() < 500);
    check(parser.error_status() != 405);
    return;
  }
  if (step.event != ParseEvent::kHead) return;
  const sluice::core::MessageHead* head = parser.head();
  check(head != nullptr);
  if (head->method != HTTP_CONNECT) return;
  check(head->host() == head->target());
  std::string_view host;
  uint16_t port = 0;
  check(sluice::core::split_authority(head->host(), 0, &host, &port));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size > 4096) return 0;
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  absolute_form(input);
  connect_authority(input);
  destination(input);
  connect_request(input);
  return 0;
}
