// Compiling and matching the request filters. Compiling runs on the main thread at load and
// reload; matching runs on a worker for every request of a filtered route and allocates nothing.
#include "conf/request_filter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <new>

namespace sluice::conf {
namespace {

// Tokens of a compiled glob that are not literal bytes. A glob never holds these bytes itself:
// parse() refuses control characters.
constexpr char kOne = '\x01';     // ?
constexpr char kStar = '\x02';    // *
constexpr char kAnyRun = '\x03';  // **

bool lower_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a == b) return true;  // most clients write a name as the config does: one memcmp
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x - 'A' < 26u) x += 32;
    if (y - 'A' < 26u) y += 32;
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::optional<PathGlob> PathGlob::parse(std::string_view text, std::string* problem) {
  if (!text.starts_with('/')) {
    *problem = "a glob starts with \"/\", as a path does";
    return std::nullopt;
  }
  if (text.size() > kMaxLength) {
    *problem = "longer than " + std::to_string(kMaxLength) + " characters";
    return std::nullopt;
  }
  PathGlob glob;
  glob.text_ = text;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c <= 0x20 || c == 0x7f) {
      *problem = "a space or control character at offset " + std::to_string(i);
      return std::nullopt;
    }
    if (text[i] == '?') {
      glob.tokens_ += kOne;
    } else if (text[i] != '*') {
      glob.tokens_ += text[i];
    } else if (i + 1 < text.size() && text[i + 1] == '*') {
      if (i + 2 < text.size() && text[i + 2] == '*') {
        *problem = "three stars in a row at offset " + std::to_string(i) + "; \"**\" is any run";
        return std::nullopt;
      }
      glob.tokens_ += kAnyRun;
      ++i;
    } else {
      glob.tokens_ += kStar;
    }
  }
  const std::string& tokens = glob.tokens_;
  const auto wild = [](char token) { return token == kOne || token == kStar || token == kAnyRun; };
  const auto first = std::find_if(tokens.begin(), tokens.end(), wild);
  glob.head_.assign(tokens.begin(), first);
  if (first != tokens.end())
    glob.tail_.assign(std::find_if(tokens.rbegin(), tokens.rend(), wild).base(), tokens.end());
  glob.min_length_ = tokens.size() - std::count(tokens.begin(), tokens.end(), kStar) -
                     std::count(tokens.begin(), tokens.end(), kAnyRun);
  return glob;
}

void PathGlob::close(States& states) const {
  // In ascending order, so "**" followed by "*" opens both.
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (states[i] && (tokens_[i] == kStar || tokens_[i] == kAnyRun)) states.set(i + 1);
}

bool PathGlob::matches(std::string_view path) const {
  if (path.size() < min_length_ || !path.starts_with(head_) || !path.ends_with(tail_)) return false;
  if (head_.size() == tokens_.size()) return path.size() == head_.size();  // no wildcard
  const size_t count = tokens_.size();
  States now, next;
  now.set(0);
  close(now);
  for (const char c : path) {
    next.reset();
    for (size_t i = 0; i < count; ++i) {
      if (!now[i]) continue;
      const char token = tokens_[i];
      if (token == kAnyRun || (token == kStar && c != '/')) {
        next.set(i);
      } else if (token == c || (token == kOne && c != '/')) {
        next.set(i + 1);
      }
    }
    if (next.none()) return false;
    close(next);
    now = next;
  }
  return now[count];
}

void RegexFree::operator()(pcre2_real_code_8* code) const {
  pcre2_code_free(code);
}

HeaderRegex compile_regex(std::string_view source, std::string* problem) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  // Bytes, not UTF-8: a header value may hold any octet, and needs no validity check.
  HeaderRegex code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                 PCRE2_NEVER_BACKSLASH_C, &error, &offset, nullptr));
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    *problem = reinterpret_cast<const char*>(message);
    *problem += " at offset " + std::to_string(offset);
    return nullptr;
  }
  // Where the platform has no JIT this fails and the interpreter matches instead.
  pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);
  return code;
}

FilterScratch::FilterScratch() : data_(pcre2_match_data_create(1, nullptr)) {
  if (data_ == nullptr) throw std::bad_alloc();
}

FilterScratch::~FilterScratch() {
  pcre2_match_data_free(data_);
}

RequestFilter::RequestFilter(std::vector<FilterRule> deny)
    : deny_(std::move(deny)), context_(pcre2_match_context_create(nullptr)) {
  if (context_ == nullptr) throw std::bad_alloc();
  pcre2_set_match_limit(context_, kMatchLimit);
  // The interpreter's backtracking memory; the JIT has its own fixed 32 KiB stack.
  pcre2_set_heap_limit(context_, 1024);  // KiB
}

RequestFilter::~RequestFilter() {
  pcre2_match_context_free(context_);
}

int RequestFilter::denies(const FilterRequest& request, FilterScratch& scratch) const {
  for (size_t i = 0; i < deny_.size(); ++i)
    if (matches(deny_[i], request, scratch)) return static_cast<int>(i);
  return -1;
}

bool RequestFilter::matches(const FilterRule& rule, const FilterRequest& request,
                            FilterScratch& scratch) const {
  if (!rule.methods.empty()) {
    bool named = false;
    for (const std::string& method : rule.methods) named = named || method == request.method();
    if (!named) return false;
  }
  if (!request.path().starts_with(rule.path_prefix)) return false;
  if (rule.path_glob && !rule.path_glob->matches(request.path())) return false;
  if (rule.test == HeaderTest::kNone) return true;
  for (size_t i = 0; i < request.field_count(); ++i)
    if (lower_equal(request.name(i), rule.header) &&
        header_matches(rule, request.value(i), scratch))
      return true;
  return false;
}

bool RequestFilter::header_matches(const FilterRule& rule, std::string_view value,
                                   FilterScratch& scratch) const {
  switch (rule.test) {
    case HeaderTest::kNone:
    case HeaderTest::kPresent:
      return true;
    case HeaderTest::kExact:
      return value == rule.value;
    case HeaderTest::kPrefix:
      return value.starts_with(rule.value);
    case HeaderTest::kRegex:
      break;
  }
  const int rc = pcre2_match(rule.regex.get(), reinterpret_cast<PCRE2_SPTR>(value.data()),
                             value.size(), 0, 0, scratch.data(), context_);
  // A match, or a value that ran out of the limits (PCRE2_ERROR_MATCHLIMIT and the like):
  // only "no match" lets the request on.
  return rc != PCRE2_ERROR_NOMATCH;
}

const std::vector<std::string_view>& filter_methods() {
  static const std::vector<std::string_view> methods = {
      "DELETE",     "GET",      "HEAD",       "POST",     "PUT",    "CONNECT",   "OPTIONS",
      "TRACE",      "COPY",     "LOCK",       "MKCOL",    "MOVE",   "PROPFIND",  "PROPPATCH",
      "SEARCH",     "UNLOCK",   "BIND",       "REBIND",   "UNBIND", "ACL",       "REPORT",
      "MKACTIVITY", "CHECKOUT", "MERGE",      "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
      "PATCH",      "PURGE",    "MKCALENDAR", "LINK",     "UNLINK", "SOURCE"};
  return methods;
}

}  // namespace sluice::conf
