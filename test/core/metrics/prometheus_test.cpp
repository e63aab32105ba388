// The Prometheus text format 0.0.4 as the metrics page writes it: HELP and TYPE before the
// samples, label values escaped, histograms with cumulative buckets, _sum in seconds and _count.
#include "core/metrics/prometheus.h"

#include <catch2/catch.hpp>
#include <string>

namespace sluice::metrics {
namespace {

TEST_CASE("a counter family has its HELP and TYPE lines before its samples", "[metrics]") {
  std::string out;
  TextWriter w(&out);
  w.family("sluice_x_total", "counter", "Things.");
  w.sample("sluice_x_total", {{"a", "1"}, {"b", "two"}}, uint64_t{42});
  w.sample("sluice_x_total", {}, uint64_t{0});
  CHECK(out ==
        "# HELP sluice_x_total Things.\n"
        "# TYPE sluice_x_total counter\n"
        "sluice_x_total{a=\"1\",b=\"two\"} 42\n"
        "sluice_x_total 0\n");
}

TEST_CASE("label values escape backslash, double quote and newline", "[metrics]") {
  std::string out;
  append_escaped(&out, "a\\b\"c\nd");
  CHECK(out == "a\\\\b\\\"c\\nd");
}

TEST_CASE("numbers: integers without a fraction, others in their shortest form", "[metrics]") {
  CHECK(format_number(3.0) == "3");
  CHECK(format_number(0.001) == "0.001");
  CHECK(format_number(2.5) == "2.5");
  CHECK(format_number(1796171614.018) == "1796171614.018");
}

TEST_CASE("a histogram has cumulative buckets in seconds, then +Inf, _sum and _count",
          "[metrics]") {
  const uint32_t bounds[] = {1, 250, 2500};
  const uint64_t counts[] = {2, 0, 1, 3};  // per bucket; the last is past 2.5 s
  std::string out;
  TextWriter w(&out);
  w.histogram("lat_seconds", {{"upstream", "app"}}, counts, bounds, 3, 12345);
  CHECK(out ==
        "lat_seconds_bucket{upstream=\"app\",le=\"0.001\"} 2\n"
        "lat_seconds_bucket{upstream=\"app\",le=\"0.25\"} 2\n"
        "lat_seconds_bucket{upstream=\"app\",le=\"2.5\"} 3\n"
        "lat_seconds_bucket{upstream=\"app\",le=\"+Inf\"} 6\n"
        "lat_seconds_sum{upstream=\"app\"} 12.345\n"
        "lat_seconds_count{upstream=\"app\"} 6\n");
}

}  // namespace
}  // namespace sluice::metrics
