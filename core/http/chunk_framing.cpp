// The chunked-coding checker: a byte-driven state machine with a bulk path for chunk data.
#include "core/http/chunk_framing.h"

#include <array>
#include <string_view>

namespace sluice::core {
namespace {

enum : uint8_t { kTchar = 1, kHex = 2, kFieldByte = 4 };

// One lookup per byte instead of a chain of comparisons: the size line is scanned bytewise.
constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    bool tchar = alnum;
    for (char s : std::string_view("!#$%&'*+-.^_`|~")) tchar = tchar || c == s;
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    // field-vchar, SP and HT (RFC 9110 5.5): what a field value or quoted text may hold.
    const bool field = (c >= 0x21 && c != 0x7f) || c == ' ' || c == '\t';
    t[c] = static_cast<uint8_t>((tchar ? kTchar : 0) | (hex ? kHex : 0) | (field ? kFieldByte : 0));
  }
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = make_classes();

bool is(unsigned char c, uint8_t cls) {
  return (kClasses[c] & cls) != 0;
}

unsigned hex_value(unsigned char c) {
  return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

}  // namespace

void ChunkFraming::begin(uint32_t max_trailer_bytes) {
  remaining_ = 0;
  data_bytes_ = 0;
  line_bytes_ = 0;
  trailer_bytes_ = 0;
  max_trailer_bytes_ = max_trailer_bytes;
  have_digit_ = false;
  state_ = State::kSize;
  error_ = "";
}

bool ChunkFraming::bad(const char* reason) {
  state_ = State::kFailed;
  error_ = reason;
  return false;
}

// chunk-size [ chunk-ext ] CRLF, where chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
// and a value is a token or a quoted-string. The extension's inner structure does not change
// the framing, so only its alphabet is checked: what matters is that no CR, LF or control byte
// hides in it and that the line ends.
bool ChunkFraming::size_line_byte(unsigned char c) {
  if (c != '\r' && ++line_bytes_ > kMaxLineBytes) return bad("chunk size line too long");
  switch (state_) {
    case State::kSize:
      if (is(c, kHex)) {
        if (remaining_ > (UINT64_MAX >> 4)) return bad("chunk size too large");
        remaining_ = remaining_ * 16 + hex_value(c);
        have_digit_ = true;
        return true;
      }
      if (!have_digit_) return bad("invalid chunk size");
      if (c == ';')
        state_ = State::kExtension;
      else if (c == ' ' || c == '\t')
        state_ = State::kSizeSpace;
      else if (c == '\r')
        state_ = State::kSizeLf;
      else
        return bad("invalid chunk size");
      return true;
    case State::kSizeSpace:
      if (c == ';')
        state_ = State::kExtension;
      else if (c != ' ' && c != '\t')
        return bad("invalid chunk extension");
      return true;
    case State::kExtension:
      if (c == '"')
        state_ = State::kQuoted;
      else if (c == '\r')
        state_ = State::kSizeLf;
      else if (!is(c, kTchar) && c != ';' && c != '=' && c != ' ' && c != '\t')
        return bad("invalid chunk extension");
      return true;
    case State::kQuoted:
      if (c == '"')
        state_ = State::kExtension;
      else if (c == '\\')
        state_ = State::kQuotedPair;
      else if (!is(c, kFieldByte))
        return bad("invalid chunk extension");
      return true;
    default:  // kQuotedPair
      if (!is(c, kFieldByte)) return bad("invalid chunk extension");
      state_ = State::kQuoted;
      return true;
  }
}

// The LF after the size line's CR: the chunk's data follows, or the trailers after the last one.
bool ChunkFraming::size_line_end(unsigned char c) {
  if (c != '\n') return bad("chunk size line not ended by CRLF");
  line_bytes_ = 0;
  have_digit_ = false;
  state_ = remaining_ ? State::kData : State::kTrailerStart;
  return true;
}

// trailer-section = *( field-line CRLF ) CRLF, without obs-fold, bounded as a whole.
bool ChunkFraming::trailer_byte(unsigned char c) {
  if (++trailer_bytes_ > max_trailer_bytes_) return bad("trailer section too large");
  switch (state_) {
    case State::kTrailerStart:
      if (c == '\r')
        state_ = State::kFinalLf;
      else if (is(c, kTchar))
        state_ = State::kTrailerName;
      else
        return bad("invalid trailer field");
      return true;
    case State::kTrailerName:
      if (c == ':')
        state_ = State::kTrailerValue;
      else if (!is(c, kTchar))
        return bad("invalid trailer field");
      return true;
    case State::kTrailerValue:
      if (c == '\r')
        state_ = State::kTrailerLf;
      else if (!is(c, kFieldByte))
        return bad("invalid trailer field");
      return true;
    case State::kTrailerLf:
      if (c != '\n') return bad("trailer line not ended by CRLF");
      state_ = State::kTrailerStart;
      return true;
    default:  // kFinalLf
      if (c != '\n') return bad("chunked body not ended by CRLF");
      state_ = State::kDone;
      return true;
  }
}

ChunkFraming::Status ChunkFraming::scan(const char* data, size_t length, size_t* used) {
  const auto* const begin = reinterpret_cast<const unsigned char*>(data);
  const auto* const end = begin + length;
  const auto* p = begin;
  bool ok = true;
  while (p < end && ok) {
    switch (state_) {
      case State::kData: {
        const size_t n = remaining_ < size_t(end - p) ? size_t(remaining_) : size_t(end - p);
        p += n;
        remaining_ -= n;
        data_bytes_ += n;
        if (remaining_ == 0) state_ = State::kDataCr;
        continue;
      }
      case State::kDataCr:
        if (*p == '\r')
          state_ = State::kDataLf;
        else
          ok = bad("chunk data not followed by CRLF");
        break;
      case State::kDataLf:
        if (*p == '\n')
          state_ = State::kSize;
        else
          ok = bad("chunk data not followed by CRLF");
        break;
      case State::kSizeLf:
        ok = size_line_end(*p);
        break;
      case State::kTrailerStart:
      case State::kTrailerName:
      case State::kTrailerValue:
      case State::kTrailerLf:
      case State::kFinalLf:
        ok = trailer_byte(*p);
        break;
      case State::kDone:
      case State::kFailed:
        ok = false;
        continue;
      default:
        ok = size_line_byte(*p);
        break;
    }
    if (ok) ++p;
  }
  *used = static_cast<size_t>(p - begin);
  if (state_ == State::kDone) return Status::kEnd;
  return state_ == State::kFailed ? Status::kError : Status::kMore;
}

}  // namespace sluice::core
