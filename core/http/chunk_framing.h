// A strict checker of chunked transfer coding (RFC 9112 7.1), run over every body byte of a
// chunked message before the bytes go anywhere. llhttp as Debian builds it (not strict mode)
// skips the two bytes after chunk data without looking at them and puts no bound on a chunk
// line, so a proxy relying on it alone forwards bodies that a stricter backend frames
// differently: request smuggling. The checker keeps a few counters and no buffer, so it works
// across any split of the input and allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::core {

class ChunkFraming {
 public:
  // A chunk-size line (size, extensions, no CRLF) may hold this many bytes. Sizes need at most
  // 16 digits and extensions are rare and short; Go's net/http allows the same 4 KiB.
  static constexpr uint32_t kMaxLineBytes = 4096;

  enum class Status : uint8_t {
    kMore,   // every byte given is valid framing; the body goes on
    kEnd,    // the body ended (final CRLF after the trailers) inside the bytes given
    kError,  // error() says what is wrong
  };

  // Starts a new chunked body. `max_trailer_bytes` bounds the trailer section (CRLFs included).
  void begin(uint32_t max_trailer_bytes);
  // Checks `data`; `*used` is the number of bytes that belong to this body: all of them for
  // kMore, up to the body's last byte for kEnd, up to the offending byte for kError.
  Status scan(const char* data, size_t length, size_t* used);
  const char* error() const { return error_; }
  bool done() const { return state_ == State::kDone; }
  uint64_t data_bytes() const { return data_bytes_; }  // chunk data so far, framing excluded

 private:
  enum class State : uint8_t {
    kSize,          // hex digits of the chunk size
    kSizeSpace,     // whitespace after the size, before a ';'
    kExtension,     // after a ';': names, '=', values, more ';'
    kQuoted,        // inside a quoted extension value
    kQuotedPair,    // after a backslash in a quoted value
    kSizeLf,        // CR of the size line seen
    kData,          // chunk data; `remaining_` bytes to go
    kDataCr,        // data done, its CR expected
    kDataLf,        // its LF expected
    kTrailerStart,  // start of a trailer line, or of the final CRLF
    kTrailerName,   // field name
    kTrailerValue,  // after the colon
    kTrailerLf,     // CR of a trailer line seen
    kFinalLf,       // CR of the final line seen
    kDone,
    kFailed,
  };

  bool bad(const char* reason);
  bool size_line_byte(unsigned char c);
  bool size_line_end(unsigned char c);
  bool trailer_byte(unsigned char c);

  uint64_t remaining_ = 0;  // chunk size being read, then data bytes left
  uint64_t data_bytes_ = 0;
  uint32_t line_bytes_ = 0;
  uint32_t trailer_bytes_ = 0;
  uint32_t max_trailer_bytes_ = 0;
  bool have_digit_ = false;
  State state_ = State::kSize;
  const char* error_ = "";
};

}  // namespace sluice::core
