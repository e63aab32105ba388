// Request filters as a snapshot holds them: the deny rules of a route's "filters", compiled once
// per config (globs into token lists, regexes by PCRE2 with its JIT) and read by core/proxy's
// filter gate on every request of that route. See docs/access.md, "Request filters".
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// PCRE2's types (pcre2.h with an 8-bit code unit), named here so that only request_filter.cpp
// includes the library's header.
struct pcre2_real_code_8;
struct pcre2_real_match_data_8;
struct pcre2_real_match_context_8;

namespace sluice::conf {

// A path pattern: `*` any run of characters but '/', `**` any run, `?` one character but '/';
// everything else stands for itself. Matched by following every position of the pattern at
// once (a set of states), never by backtracking: the time is at most the path's length times
// the pattern's, whatever the path.
class PathGlob {
 public:
  static constexpr size_t kMaxLength = 256;
  // nullopt, with `problem` set, when `text` is not a glob this accepts.
  static std::optional<PathGlob> parse(std::string_view text, std::string* problem);
  bool matches(std::string_view path) const;
  const std::string& text() const { return text_; }

 private:
  using States = std::bitset<kMaxLength + 1>;
  void close(States& states) const;  // a star may match nothing: its next position is live too
  std::string text_;
  std::string tokens_;  // a literal byte, or kOne, kStar, kAnyRun
  // What every matching path starts and ends with, and its shortest length: most paths are
  // turned away by these before a state is followed.
  std::string head_, tail_;
  size_t min_length_ = 0;
};

// A compiled regular expression: PCRE2, with JIT where the platform has it.
struct RegexFree {
  void operator()(pcre2_real_code_8* code) const;
};
using HeaderRegex = std::unique_ptr<pcre2_real_code_8, RegexFree>;
// nullptr, with `problem` set ("missing closing parenthesis at offset 7"), when it does not
// compile.
HeaderRegex compile_regex(std::string_view source, std::string* problem);

enum class HeaderTest : uint8_t { kNone, kPresent, kExact, kPrefix, kRegex };

// One deny rule: it matches when every condition it has matches.
struct FilterRule {
  std::vector<std::string> methods;   // empty: any method
  std::string path_prefix;            // empty: any path
  std::optional<PathGlob> path_glob;  // absent: any path
  std::string header;                 // the field's name; empty when test is kNone
  HeaderTest test = HeaderTest::kNone;
  std::string value;  // what exact or prefix compare with, or the regex's source
  HeaderRegex regex;  // set for kRegex
};

// The request as the rules see it. conf/ parses no HTTP, so the gate hands over the method's
// name, the path (no query) and the header fields through this.
class FilterRequest {
 public:
  virtual ~FilterRequest() = default;
  virtual std::string_view method() const = 0;
  virtual std::string_view path() const = 0;
  virtual size_t field_count() const = 0;
  virtual std::string_view name(size_t i) const = 0;
  virtual std::string_view value(size_t i) const = 0;
};

// Room for one regex match: made once per gate (one gate per worker and generation), so that
// matching allocates nothing per request.
class FilterScratch {
 public:
  FilterScratch();
  ~FilterScratch();
  FilterScratch(const FilterScratch&) = delete;
  FilterScratch& operator=(const FilterScratch&) = delete;
  pcre2_real_match_data_8* data() const { return data_; }

 private:
  pcre2_real_match_data_8* data_;
};

// A route's "filters": the request is denied when any rule matches.
class RequestFilter {
 public:
  // A regex match gives up after this many steps (PCRE2's match limit), and the request is
  // denied: a value that makes a pattern work that hard is not one to pass on.
  static constexpr uint32_t kMatchLimit = 100'000;

  explicit RequestFilter(std::vector<FilterRule> deny);
  ~RequestFilter();
  RequestFilter(const RequestFilter&) = delete;
  RequestFilter& operator=(const RequestFilter&) = delete;

  // The index of the first rule that denies `request`, or -1 when none does.
  int denies(const FilterRequest& request, FilterScratch& scratch) const;
  const std::vector<FilterRule>& deny() const { return deny_; }

 private:
  bool matches(const FilterRule& rule, const FilterRequest& request, FilterScratch& scratch) const;
  bool header_matches(const FilterRule& rule, std::string_view value, FilterScratch& scratch) const;
  std::vector<FilterRule> deny_;
  pcre2_real_match_context_8* context_;  // the match limit
};

// The request methods a rule may name (those the request parser knows), in upper case.
const std::vector<std::string_view>& filter_methods();

}  // namespace sluice::conf
