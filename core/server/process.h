// Process lifecycle: start the workers on a validated snapshot, reload the config on SIGHUP
// (a config that fails validation is never published), drain and exit on SIGTERM or SIGINT.
#pragma once

#include <memory>
#include <string>

#include "core/server/runtime.h"

namespace sluice::core {

// Blocks the signals the process handles (HUP, TERM, INT) until run_process has its handlers
// in place; call first thing in main, before any thread starts.
void hold_signals();

// Runs until a terminating signal has drained every worker. Returns the exit status.
int run_process(const std::string& config_path, std::shared_ptr<const Runtime> runtime);

}  // namespace sluice::core
