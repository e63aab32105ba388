// The access log's writer and a worker's side of it: batches reach the sink whole and in order,
// a stuck sink costs dropped lines instead of a blocked worker, SIGUSR1's reopen follows a
// renamed file, targets switch, and a worker hands over its lines when a batch fills, when its
// timer fires and when it closes.
#include "core/accesslog/access_log.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/http/http_parser.h"
#include "core/proxy/phases.h"

namespace sluice::test {
namespace {

namespace fs = std::filesystem;
using accesslog::WorkerLog;
using accesslog::Writer;

// A folder of its own for each test, removed afterwards.
struct TempDir {
  TempDir() {
    char name[] = "/tmp/sluice-accesslog-XXXXXX";
    path = mkdtemp(name);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const char* name) const { return (fs::path(path) / name).string(); }
  std::string path;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool wait_until(const std::function<bool()>& done, int limit_ms = 3000) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::string lines(int from, int count) {
  std::string out;
  for (int i = from; i < from + count; ++i) out += "line " + std::to_string(i) + "\n";
  return out;
}

void submit(Writer& writer, const std::string& text, uint32_t count) {
  std::string batch = text;
  writer.submit(&batch, count);
  CHECK(batch.empty());
}

std::shared_ptr<const conf::Snapshot> snapshot(const std::string& access) {
  conf::Config config;
  conf::UpstreamConfig up;
  up.name = "app";
  conf::BackendConfig backend;
  backend.address = *conf::parse_socket_address("127.0.0.1:9001");
  up.backends.push_back(backend);
  config.upstreams.push_back(up);
  conf::RouteConfig route;
  route.upstream = "app";
  config.routes.push_back(route);
  config.log.access = access;
  return conf::build_snapshot(config, nullptr);
}

}  // namespace

TEST_CASE("the writer writes batches to a file in order, all of them by stop()",
          "[accesslog][writer]") {
  TempDir dir;
  const std::string path = dir.file("access.log");
  Writer writer;
  std::string error;
  REQUIRE(writer.configure(path, &error));
  for (int i = 0; i < 100; ++i) submit(writer, lines(i * 10, 10), 10);
  REQUIRE(writer.stop(5000));
  CHECK(read_file(path) == lines(0, 1000));
  CHECK(writer.dropped() == 0);
  CHECK(writer.queued_bytes() == 0);
}

TEST_CASE("a file the writer cannot open is refused and the target stays", "[accesslog][writer]") {
  TempDir dir;
  const std::string path = dir.file("access.log");
  Writer writer;
  std::string error;
  REQUIRE(writer.configure(path, &error));
  CHECK_FALSE(writer.configure(dir.file("no/such/folder/access.log"), &error));
  CHECK(error.find("no/such/folder/access.log") != std::string::npos);
  submit(writer, lines(0, 3), 3);
  REQUIRE(writer.stop(5000));
  CHECK(read_file(path) == lines(0, 3));
}

TEST_CASE("reopen follows a renamed file: new lines go to a new file", "[accesslog][writer]") {
  TempDir dir;
  const std::string path = dir.file("access.log");
  const std::string rotated = dir.file("access.log.1");
  Writer writer;
  std::string error;
  REQUIRE(writer.configure(path, &error));
  submit(writer, lines(0, 5), 5);
  REQUIRE(wait_until([&] { return read_file(path) == lines(0, 5); }));
  REQUIRE(std::rename(path.c_str(), rotated.c_str()) == 0);
  submit(writer, lines(5, 1), 1);  // still the open file: now the rotated one
  REQUIRE(wait_until([&] { return read_file(rotated) == lines(0, 6); }));
  writer.reopen();
  REQUIRE(wait_until([&] { return fs::exists(path); }));
  submit(writer, lines(6, 2), 2);
  REQUIRE(writer.stop(5000));
  CHECK(read_file(rotated) == lines(0, 6));
  CHECK(read_file(path) == lines(6, 2));
}

TEST_CASE("the target switches between files and off", "[accesslog][writer]") {
  TempDir dir;
  const std::string a = dir.file("a.log"), b = dir.file("b.log");
  Writer writer;
  std::string error;
  REQUIRE(writer.configure(a, &error));
  submit(writer, lines(0, 2), 2);
  REQUIRE(wait_until([&] { return read_file(a) == lines(0, 2); }));
  REQUIRE(writer.configure(b, &error));
  submit(writer, lines(2, 2), 2);
  REQUIRE(wait_until([&] { return read_file(b) == lines(2, 2); }));
  REQUIRE(writer.configure("off", &error));
  submit(writer, lines(4, 2), 2);  // discarded, and not counted as dropped
  REQUIRE(writer.configure(a, &error));
  submit(writer, lines(6, 2), 2);
  REQUIRE(writer.stop(5000));
  CHECK(read_file(a) == lines(0, 2) + lines(6, 2));
  CHECK(read_file(b) == lines(2, 2));
  CHECK(writer.dropped() == 0);
}

TEST_CASE("off from the start starts no thread and takes batches without a sink",
          "[accesslog][writer]") {
  Writer writer;
  std::string error;
  REQUIRE(writer.configure("off", &error));
  submit(writer, lines(0, 2), 2);
  CHECK(writer.queued_bytes() == 0);
  CHECK(writer.stop(0));
}

TEST_CASE("a sink nobody reads never blocks submit: beyond the bound batches are dropped",
          "[accesslog][writer]") {
  signal(SIGPIPE, SIG_IGN);
  TempDir dir;
  const std::string fifo = dir.file("fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  const int reader_fd = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // there, but never reading
  REQUIRE(reader_fd >= 0);
  fcntl(reader_fd, F_SETPIPE_SZ, 4096);
  constexpr size_t kBound = 64 * 1024;
  Writer writer(kBound);
  std::string error;
  REQUIRE(writer.configure(fifo, &error));
  const std::string batch(4096 - 1, 'x');
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) submit(writer, batch + "\n", 1);  // 800 KiB into a small pipe
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took < std::chrono::milliseconds(500));
  CHECK(writer.queued_bytes() <= kBound);
  // What got through: the bound, plus what the pipe holds.
  CHECK(writer.dropped() >= 200 - kBound / 4096 - 20);
  CHECK(writer.dropped() < 200);
  CHECK(accesslog::access_lines_dropped() == 0);  // the process's count is another writer's
  // stop() gives up on a sink that takes nothing, after the time it is given...
  CHECK_FALSE(writer.stop(100));
  // ...and the thread it left finishes once the sink takes the lines after all.
  std::thread reader([fd = reader_fd] {
    char sink[65536];
    for (int idle = 0; idle < 200;) {
      if (read(fd, sink, sizeof sink) > 0) {
        idle = 0;
      } else {
        ++idle;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  });
  REQUIRE(wait_until([&] { return writer.queued_bytes() == 0; }));
  reader.join();
  close(reader_fd);
}

TEST_CASE("a worker hands a batch over when it fills, and the rest when its timer fires",
          "[accesslog][worker]") {
  TempDir dir;
  const std::string path = dir.file("access.log");
  Writer writer;
  std::string error;
  REQUIRE(writer.configure(path, &error));
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    WorkerLog log(&loop, writer, {"127.0.0.1:8080"});
    const auto snap = snapshot(path);
    auto observer = log.observer(*snap);
    REQUIRE(observer);
    CHECK_FALSE(log.observer(*snapshot("off")));

    core::ExchangeRecord record;
    record.start_ms = record.end_ms = uv_now(&loop);
    record.status = 200;
    record.outcome = core::Outcome::kOk;
    record.route = 0;
    record.upstream = 0;
    record.backend = 0;
    record.attempts = 1;
    record.client_ip = "127.0.0.1";
    record.client_port = 1234;
    core::MessageHead head;
    const std::string target = "/" + std::string(1000, 'a');
    head.append_target(target.data(), target.size());
    head.finalize();

    // Lines of about 1.3 KiB: a 64 KiB batch is handed over on the line that fills it.
    int appended = 0;
    while (log.buffered_bytes() + 2000 < WorkerLog::kBatchBytes) {
      observer->on_finish(record, &head);
      ++appended;
    }
    const size_t before = log.buffered_bytes();
    while (log.buffered_bytes() >= before) {
      observer->on_finish(record, &head);
      ++appended;
    }
    REQUIRE(wait_until([&] { return !read_file(path).empty(); }));
    const size_t full = read_file(path).size();
    CHECK(full >= WorkerLog::kBatchBytes);

    // One more line waits in the buffer until the timer hands it over.
    observer->on_finish(record, &head);
    ++appended;
    CHECK(log.buffered_bytes() > 0);
    // The log's timer keeps no loop running (a worker's listeners do): this one stands in.
    uv_timer_t keep;
    uv_timer_init(&loop, &keep);
    uv_timer_start(
        &keep, [](uv_timer_t*) {}, 1000, 0);
    const auto start = std::chrono::steady_clock::now();
    while (log.buffered_bytes() > 0 &&
           std::chrono::steady_clock::now() - start < std::chrono::seconds(2))
      uv_run(&loop, UV_RUN_ONCE);
    CHECK(log.buffered_bytes() == 0);
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(waited >= std::chrono::milliseconds(WorkerLog::kFlushMs - 20));
    CHECK(waited < std::chrono::milliseconds(WorkerLog::kFlushMs + 500));
    uv_close(reinterpret_cast<uv_handle_t*>(&keep), nullptr);
    REQUIRE(wait_until([&] { return read_file(path).size() > full; }));

    // At close, whatever is buffered goes too.
    observer->on_finish(record, &head);
    ++appended;
    log.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(writer.stop(5000));
    const std::string text = read_file(path);
    std::istringstream in(text);
    std::string line;
    int count = 0;
    while (std::getline(in, line)) {
      const auto parsed = nlohmann::json::parse(line);
      CHECK(parsed["target"] == target);
      CHECK(parsed["listener"] == "127.0.0.1:8080");
      ++count;
    }
    CHECK(count == appended);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("a worker's line carries the wall-clock time of the exchange's start",
          "[accesslog][worker]") {
  TempDir dir;
  const std::string path = dir.file("access.log");
  Writer writer;
  std::string error;
  REQUIRE(writer.configure(path, &error));
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    WorkerLog log(&loop, writer, {});
    const auto snap = snapshot(path);
    auto observer = log.observer(*snap);
    core::ExchangeRecord record;
    uv_update_time(&loop);
    record.start_ms = uv_now(&loop) - 2000;  // started two seconds ago
    record.end_ms = uv_now(&loop);
    const auto now = std::chrono::system_clock::now();
    observer->on_finish(record, nullptr);
    log.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(writer.stop(5000));
    const auto line = nlohmann::json::parse(read_file(path));
    CHECK(line["duration_ms"] == 2000);
    // Format the expected time the way the line does, to the second, and allow the clock's
    // granularity on either side.
    const auto expect = std::chrono::duration_cast<std::chrono::milliseconds>(
                            now.time_since_epoch() - std::chrono::seconds(2))
                            .count();
    bool close_enough = false;
    for (int64_t delta = -50; delta <= 50 && !close_enough; ++delta) {
      accesslog::TimeFormat format;
      std::string text;
      format.append(&text, expect + delta);
      close_enough = line["time"] == text;
    }
    CHECK(close_enough);
    CHECK(line["listener"].is_null());
  }
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace sluice::test
