// Wiring the admin listener: sockets, the pages' process facts, the metrics registry.
#include "core/server/admin.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/accesslog/access_log.h"
#include "core/io/log.h"
#include "core/server/listener.h"
#include "core/server/worker.h"
#include "version.h"

namespace sluice::core {
namespace {

// Lines the access log dropped rather than make a worker wait for a slow sink.
uint64_t access_lines_dropped() {
  return accesslog::access_lines_dropped();
}

}  // namespace

bool open_admin(const conf::Config& config, const std::string& config_path,
                std::vector<std::unique_ptr<Worker>>& workers, std::unique_ptr<AdminSetup>* out) {
  out->reset();
  auto admin = std::make_unique<AdminSetup>(workers.size());
  admin::ProcessInfo& info = admin->info;
  info.version = SLUICE_VERSION;
  std::error_code bad_path;
  const std::filesystem::path absolute = std::filesystem::absolute(config_path, bad_path);
  info.config_path = bad_path ? config_path : absolute.lexically_normal().string();
  info.started_ms = balancer::unix_ms_now();
  info.config_loaded_ms = info.started_ms;
  info.workers = static_cast<uint32_t>(workers.size());
  admin->config = config.admin;
  info.registry = &admin->registry;
  info.access_lines_dropped = &access_lines_dropped;
  info.purge_caches = &purge_caches;
  for (size_t i = 0; i < workers.size(); ++i) {
    std::string error;
    const int fd = config.admin.enabled ? open_listening_socket(config.admin.address, &error) : -1;
    if (config.admin.enabled && fd < 0) {
      log(LogLevel::kError, "cannot open the admin listener on %s", error.c_str());
      return false;
    }
    workers[i]->enable_admin(fd, &info, &admin->registry, &admin->registry.worker(i));
  }
  *out = std::move(admin);
  return true;
}

namespace {

bool admin_moves(const conf::AdminConfig& now, const conf::AdminConfig& next) {
  if (now.enabled != next.enabled) return true;
  return next.enabled && next.address.text != now.address.text;
}

}  // namespace

bool open_moved_admin(const AdminSetup& admin, const conf::AdminConfig& next, size_t workers,
                      std::vector<int>* fds, std::string* error) {
  if (!admin_moves(admin.config, next) || !next.enabled) return true;
  for (size_t i = 0; i < workers; ++i) {
    const int fd = open_listening_socket(next.address, error);
    if (fd < 0) {
      for (int opened : *fds) ::close(opened);
      fds->clear();
      return false;
    }
    fds->push_back(fd);
  }
  return true;
}

void move_admin(AdminSetup& admin, const conf::AdminConfig& next,
                std::vector<std::unique_ptr<Worker>>& workers, std::vector<int>* fds) {
  if (!admin_moves(admin.config, next)) return;
  // Workers past `fds` were started by this reload, with sockets on the new address already.
  const size_t kept = next.enabled ? std::min(fds->size(), workers.size()) : workers.size();
  for (size_t i = 0; i < kept; ++i) workers[i]->replace_admin(next.enabled ? (*fds)[i] : -1);
  fds->clear();
  admin.config = next;
  if (next.enabled)
    log(LogLevel::kInfo, "admin listener on %s", next.address.text.c_str());
  else
    log(LogLevel::kInfo, "admin listener closed");
}

void admin_add_worker(AdminSetup* admin, Worker& worker, int fd) {
  if (admin) worker.enable_admin(fd, &admin->info, &admin->registry, &admin->registry.add_worker());
}

void admin_retire_worker(AdminSetup* admin, Worker& worker) {
  if (admin && worker.metrics_part()) admin->registry.retire(*worker.metrics_part());
}

void admin_workers(AdminSetup* admin, size_t count) {
  if (admin) admin->info.workers = static_cast<uint32_t>(count);
}

void admin_started(AdminSetup* admin) {
  if (!admin) return;
  admin->info.listening = true;
  if (admin->config.enabled)
    log(LogLevel::kInfo, "admin listener on %s", admin->config.address.text.c_str());
}

void admin_reloaded(AdminSetup* admin, bool ok) {
  if (!admin) return;
  if (!ok) {
    admin->info.reloads_failed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  admin->info.reloads_ok.fetch_add(1, std::memory_order_relaxed);
  admin->info.config_loaded_ms = balancer::unix_ms_now();
}

void admin_draining(AdminSetup* admin) {
  if (admin) admin->info.draining = true;
}

}  // namespace sluice::core
