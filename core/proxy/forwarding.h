// The anonymity level of a target ("forwarded" in the config) as the head writer takes it:
// which forwarding fields reach the origin, and whether the proxy names itself in Via. A
// route has one today; a forward-proxy listener will take the same setting the same way.
#pragma once

#include "conf/config.h"
#include "core/http/head_writer.h"

namespace sluice::core {

// conf/ cannot see core/http (nor the other way round), so the level has a type on each side.
constexpr ForwardedMode forwarded_mode(conf::ForwardedMode mode) {
  switch (mode) {
    case conf::ForwardedMode::kAnonymous:
      return ForwardedMode::kAnonymous;
    case conf::ForwardedMode::kElite:
      return ForwardedMode::kElite;
    case conf::ForwardedMode::kTransparent:
      break;
  }
  return ForwardedMode::kTransparent;
}

}  // namespace sluice::core
