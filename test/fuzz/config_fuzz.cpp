// Feeds arbitrary bytes to the config parser as a config file's text, and checks what reloads
// rely on: it never crashes or hangs, it either accepts the text (no errors) or rejects it with
// at least one error that says something, and an accepted config builds a snapshot whose routes
// all point at an upstream that exists.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "conf/config.h"
#include "conf/snapshot.h"

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::conf::ParseResult result = sluice::conf::parse_config(text, "/etc/sluice");
  check(result.config.has_value() == result.errors.empty());
  for (const sluice::conf::ConfigError& e : result.errors) check(!e.message.empty());
  if (!result.config) return 0;
  for (const auto& l : result.config->listeners) {
    if (!l.tls) continue;
    check(!l.tls->certificates.empty());
    for (const auto& c : l.tls->certificates)
      check(c.cert.starts_with('/') && c.key.starts_with('/'));
  }
  auto snapshot = sluice::conf::build_snapshot(std::move(*result.config), nullptr);
  for (const sluice::conf::Route& r : snapshot->routes)
    check(r.upstream < snapshot->upstreams.size());
  return 0;
}
