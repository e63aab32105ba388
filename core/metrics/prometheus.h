// Writing the Prometheus text exposition format, version 0.0.4: each family's HELP and TYPE
// lines, then its samples, label values escaped.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::metrics {

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

class TextWriter {
 public:
  explicit TextWriter(std::string* out) : out_(out) {}
  // `type`: "counter", "gauge" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, Labels labels, uint64_t value);
  void sample(std::string_view name, Labels labels, double value);
  // The _bucket lines (cumulative, `le` in seconds), _sum (seconds) and _count of a histogram
  // kept as per-bucket counts over `bounds_ms` plus one past the last bound.
  void histogram(std::string_view name, Labels labels, const uint64_t* bucket_counts,
                 const uint32_t* bounds_ms, size_t bounds, uint64_t sum_ms);

 private:
  void labels(Labels labels, std::string_view extra_name = {}, std::string_view extra_value = {});
  std::string* out_;
};

// A label value with backslash, double quote and newline escaped.
void append_escaped(std::string* out, std::string_view value);
// A number as the format wants it: integers without a fraction, others in the shortest form.
std::string format_number(double value);

}  // namespace sluice::metrics
