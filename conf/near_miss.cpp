// Damerau-Levenshtein distance in its restricted form (optimal string alignment: a swapped pair
// is not edited again), which is all a typo needs. Words in a config are short, so the full
// table costs nothing worth saving.
#include "conf/near_miss.h"

#include <algorithm>
#include <cstddef>

namespace sluice::conf {
namespace {

constexpr size_t kMaxEdits = 2;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t columns = b.size() + 1;
  std::vector<size_t> d((a.size() + 1) * columns);
  const auto at = [&](size_t i, size_t j) -> size_t& { return d[i * columns + j]; };
  for (size_t i = 0; i <= a.size(); ++i) at(i, 0) = i;
  for (size_t j = 0; j <= b.size(); ++j) at(0, j) = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1]))
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
    }
  }
  return at(a.size(), b.size());
}

}  // namespace

std::optional<std::string_view> near_miss(std::string_view word,
                                          const std::vector<std::string_view>& candidates) {
  std::optional<std::string_view> best;
  size_t best_distance = kMaxEdits + 1;
  bool tied = false;
  for (std::string_view candidate : candidates) {
    // Words further apart in length than the allowance cannot be near; skip the table.
    const size_t gap = word.size() > candidate.size() ? word.size() - candidate.size()
                                                      : candidate.size() - word.size();
    if (gap > kMaxEdits) continue;
    const size_t distance = edit_distance(word, candidate);
    if (distance > kMaxEdits || distance * 2 >= std::min(word.size(), candidate.size())) continue;
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
      tied = false;
    } else if (distance == best_distance && candidate != *best) {
      tied = true;
    }
  }
  if (tied) return std::nullopt;
  return best;
}

}  // namespace sluice::conf
