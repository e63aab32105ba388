// 4. A target that is not a route: the origin a forward proxy's client names (absolute-form or
// CONNECT) or, on an intercept listener, the address the kernel redirected the client from.
// An OriginSource (core/forward) checks the destination against the listener's allow list,
// resolves a name off the loop and answers with an Origin: a one-backend upstream that the
// exchange's attempts, pooling and relay use as they use a route's.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "conf/config.h"
#include "conf/snapshot.h"
#include "core/proxy/phases.h"

namespace sluice::core {

// The origin as a pool of one backend named "host:port" (idle connections are pooled under
// that name), with the settings a forward origin gets.
using Origin = conf::Upstream;

struct OriginQuery {
  std::string_view host;  // a name or an IP literal (IPv6 in brackets), as the request wrote it
  uint16_t port = 0;
  const conf::ForwardConfig* forward = nullptr;  // the listener's: allow list, users, ...
  std::string_view credentials;                  // the request's Proxy-Authorization, if any
};

class OriginWaiter {
 public:
  // Exactly one of `origin` and `refusal` is set; `refusal` is valid during the call.
  virtual void on_origin(std::shared_ptr<const Origin> origin, const LocalReply* refusal) = 0;

 protected:
  ~OriginWaiter() = default;
};

class OriginSource {
 public:
  virtual ~OriginSource() = default;
  // Answers through `waiter`, before returning when it can (a literal, a cached name), else
  // later on the same loop, unless cancel(waiter) comes first.
  virtual void find(const OriginQuery& query, OriginWaiter* waiter) = 0;
  virtual void cancel(OriginWaiter* waiter) = 0;
};

}  // namespace sluice::core
