// DNS discovery for backends listed as {"dns": "name:port"}: every A/AAAA record becomes a
// backend. Names are resolved with c-ares on libuv's thread pool, never on a worker's loop, and
// re-resolved every refresh_s. A failed lookup keeps the last good answer and is logged once.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "conf/snapshot.h"

namespace sluice::health {

class DnsWatch {
 public:
  // `on_change` runs on `loop` whenever the set of addresses of some name changed.
  DnsWatch(uv_loop_t* loop, std::function<void()> on_change);
  ~DnsWatch();
  DnsWatch(const DnsWatch&) = delete;
  DnsWatch& operator=(const DnsWatch&) = delete;

  // Takes the DNS backends of `config`; answers for names still listed are kept.
  void configure(const conf::Config& config);
  const conf::DnsAnswers& answers() const { return answers_; }
  bool has_targets() const { return !targets_.empty(); }
  void stop();

 private:
  struct Target {
    std::string key, name;
    uint16_t port = 0;
    uint32_t refresh_s = 10;
    uint64_t next_due_ms = 0;
    bool in_flight = false;
    bool failing = false;
  };
  struct Lookup;

  static void on_tick(uv_timer_t* timer);
  static void resolve(uv_work_t* work);  // runs on the thread pool
  static void on_resolved(uv_work_t* work, int status);
  void start_lookup(Target& target);
  void apply(Lookup& lookup);

  uv_loop_t* loop_;
  uv_timer_t tick_;
  std::function<void()> on_change_;
  std::vector<Target> targets_;
  conf::ResolverConfig resolver_;
  conf::DnsAnswers answers_;
  bool stopped_ = false;
};

}  // namespace sluice::health
