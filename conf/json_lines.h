// Maps JSON pointers to source lines. nlohmann/json keeps no positions for values, so config
// errors would have no line without this: one pass over the raw text, run after it parsed.
// Also finds duplicate keys, which nlohmann resolves silently (the last one wins).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::conf {

// Escapes one reference token for a JSON pointer (RFC 6901: "~" -> "~0", "/" -> "~1").
std::string pointer_token(std::string_view key);

// Keys starting with "_" or "#" are comments, anywhere in the config.
bool is_comment_key(std::string_view key);

// A 1-based line and column for a byte offset into `text`.
struct TextPosition {
  int line = 1;
  int column = 1;
};
TextPosition position_of(std::string_view text, size_t offset);

// Offset of the first "[" or "{" that opens a level deeper than `max_depth`, or npos. Runs
// before nlohmann sees the text: its ordered_json copies values recursively when an object
// grows, so a deeply nested value in a comment could otherwise overflow the stack.
size_t find_excess_nesting(std::string_view text, int max_depth);

struct DuplicateKey {
  std::string pointer;  // of the later occurrence, the one nlohmann keeps
  int line = 0;
  int first_line = 0;
};

class LineIndex {
 public:
  // `text` must be valid JSON (parse it first); on anything else the index is partial.
  explicit LineIndex(std::string_view text);

  // Line where the value at `pointer` starts; for a pointer that is absent (a missing key),
  // the line of its nearest present ancestor. 0 only for an empty text.
  int line_of(std::string_view pointer) const;

  // Keys that appear twice in one object. Comment keys ("_..." or "#...") are exempt, since
  // repeating "_comment" is the usual way to annotate several spots.
  const std::vector<DuplicateKey>& duplicates() const { return duplicates_; }

 private:
  std::unordered_map<std::string, int> lines_;
  std::vector<DuplicateKey> duplicates_;
};

}  // namespace sluice::conf
