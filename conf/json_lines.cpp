// One pass over raw JSON text, recording where each value (and its key) starts under its JSON
// pointer. It runs only on text nlohmann already accepted, so it checks little: its job is
// to agree with nlohmann on which key names what, including keys written with escapes.
#include "conf/json_lines.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace sluice::conf {
namespace {

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t hex4(std::string_view text, size_t pos) {
  uint32_t value = 0;
  for (size_t i = pos; i < pos + 4 && i < text.size(); ++i) {
    const char c = text[i];
    const uint32_t digit = c >= '0' && c <= '9'   ? c - '0'
                           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                  : 0;
    value = value * 16 + digit;
  }
  return value;
}

// Walks the text with an explicit stack rather than recursion, so a deeply nested (but valid)
// file cannot overflow the call stack.
class Scanner {
 public:
  Scanner(std::string_view text, std::unordered_map<std::string, LineIndex::Place>& places,
          std::vector<DuplicateKey>& duplicates)
      : text_(text), places_(places), duplicates_(duplicates) {}

  void run();

 private:
  struct Frame {
    bool object = false;
    size_t prefix = 0;  // length of the container's own pointer
    size_t next_index = 0;
    std::unordered_map<std::string, int> keys;  // key -> line, for duplicate detection
  };
  enum class State { kValue, kAfterOpen, kMember, kAfterValue, kDone };

  void skip_space();
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }
  State value();
  State member();
  State after_value();
  std::string read_string();  // at an opening quote; returns the decoded content
  TextPosition here();        // of pos_

  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;  // offset of the current line's first byte
  // here() counts characters from the last position it computed, never from the line's start
  // again, so a config written on one long line is still scanned in linear time.
  size_t counted_to_ = 0;
  int column_ = 1;
  TextPosition key_;      // of the member whose value comes next
  bool has_key_ = false;  // false: the next value is an array element or the root
  std::string pointer_;
  std::vector<Frame> stack_;
  std::unordered_map<std::string, LineIndex::Place>& places_;
  std::vector<DuplicateKey>& duplicates_;
};

void Scanner::run() {
  State state = State::kValue;
  while (state != State::kDone) {
    switch (state) {
      case State::kValue:
        state = value();
        break;
      case State::kAfterOpen:
        skip_space();
        if (at_end()) return;
        if (peek() == '}' || peek() == ']') {
          ++pos_;
          pointer_.resize(stack_.back().prefix);
          stack_.pop_back();
          state = State::kAfterValue;
        } else {
          state = member();
        }
        break;
      case State::kMember:
        state = member();
        break;
      case State::kAfterValue:
        state = after_value();
        break;
      case State::kDone:
        break;
    }
  }
}

void Scanner::skip_space() {
  while (!at_end()) {
    const char c = peek();
    if (c == '\n') {
      ++line_;
      line_start_ = pos_ + 1;
    } else if (c != ' ' && c != '\t' && c != '\r') {
      return;
    }
    ++pos_;
  }
}

Scanner::State Scanner::value() {
  skip_space();
  if (at_end()) return State::kDone;
  // Last one wins, as in nlohmann, so a duplicated key points at the value actually used.
  const TextPosition start = here();
  places_[pointer_] = LineIndex::Place{start, has_key_ ? key_ : start};
  has_key_ = false;
  const char c = peek();
  if (c == '{' || c == '[') {
    stack_.push_back(Frame{c == '{', pointer_.size(), 0, {}});
    ++pos_;
    return State::kAfterOpen;
  }
  if (c == '"') {
    read_string();
  } else {
    while (!at_end() && std::string_view(",]} \t\r\n").find(peek()) == std::string_view::npos)
      ++pos_;
  }
  return State::kAfterValue;
}

Scanner::State Scanner::member() {
  Frame& frame = stack_.back();
  pointer_.resize(frame.prefix);
  pointer_ += '/';
  if (!frame.object) {
    pointer_ += std::to_string(frame.next_index++);
    return State::kValue;
  }
  skip_space();
  if (at_end() || peek() != '"') return State::kDone;
  key_ = here();
  has_key_ = true;
  const std::string key = read_string();
  skip_space();
  if (at_end() || peek() != ':') return State::kDone;
  ++pos_;
  pointer_ += pointer_token(key);
  if (!is_comment_key(key)) {
    auto [it, inserted] = frame.keys.emplace(key, key_.line);
    if (!inserted) {
      duplicates_.push_back(DuplicateKey{pointer_, key_.line, key_.column, it->second});
      it->second = key_.line;
    }
  }
  return State::kValue;
}

Scanner::State Scanner::after_value() {
  if (stack_.empty()) return State::kDone;
  skip_space();
  if (at_end()) return State::kDone;
  const char c = peek();
  ++pos_;
  if (c == ',') return State::kMember;
  if (c == '}' || c == ']') {
    pointer_.resize(stack_.back().prefix);
    stack_.pop_back();
    return State::kAfterValue;
  }
  return State::kDone;
}

// A byte that does not start a UTF-8 sequence continues one: it adds no column.
bool starts_character(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
}

TextPosition Scanner::here() {
  if (counted_to_ < line_start_) {
    counted_to_ = line_start_;
    column_ = 1;
  }
  for (; counted_to_ < pos_; ++counted_to_)
    if (starts_character(text_[counted_to_])) ++column_;
  return TextPosition{line_, column_};
}

std::string Scanner::read_string() {
  std::string out;
  ++pos_;  // opening quote
  while (!at_end() && peek() != '"') {
    char c = peek();
    ++pos_;
    if (c != '\\' || at_end()) {
      out += c;
      continue;
    }
    c = peek();
    ++pos_;
    switch (c) {
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t cp = hex4(text_, pos_);
        pos_ += 4;
        const bool high_surrogate = cp >= 0xD800 && cp <= 0xDBFF;
        if (high_surrogate && text_.substr(pos_, 2) == "\\u") {
          const uint32_t low = hex4(text_, pos_ + 2);
          pos_ += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, cp);
        break;
      }
      default:
        out += c;  // '"', '\\', '/'
    }
  }
  if (!at_end()) ++pos_;  // closing quote
  return out;
}

}  // namespace

std::string pointer_token(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

TextPosition position_of(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  const std::string_view before = text.substr(0, offset);
  TextPosition position;
  position.line = 1 + static_cast<int>(std::count(before.begin(), before.end(), '\n'));
  const size_t line_start = before.rfind('\n');
  size_t column_start = line_start == std::string_view::npos ? 0 : line_start + 1;
  if (column_start == 0 && before.starts_with(kByteOrderMark)) column_start = kByteOrderMark.size();
  const std::string_view line = before.substr(column_start);
  position.column = 1 + static_cast<int>(std::count_if(line.begin(), line.end(), starts_character));
  return position;
}

size_t find_excess_nesting(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
}

bool is_comment_key(std::string_view key) {
  return !key.empty() && (key[0] == '_' || key[0] == '#');
}

LineIndex::LineIndex(std::string_view text) {
  // nlohmann skips a UTF-8 byte order mark; so must we, or the root looks like a bare word.
  if (text.starts_with(kByteOrderMark)) text.remove_prefix(kByteOrderMark.size());
  Scanner(text, places_, duplicates_).run();
}

const LineIndex::Place* LineIndex::find(std::string_view pointer) const {
  std::string key(pointer);
  while (true) {
    if (auto it = places_.find(key); it != places_.end()) return &it->second;
    if (key.empty()) return nullptr;
    const size_t slash = key.rfind('/');
    key.resize(slash == std::string::npos ? 0 : slash);
  }
}

TextPosition LineIndex::value_position(std::string_view pointer) const {
  const Place* place = find(pointer);
  return place == nullptr ? TextPosition{0, 0} : place->value;
}

TextPosition LineIndex::key_position(std::string_view pointer) const {
  const auto it = places_.find(std::string(pointer));
  return it == places_.end() ? value_position(pointer) : it->second.key;
}

}  // namespace sluice::conf
