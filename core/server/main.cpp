// The sluice command: parse the command line, validate the config, run the process.
#include <signal.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "conf/config.h"
#include "conf/snapshot.h"
#include "core/forward/password.h"
#include "core/server/probe.h"
#include "core/server/process.h"
#include "core/server/runtime.h"
#include "version.h"

namespace {

constexpr const char* kUsage =
    "usage: sluice -c FILE      run with the JSON config FILE (also --config FILE)\n"
    "       sluice --check FILE validate FILE, print any errors, exit 0 (valid) or 1\n"
    "       sluice --probe URL  GET URL (http://127.0.0.1:PORT/PATH or http://[::1]:PORT/PATH)\n"
    "                           within 2 s; exit 0 on a 2xx answer, 1 otherwise with the reason\n"
    "                           (a container health check: --probe http://127.0.0.1:9901/healthz)\n"
    "       sluice hash-password  read a password (first line of stdin) and print the scrypt\n"
    "                           hash a forward listener's \"users\" take\n"
    "       sluice --version    print the version\n"
    "       sluice --help       print this help\n"
    "Signals: SIGHUP reloads the config, SIGUSR1 reopens the access log file,\n"
    "         SIGTERM and SIGINT drain and exit.\n";

// Many concurrent clients need many descriptors; take what the hard limit allows.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// Reads the config and every TLS file it names; prints each problem and warning.
int load(const std::string& path, sluice::conf::ParseResult* out, sluice::core::Runtime* tls) {
  *out = sluice::conf::load_config_file(path);
  std::vector<std::string> errors, warnings;
  for (const sluice::conf::ConfigError& e : out->errors) errors.push_back(e.to_string());
  if (out->config) sluice::core::load_tls(*out->config, nullptr, tls, &errors, &warnings);
  for (const std::string& w : warnings)
    std::fprintf(stderr, "sluice: %s: warning: %s\n", path.c_str(), w.c_str());
  for (const std::string& e : errors)
    std::fprintf(stderr, "sluice: %s: %s\n", path.c_str(), e.c_str());
  return errors.empty() ? 0 : 1;
}

// The password comes from stdin, never the command line (other users can read that in ps);
// on a terminal it is asked for without echo.
int hash_password_command() {
  const bool tty = isatty(STDIN_FILENO) == 1;
  termios saved{};
  if (tty) {
    std::fputs("password: ", stderr);
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string password;
  for (int c; (c = std::getchar()) != EOF && c != '\n';) password += static_cast<char>(c);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::fputs("\n", stderr);
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty()) {
    std::fputs("sluice: hash-password: no password on stdin\n", stderr);
    return 1;
  }
  const std::string hash = sluice::forward::hash_password(password);
  if (hash.empty()) {
    std::fputs("sluice: hash-password: OpenSSL could not derive the key\n", stderr);
    return 1;
  }
  std::printf("%s\n", hash.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals that arrive while starting (a reload sent as soon as the port answers) wait until
  // their handlers are in place: run_process unblocks them then. Threads inherit the mask.
  sluice::core::hold_signals();
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version" || arg == "-v") {
      std::printf("sluice %s\n", SLUICE_VERSION);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "hash-password" && i == 1 && argc == 2) {
      return hash_password_command();
    } else if (arg == "--probe" && i + 2 == argc) {
      return sluice::core::probe_command(argv[i + 1]);
    } else if ((arg == "-c" || arg == "--config" || arg == "--check") && i + 1 < argc) {
      check_only = check_only || arg == "--check";
      config_path = argv[++i];
    } else {
      std::fprintf(stderr, "sluice: unknown or incomplete argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  sluice::conf::ParseResult parsed;
  sluice::core::Runtime runtime;
  if (load(config_path, &parsed, &runtime) != 0) return 1;
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  runtime.snapshot = sluice::conf::build_snapshot(std::move(*parsed.config), nullptr);
  sluice::core::keep_route_caches(runtime.snapshot->config, nullptr, &runtime);
  return sluice::core::run_process(
      config_path, std::make_shared<const sluice::core::Runtime>(std::move(runtime)));
}
