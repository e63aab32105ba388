// Request filters in the config: the "filters" and "max_request_body_bytes" keys of a route, each
// mistake refused with its path and line, and what a parsed filter then denies.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "conf/config.h"
#include "conf/request_filter.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::all_errors;
using test::config_text;
using test::kRouteLine;
using test::require_error;
using test::Slots;

std::string with_rules(const std::string& rules) {
  return config_text(Slots{.route = "\"filters\": {\"deny\": [" + rules + "]}"});
}

RouteConfig route_of(const std::string& text) {
  ParseResult result = parse_config(text);
  INFO("config:\n" << text << "\nerrors:\n" << all_errors(result));
  REQUIRE(result.config.has_value());
  return result.config->routes.at(0);
}

// A request as the gate hands it over, made of plain strings.
class Request final : public FilterRequest {
 public:
  Request(std::string method, std::string path,
          std::vector<std::pair<std::string, std::string>> fields = {})
      : method_(std::move(method)), path_(std::move(path)), fields_(std::move(fields)) {}
  std::string_view method() const override { return method_; }
  std::string_view path() const override { return path_; }
  size_t field_count() const override { return fields_.size(); }
  std::string_view name(size_t i) const override { return fields_[i].first; }
  std::string_view value(size_t i) const override { return fields_[i].second; }

 private:
  std::string method_, path_;
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Which rule of `rules` denies `request` (-1: none).
int denied_by(const std::string& rules, const Request& request) {
  const RouteConfig route = route_of(with_rules(rules));
  REQUIRE(route.filters != nullptr);
  FilterScratch scratch;
  return route.filters->denies(request, scratch);
}

}  // namespace

TEST_CASE("filters: absent, a route has none and the global body limit", "[conf][filters]") {
  const RouteConfig route = route_of(config_text());
  CHECK(route.filters == nullptr);
  CHECK_FALSE(route.max_request_body_bytes.has_value());
}

TEST_CASE("filters: every kind of rule is read", "[conf][filters]") {
  const RouteConfig route = route_of(with_rules(
      R"({"methods": ["TRACE", "DELETE"]}, {"path_prefix": "/admin"},
         {"path_glob": "/**/*.php"}, {"header": "X-Debug"},
         {"header": "User-Agent", "exact": "BadBot"}, {"header": "User-Agent", "prefix": "sqlmap"},
         {"header": "User-Agent", "regex": "nikto|masscan"},
         {"methods": ["POST"], "path_prefix": "/static"})"));
  REQUIRE(route.filters != nullptr);
  const std::vector<FilterRule>& rules = route.filters->deny();
  REQUIRE(rules.size() == 8);
  CHECK(rules[0].methods == std::vector<std::string>{"TRACE", "DELETE"});
  CHECK(rules[1].path_prefix == "/admin");
  CHECK(rules[2].path_glob->text() == "/**/*.php");
  CHECK(rules[3].test == HeaderTest::kPresent);
  CHECK(rules[4].test == HeaderTest::kExact);
  CHECK(rules[5].test == HeaderTest::kPrefix);
  CHECK(rules[6].test == HeaderTest::kRegex);
  CHECK(rules[6].regex != nullptr);
  CHECK(rules[7].methods.size() == 1);
  CHECK(rules[7].path_prefix == "/static");
}

TEST_CASE("filters: a rule without a condition is refused", "[conf][filters]") {
  require_error(with_rules("{}"), "/routes/0/filters/deny/0", kRouteLine,
                {"at least one condition"});
}

TEST_CASE("filters: unknown keys get a did-you-mean", "[conf][filters]") {
  require_error(with_rules(R"({"metods": ["GET"]})"), "/routes/0/filters/deny/0/metods", kRouteLine,
                {"unknown key", "did you mean \"methods\""});
  require_error(config_text(Slots{.route = R"("filters": {"dney": []})"}), "/routes/0/filters/dney",
                kRouteLine, {"did you mean \"deny\""});
  require_error(config_text(Slots{.route = R"("filtres": {"deny": []})"}), "/routes/0/filtres",
                kRouteLine, {"did you mean \"filters\""});
}

TEST_CASE("filters: deny must be a list of at least one rule", "[conf][filters]") {
  require_error(config_text(Slots{.route = R"("filters": {"deny": []})"}), "/routes/0/filters/deny",
                kRouteLine, {"at least one rule"});
  require_error(config_text(Slots{.route = R"("filters": {})"}), "/routes/0/filters/deny",
                kRouteLine, {"missing required key \"deny\""});
  require_error(config_text(Slots{.route = R"("filters": [])"}), "/routes/0/filters", kRouteLine,
                {"expected an object"});
}

TEST_CASE("filters: a method must be one the parser knows, in upper case", "[conf][filters]") {
  require_error(with_rules(R"({"methods": ["GET", "get"]})"), "/routes/0/filters/deny/0/methods/1",
                kRouteLine, {"HTTP method", "did you mean \"GET\""});
  require_error(with_rules(R"({"methods": ["FETCH"]})"), "/routes/0/filters/deny/0/methods/0",
                kRouteLine, {"HTTP method"});
  require_error(with_rules(R"({"methods": []})"), "/routes/0/filters/deny/0/methods", kRouteLine,
                {"at least one method"});
}

TEST_CASE("filters: a bad glob or path prefix is refused with the reason", "[conf][filters]") {
  require_error(with_rules(R"({"path_glob": "*.php"})"), "/routes/0/filters/deny/0/path_glob",
                kRouteLine, {"path glob", "starts with \"/\""});
  require_error(with_rules(R"({"path_glob": "/a/***/b"})"), "/routes/0/filters/deny/0/path_glob",
                kRouteLine, {"three stars"});
  require_error(with_rules(R"({"path_glob": "/a b"})"), "/routes/0/filters/deny/0/path_glob",
                kRouteLine, {"space or control"});
  require_error(with_rules("{\"path_glob\": \"/" + std::string(300, 'a') + "\"}"),
                "/routes/0/filters/deny/0/path_glob", kRouteLine, {"longer than 256"});
  require_error(with_rules(R"({"path_prefix": "admin"})"), "/routes/0/filters/deny/0/path_prefix",
                kRouteLine, {"starting with \"/\""});
}

TEST_CASE("filters: a regex that does not compile is refused with PCRE2's reason",
          "[conf][filters]") {
  require_error(with_rules(R"({"header": "User-Agent", "regex": "(nikto"})"),
                "/routes/0/filters/deny/0/regex", kRouteLine,
                {"regular expression", "missing closing parenthesis", "offset"});
}

TEST_CASE("filters: header tests need a header, and one at most", "[conf][filters]") {
  require_error(with_rules(R"({"exact": "x"})"), "/routes/0/filters/deny/0/exact", kRouteLine,
                {"only with \"header\""});
  require_error(with_rules(R"({"header": "A", "exact": "x", "prefix": "y"})"),
                "/routes/0/filters/deny/0/prefix", kRouteLine, {"only one of"});
  require_error(with_rules(R"({"header": "Bad Name"})"), "/routes/0/filters/deny/0/header",
                kRouteLine, {"header field name"});
}

TEST_CASE("route max_request_body_bytes: read, 0 allowed, negatives refused", "[conf][filters]") {
  CHECK(route_of(config_text(Slots{.route = R"("max_request_body_bytes": 1048576)"}))
            .max_request_body_bytes == 1048576u);
  CHECK(route_of(config_text(Slots{.route = R"("max_request_body_bytes": 0)"}))
            .max_request_body_bytes == 0u);
  require_error(config_text(Slots{.route = R"("max_request_body_bytes": -1)"}),
                "/routes/0/max_request_body_bytes", kRouteLine, {"an integer 0..4294967295"});
}

TEST_CASE("filters: a rule matches when all its conditions do", "[conf][filters]") {
  const std::string rule = R"({"methods": ["POST"], "path_prefix": "/static"})";
  CHECK(denied_by(rule, Request("POST", "/static/a.css")) == 0);
  CHECK(denied_by(rule, Request("GET", "/static/a.css")) == -1);
  CHECK(denied_by(rule, Request("POST", "/api")) == -1);
  const std::string three = R"({"methods": ["GET"], "path_glob": "/**.php", "header": "X-A"})";
  CHECK(denied_by(three, Request("GET", "/a/b.php", {{"x-a", ""}})) == 0);
  CHECK(denied_by(three, Request("GET", "/a/b.php")) == -1);
  CHECK(denied_by(three, Request("GET", "/a/b.html", {{"X-A", "1"}})) == -1);
}

TEST_CASE("filters: the request is denied when any rule matches", "[conf][filters]") {
  const std::string rules = R"({"methods": ["TRACE"]}, {"path_prefix": "/admin"})";
  CHECK(denied_by(rules, Request("TRACE", "/")) == 0);
  CHECK(denied_by(rules, Request("GET", "/admin/x")) == 1);
  CHECK(denied_by(rules, Request("TRACE", "/admin")) == 0);  // the first that matches
  CHECK(denied_by(rules, Request("GET", "/adm")) == -1);
}

TEST_CASE("filters: header tests, names in any case, values as written", "[conf][filters]") {
  const std::string rules = R"({"header": "User-Agent", "exact": "BadBot"},
      {"header": "user-agent", "prefix": "sqlmap"}, {"header": "USER-AGENT", "regex": "nikto|masscan"})";
  CHECK(denied_by(rules, Request("GET", "/", {{"user-agent", "BadBot"}})) == 0);
  CHECK(denied_by(rules, Request("GET", "/", {{"User-Agent", "badbot"}})) == -1);
  CHECK(denied_by(rules, Request("GET", "/", {{"User-Agent", "BadBot/2"}})) == -1);
  CHECK(denied_by(rules, Request("GET", "/", {{"User-Agent", "sqlmap/1.7"}})) == 1);
  CHECK(denied_by(rules, Request("GET", "/", {{"User-Agent", "x sqlmap"}})) == -1);
  CHECK(denied_by(rules, Request("GET", "/", {{"User-Agent", "Mozilla (masscan)"}})) == 2);
  // Any occurrence of the field counts.
  CHECK(denied_by(rules, Request("GET", "/", {{"User-Agent", "ok"}, {"User-Agent", "BadBot"}})) ==
        0);
  CHECK(denied_by(rules, Request("GET", "/", {{"X-User-Agent", "BadBot"}})) == -1);
}

TEST_CASE("filters: a regex that runs into the match limit denies, quickly", "[conf][filters]") {
  // Exponential backtracking on a run of a's that ends in something else.
  const std::string rule = R"({"header": "X-Value", "regex": "^(a+)+$"})";
  const std::string hostile = std::string(32 * 1024, 'a') + "!";
  const auto start = std::chrono::steady_clock::now();
  CHECK(denied_by(rule, Request("GET", "/", {{"X-Value", hostile}})) == 0);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
  CHECK(denied_by(rule, Request("GET", "/", {{"X-Value", "aaab"}})) == -1);
}

TEST_CASE("filters: an ordinary regex on a 32 KiB value stays within the limit",
          "[conf][filters]") {
  const std::string rule = R"({"header": "X-Value", "regex": "nikto|masscan|sqlmap"})";
  const std::string value = std::string(32 * 1024, 'n');
  CHECK(denied_by(rule, Request("GET", "/", {{"X-Value", value}})) == -1);
  CHECK(denied_by(rule, Request("GET", "/", {{"X-Value", value + "nikto"}})) == 0);
}

}  // namespace sluice::conf
