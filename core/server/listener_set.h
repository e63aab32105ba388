// The main thread's view of the listeners across reloads. A listener is known by its address,
// whether it speaks TLS and whether it reads PROXY headers; a reload that keeps all three keeps
// the listener, its sockets and its id. Anything else is a listener removed (its sockets close,
// its connections drain) and one added (new sockets, a new id). Ids are never reused, so a
// connection always names the listener it came in on, even after that one is gone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "conf/config.h"
#include "core/server/listener.h"

namespace sluice::core {

// What a reload does to the listeners, before anything is done.
struct ListenerPlan {
  std::vector<int32_t> ids;                   // per listener of the new config, in order: its id
  std::vector<size_t> added;                  // the new config's listeners that open now (indexes)
  std::vector<int32_t> closed;                // ids of the listeners that close
  std::vector<std::string> closed_addresses;  // ... and their addresses, for the log
};

class ListenerSet {
 public:
  // The listeners the process starts with: ids 0, 1, ... in config order.
  explicit ListenerSet(const std::vector<conf::ListenerConfig>& listeners);

  // Matches `next` against the listeners open now; changes nothing.
  ListenerPlan plan(const std::vector<conf::ListenerConfig>& next) const;
  // The reload went through: `next` (planned as `plan`) is what is open now.
  void commit(const std::vector<conf::ListenerConfig>& next, const ListenerPlan& plan);

  const std::vector<int32_t>& ids() const { return ids_; }  // per listener open now

 private:
  std::vector<std::string> keys_;  // per listener open now: what it is (see key_of)
  std::vector<std::string> addresses_;
  std::vector<int32_t> ids_;
  int32_t next_id_ = 0;
};

// The listening sockets a start or reload needs, opened before anything is committed (so that
// an address in use fails the reload and leaves everything as it was): per worker, its
// sockets by listener id and its admin socket (-1: none). What is not taken is closed.
class WorkerSockets {
 public:
  explicit WorkerSockets(size_t workers) : listeners_(workers), admin_(workers, -1) {}
  ~WorkerSockets();
  WorkerSockets(const WorkerSockets&) = delete;
  WorkerSockets& operator=(const WorkerSockets&) = delete;

  // Workers [0, kept) run already and get sockets for the plan's added listeners; the others
  // are new and get one for every listener of `next`, and an admin socket when `admin` is set.
  // False, with the address and the reason in `error`, at the first socket that fails.
  bool open(const std::vector<conf::ListenerConfig>& next, const ListenerPlan& plan, size_t kept,
            const conf::SocketAddress* admin, std::string* error);

  size_t workers() const { return listeners_.size(); }
  ListenSockets take_listeners(size_t worker);
  int take_admin(size_t worker);

 private:
  bool open_one(size_t worker, int32_t id, const conf::SocketAddress& address, std::string* error);

  std::vector<ListenSockets> listeners_;
  std::vector<int> admin_;
};

}  // namespace sluice::core
