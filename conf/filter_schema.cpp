// "filters" on a route: deny rules, each checked and compiled here (globs, regexes), so that a
// mistake is a config error with its JSON path, and a loaded config's filters cannot fail.
#include "conf/filter_schema.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <memory>

#include "conf/request_filter.h"

namespace sluice::conf {
namespace {

constexpr std::array<std::string_view, 3> kHeaderTests = {"exact", "prefix", "regex"};

// RFC 9110 5.1: a field name is a token.
bool valid_field_name(std::string_view name) {
  constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kSpecials.find(c) != kSpecials.npos;
  });
}

void read_methods(Validator& v, const Json& value, const std::string& path, FilterRule& rule) {
  if (!value.is_array() || value.empty())
    return v.expected(path, "an array of at least one method such as \"DELETE\"", value);
  const std::vector<std::string_view>& known = filter_methods();
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item = path + "/" + std::to_string(i);
    std::string method;
    if (!v.read_string(value[i], item, method)) continue;
    if (std::find(known.begin(), known.end(), method) == known.end()) {
      v.expected(item, "an HTTP method in upper case such as \"DELETE\"", value[i]);
      v.errors_.back().message += did_you_mean(method, known);
      continue;
    }
    rule.methods.push_back(std::move(method));
  }
}

void read_path_tests(Validator& v, const Json& value, const std::string& path, FilterRule& rule) {
  if (auto it = value.find("path_prefix"); it != value.end()) {
    const std::string at = path + "/path_prefix";
    if (v.read_string(*it, at, rule.path_prefix) && !rule.path_prefix.starts_with('/'))
      v.expected(at, "a path starting with \"/\"", *it);
  }
  if (auto it = value.find("path_glob"); it != value.end()) {
    const std::string at = path + "/path_glob";
    std::string text, problem;
    if (!v.read_string(*it, at, text)) return;
    rule.path_glob = PathGlob::parse(text, &problem);
    if (!rule.path_glob)
      v.fail(at, "expected a path glob such as \"/**/*.php\", got " + Json(text).dump() + " (" +
                     problem + ")");
  }
}

// "header", with at most one of exact, prefix and regex; without "header", none of them.
void read_header_test(Validator& v, const Json& value, const std::string& path, FilterRule& rule) {
  const auto header = value.find("header");
  const Json* test = nullptr;
  for (size_t i = 0; i < kHeaderTests.size(); ++i) {
    const auto it = value.find(kHeaderTests[i]);
    if (it == value.end()) continue;
    const std::string at = path + "/" + std::string(kHeaderTests[i]);
    if (header == value.end()) {
      v.fail(at, "applies only with \"header\" in the same rule");
    } else if (test != nullptr) {
      v.fail(at, "only one of \"exact\", \"prefix\" and \"regex\" in a rule");
    } else if (v.read_string(*it, at, rule.value)) {
      test = &*it;
      rule.test = static_cast<HeaderTest>(static_cast<int>(HeaderTest::kExact) + i);
    }
  }
  if (header == value.end()) return;
  const std::string at = path + "/header";
  if (!v.read_string(*header, at, rule.header)) return;
  if (!valid_field_name(rule.header))
    v.expected(at, "a header field name such as \"User-Agent\"", *header);
  if (test == nullptr) rule.test = HeaderTest::kPresent;
  if (rule.test != HeaderTest::kRegex) return;
  std::string problem;
  rule.regex = compile_regex(rule.value, &problem);
  if (!rule.regex)
    v.fail(path + "/regex",
           "expected a regular expression (PCRE2), got " + test->dump() + " (" + problem + ")");
}

void read_rule(Validator& v, const Json& value, const std::string& path, FilterRule& rule) {
  if (!v.expect_object(value, path)) return;
  v.check_keys(value, path,
               {"methods", "path_prefix", "path_glob", "header", "exact", "prefix", "regex"});
  if (auto it = value.find("methods"); it != value.end())
    read_methods(v, *it, path + "/methods", rule);
  read_path_tests(v, value, path, rule);
  read_header_test(v, value, path, rule);
  if (!value.contains("methods") && !value.contains("path_prefix") &&
      !value.contains("path_glob") && !value.contains("header"))
    v.fail(path,
           "a rule needs at least one condition: \"methods\", \"path_prefix\", \"path_glob\" "
           "or \"header\"");
}

}  // namespace

void read_route_filters(Validator& v, const Json& route, const std::string& path,
                        RouteConfig& out) {
  const auto filters = route.find("filters");
  if (filters == route.end()) return;
  const std::string at = path + "/filters";
  if (!v.expect_object(*filters, at)) return;
  v.check_keys(*filters, at, {"deny"});
  const Json* deny = v.require(*filters, at, "deny");
  if (deny == nullptr) return;
  if (!deny->is_array() || deny->empty())
    return v.expected(at + "/deny", "an array of at least one rule", *deny);
  const size_t errors_before = v.errors_.size();
  std::vector<FilterRule> rules(deny->size());
  for (size_t i = 0; i < deny->size(); ++i)
    read_rule(v, (*deny)[i], at + "/deny/" + std::to_string(i), rules[i]);
  if (v.errors_.size() == errors_before)
    out.filters = std::make_shared<const RequestFilter>(std::move(rules));
}

}  // namespace sluice::conf
