// `sluice --probe URL`: one HTTP GET to a loopback URL, for a container's health check (Docker's
// HEALTHCHECK, a Kubernetes exec probe) without curl or wget in the image. A separate short-lived
// process, so plain sockets with a deadline, not the event loop.
#pragma once

#include <string>
#include <string_view>

namespace sluice::core {

// The whole exchange (connect, send, the status line) must finish within this.
constexpr int kProbeTimeoutMs = 2000;

struct ProbeResult {
  bool ok = false;     // a 2xx status line arrived in time
  std::string detail;  // the status line ("200 OK") when one arrived, otherwise why none did
};

// GETs `url` (http://127.0.0.1:PORT/PATH, http://[::1]:PORT/PATH; any 127.x.y.z; port 80 when
// absent) and reads the response's status line. Other hosts are refused: the probe checks this
// machine's (this container's) own Sluice and never resolves names.
ProbeResult probe(std::string_view url, int timeout_ms = kProbeTimeoutMs);

// The command: prints one line (the status on stdout when ok, the reason on stderr otherwise)
// and returns the exit status: 0 on a 2xx, 1 otherwise.
int probe_command(std::string_view url);

}  // namespace sluice::core
