// Access lists and trusted proxies as a snapshot holds them: prefix trees built once per config
// from the "access" objects of listeners and routes and the top-level "trusted_proxies", read by
// the access gates of core/proxy on every connection and request. See docs/access.md.
#pragma once

#include <vector>

#include "conf/config.h"
#include "conf/prefix_tree.h"

namespace sluice::conf {

// One "access" object: the most specific network across allow and deny decides; a network in
// both denies. An address in neither list is refused when there is an allow list, else let in.
class AccessList {
 public:
  AccessList() = default;  // no "access": everyone passes
  explicit AccessList(const AccessConfig& config);

  bool configured() const { return configured_; }
  bool allows(const IpAddress& client) const {
    if (!configured_) return true;
    const int verdict = tree_.lookup(client);
    return verdict == PrefixTree::kNone ? !has_allow_ : verdict == kAllow;
  }

 private:
  static constexpr uint8_t kAllow = 0, kDeny = 1;  // deny ranks higher: it wins a tie
  PrefixTree tree_;
  bool configured_ = false;
  bool has_allow_ = false;
};

struct AccessTables {
  PrefixTree trusted_proxies;         // empty: a client is who its connection says it is
  std::vector<AccessList> listeners;  // one per config listener
  std::vector<AccessList> routes;     // one per config route
  bool any_listener = false;          // some listener has an access list
  bool any_route = false;             // some route has one
};

AccessTables build_access_tables(const Config& config);

}  // namespace sluice::conf
