// Feeds arbitrary bytes to the request parser, split at a fuzzer-chosen point, and checks the
// invariants the proxy relies on: no step consumes more than it was given, a completed head
// has a decided framing, and an error always carries a 4xx status.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/http/http_parser.h"

using sluice::core::Framing;
using sluice::core::HeadPool;
using sluice::core::HttpParser;
using sluice::core::ParseEvent;
using sluice::core::ParseLimits;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}

// Runs the parser over [data, data+size) like a connection would; returns false on error.
bool feed(HttpParser& parser, const char* data, size_t size) {
  for (int guard = 0; guard < 100000; ++guard) {
    const auto step = parser.execute(data, size);
    check(step.consumed <= size);
    switch (step.event) {
      case ParseEvent::kError:
        check(parser.error_status() >= 400 && parser.error_status() < 500);
        return false;
      case ParseEvent::kNeedMore:
        return true;
      case ParseEvent::kHead: {
        const auto* head = parser.head();
        check(head != nullptr);
        if (head->framing == Framing::kLength) check(head->content_length > 0);
        check(head->framing != Framing::kUntilClose);  // requests never run to close
        break;
      }
      case ParseEvent::kEnd:
      case ParseEvent::kUpgrade:
        break;
    }
    data += step.consumed;
    size -= step.consumed;
    // As when the backend answers an Upgrade request without a 101: HTTP goes on.
    if (step.event == ParseEvent::kUpgrade ||
        (step.event == ParseEvent::kEnd && parser.head() && parser.head()->upgrade))
      parser.decline_upgrade();
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 1) return 0;
  HeadPool heads;
  HttpParser parser(HttpParser::Kind::kRequest, heads, ParseLimits{256, 1024, 16});
  const size_t split = bytes[0] % size;
  const char* data = reinterpret_cast<const char*>(bytes + 1);
  const size_t length = size - 1;
  const size_t first = split < length ? split : length;
  if (feed(parser, data, first)) feed(parser, data + first, length - first);
  return 0;
}
