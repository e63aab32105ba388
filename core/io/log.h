// Logging to stderr, one line per event, safe from any thread.
#pragma once

namespace sluice::core {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

void set_log_level(LogLevel level);
void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace sluice::core
