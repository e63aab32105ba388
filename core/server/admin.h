// The admin listener, when the config has an "admin" object: one listening socket per worker
// on the admin address (SO_REUSEPORT, as the proxy's listeners), served by each worker's own
// HTTP code with its own pages, over one process-wide metrics registry.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "core/admin/pages.h"
#include "core/metrics/registry.h"

namespace sluice::core {

class Worker;

struct AdminSetup {
  explicit AdminSetup(size_t workers) : registry(workers) {}
  metrics::Registry registry;
  admin::ProcessInfo info;
  conf::SocketAddress address;  // where the admin sockets are (a change needs a restart)
};

// Opens the admin sockets and wires every worker (before they start). Null in *out when the
// config has no admin listener; false when a socket could not be opened (logged).
bool open_admin(const conf::Config& config, const std::string& config_path,
                std::vector<std::unique_ptr<Worker>>& workers, std::unique_ptr<AdminSetup>* out);

// Workers that a reload starts or retires: a new one gets its admin socket `fd`, pages and
// metrics part before it starts; a retired one's counts stay in the metrics once its thread
// has ended. Each does nothing when the admin is off.
void admin_add_worker(AdminSetup* admin, Worker& worker, int fd);
void admin_retire_worker(AdminSetup* admin, Worker& worker);

// The main thread's news for the pages; each does nothing when the admin is off.
void admin_workers(AdminSetup* admin, size_t count);
void admin_started(AdminSetup* admin);  // every worker accepts
void admin_reloaded(AdminSetup* admin, bool ok);
void admin_draining(AdminSetup* admin);

}  // namespace sluice::core
