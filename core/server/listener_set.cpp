// Matching listeners across a reload, and opening the sockets it needs all at once.
#include "core/server/listener_set.h"

#include <unistd.h>

#include <algorithm>

namespace sluice::core {
namespace {

// What makes two listeners the same: the address, TLS or not, PROXY headers or not. TLS
// settings and proxy_protocol_from may change on a kept listener: they apply to the
// connections accepted after the reload.
std::string key_of(const conf::ListenerConfig& l) {
  std::string key = l.address.text;
  key += l.tls ? " tls" : " plain";
  key += l.proxy_protocol ? " proxy" : "";
  return key;
}

}  // namespace

ListenerSet::ListenerSet(const std::vector<conf::ListenerConfig>& listeners) {
  for (const conf::ListenerConfig& l : listeners) {
    keys_.push_back(key_of(l));
    addresses_.push_back(l.address.text);
    ids_.push_back(next_id_++);
  }
}

ListenerPlan ListenerSet::plan(const std::vector<conf::ListenerConfig>& next) const {
  ListenerPlan plan;
  std::vector<bool> kept(keys_.size(), false);
  int32_t id = next_id_;
  for (size_t i = 0; i < next.size(); ++i) {
    const std::string key = key_of(next[i]);
    size_t j = 0;
    while (j < keys_.size() && (kept[j] || keys_[j] != key)) ++j;
    if (j < keys_.size()) {
      kept[j] = true;
      plan.ids.push_back(ids_[j]);
    } else {
      plan.ids.push_back(id++);
      plan.added.push_back(i);
    }
  }
  for (size_t j = 0; j < keys_.size(); ++j) {
    if (kept[j]) continue;
    plan.closed.push_back(ids_[j]);
    plan.closed_addresses.push_back(addresses_[j]);
  }
  return plan;
}

void ListenerSet::commit(const std::vector<conf::ListenerConfig>& next, const ListenerPlan& plan) {
  keys_.clear();
  addresses_.clear();
  for (const conf::ListenerConfig& l : next) {
    keys_.push_back(key_of(l));
    addresses_.push_back(l.address.text);
  }
  ids_ = plan.ids;
  for (int32_t id : ids_) next_id_ = std::max(next_id_, id + 1);
}

WorkerSockets::~WorkerSockets() {
  for (const ListenSockets& sockets : listeners_)
    for (const ListenSocket& s : sockets) ::close(s.fd);
  for (int fd : admin_)
    if (fd >= 0) ::close(fd);
}

bool WorkerSockets::open_one(size_t worker, int32_t id, const conf::SocketAddress& address,
                             std::string* error) {
  const int fd = open_listening_socket(address, error);
  if (fd < 0) return false;
  listeners_[worker].push_back({id, fd});
  return true;
}

bool WorkerSockets::open(const std::vector<conf::ListenerConfig>& next, const ListenerPlan& plan,
                         size_t kept, const conf::SocketAddress* admin, std::string* error) {
  for (size_t w = 0; w < listeners_.size(); ++w) {
    if (w < kept) {
      for (size_t i : plan.added)
        if (!open_one(w, plan.ids[i], next[i].address, error)) return false;
      continue;
    }
    for (size_t i = 0; i < next.size(); ++i)
      if (!open_one(w, plan.ids[i], next[i].address, error)) return false;
    if (admin && (admin_[w] = open_listening_socket(*admin, error)) < 0) {
      *error = "admin listener " + *error;
      return false;
    }
  }
  return true;
}

ListenSockets WorkerSockets::take_listeners(size_t worker) {
  ListenSockets out;
  if (worker < listeners_.size()) out.swap(listeners_[worker]);
  return out;
}

int WorkerSockets::take_admin(size_t worker) {
  if (worker >= admin_.size()) return -1;
  const int fd = admin_[worker];
  admin_[worker] = -1;
  return fd;
}

}  // namespace sluice::core
