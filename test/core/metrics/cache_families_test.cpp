// The sluice_cache_* families: every family with its HELP and TYPE, one sample per cached route
// under the request families' labels, each figure under its own name, and a route that an
// earlier one shadows left out.
#include "core/metrics/cache_families.h"

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>

#include "conf/config.h"
#include "conf/snapshot.h"

namespace sluice::metrics {
namespace {

// The second route has the first one's labels: first match wins, so it never serves.
constexpr const char* kConfig = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "upstreams": { "files": { "backends": [ { "address": "127.0.0.1:9001" } ] },
                 "app": { "backends": [ { "address": "127.0.0.1:9002" } ] } },
  "routes": [ { "host": "static.test", "path_prefix": "/img", "upstream": "files", "cache": {} },
              { "host": "static.test", "path_prefix": "/img", "upstream": "files", "cache": {} },
              { "upstream": "app", "cache": {} } ]
})";

std::shared_ptr<const conf::Snapshot> snapshot() {
  conf::ParseResult parsed = conf::parse_config(kConfig);
  REQUIRE(parsed.config);
  return conf::build_snapshot(std::move(*parsed.config), nullptr);
}

// {"name{labels}": value} for the sample lines of `text`; TYPE lines as {"# TYPE name": type}.
std::map<std::string, std::string> lines_of(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.rfind("# TYPE ", 0) == 0) {
      const size_t space = line.rfind(' ');
      out["# TYPE " + line.substr(7, space - 7)] = line.substr(space + 1);
    } else if (!line.empty() && line[0] != '#') {
      const size_t space = line.rfind(' ');
      out[line.substr(0, space)] = line.substr(space + 1);
    }
  }
  return out;
}

core::CacheFigures counting_from(uint64_t first) {
  core::CacheFigures f;
  uint64_t n = first;
  for (uint64_t* v : {&f.hits, &f.misses, &f.stale, &f.revalidated, &f.collapsed, &f.bypassed,
                      &f.stored, &f.evicted, &f.invalidated, &f.bytes, &f.entries, &f.max_bytes})
    *v = n++;
  return f;
}

TEST_CASE("each cache figure has its own family, counters and gauges as such", "[metrics]") {
  const auto s = snapshot();
  std::string text;
  TextWriter w(&text);
  write_cache_families(w, *s, {{2, counting_from(100)}});
  const auto lines = lines_of(text);
  const std::string labels = R"({route="*/",upstream="app"})";
  const std::pair<const char*, const char*> expected[] = {
      {"sluice_cache_hits_total", "counter"},
      {"sluice_cache_misses_total", "counter"},
      {"sluice_cache_stale_total", "counter"},
      {"sluice_cache_revalidated_total", "counter"},
      {"sluice_cache_collapsed_total", "counter"},
      {"sluice_cache_bypassed_total", "counter"},
      {"sluice_cache_stored_total", "counter"},
      {"sluice_cache_evictions_total", "counter"},
      {"sluice_cache_invalidations_total", "counter"},
      {"sluice_cache_bytes", "gauge"},
      {"sluice_cache_entries", "gauge"},
      {"sluice_cache_max_bytes", "gauge"}};
  uint64_t value = 100;
  for (const auto& [name, type] : expected) {
    INFO(name);
    CHECK(lines.at("# TYPE " + std::string(name)) == type);
    CHECK(lines.at(name + labels) == std::to_string(value++));
  }
  CHECK(lines.size() == 2 * std::size(expected));
}

TEST_CASE("cached routes are labelled as the request families label them", "[metrics]") {
  const auto s = snapshot();
  std::string text;
  TextWriter w(&text);
  write_cache_families(w, *s, {{0, counting_from(1)}, {2, counting_from(50)}});
  const auto lines = lines_of(text);
  CHECK(lines.at(R"(sluice_cache_hits_total{route="static.test/img",upstream="files"})") == "1");
  CHECK(lines.at(R"(sluice_cache_hits_total{route="*/",upstream="app"})") == "50");
}

TEST_CASE("a cached route shadowed by an earlier one with its labels is left out", "[metrics]") {
  const auto s = snapshot();
  std::string text;
  TextWriter w(&text);
  write_cache_families(w, *s, {{0, counting_from(1)}, {1, counting_from(900)}});
  const auto lines = lines_of(text);
  CHECK(lines.at(R"(sluice_cache_hits_total{route="static.test/img",upstream="files"})") == "1");
  CHECK(lines.size() == 12 + 12);  // a TYPE line and one sample per family
}

TEST_CASE("without cached routes the cache families have no samples", "[metrics]") {
  const auto s = snapshot();
  std::string text;
  TextWriter w(&text);
  write_cache_families(w, *s, {});
  CHECK(lines_of(text).size() == 12);
  CHECK(text.find("\nsluice_cache") == std::string::npos);
}

}  // namespace
}  // namespace sluice::metrics
