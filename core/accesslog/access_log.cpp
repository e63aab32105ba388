// The writer thread, the workers' buffers and the observer that fills them.
#include "core/accesslog/access_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "core/io/log.h"

namespace sluice::accesslog {
namespace {

constexpr size_t kMaxSpare = 16;         // empty buffers the writer keeps for workers
constexpr size_t kLineRoom = 16 * 1024;  // beyond a batch, so the line that fills it fits
// A buffer that grew past this (lines of huge targets) goes back to the allocator.
constexpr size_t kMaxSpareCapacity = 4 * WorkerLog::kBatchBytes;
constexpr auto kReportEvery = std::chrono::seconds(10);

bool write_all(int fd, const char* data, size_t length) {
  while (length > 0) {
    const ssize_t n = ::write(fd, data, length);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    length -= static_cast<size_t>(n);
  }
  return true;
}

int open_for_append(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

int64_t unix_ms_now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Reads the exchanges of one generation: the snapshot names their routes, upstreams and
// backends by the indexes in the record.
class Observer final : public core::ExchangeObserver {
 public:
  Observer(WorkerLog& log, const conf::Snapshot& snapshot) : log_(log), snapshot_(snapshot) {}
  void on_finish(const core::ExchangeRecord& record, const core::MessageHead* request) override {
    log_.append(snapshot_, record, request);
  }

 private:
  WorkerLog& log_;
  const conf::Snapshot& snapshot_;
};

}  // namespace

uint64_t access_lines_dropped() {
  return Writer::process().dropped();
}

// ---------------------------------------------------------------------------------- Writer

Writer::Writer(size_t max_queued_bytes) : max_queued_bytes_(max_queued_bytes) {}

Writer::~Writer() {
  if (detached_) {  // a stop() that gave up: the thread still uses this object until it ends
    std::unique_lock<std::mutex> lock(mutex_);
    finished_cv_.wait(lock, [this] { return finished_; });
  } else {
    stop(UINT32_MAX);
  }
  if (sink_.kind == Kind::kFile) ::close(sink_.fd);
}

Writer& Writer::process() {
  static Writer* const writer = new Writer();
  return *writer;
}

bool Writer::configure(const std::string& target, std::string* error) {
  if (target == target_) return true;
  Sink next;
  if (target == "stdout") {
    next = Sink{Kind::kStdout, STDOUT_FILENO, ""};
  } else if (target != "off") {
    const int fd = open_for_append(target);
    if (fd < 0) {
      *error = "cannot open the access log " + target + ": " + std::strerror(errno);
      return false;
    }
    next = Sink{Kind::kFile, fd, target};
  }
  const bool off = next.kind == Kind::kOff;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (sink_changed_ && next_sink_.kind == Kind::kFile) ::close(next_sink_.fd);  // never used
    next_sink_ = std::move(next);
    sink_changed_ = true;
    off_ = off;
  }
  target_ = target;
  if (!off && !thread_.joinable()) {
    thread_ = std::thread([this] { run(); });
    pthread_setname_np(thread_.native_handle(), "sluice-log");
  }
  wake_.notify_one();
  return true;
}

void Writer::reopen() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reopen_ = true;
  }
  wake_.notify_one();
}

void Writer::submit(std::string* batch, uint32_t lines) {
  if (batch->empty()) return;
  bool report = false;
  uint64_t total = 0;
  size_t queued = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (off_) {
      batch->clear();
      return;
    }
    if (queued_bytes_ + batch->size() > max_queued_bytes_) {
      total = dropped_.fetch_add(lines, std::memory_order_relaxed) + lines;
      batch->clear();
      const auto now = std::chrono::steady_clock::now();
      if (!dropping_ || now - last_report_ >= kReportEvery) {
        report = true;
        last_report_ = now;
      }
      dropping_ = true;
      queued = queued_bytes_;
    } else {
      queued_bytes_ += batch->size();
      queue_.push_back(Batch{std::move(*batch), lines});
      if (spare_.empty()) {
        *batch = std::string();
      } else {
        *batch = std::move(spare_.back());
        spare_.pop_back();
      }
    }
  }
  if (report) {
    core::log(core::LogLevel::kWarn,
              "access log: the sink is not keeping up (%zu KiB waiting); dropping lines, "
              "%llu dropped so far",
              queued / 1024, static_cast<unsigned long long>(total));
    return;
  }
  wake_.notify_one();
}

bool Writer::stop(uint32_t timeout_ms) {
  if (!thread_.joinable()) return true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  bool done;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done = finished_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                 [this] { return finished_; });
  }
  if (!done) {
    thread_.detach();
    detached_ = true;
    return false;
  }
  thread_.join();
  if (sink_.kind == Kind::kFile) ::close(sink_.fd);
  sink_ = Sink{};
  return true;
}

size_t Writer::queued_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queued_bytes_;
}

void Writer::run() {
  std::vector<Batch> work;
  for (;;) {
    bool caught_up = false;
    uint64_t total = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (Batch& b : work) {
        queued_bytes_ -= b.text.size();
        if (spare_.size() < kMaxSpare && b.text.capacity() <= kMaxSpareCapacity) {
          b.text.clear();
          spare_.push_back(std::move(b.text));
        }
      }
      work.clear();
      if (dropping_ && queued_bytes_ <= max_queued_bytes_ / 2) {
        dropping_ = false;
        caught_up = true;
        total = dropped();
      }
    }
    if (caught_up)
      core::log(core::LogLevel::kWarn, "access log: the sink caught up; %llu lines dropped so far",
                static_cast<unsigned long long>(total));
    Sink next;
    bool change = false, reopen = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return !queue_.empty() || sink_changed_ || reopen_ || stopping_; });
      if (queue_.empty() && !sink_changed_ && !reopen_) {  // stopping, with nothing left
        finished_ = true;
        finished_cv_.notify_all();
        return;
      }
      work.swap(queue_);
      change = std::exchange(sink_changed_, false);
      if (change) next = std::move(next_sink_);
      reopen = std::exchange(reopen_, false);
    }
    if (change) switch_sink(std::move(next));
    if (reopen) reopen_file();
    for (const Batch& b : work) write_batch(b);
  }
}

void Writer::switch_sink(Sink next) {
  if (sink_.kind == Kind::kFile) ::close(sink_.fd);
  sink_ = std::move(next);
}

void Writer::reopen_file() {
  if (sink_.kind != Kind::kFile) return;
  const int fd = open_for_append(sink_.path);
  if (fd < 0) {
    core::log(core::LogLevel::kError,
              "access log: cannot reopen %s: %s; writing on to the old file", sink_.path.c_str(),
              std::strerror(errno));
    return;
  }
  ::close(sink_.fd);
  sink_.fd = fd;
  core::log(core::LogLevel::kInfo, "access log: reopened %s", sink_.path.c_str());
}

void Writer::write_batch(const Batch& batch) {
  if (sink_.kind == Kind::kOff) return;  // turned off after the batch was queued
  if (!write_all(sink_.fd, batch.text.data(), batch.text.size())) count_lost(batch.lines);
}

// A failed write loses its batch (a partly written last line included); said once per 10 s.
void Writer::count_lost(uint32_t lines) {
  const int error = errno;
  const uint64_t total = dropped_.fetch_add(lines, std::memory_order_relaxed) + lines;
  const auto now = std::chrono::steady_clock::now();
  if (last_write_error_ != std::chrono::steady_clock::time_point{} &&
      now - last_write_error_ < kReportEvery)
    return;
  last_write_error_ = now;
  core::log(core::LogLevel::kError, "access log: cannot write to %s: %s; %llu lines lost so far",
            sink_.kind == Kind::kStdout ? "stdout" : sink_.path.c_str(), std::strerror(error),
            static_cast<unsigned long long>(total));
}

// ---------------------------------------------------------------------------------- WorkerLog

WorkerLog::WorkerLog(uv_loop_t* loop, Writer& writer, std::vector<std::string> listeners)
    : writer_(writer), listeners_(std::move(listeners)) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));  // a pending flush keeps no loop running
}

WorkerLog::~WorkerLog() = default;

std::unique_ptr<core::ExchangeObserver> WorkerLog::observer(const conf::Snapshot& snapshot) {
  if (snapshot.config.log.access == "off") return nullptr;
  return std::make_unique<Observer>(*this, snapshot);
}

void WorkerLog::name_listener(size_t id, const std::string& address) {
  if (listeners_.size() <= id) listeners_.resize(id + 1);
  if (listeners_[id].empty()) listeners_[id] = address;
}

void WorkerLog::append(const conf::Snapshot& snapshot, const core::ExchangeRecord& record,
                       const core::MessageHead* request) {
  if (buffer_.empty()) {  // a new batch: a fresh clock offset, and a deadline to hand it over
    if (buffer_.capacity() < kBatchBytes) buffer_.reserve(kBatchBytes + kLineRoom);
    clock_offset_ms_ = unix_ms_now() - static_cast<int64_t>(uv_hrtime() / 1000000);
    if (!closed_) uv_timer_start(&timer_, &WorkerLog::on_timer, kFlushMs, 0);
  }
  append_access_line(&buffer_, time_, LineNames{&snapshot, &listeners_}, clock_offset_ms_, record,
                     request);
  ++lines_;
  if (buffer_.size() >= kBatchBytes) flush();
}

void WorkerLog::flush() {
  if (buffer_.empty()) return;
  writer_.submit(&buffer_, lines_);
  lines_ = 0;
}

void WorkerLog::close() {
  flush();
  if (closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void WorkerLog::on_timer(uv_timer_t* timer) {
  static_cast<WorkerLog*>(timer->data)->flush();
}

}  // namespace sluice::accesslog
