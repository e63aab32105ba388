// The admin listener, while the config has an "admin" object: one listening socket per worker
// on the admin address (SO_REUSEPORT, as the proxy's listeners), served by each worker's own
// HTTP code with its own pages, over one process-wide metrics registry. A reload may add, move
// or remove it; the registry lives as long as the process, so no counter starts over.
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
  conf::AdminConfig config;  // the admin listener now: off, or where its sockets are
};

// Wires every worker (before they start) to the pages and the registry, with an admin socket
// each when the config has an admin listener; false when a socket could not be opened (logged).
bool open_admin(const conf::Config& config, const std::string& config_path,
                std::vector<std::unique_ptr<Worker>>& workers, std::unique_ptr<AdminSetup>* out);

// A reload that adds, moves or removes the admin listener: `open_moved_admin` opens its new
// sockets for the first `workers` workers before anything changes (false, with the reason in
// `error`, when one cannot be opened: nothing changes then); `move_admin` hands them over once
// the new runtime is published. Both do nothing when the admin object is unchanged.
bool open_moved_admin(const AdminSetup& admin, const conf::AdminConfig& next, size_t workers,
                      std::vector<int>* fds, std::string* error);
void move_admin(AdminSetup& admin, const conf::AdminConfig& next,
                std::vector<std::unique_ptr<Worker>>& workers, std::vector<int>* fds);

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
