// "Did you mean": the known word a mistyped one was most likely meant to be, for config errors
// about unknown keys and values outside a fixed set.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace sluice::conf {

// The candidate nearest to `word` by edit distance, counting an insertion, a deletion, a
// substitution or a swap of two neighbouring characters as one edit, and ignoring ASCII case
// (so "Address" is 0 edits from "address"). A candidate counts as near when it is at most 2
// edits away and the edits are fewer than half the length of the shorter of the two words, so
// short words need a closer match ("ur" is not near "uri"). nullopt when none is near, or when
// two or more are equally nearest: a guess between equals would be a coin toss.
std::optional<std::string_view> near_miss(std::string_view word,
                                          const std::vector<std::string_view>& candidates);

}  // namespace sluice::conf
