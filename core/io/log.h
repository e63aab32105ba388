// Logging to stderr, one line per event, safe from any thread.
#pragma once

#include <string_view>

namespace sluice::core {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

void set_log_level(LogLevel level);
// "debug", "info", "warn" or "error" (the config's log.level); false for any other name.
bool parse_log_level(std::string_view name, LogLevel* level);
void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace sluice::core
