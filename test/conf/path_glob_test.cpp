// The path glob of request filters: `*`, `**` and `?`, refused patterns, and hostile paths that
// would make a backtracking matcher run for ever.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "conf/request_filter.h"

namespace sluice::conf {
namespace {

PathGlob glob(const std::string& text) {
  std::string problem;
  std::optional<PathGlob> parsed = PathGlob::parse(text, &problem);
  INFO(text << ": " << problem);
  REQUIRE(parsed.has_value());
  return std::move(*parsed);
}

bool refused(const std::string& text) {
  std::string problem;
  return !PathGlob::parse(text, &problem) && !problem.empty();
}

}  // namespace

TEST_CASE("glob: a literal pattern matches only itself", "[conf][glob]") {
  CHECK(glob("/admin").matches("/admin"));
  CHECK_FALSE(glob("/admin").matches("/admin/"));
  CHECK_FALSE(glob("/admin").matches("/admi"));
  CHECK_FALSE(glob("/admin").matches("/Admin"));
}

TEST_CASE("glob: * matches any run but a slash", "[conf][glob]") {
  const PathGlob star = glob("/*.php");
  CHECK(star.matches("/index.php"));
  CHECK(star.matches("/.php"));
  CHECK_FALSE(star.matches("/a/index.php"));
  CHECK_FALSE(star.matches("/index.php5"));
  CHECK(glob("/a/*/c").matches("/a/b/c"));
  CHECK_FALSE(glob("/a/*/c").matches("/a/b/x/c"));
  CHECK(glob("/a*").matches("/a"));
}

TEST_CASE("glob: ** matches any run, slashes included", "[conf][glob]") {
  const PathGlob any = glob("/**/*.php");
  CHECK(any.matches("/a/b.php"));
  CHECK(any.matches("/a/b/c/d.php"));
  CHECK_FALSE(any.matches("/b.php"));  // the two slashes are literal
  CHECK(glob("/**.php").matches("/b.php"));
  CHECK(glob("/**.php").matches("/a/b/c.php"));
  CHECK(glob("/**").matches("/"));
  CHECK(glob("/x/**/y").matches("/x/1/2/3/y"));
  CHECK_FALSE(glob("/x/**/y").matches("/x/y"));
}

TEST_CASE("glob: ? matches one character but a slash", "[conf][glob]") {
  CHECK(glob("/v?/x").matches("/v1/x"));
  CHECK_FALSE(glob("/v?/x").matches("/v/x"));
  CHECK_FALSE(glob("/v?/x").matches("/v12/x"));
  CHECK_FALSE(glob("/a?b").matches("/a/b"));
}

TEST_CASE("glob: the literal start and end of a pattern are checked as such", "[conf][glob]") {
  CHECK(glob("/a*b").matches("/ab"));
  CHECK_FALSE(glob("/a*b").matches("/a"));  // shorter than the literal parts together
  CHECK_FALSE(glob("/ab*ab").matches("/ab"));
  CHECK(glob("/ab*ab").matches("/abab"));
  CHECK(glob("/x?").matches("/xy"));
  CHECK_FALSE(glob("/x?").matches("/x"));
  CHECK(glob("/?.php").matches("/a.php"));
  CHECK_FALSE(glob("/?.php").matches("/a.phpx"));
  CHECK(glob("/**?").matches("/a/b"));
  CHECK_FALSE(glob("/**?").matches("/"));
}

TEST_CASE("glob: patterns it refuses", "[conf][glob]") {
  CHECK(refused(""));
  CHECK(refused("a/*"));
  CHECK(refused("/***"));
  CHECK(refused("/a\tb"));
  CHECK(refused("/" + std::string(PathGlob::kMaxLength, 'a')));
  CHECK_FALSE(refused("/" + std::string(PathGlob::kMaxLength - 1, 'a')));
}

TEST_CASE("glob: hostile paths take linear time", "[conf][glob]") {
  const std::string run(10000, 'a');
  const auto start = std::chrono::steady_clock::now();
  // Many stars before a tail that never comes: a backtracking matcher tries every split.
  CHECK_FALSE(glob("/*a*a*a*a*a*a*a*a*a*a*a*a*b").matches("/" + run));
  CHECK_FALSE(glob("/**a**a**a**a**a**a**a**a**a**b").matches("/" + run));
  CHECK(glob("/**a**a**a**a**a**a**a**a**a**a").matches("/" + run));
  std::string slashes;
  for (int i = 0; i < 5000; ++i) slashes += "/a";
  CHECK_FALSE(glob("/**/**/**/**/**/**/*.php").matches(slashes));
  CHECK(glob("/**/**/**/**/**/**/a").matches(slashes));
  // The longest pattern, all stars and question marks, on a long path.
  std::string widest = "/";
  while (widest.size() + 2 <= PathGlob::kMaxLength) widest += "*?";
  CHECK(glob(widest).matches("/" + run));
  CHECK_FALSE(glob(widest).matches("/" + run + "/"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

}  // namespace sluice::conf
