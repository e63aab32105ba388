// The access log: one JSON line per finished exchange (access_line.h), to stdout, a file or
// nowhere (the config's log.access).
//
// Workers never wait for the sink. Each worker formats lines into its own buffer (WorkerLog)
// and hands the buffer over whole, when it holds 64 KiB or 150 ms after its first line, to the
// process's one Writer, whose thread makes the blocking write(2) calls. The hand-off takes a
// lock once per batch, never per request, and gives the worker back an empty buffer, so a warm
// worker allocates nothing per line. A sink that is slow or stuck (a pipe nobody reads) makes
// batches wait up to a bound (4 MiB); beyond it whole batches are dropped and their lines
// counted (access_lines_dropped()), with a line on stderr when dropping starts.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conf/snapshot.h"
#include "core/accesslog/access_line.h"
#include "core/proxy/phases.h"

namespace sluice::accesslog {

// Lines the process's access log has lost: dropped while its sink was behind, or not written
// because a write failed. Any thread.
uint64_t access_lines_dropped();

class Writer {
 public:
  static constexpr size_t kMaxQueuedBytes = size_t{4} << 20;

  explicit Writer(size_t max_queued_bytes = kMaxQueuedBytes);
  ~Writer();  // stop(), waiting as long as it takes
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // The process's writer; never destroyed, so its thread may outlive main() (see stop()).
  static Writer& process();

  // Main thread. Where lines go from now on: "stdout" (descriptor 1), "off" (nowhere) or a file
  // path, opened here for appending (created with mode 0644). An unchanged target keeps its
  // file. False, with `error` set, when the file cannot be opened: the target stays as it was.
  bool configure(const std::string& target, std::string* error);
  // Main thread (SIGUSR1): a file target is opened again by its path before the next write, so
  // lines go to a new file once logrotate has moved the old one away.
  void reopen();
  // Any thread: hands over `batch`, which holds `lines` whole lines, and leaves it empty with
  // room for the next. Never waits for the sink: when the queued bytes would pass the bound, the
  // batch is dropped and counted instead.
  void submit(std::string* batch, uint32_t lines);
  // Main thread, at exit: writes every queued batch, waiting up to `timeout_ms` for the sink.
  // False when the sink did not take them in time; the thread is then left blocked in its write
  // for the process's exit to end (only the process() writer may be left that way).
  bool stop(uint32_t timeout_ms);

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  size_t queued_bytes() const;

 private:
  struct Batch {
    std::string text;
    uint32_t lines = 0;
  };
  enum class Kind : uint8_t { kOff, kStdout, kFile };
  struct Sink {
    Kind kind = Kind::kOff;
    int fd = -1;
    std::string path;
  };

  void run();
  void switch_sink(Sink next);
  void reopen_file();
  void write_batch(const Batch& batch);
  void count_lost(uint32_t lines);

  const size_t max_queued_bytes_;
  std::thread thread_;
  bool detached_ = false;       // stop() gave up waiting for it
  std::string target_ = "off";  // main thread: the target configure() last took

  mutable std::mutex mutex_;  // guards everything down to the atomics
  std::condition_variable wake_, finished_cv_;
  std::vector<Batch> queue_;
  std::vector<std::string> spare_;  // empty buffers with room, handed back to workers
  size_t queued_bytes_ = 0;         // queued and being written
  bool off_ = true;                 // the latest target is "off": batches are discarded
  bool sink_changed_ = false;
  Sink next_sink_;
  bool reopen_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  bool dropping_ = false;  // since the queue last passed its bound
  std::chrono::steady_clock::time_point last_report_{};

  Sink sink_;  // the writer thread's own, as is the field below
  std::chrono::steady_clock::time_point last_write_error_{};

  std::atomic<uint64_t> dropped_{0};
};

// One worker's side of the access log: its buffer, the timer that hands over a partly filled
// one, and the clock offset that turns the loop's time into Unix time. Worker thread only.
class WorkerLog {
 public:
  static constexpr size_t kBatchBytes = 64 * 1024;
  static constexpr uint64_t kFlushMs = 150;

  // `listeners`: the listeners' addresses, by id (a record's `listener`).
  WorkerLog(uv_loop_t* loop, Writer& writer, std::vector<std::string> listeners);
  ~WorkerLog();
  WorkerLog(const WorkerLog&) = delete;
  WorkerLog& operator=(const WorkerLog&) = delete;

  // An observer of the exchanges of `snapshot`'s generation, writing into this log; null when
  // that config turns the access log off. It lives as long as that generation.
  std::unique_ptr<core::ExchangeObserver> observer(const conf::Snapshot& snapshot);

  // Names listener `id` (a reload opened it); ids already named keep their names.
  void name_listener(size_t id, const std::string& address);

  void append(const conf::Snapshot& snapshot, const core::ExchangeRecord& record,
              const core::MessageHead* request);
  // Hands what the buffer holds to the writer now.
  void flush();
  // At the worker's end: flush() and close the timer (the loop must run once more to close it).
  void close();

  size_t buffered_bytes() const { return buffer_.size(); }

 private:
  static void on_timer(uv_timer_t* timer);

  Writer& writer_;
  std::vector<std::string> listeners_;
  uv_timer_t timer_;
  std::string buffer_;
  uint32_t lines_ = 0;
  int64_t clock_offset_ms_ = 0;  // Unix time minus the loop's clock, taken per batch
  TimeFormat time_;
  bool closed_ = false;
};

}  // namespace sluice::accesslog
