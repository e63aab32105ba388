// One access-log line: an exchange's record as one JSON object, appended to a caller's buffer.
// Formatting allocates nothing once the buffer has room: numbers and the time are written with
// std::to_chars and a cached date, strings are escaped in place.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conf/snapshot.h"
#include "core/http/http_head.h"
#include "core/proxy/exchange_record.h"
#include "core/proxy/phases.h"

namespace sluice::accesslog {

// Appends `text` as a JSON string, quotes included. `"` and `\` are escaped, control characters
// (and DEL) become \n, \r, \t or \u00XX; valid UTF-8 passes as it is, and each byte of a
// sequence that is not valid UTF-8 becomes \u00XX, so the line is always valid JSON in UTF-8.
void append_json_string(std::string* out, std::string_view text);

// Appends a Unix time in milliseconds as ISO 8601 UTC: "2024-05-01T12:34:56.789Z". Keeps the
// date and time of the last second it wrote, so lines within one second format only the
// milliseconds.
class TimeFormat {
 public:
  void append(std::string* out, int64_t unix_ms);

 private:
  int64_t second_ = INT64_MIN;
  char text_[20] = {};  // "YYYY-MM-DDTHH:MM:SS"
};

// What turns a record's indexes into names: the snapshot of the generation the exchange ran
// on (routes, upstreams and their backends) and the listeners' addresses, by listener id (an
// id names one listener for the life of the process; reloads add ids, never reuse them).
struct LineNames {
  const conf::Snapshot* snapshot = nullptr;
  const std::vector<std::string>* listeners = nullptr;
};

// Appends one line, newline included. `request` is null for a request refused before its head
// was complete (method, target and protocol are null then). `clock_offset_ms` turns the loop's
// clock (record.start_ms) into Unix time.
void append_access_line(std::string* out, TimeFormat& time, const LineNames& names,
                        int64_t clock_offset_ms, const core::ExchangeRecord& record,
                        const core::MessageHead* request);

}  // namespace sluice::accesslog
