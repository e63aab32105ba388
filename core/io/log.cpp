// One formatted write(2) per line, so lines from different threads never interleave.
#include "core/io/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace sluice::core {
namespace {
std::atomic<LogLevel> g_level{LogLevel::kInfo};
const char* name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    default:
      return "error";
  }
}
}  // namespace

void set_log_level(LogLevel level) {
  g_level = level;
}

bool parse_log_level(std::string_view text, LogLevel* level) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (text == name(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

void log(LogLevel level, const char* format, ...) {
  if (level < g_level.load(std::memory_order_relaxed)) return;
  char line[1024];
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  int n = std::snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                        t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                        ts.tv_nsec / 1000000, name(level));
  va_list args;
  va_start(args, format);
  n += std::vsnprintf(line + n, sizeof line - n - 1, format, args);
  va_end(args);
  if (n > static_cast<int>(sizeof line) - 2) n = sizeof line - 2;
  line[n++] = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line, n);
  (void)ignored;
}

}  // namespace sluice::core
