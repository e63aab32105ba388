// Cache-Control: a list (RFC 9110 5.6.1) of directives, token [ "=" ( token / quoted-string ) ]
// (RFC 9111 5.2), read in place without copying. A malformed element is skipped up to the next
// comma outside a quoted string; its name still counts, its argument does not.
#include "core/cache/cache_control.h"

namespace sluice::core::cache {

namespace {

// tchar (RFC 9110 5.6.2).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

// Reads a list in place, one directive at a time.
class DirectiveReader {
 public:
  explicit DirectiveReader(std::string_view text) : s_(text) {}

  // An argument as written: a token, or the inside of a quoted string with its quoted-pairs
  // still escaped. `valid` is false when it was missing, unterminated or followed by junk.
  struct Argument {
    std::string_view text;
    bool present = false;
    bool quoted = false;
    bool valid = true;
  };

  // The next directive's name and argument; false once the list is used up.
  bool next(std::string_view* name, Argument* arg) {
    for (;;) {
      while (at_ < s_.size() && (is_ows(s_[at_]) || s_[at_] == ',')) ++at_;
      if (at_ == s_.size()) return false;
      *name = token();
      if (!name->empty()) break;
      skip_element();  // no name: nothing in this element can be used
    }
    *arg = Argument{};
    skip_ows();
    if (at_ < s_.size() && s_[at_] == '=') {
      ++at_;
      skip_ows();
      arg->present = true;
      read_argument(arg);
      skip_ows();
    }
    if (at_ < s_.size() && s_[at_] != ',') {
      arg->valid = false;
      skip_element();
    }
    return true;
  }

 private:
  void skip_ows() {
    while (at_ < s_.size() && is_ows(s_[at_])) ++at_;
  }

  std::string_view token() {
    const size_t start = at_;
    while (at_ < s_.size() && is_tchar(s_[at_])) ++at_;
    return s_.substr(start, at_ - start);
  }

  void read_argument(Argument* arg) {
    if (at_ < s_.size() && s_[at_] == '"') {
      arg->quoted = true;
      const size_t start = ++at_;
      arg->valid = skip_quoted_rest();
      arg->text = s_.substr(start, (arg->valid ? at_ - 1 : at_) - start);
      return;
    }
    arg->text = token();
    arg->valid = !arg->text.empty();
  }

  // After an opening quote: up to and past the closing one. False when there is none.
  bool skip_quoted_rest() {
    while (at_ < s_.size()) {
      const char c = s_[at_++];
      if (c == '"') return true;
      if (c == '\\' && at_ < s_.size()) ++at_;
    }
    return false;
  }

  // Up to the next comma that is not inside a quoted string.
  void skip_element() {
    while (at_ < s_.size() && s_[at_] != ',') {
      if (s_[at_++] == '"') skip_quoted_rest();
    }
  }

  std::string_view s_;
  size_t at_ = 0;
};

// delta-seconds (RFC 9111 1.2.2): 1*DIGIT, clamped to kMaxDelta; a quoted form is read through
// its quoted-pairs. kAbsent when the argument is anything else.
int64_t delta_seconds(const DirectiveReader::Argument& arg) {
  if (!arg.present || !arg.valid || arg.text.empty()) return kAbsent;
  int64_t value = 0;
  for (size_t i = 0; i < arg.text.size(); ++i) {
    char c = arg.text[i];
    if (arg.quoted && c == '\\' && i + 1 < arg.text.size()) c = arg.text[++i];
    if (c < '0' || c > '9') return kAbsent;
    value = value * 10 + (c - '0');
    if (value > kMaxDelta) value = kMaxDelta;  // stays below 2^35: no overflow on the next digit
  }
  return value;
}

// max-age and s-maxage: an unreadable value, or a second one that differs, makes the response
// stale (RFC 9111 4.2.1), so it is noted rather than dropped.
void set_freshness(int64_t value, int64_t* field, bool* invalid) {
  if (value == kAbsent) {
    *invalid = true;
  } else if (*field == kAbsent) {
    *field = value;
  } else if (*field != value) {
    *invalid = true;
  }
}

// The other delta directives: an unreadable value is ignored, the first readable one counts.
void set_first(int64_t value, int64_t* field) {
  if (*field == kAbsent) *field = value;
}

bool* flag_named(std::string_view name, CacheControl* cc) {
  struct Flag {
    std::string_view name;
    bool CacheControl::*member;
  };
  static constexpr Flag kFlags[] = {
      {"no-store", &CacheControl::no_store},
      {"no-cache", &CacheControl::no_cache},
      {"private", &CacheControl::private_},
      {"public", &CacheControl::public_},
      {"must-revalidate", &CacheControl::must_revalidate},
      {"proxy-revalidate", &CacheControl::proxy_revalidate},
      {"only-if-cached", &CacheControl::only_if_cached},
      {"no-transform", &CacheControl::no_transform},
      {"immutable", &CacheControl::immutable},
  };
  for (const Flag& flag : kFlags)
    if (equals_ignore_case(name, flag.name)) return &(cc->*flag.member);
  return nullptr;
}

void apply(std::string_view name, const DirectiveReader::Argument& arg, CacheControl* cc) {
  // A flag's argument is ignored: no-cache="Set-Cookie" and private="X" are taken unqualified,
  // which keeps more out of the cache, never less.
  if (bool* flag = flag_named(name, cc)) {
    *flag = true;
    return;
  }
  const int64_t value = delta_seconds(arg);
  if (equals_ignore_case(name, "max-age")) {
    set_freshness(value, &cc->max_age, &cc->invalid_freshness);
  } else if (equals_ignore_case(name, "s-maxage")) {
    set_freshness(value, &cc->s_maxage, &cc->invalid_freshness);
  } else if (equals_ignore_case(name, "max-stale")) {
    // Without a value: any staleness is acceptable (RFC 9111 5.2.1.2).
    if (!arg.present && arg.valid)
      set_first(kMaxDelta, &cc->max_stale);
    else if (value != kAbsent)
      set_first(value, &cc->max_stale);
  } else if (value == kAbsent) {
    return;
  } else if (equals_ignore_case(name, "min-fresh")) {
    set_first(value, &cc->min_fresh);
  } else if (equals_ignore_case(name, "stale-while-revalidate")) {
    set_first(value, &cc->stale_while_revalidate);
  } else if (equals_ignore_case(name, "stale-if-error")) {
    set_first(value, &cc->stale_if_error);
  }
}

}  // namespace

void parse_cache_control(std::string_view value, CacheControl* cc) {
  DirectiveReader reader(value);
  std::string_view name;
  DirectiveReader::Argument arg;
  while (reader.next(&name, &arg)) apply(name, arg, cc);
}

CacheControl cache_control_of(const MessageHead& head) {
  CacheControl cc;
  for (size_t i = 0; i < head.field_count(); ++i)
    if (equals_ignore_case(head.name(i), "cache-control")) parse_cache_control(head.value(i), &cc);
  return cc;
}

}  // namespace sluice::core::cache
