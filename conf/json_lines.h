// Maps JSON pointers to source lines and columns. nlohmann/json keeps no positions for values, so
// config errors would have no place without this: one pass over the raw text, run after it parsed.
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

// A 1-based line and column. Columns count characters (UTF-8 code points, a tab as one), as an
// editor's cursor does; a byte order mark takes no column.
struct TextPosition {
  int line = 1;
  int column = 1;
};
// The position of a byte offset into `text`.
TextPosition position_of(std::string_view text, size_t offset);

// Offset of the first "[" or "{" that opens a level deeper than `max_depth`, or npos. Runs
// before nlohmann sees the text: its ordered_json copies values recursively when an object
// grows, so a deeply nested value in a comment could otherwise overflow the stack.
size_t find_excess_nesting(std::string_view text, int max_depth);

struct DuplicateKey {
  std::string pointer;  // of the later occurrence, the one nlohmann keeps
  int line = 0;         // of the later occurrence's key
  int column = 0;
  int first_line = 0;
};

class LineIndex {
 public:
  // Where one value starts, and its key when it is an object member (else the same).
  struct Place {
    TextPosition value;
    TextPosition key;
  };

  // `text` must be valid JSON (parse it first); on anything else the index is partial.
  explicit LineIndex(std::string_view text);

  // Where the value at `pointer` starts; for a pointer that is absent (a missing key), where its
  // nearest present ancestor starts. {0, 0} only for an empty text.
  TextPosition value_position(std::string_view pointer) const;
  // Where the key of the object member at `pointer` starts (its opening quote): the place to
  // point at when the key itself is wrong. For an array element or the root, which have no
  // key, and for an absent pointer, the same as value_position().
  TextPosition key_position(std::string_view pointer) const;
  int line_of(std::string_view pointer) const { return value_position(pointer).line; }

  // Keys that appear twice in one object. Comment keys ("_..." or "#...") are exempt, since
  // repeating "_comment" is the usual way to annotate several spots.
  const std::vector<DuplicateKey>& duplicates() const { return duplicates_; }

 private:
  const Place* find(std::string_view pointer) const;  // the nearest present one; null if none

  std::unordered_map<std::string, Place> places_;
  std::vector<DuplicateKey> duplicates_;
};

}  // namespace sluice::conf
