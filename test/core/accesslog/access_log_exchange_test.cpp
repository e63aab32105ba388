// The access log as a worker wires it: an observer in the generation's chains gets each finished
// exchange, and its line says what the exchange was.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/accesslog/access_log.h"
#include "test/core/proxy/proxy_harness.h"

namespace sluice::test {
namespace {

struct LoggedProxy {
  explicit LoggedProxy(const HarnessSetup& setup = {}) {
    char name[] = "/tmp/sluice-accesslog-XXXXXX";
    dir = mkdtemp(name);
    path = dir + "/access.log";
    std::string error;
    REQUIRE(writer.configure(path, &error));
    proxy.emplace(setup);
    log.emplace(proxy->context().loop, writer, std::vector<std::string>{"127.0.0.1:8080"});
    core::Generation& g = *proxy->context().current;
    observer = log->observer(*g.snapshot);
    g.chains.observers.push_back(observer.get());
  }
  ~LoggedProxy() {
    log->close();
    proxy.reset();
    std::remove(path.c_str());
    rmdir(dir.c_str());
  }

  // Every line written so far, parsed; closes this worker's log first.
  std::vector<nlohmann::json> lines() {
    log->close();
    proxy->pump();
    REQUIRE(writer.stop(5000));
    std::ifstream in(path);
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  std::string dir, path;
  accesslog::Writer writer;
  // Declared before the harness: the harness's loop closes the log's timer as it ends.
  std::optional<accesslog::WorkerLog> log;
  std::unique_ptr<core::ExchangeObserver> observer;
  std::optional<ProxyHarness> proxy;
};

}  // namespace

TEST_CASE("a relayed exchange's line names its client, route, upstream and backend",
          "[accesslog][exchange]") {
  HarnessSetup setup;
  setup.request_id = conf::RequestIdMode::kKeep;
  LoggedProxy logged(setup);
  MemoryPeer& client = logged.proxy->open_client();
  client.send(
      "POST /up?a=\"b\"&c=d\\e HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: id-1\r\n"
      "Content-Length: 5\r\n\r\nhello");
  logged.proxy->pump();
  MemoryPeer& backend = logged.proxy->backend(0);
  const std::string response = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
  backend.send(response);
  logged.proxy->pump();
  REQUIRE(logged.proxy->finished().size() == 1);

  const auto lines = logged.lines();
  REQUIRE(lines.size() == 1);
  const nlohmann::json& line = lines[0];
  CHECK(line["client_ip"] == kClientIp);
  CHECK(line["client_port"] == 40000);
  CHECK(line["listener"] == "127.0.0.1:8080");
  CHECK(line["method"] == "POST");
  CHECK(line["target"] == "/up?a=\"b\"&c=d\\e");
  CHECK(line["protocol"] == "HTTP/1.1");
  CHECK(line["status"] == 201);
  CHECK(line["bytes_in"] == 5);
  CHECK(line["bytes_out"] == client.received().size());
  CHECK(line["route"] == 0);
  CHECK(line["route_match"] == "app.test/");
  CHECK(line["upstream"] == "app");
  CHECK(line["backend"] == backend.address());
  CHECK(line["attempts"] == 1);
  CHECK(line["outcome"] == "ok");
  CHECK(line["request_id"] == "id-1");
  CHECK(line["upstream_first_byte_ms"].is_number());
  CHECK(line["tls_version"].is_null());
}

TEST_CASE("a request with no route is logged as a local reply with a null route",
          "[accesslog][exchange]") {
  LoggedProxy logged;
  MemoryPeer& client = logged.proxy->open_client();
  client.send("GET /x HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n");
  logged.proxy->pump();
  const auto lines = logged.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["status"] == 404);
  CHECK(lines[0]["route"].is_null());
  CHECK(lines[0]["upstream"].is_null());
  CHECK(lines[0]["backend"].is_null());
  CHECK(lines[0]["attempts"] == 0);
  CHECK(lines[0]["outcome"] == "local_reply");
  CHECK(lines[0]["upstream_first_byte_ms"].is_null());
  CHECK(lines[0]["bytes_out"] == client.received().size());
}

TEST_CASE("a malformed request's line has a null method and target", "[accesslog][exchange]") {
  LoggedProxy logged;
  MemoryPeer& client = logged.proxy->open_client();
  client.send("GET / HTTP/1.1\r\nHost app.test\r\n\r\n");
  logged.proxy->pump();
  REQUIRE(logged.proxy->finished().size() == 1);
  const auto lines = logged.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["status"] == 400);
  CHECK(lines[0]["method"].is_null());
  CHECK(lines[0]["target"].is_null());
  CHECK(lines[0]["outcome"] == "bad_request");
}

}  // namespace sluice::test
