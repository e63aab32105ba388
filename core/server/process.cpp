// The main thread: workers, signals and reloads.
#include "core/server/process.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <map>
#include <thread>
#include <vector>

#include "core/accesslog/access_log.h"
#include "core/io/log.h"
#include "core/io/tcp_stream.h"
#include "core/server/admin.h"
#include "core/server/listener.h"
#include "core/server/listener_set.h"
#include "core/server/worker.h"
#include "health/checker.h"
#include "health/dns_watch.h"
#include "tls/ticket_keys.h"
#include "tls/tls_transport.h"

namespace sluice::core {
namespace {

struct Process {
  std::string config_path;
  std::shared_ptr<const Runtime> runtime;
  std::unique_ptr<AdminSetup> admin;  // null when off; outlives the workers, which use it
  std::unique_ptr<ListenerSet> listeners;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::unique_ptr<Worker>> retiring;  // draining after a reload lowered the count
  uv_timer_t reap;                                // joins the retiring ones as they finish
  BlockPool check_blocks{16 * 1024, 16};
  std::unique_ptr<TcpConnector> check_connector;  // the checks' transport
  std::map<const tls::ClientContext*, std::unique_ptr<tls::TlsConnector>> check_tls;
  std::unique_ptr<health::Checker> checker;
  std::unique_ptr<health::DnsWatch> dns;
  uv_signal_t hup, term, intr;
  uv_signal_t usr1;  // reopens the access log file
  uv_timer_t ticket_rotation;
  uv_timer_t shutdown_delay;  // from the first stop signal to the drain
};

// The checks of a TLS upstream speak TLS too, through a connector of the main loop.
std::vector<Connector*> check_connectors(Process& p) {
  std::vector<Connector*> out;
  for (const auto& client : p.runtime->upstream_tls) {
    if (!client) {
      out.push_back(nullptr);
      continue;
    }
    auto& c = p.check_tls[client.get()];
    if (!c)
      c = std::make_unique<tls::TlsConnector>(
          uv_default_loop(), p.check_blocks, *p.check_connector, client,
          p.runtime->snapshot->config.timeouts.upstream_connect_ms);
    out.push_back(c.get());
  }
  return out;
}

uint32_t worker_count(const conf::Config& config) {
  if (config.workers > 0) return config.workers;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores > 0 ? cores : 1;
}

// A worker whose thread has ended is joined; its metrics stay counted.
void reap_workers(uv_timer_t* timer) {
  auto* p = static_cast<Process*>(timer->data);
  for (auto it = p->retiring.begin(); it != p->retiring.end();) {
    if (!(*it)->finished()) {
      ++it;
      continue;
    }
    (*it)->join();
    admin_retire_worker(p->admin.get(), **it);
    it = p->retiring.erase(it);
  }
  if (p->retiring.empty()) uv_timer_stop(timer);
}

// Brings the number of workers to the runtime's: new ones start with their `sockets`, the
// extra ones (the last started) drain and are joined once done, without blocking this loop.
void resize_workers(Process& p, WorkerSockets* sockets) {
  const size_t count = p.runtime->workers;
  if (count != p.workers.size())
    log(LogLevel::kInfo, "workers: %zu, now %zu", p.workers.size(), count);
  while (p.workers.size() > count) {
    p.workers.back()->drain();
    p.retiring.push_back(std::move(p.workers.back()));
    p.workers.pop_back();
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&p.reap)))
      uv_timer_start(&p.reap, &reap_workers, 100, 100);
  }
  for (size_t i = p.workers.size(); i < count; ++i) {
    auto worker = std::make_unique<Worker>(sockets->take_listeners(i), p.runtime);
    admin_add_worker(p.admin.get(), *worker, sockets->take_admin(i));
    worker->start();
    p.workers.push_back(std::move(worker));
  }
  admin_workers(p.admin.get(), count);
}

// Hands a new runtime, with a snapshot built from `config`, to every worker and to the checker.
// `tls` carries the contexts already loaded for it. `sockets`, for a reload, are the listening
// sockets it opened (and say how many workers there are now); null keeps the workers as they are.
void publish(Process& p, conf::Config config, Runtime tls, WorkerSockets* sockets = nullptr) {
  tls.snapshot =
      conf::build_snapshot(std::move(config), p.runtime->snapshot.get(), &p.dns->answers());
  keep_route_caches(tls.snapshot->config, p.runtime.get(), &tls);
  tls.listener_ids = p.listeners->ids();
  tls.workers = sockets ? static_cast<uint32_t>(sockets->workers()) : p.runtime->workers;
  p.runtime = std::make_shared<const Runtime>(std::move(tls));
  for (size_t i = 0; i < p.workers.size() && i < p.runtime->workers; ++i)
    p.workers[i]->publish(p.runtime, sockets ? sockets->take_listeners(i) : ListenSockets{});
  if (sockets) resize_workers(p, sockets);
  p.checker->watch(p.runtime->snapshot, check_connectors(p));
}

// Opens what the reload to `next` needs before anything changes: sockets for the listeners it
// adds (on every worker) and for the workers it adds (every listener, and the admin). False,
// with the reason in `errors`, when one cannot be opened; `sockets` closes them all then.
bool open_sockets(Process& p, const conf::Config& next, const ListenerPlan& plan,
                  WorkerSockets* sockets, std::vector<std::string>* errors) {
  std::string error;
  const size_t kept = std::min(p.workers.size(), sockets->workers());
  if (sockets->open(next.listeners, plan, kept, next.admin.enabled ? &next.admin.address : nullptr,
                    &error))
    return true;
  errors->push_back("cannot listen on " + error);
  return false;
}

// An admin listener the reload adds or moves: its sockets for the workers that stay.
void open_admin_sockets(Process& p, const conf::AdminConfig& next, const WorkerSockets& sockets,
                        std::vector<int>* fds, std::vector<std::string>* errors) {
  std::string error;
  const size_t kept = std::min(p.workers.size(), sockets.workers());
  if (!open_moved_admin(*p.admin, next, kept, fds, &error))
    errors->push_back("cannot open the admin listener on " + error);
}

void log_listener_changes(const conf::Config& next, const ListenerPlan& plan, uint32_t drain_ms) {
  for (size_t i : plan.added)
    log(LogLevel::kInfo, "listener %s%s added", next.listeners[i].address.text.c_str(),
        next.listeners[i].tls ? " (tls)" : "");
  for (const std::string& address : plan.closed_addresses)
    log(LogLevel::kInfo, "listener %s removed: no new connections; open ones drain (%u ms at most)",
        address.c_str(), drain_ms);
}

// log.level for the error log (stderr), log.access for the access log's writer. False, with
// the reason in `errors`, when the access log file cannot be opened: nothing changes then.
bool use_log_config(const conf::LogConfig& config, std::vector<std::string>* errors) {
  std::string error;
  if (!accesslog::Writer::process().configure(config.access, &error)) {
    errors->push_back(error);
    return false;
  }
  LogLevel level;
  if (parse_log_level(config.level, &level)) set_log_level(level);
  return true;
}

// At exit, once every worker has handed over its last lines: the writer writes them out.
void stop_access_log() {
  constexpr uint32_t kWaitMs = 3000;  // for a sink that takes nothing (a pipe nobody reads)
  accesslog::Writer& writer = accesslog::Writer::process();
  if (!writer.stop(kWaitMs))
    log(LogLevel::kWarn,
        "access log: the sink did not take the last lines in %u ms; %zu KiB unwritten", kWaitMs,
        writer.queued_bytes() / 1024);
  if (const uint64_t dropped = writer.dropped())
    log(LogLevel::kWarn, "access log: %llu lines dropped in all",
        static_cast<unsigned long long>(dropped));
}

// All or nothing: the new config is checked, its TLS files loaded and the sockets it needs
// opened before anything is published; a failure at any step leaves everything as it was.
void reload(Process& p) {
  conf::ParseResult parsed = conf::load_config_file(p.config_path);
  std::vector<std::string> errors, warnings;
  for (const conf::ConfigError& e : parsed.errors) errors.push_back(e.to_string());
  Runtime tls;
  if (parsed.config) load_tls(*parsed.config, p.runtime.get(), &tls, &errors, &warnings);
  for (const std::string& w : warnings) log(LogLevel::kWarn, "%s", w.c_str());
  ListenerPlan plan;
  WorkerSockets sockets(errors.empty() ? worker_count(*parsed.config) : 0);
  std::vector<int> admin_fds;  // for the workers the reload keeps, when the admin moves
  if (errors.empty()) {
    plan = p.listeners->plan(parsed.config->listeners);
    open_sockets(p, *parsed.config, plan, &sockets, &errors);
  }
  if (errors.empty()) open_admin_sockets(p, parsed.config->admin, sockets, &admin_fds, &errors);
  if (errors.empty()) use_log_config(parsed.config->log, &errors);
  if (!errors.empty()) {
    for (int fd : admin_fds) ::close(fd);
    log(LogLevel::kError,
        "reload of %s failed; keeping the running config:", p.config_path.c_str());
    for (const std::string& e : errors) log(LogLevel::kError, "  %s", e.c_str());
    return admin_reloaded(p.admin.get(), false);
  }
  log_listener_changes(*parsed.config, plan, parsed.config->timeouts.drain_ms);
  p.listeners->commit(parsed.config->listeners, plan);
  p.dns->configure(*parsed.config);
  const conf::AdminConfig admin = parsed.config->admin;
  publish(p, std::move(*parsed.config), std::move(tls), &sockets);
  move_admin(*p.admin, admin, p.workers, &admin_fds);
  admin_reloaded(p.admin.get(), true);
  log(LogLevel::kInfo, "config reloaded (generation %llu)",
      static_cast<unsigned long long>(p.runtime->snapshot->generation));
}

// A second SIGTERM or SIGINT while stopping: the operator wants out now, whatever is in flight.
// A plain handler (async-signal-safe), since the loop may be busy or waiting on workers.
void exit_at_once(int) {
  static const char kLine[] = "sluice: a second stop signal: exiting at once\n";
  [[maybe_unused]] const ssize_t written = ::write(2, kLine, sizeof kLine - 1);
  _exit(1);
}

// After the first stop signal, a HUP is ignored (no reload while stopping) rather than left to
// its default action, and a second TERM or INT ends the process.
void take_over_stop_signals() {
  struct sigaction action = {};
  sigemptyset(&action.sa_mask);
  action.sa_handler = SIG_IGN;
  sigaction(SIGHUP, &action, nullptr);
  action.sa_handler = &exit_at_once;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

void drain(Process& p) {
  log(LogLevel::kInfo, "closing the listeners; draining");
  for (auto& w : p.workers) w->drain();
  p.checker->stop();
  p.dns->stop();
}

// Readiness fails at once; the listeners keep accepting for shutdown_delay_ms (while load
// balancers take this instance out), then the workers drain.
void begin_stop(Process& p, int signum) {
  admin_draining(p.admin.get());
  for (uv_signal_t* s : {&p.hup, &p.term, &p.intr})
    uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);  // libuv lets go of the three here
  take_over_stop_signals();
  const uint32_t delay_ms = p.runtime->snapshot->config.shutdown_delay_ms;
  if (delay_ms == 0) {
    log(LogLevel::kInfo, "signal %d: stopping", signum);
    return drain(p);
  }
  log(LogLevel::kInfo, "signal %d: not ready; accepting for %u ms more, then draining", signum,
      delay_ms);
  p.shutdown_delay.data = &p;
  uv_timer_start(
      &p.shutdown_delay, [](uv_timer_t* t) { drain(*static_cast<Process*>(t->data)); }, delay_ms,
      0);
}

void on_signal(uv_signal_t* handle, int signum) {
  auto* p = static_cast<Process*>(handle->data);
  if (signum == SIGHUP) return reload(*p);
  if (signum == SIGUSR1) return accesslog::Writer::process().reopen();
  begin_stop(*p, signum);
}

bool open_workers(Process& p) {
  const conf::Config& config = p.runtime->snapshot->config;
  p.listeners = std::make_unique<ListenerSet>(config.listeners);
  Runtime runtime = *p.runtime;
  runtime.listener_ids = p.listeners->ids();
  runtime.workers = worker_count(config);
  p.runtime = std::make_shared<const Runtime>(std::move(runtime));
  ListenerPlan plan;
  plan.ids = p.listeners->ids();
  WorkerSockets sockets(p.runtime->workers);
  std::string error;
  if (!sockets.open(config.listeners, plan, 0, nullptr, &error)) {
    log(LogLevel::kError, "cannot listen on %s", error.c_str());
    return false;
  }
  for (uint32_t i = 0; i < p.runtime->workers; ++i)
    p.workers.push_back(std::make_unique<Worker>(sockets.take_listeners(i), p.runtime));
  return true;
}

sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGTERM, SIGINT, SIGUSR1}) sigaddset(&set, s);
  return set;
}

// Handlers are in place: a signal held since start is delivered now, a HUP as a reload.
void release_signals() {
  const sigset_t set = handled_signals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace

void hold_signals() {
  const sigset_t set = handled_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int run_process(const std::string& config_path, std::shared_ptr<const Runtime> runtime) {
  Process p;
  p.config_path = config_path;
  p.runtime = std::move(runtime);
  std::vector<std::string> errors;
  if (!use_log_config(p.runtime->snapshot->config.log, &errors)) {
    log(LogLevel::kError, "%s", errors.front().c_str());
    return 1;
  }
  if (!open_workers(p)) return 1;
  if (!open_admin(p.runtime->snapshot->config, config_path, p.workers, &p.admin)) return 1;
  uv_loop_t* loop = uv_default_loop();
  p.check_connector = std::make_unique<TcpConnector>(loop, p.check_blocks, nullptr);
  p.checker = std::make_unique<health::Checker>(loop, *p.check_connector);
  p.checker->watch(p.runtime->snapshot, check_connectors(p));
  // A changed DNS answer rebuilds the snapshot from the running config; TLS stays as loaded.
  p.dns = std::make_unique<health::DnsWatch>(
      loop, [&p] { publish(p, p.runtime->snapshot->config, *p.runtime); });
  p.dns->configure(p.runtime->snapshot->config);
  // One ticket key set for every worker; a new key every 12 hours, the last few still accepted.
  uv_timer_init(loop, &p.ticket_rotation);
  const uint64_t rotate_ms = uint64_t{tls::TicketKeys::kRotateEveryS} * 1000;
  uv_timer_start(
      &p.ticket_rotation, [](uv_timer_t*) { tls::TicketKeys::process().rotate(); }, rotate_ms,
      rotate_ms);
  uv_unref(reinterpret_cast<uv_handle_t*>(&p.ticket_rotation));
  uv_timer_init(loop, &p.shutdown_delay);
  uv_timer_init(loop, &p.reap);
  p.reap.data = &p;
  uv_unref(reinterpret_cast<uv_handle_t*>(&p.reap));  // the exit joins whatever is left
  for (auto [handle, signum] : {std::pair{&p.hup, SIGHUP}, {&p.term, SIGTERM}, {&p.intr, SIGINT}}) {
    uv_signal_init(loop, handle);
    handle->data = &p;
    uv_signal_start(handle, &on_signal, signum);
  }
  // SIGUSR1 stays caught while draining; it keeps no loop running.
  uv_signal_init(loop, &p.usr1);
  p.usr1.data = &p;
  uv_signal_start(&p.usr1, &on_signal, SIGUSR1);
  uv_unref(reinterpret_cast<uv_handle_t*>(&p.usr1));
  for (auto& w : p.workers) w->start();
  admin_started(p.admin.get());
  release_signals();
  std::string addresses;
  for (const conf::ListenerConfig& l : p.runtime->snapshot->config.listeners)
    addresses += " " + l.address.text + (l.tls ? " (tls)" : "");
  log(LogLevel::kInfo, "sluice started: %zu workers, listening on%s", p.workers.size(),
      addresses.c_str());
  uv_run(loop, UV_RUN_DEFAULT);
  for (auto& w : p.workers) w->join();
  for (auto& w : p.retiring) w->join();
  p.workers.clear();
  p.retiring.clear();
  stop_access_log();
  log(LogLevel::kInfo, "sluice stopped");
  return 0;
}

}  // namespace sluice::core
