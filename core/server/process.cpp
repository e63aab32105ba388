// The main thread: workers, signals and reloads.
#include "core/server/process.h"

#include <uv.h>

#include <algorithm>
#include <map>
#include <thread>
#include <vector>

#include "core/io/log.h"
#include "core/io/tcp_stream.h"
#include "core/server/listener.h"
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
  std::vector<std::unique_ptr<Worker>> workers;
  BlockPool check_blocks{16 * 1024, 16};
  std::unique_ptr<TcpConnector> check_connector;  // the checks' transport
  std::map<const tls::ClientContext*, std::unique_ptr<tls::TlsConnector>> check_tls;
  std::unique_ptr<health::Checker> checker;
  std::unique_ptr<health::DnsWatch> dns;
  uv_signal_t hup, term, intr;
  uv_timer_t ticket_rotation;
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

// Hands a new runtime, with a snapshot built from `config`, to every worker and to the checker.
// `tls` carries the contexts already loaded for it.
void publish(Process& p, conf::Config config, Runtime tls) {
  tls.snapshot =
      conf::build_snapshot(std::move(config), p.runtime->snapshot.get(), &p.dns->answers());
  p.runtime = std::make_shared<const Runtime>(std::move(tls));
  for (auto& w : p.workers) w->publish(p.runtime);
  p.checker->watch(p.runtime->snapshot, check_connectors(p));
}

uint32_t worker_count(const conf::Config& config) {
  if (config.workers > 0) return config.workers;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores > 0 ? cores : 1;
}

bool same_listeners(const conf::Config& a, const conf::Config& b) {
  if (a.listeners.size() != b.listeners.size()) return false;
  for (size_t i = 0; i < a.listeners.size(); ++i) {
    if (a.listeners[i].address.text != b.listeners[i].address.text) return false;
    if (a.listeners[i].tls.has_value() != b.listeners[i].tls.has_value()) return false;
    if (a.listeners[i].proxy_protocol != b.listeners[i].proxy_protocol) return false;
    const auto& from_a = a.listeners[i].proxy_protocol_from;
    const auto& from_b = b.listeners[i].proxy_protocol_from;
    if (!std::equal(from_a.begin(), from_a.end(), from_b.begin(), from_b.end(),
                    [](const auto& x, const auto& y) { return x.text == y.text; }))
      return false;
  }
  return true;
}

void reload(Process& p) {
  conf::ParseResult parsed = conf::load_config_file(p.config_path);
  std::vector<std::string> errors, warnings;
  for (const conf::ConfigError& e : parsed.errors) errors.push_back(e.to_string());
  Runtime tls;
  if (parsed.config) load_tls(*parsed.config, p.runtime.get(), &tls, &errors, &warnings);
  for (const std::string& w : warnings) log(LogLevel::kWarn, "%s", w.c_str());
  if (!errors.empty()) {
    log(LogLevel::kError,
        "reload of %s failed; keeping the running config:", p.config_path.c_str());
    for (const std::string& e : errors) log(LogLevel::kError, "  %s", e.c_str());
    return;
  }
  if (!same_listeners(*parsed.config, p.runtime->snapshot->config))
    log(LogLevel::kWarn, "listener changes take effect after a restart");
  if (worker_count(*parsed.config) != p.workers.size())
    log(LogLevel::kWarn, "a new worker count takes effect after a restart");
  p.dns->configure(*parsed.config);
  publish(p, std::move(*parsed.config), std::move(tls));
  log(LogLevel::kInfo, "config reloaded (generation %llu)",
      static_cast<unsigned long long>(p.runtime->snapshot->generation));
}

void on_signal(uv_signal_t* handle, int signum) {
  auto* p = static_cast<Process*>(handle->data);
  if (signum == SIGHUP) return reload(*p);
  log(LogLevel::kInfo, "signal %d: draining", signum);
  for (auto& w : p->workers) w->drain();
  p->checker->stop();
  p->dns->stop();
  for (uv_signal_t* s : {&p->hup, &p->term, &p->intr})
    uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
}

bool open_workers(Process& p) {
  const uint32_t count = worker_count(p.runtime->snapshot->config);
  for (uint32_t i = 0; i < count; ++i) {
    std::vector<int> fds;
    for (const conf::ListenerConfig& l : p.runtime->snapshot->config.listeners) {
      std::string error;
      const int fd = open_listening_socket(l.address, &error);
      if (fd < 0) {
        log(LogLevel::kError, "cannot listen on %s", error.c_str());
        return false;
      }
      fds.push_back(fd);
    }
    p.workers.push_back(std::make_unique<Worker>(std::move(fds), p.runtime));
  }
  return true;
}

}  // namespace

int run_process(const std::string& config_path, std::shared_ptr<const Runtime> runtime) {
  Process p;
  p.config_path = config_path;
  p.runtime = std::move(runtime);
  if (!open_workers(p)) return 1;
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
  for (auto [handle, signum] : {std::pair{&p.hup, SIGHUP}, {&p.term, SIGTERM}, {&p.intr, SIGINT}}) {
    uv_signal_init(loop, handle);
    handle->data = &p;
    uv_signal_start(handle, &on_signal, signum);
  }
  for (auto& w : p.workers) w->start();
  std::string addresses;
  for (const conf::ListenerConfig& l : p.runtime->snapshot->config.listeners)
    addresses += " " + l.address.text + (l.tls ? " (tls)" : "");
  log(LogLevel::kInfo, "sluice started: %zu workers, listening on%s", p.workers.size(),
      addresses.c_str());
  uv_run(loop, UV_RUN_DEFAULT);
  for (auto& w : p.workers) w->join();
  p.workers.clear();
  log(LogLevel::kInfo, "sluice stopped");
  return 0;
}

}  // namespace sluice::core
