// The access-log line: every field from the record and the request, JSON that parses back to
// exactly what was sent, nulls where there is nothing to say, and the time in ISO 8601 UTC.
#include "core/accesslog/access_line.h"

#include <llhttp.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace sluice::test {
namespace {

using accesslog::append_access_line;
using accesslog::append_json_string;
using accesslog::LineNames;
using accesslog::TimeFormat;
using nlohmann::json;

std::string as_json(std::string_view text) {
  std::string out;
  append_json_string(&out, text);
  return out;
}

std::string time_text(int64_t unix_ms) {
  TimeFormat format;
  std::string out;
  format.append(&out, unix_ms);
  return out;
}

// Two upstreams (the second with two backends) and two routes, one on any host.
std::shared_ptr<const conf::Snapshot> snapshot() {
  conf::Config config;
  for (const char* name : {"web", "api"}) {
    conf::UpstreamConfig up;
    up.name = name;
    for (const char* address : {"127.0.0.1:9001", "[::1]:9002"}) {
      conf::BackendConfig backend;
      backend.address = *conf::parse_socket_address(address);
      up.backends.push_back(backend);
    }
    config.upstreams.push_back(up);
  }
  conf::RouteConfig on_host;
  on_host.host = "app.test";
  on_host.path_prefix = "/api/";
  on_host.upstream = "api";
  conf::RouteConfig any;
  any.upstream = "web";
  config.routes = {on_host, any};
  return conf::build_snapshot(config, nullptr);
}

const std::vector<std::string> kListeners = {"127.0.0.1:8080", "[::]:8443"};

std::unique_ptr<core::MessageHead> request(std::string_view method_target, uint8_t minor = 1) {
  auto head = std::make_unique<core::MessageHead>();
  const size_t space = method_target.find(' ');
  const std::string_view method = method_target.substr(0, space);
  head->method = method == "POST" ? HTTP_POST : HTTP_GET;
  const std::string_view target = method_target.substr(space + 1);
  head->append_target(target.data(), target.size());
  head->version_minor = minor;
  head->finalize();
  return head;
}

// A request relayed to the second backend of "api" on its first try.
core::ExchangeRecord relayed() {
  core::ExchangeRecord r;
  r.start_ms = 5000;
  r.first_byte_ms = 5012;
  r.end_ms = 5020;
  r.request_bytes = 11;
  r.response_bytes = 345;
  r.route = 0;
  r.upstream = 1;
  r.backend = 1;
  r.status = 200;
  r.attempts = 1;
  r.outcome = core::Outcome::kOk;
  r.request_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  r.client_ip = "192.0.2.7";
  r.client_port = 40001;
  r.listener = 1;
  return r;
}

// The line as JSON, after checking it is exactly one line.
json line_of(const core::ExchangeRecord& record, const core::MessageHead* head,
             int64_t offset_ms = 1714566896789 - 5000) {
  static const auto snap = snapshot();
  std::string out;
  TimeFormat time;
  append_access_line(&out, time, LineNames{snap.get(), &kListeners}, offset_ms, record, head);
  REQUIRE(!out.empty());
  CHECK(out.back() == '\n');
  CHECK(out.find('\n') == out.size() - 1);
  return json::parse(out);
}

}  // namespace

TEST_CASE("json strings escape quotes, backslashes and control characters", "[accesslog][line]") {
  CHECK(as_json("plain /a?b=c") == "\"plain /a?b=c\"");
  CHECK(as_json("a\"b\\c") == R"("a\"b\\c")");
  CHECK(as_json("\n\r\t") == R"("\n\r\t")");
  CHECK(as_json(std::string_view("\0\x01\x1f\x7f", 4)) == R"("\u0000\u0001\u001f\u007f")");
  CHECK(as_json("") == "\"\"");
}

TEST_CASE("json strings keep valid UTF-8 and escape each byte of invalid sequences",
          "[accesslog][line]") {
  CHECK(as_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK(as_json("a\xff"
                "b") == R"("a\u00ffb")");
  CHECK(as_json("\xc3") == R"("\u00c3")");                                // cut short
  CHECK(as_json("\xc0\xaf") == R"("\u00c0\u00af")");                      // overlong
  CHECK(as_json("\xed\xa0\x80") == R"("\u00ed\u00a0\u0080")");            // a surrogate
  CHECK(as_json("\xf4\x90\x80\x80") == R"("\u00f4\u0090\u0080\u0080")");  // past U+10FFFF
  // Whatever the bytes, the result parses as JSON.
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const json parsed = json::parse(as_json(all));
  CHECK(parsed.get<std::string>().size() > 128);
}

TEST_CASE("json strings escape a character wherever it falls in a longer string",
          "[accesslog][line]") {
  const std::pair<char, std::string> cases[] = {{'"', "\\\""},       {'\\', "\\\\"},
                                                {'\n', "\\n"},       {'\x01', "\\u0001"},
                                                {'\x7f', "\\u007f"}, {'\x80', "\\u0080"}};
  for (const auto& [c, escaped] : cases) {
    for (size_t at = 0; at < 24; ++at) {
      std::string text(24, 'a');
      text[at] = c;
      std::string expect(1, '"');
      expect.append(at, 'a').append(escaped).append(23 - at, 'a').push_back('"');
      INFO("byte " << int(static_cast<unsigned char>(c)) << " at " << at);
      CHECK(as_json(text) == expect);
    }
  }
}

TEST_CASE("times are ISO 8601 UTC with milliseconds", "[accesslog][line]") {
  CHECK(time_text(0) == "1970-01-01T00:00:00.000Z");
  CHECK(time_text(1714566896789) == "2024-05-01T12:34:56.789Z");
  CHECK(time_text(1709164800005) == "2024-02-29T00:00:00.005Z");
  CHECK(time_text(951782399999) == "2000-02-28T23:59:59.999Z");
  CHECK(time_text(-1) == "1969-12-31T23:59:59.999Z");
  // One format object across a second's boundary, as a worker uses it.
  TimeFormat format;
  std::string out;
  format.append(&out, 1714566896999);
  format.append(&out, 1714566897000);
  format.append(&out, 1714566897001);
  CHECK(out == "2024-05-01T12:34:56.999Z2024-05-01T12:34:57.000Z2024-05-01T12:34:57.001Z");
}

TEST_CASE("a relayed exchange's line has every field", "[accesslog][line]") {
  const auto head = request("POST /api/items?q=\"x\"&p=a\\b");
  const json line = line_of(relayed(), head.get());
  CHECK(line["time"] == "2024-05-01T12:34:56.789Z");
  CHECK(line["client_ip"] == "192.0.2.7");
  CHECK(line["client_port"] == 40001);
  CHECK(line["listener"] == "[::]:8443");
  CHECK(line["method"] == "POST");
  CHECK(line["target"] == "/api/items?q=\"x\"&p=a\\b");
  CHECK(line["protocol"] == "HTTP/1.1");
  CHECK(line["status"] == 200);
  CHECK(line["bytes_in"] == 11);
  CHECK(line["bytes_out"] == 345);
  CHECK(line["route"] == 0);
  CHECK(line["route_match"] == "app.test/api/");
  CHECK(line["upstream"] == "api");
  CHECK(line["backend"] == "[::1]:9002");
  CHECK(line["attempts"] == 1);
  CHECK(line["outcome"] == "ok");
  CHECK(line["cache"].is_null());
  CHECK(line["request_id"] == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(line["duration_ms"] == 20);
  CHECK(line["upstream_first_byte_ms"] == 12);
  CHECK(line["tls_version"].is_null());
  CHECK(line["sni"].is_null());
  CHECK(line.size() == 22);
}

TEST_CASE("a cached route's line says what the cache did", "[accesslog][line]") {
  const auto head = request("GET /");
  core::ExchangeRecord record = relayed();
  record.cache = "hit";
  CHECK(line_of(record, head.get())["cache"] == "hit");
}

TEST_CASE("fields are written in the documented order", "[accesslog][line]") {
  const auto head = request("GET /");
  std::string out;
  TimeFormat time;
  const auto snap = snapshot();
  append_access_line(&out, time, LineNames{snap.get(), &kListeners}, 0, relayed(), head.get());
  const char* order[] = {"time",        "client_ip",  "client_port", "listener",
                         "method",      "target",     "protocol",    "status",
                         "bytes_in",    "bytes_out",  "route",       "route_match",
                         "upstream",    "backend",    "attempts",    "outcome",
                         "cache",       "request_id", "duration_ms", "upstream_first_byte_ms",
                         "tls_version", "sni"};
  size_t at = 0;
  for (const char* name : order) {
    std::string needle = "\"";
    needle.append(name).append("\":");
    const size_t found = out.find(needle, at);
    INFO(name);
    REQUIRE(found != std::string::npos);
    at = found;
  }
}

TEST_CASE("what an exchange does not have is null", "[accesslog][line]") {
  // Refused before its head was complete: no request, no route, nothing from a backend.
  core::ExchangeRecord r;
  r.start_ms = r.end_ms = 7000;
  r.status = 400;
  r.response_bytes = 120;
  r.outcome = core::Outcome::kBadRequest;
  r.client_ip = "10.0.0.1";
  r.client_port = 5555;
  r.listener = 0;
  const json line = line_of(r, nullptr);
  CHECK(line["listener"] == "127.0.0.1:8080");
  CHECK(line["method"].is_null());
  CHECK(line["target"].is_null());
  CHECK(line["protocol"].is_null());
  CHECK(line["status"] == 400);
  CHECK(line["bytes_in"] == 0);
  CHECK(line["route"].is_null());
  CHECK(line["route_match"].is_null());
  CHECK(line["upstream"].is_null());
  CHECK(line["backend"].is_null());
  CHECK(line["attempts"] == 0);
  CHECK(line["outcome"] == "bad_request");
  CHECK(line["request_id"].is_null());
  CHECK(line["duration_ms"] == 0);
  CHECK(line["upstream_first_byte_ms"].is_null());
  CHECK(line["tls_version"].is_null());
  CHECK(line["sni"].is_null());

  // A client that went away before any answer: no status.
  core::ExchangeRecord gone;
  gone.outcome = core::Outcome::kClientAbort;
  gone.listener = 7;  // not a listener the process opened
  const auto head = request("GET /x", 0);
  const json line2 = line_of(gone, head.get());
  CHECK(line2["status"].is_null());
  CHECK(line2["listener"].is_null());
  CHECK(line2["client_ip"].is_null());
  CHECK(line2["client_port"].is_null());
  CHECK(line2["protocol"] == "HTTP/1.0");
  CHECK(line2["outcome"] == "client_abort");
}

TEST_CASE("a 404 has a null route and its local-reply outcome", "[accesslog][line]") {
  core::ExchangeRecord r;
  r.status = 404;
  r.outcome = core::Outcome::kLocalReply;
  r.route = -1;
  const auto head = request("GET /nowhere");
  const json line = line_of(r, head.get());
  CHECK(line["route"].is_null());
  CHECK(line["route_match"].is_null());
  CHECK(line["outcome"] == "local_reply");
  CHECK(line["status"] == 404);
}

TEST_CASE("a route on any host shows its path prefix alone", "[accesslog][line]") {
  core::ExchangeRecord r = relayed();
  r.route = 1;
  r.upstream = 0;
  r.backend = 0;
  const auto head = request("GET /");
  const json line = line_of(r, head.get());
  CHECK(line["route"] == 1);
  CHECK(line["route_match"] == "/");
  CHECK(line["upstream"] == "web");
  CHECK(line["backend"] == "127.0.0.1:9001");
}

TEST_CASE("a TLS client's line has its version and SNI", "[accesslog][line]") {
  core::TransportFacts facts;
  facts.version = "TLSv1.3";
  facts.server_name = "app.test";
  facts.alpn = "http/1.1";
  core::ExchangeRecord r = relayed();
  r.tls = &facts;
  const auto head = request("GET /api/");
  json line = line_of(r, head.get());
  CHECK(line["tls_version"] == "TLSv1.3");
  CHECK(line["sni"] == "app.test");

  facts.server_name = "";  // a client that sent no name
  line = line_of(r, head.get());
  CHECK(line["tls_version"] == "TLSv1.3");
  CHECK(line["sni"].is_null());
}

TEST_CASE("the admin listener is named admin", "[accesslog][line]") {
  core::ExchangeRecord r;
  r.listener = core::kAdminListener;
  r.status = 200;
  r.outcome = core::Outcome::kLocalReply;
  const auto head = request("GET /metrics");
  CHECK(line_of(r, head.get())["listener"] == "admin");
}

TEST_CASE("every outcome has its name in the line", "[accesslog][line]") {
  const auto head = request("GET /");
  const std::pair<core::Outcome, const char*> outcomes[] = {
      {core::Outcome::kOk, "ok"},
      {core::Outcome::kLocalReply, "local_reply"},
      {core::Outcome::kBadRequest, "bad_request"},
      {core::Outcome::kClientAbort, "client_abort"},
      {core::Outcome::kUpstreamReset, "upstream_reset"},
      {core::Outcome::kUpstreamTimeout, "upstream_timeout"},
      {core::Outcome::kBadResponse, "bad_response"},
      {core::Outcome::kTunnelClosed, "tunnel_closed"}};
  for (const auto& [outcome, name] : outcomes) {
    core::ExchangeRecord r = relayed();
    r.outcome = outcome;
    CHECK(line_of(r, head.get())["outcome"] == name);
  }
}

TEST_CASE("formatting into a buffer with room allocates nothing", "[accesslog][line]") {
  const auto snap = snapshot();
  const auto head = request("GET /api/items?q=1");
  std::string out;
  out.reserve(64 * 1024);
  const char* before = out.data();
  TimeFormat time;
  for (int i = 0; i < 100; ++i)
    append_access_line(&out, time, LineNames{snap.get(), &kListeners}, 0, relayed(), head.get());
  CHECK(out.data() == before);
  CHECK(out.size() > 100 * 300);
}

}  // namespace sluice::test
