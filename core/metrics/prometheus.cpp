#include "core/metrics/prometheus.h"

#include <charconv>
#include <cmath>

namespace sluice::metrics {

void append_escaped(std::string* out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        *out += "\\\\";
        break;
      case '"':
        *out += "\\\"";
        break;
      case '\n':
        *out += "\\n";
        break;
      default:
        *out += c;
    }
  }
}

std::string format_number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

void TextWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  *out_ += "# HELP ";
  *out_ += name;
  *out_ += ' ';
  for (char c : help) *out_ += c == '\n' ? ' ' : c;  // help text: one line, no escapes needed
  *out_ += "\n# TYPE ";
  *out_ += name;
  *out_ += ' ';
  *out_ += type;
  *out_ += '\n';
}

void TextWriter::labels(Labels labels, std::string_view extra_name, std::string_view extra_value) {
  if (labels.size() == 0 && extra_name.empty()) return;
  *out_ += '{';
  bool first = true;
  auto one = [&](std::string_view name, std::string_view value) {
    if (!first) *out_ += ',';
    first = false;
    *out_ += name;
    *out_ += "=\"";
    append_escaped(out_, value);
    *out_ += '"';
  };
  for (const auto& [name, value] : labels) one(name, value);
  if (!extra_name.empty()) one(extra_name, extra_value);
  *out_ += '}';
}

void TextWriter::sample(std::string_view name, Labels l, uint64_t value) {
  *out_ += name;
  labels(l);
  *out_ += ' ';
  *out_ += std::to_string(value);
  *out_ += '\n';
}

void TextWriter::sample(std::string_view name, Labels l, double value) {
  *out_ += name;
  labels(l);
  *out_ += ' ';
  *out_ += format_number(value);
  *out_ += '\n';
}

void TextWriter::histogram(std::string_view name, Labels l, const uint64_t* bucket_counts,
                           const uint32_t* bounds_ms, size_t bounds, uint64_t sum_ms) {
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds; ++i) {
    cumulative += bucket_counts[i];
    const std::string le = i < bounds ? format_number(bounds_ms[i] / 1000.0) : "+Inf";
    *out_ += bucket;
    labels(l, "le", le);
    *out_ += ' ';
    *out_ += std::to_string(cumulative);
    *out_ += '\n';
  }
  sample(std::string(name) + "_sum", l, static_cast<double>(sum_ms) / 1000.0);
  sample(std::string(name) + "_count", l, cumulative);
}

}  // namespace sluice::metrics
