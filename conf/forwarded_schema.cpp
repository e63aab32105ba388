// "forwarded": the anonymity level, a route's today. Read by one function so that every place
// that gets the setting (a forward-proxy listener, later) takes the same words and errors.
#include <array>

#include "conf/validator.h"

namespace sluice::conf {
namespace {

// In ForwardedMode's order.
constexpr std::array<std::string_view, 3> kForwardedModes = {"transparent", "anonymous", "elite"};

}  // namespace

void Validator::read_forwarded(const Json& object, const std::string& path, ForwardedMode& out) {
  auto it = object.find("forwarded");
  if (it == object.end()) return;
  const std::string at = path + "/forwarded";
  std::string mode;
  if (!read_string(*it, at, mode)) return;
  for (size_t i = 0; i < kForwardedModes.size(); ++i) {
    if (mode == kForwardedModes[i]) {
      out = static_cast<ForwardedMode>(i);
      return;
    }
  }
  expected(at, "\"transparent\", \"anonymous\" or \"elite\"", *it);
  errors_.back().message += did_you_mean(
      mode, std::vector<std::string_view>(kForwardedModes.begin(), kForwardedModes.end()));
}

}  // namespace sluice::conf
