// Builds the access tables of a snapshot: one prefix tree per access list, one for the trusted
// proxies. Runs on the main thread at load and reload.
#include "conf/access_list.h"

namespace sluice::conf {

AccessList::AccessList(const AccessConfig& config)
    : configured_(true), has_allow_(!config.allow.empty()) {
  PrefixTree::Builder builder;
  for (const Cidr& network : config.allow) builder.add(network, kAllow);
  for (const Cidr& network : config.deny) builder.add(network, kDeny);
  tree_ = builder.build();
}

AccessTables build_access_tables(const Config& config) {
  AccessTables tables;
  PrefixTree::Builder trusted;
  for (const Cidr& network : config.trusted_proxies) trusted.add(network, 1);
  tables.trusted_proxies = trusted.build();
  for (const ListenerConfig& listener : config.listeners) {
    tables.listeners.push_back(listener.access ? AccessList(*listener.access) : AccessList());
    tables.any_listener = tables.any_listener || listener.access.has_value();
  }
  for (const RouteConfig& route : config.routes) {
    tables.routes.push_back(route.access ? AccessList(*route.access) : AccessList());
    tables.any_route = tables.any_route || route.access.has_value();
  }
  return tables;
}

}  // namespace sluice::conf
