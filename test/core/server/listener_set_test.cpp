// Matching listeners across reloads: a listener is its address, TLS or not and PROXY headers or
// not; kept ones keep their ids, added ones get ids never used before, and the sockets a reload
// needs are opened all at once or not at all.
#include "core/server/listener_set.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"

namespace sluice::core {
namespace {

conf::ListenerConfig listener(const std::string& address, bool proxy = false) {
  conf::ListenerConfig l;
  const std::optional<conf::SocketAddress> parsed = conf::parse_socket_address(address);
  REQUIRE(parsed);
  l.address = *parsed;
  l.proxy_protocol = proxy;
  return l;
}

TEST_CASE("a reload keeps the ids of listeners it keeps, wherever they move", "[server]") {
  ListenerSet set({listener("127.0.0.1:8080"), listener("127.0.0.1:8081")});
  CHECK(set.ids() == std::vector<int32_t>{0, 1});
  const std::vector<conf::ListenerConfig> next = {listener("127.0.0.1:8082"),
                                                  listener("127.0.0.1:8081")};
  const ListenerPlan plan = set.plan(next);
  CHECK(plan.ids == std::vector<int32_t>{2, 1});
  CHECK(plan.added == std::vector<size_t>{0});
  CHECK(plan.closed == std::vector<int32_t>{0});
  CHECK(plan.closed_addresses == std::vector<std::string>{"127.0.0.1:8080"});
  CHECK(set.ids() == std::vector<int32_t>{0, 1});  // planning changes nothing
  set.commit(next, plan);
  CHECK(set.ids() == std::vector<int32_t>{2, 1});
}

TEST_CASE("an address that comes back is a new listener with a new id", "[server]") {
  const std::vector<conf::ListenerConfig> two = {listener("127.0.0.1:8080"),
                                                 listener("127.0.0.1:8081")};
  const std::vector<conf::ListenerConfig> one = {listener("127.0.0.1:8080")};
  ListenerSet set(two);
  std::vector<int32_t> seen;
  for (int round = 0; round < 3; ++round) {
    set.commit(one, set.plan(one));
    CHECK(set.ids() == std::vector<int32_t>{0});
    const ListenerPlan plan = set.plan(two);
    CHECK(plan.added == std::vector<size_t>{1});
    set.commit(two, plan);
    seen.push_back(set.ids()[1]);
  }
  CHECK(seen == std::vector<int32_t>{2, 3, 4});
}

TEST_CASE("turning PROXY headers on makes another listener on the same address", "[server]") {
  ListenerSet set({listener("127.0.0.1:8080")});
  const ListenerPlan plan = set.plan({listener("127.0.0.1:8080", true)});
  CHECK(plan.ids == std::vector<int32_t>{1});
  CHECK(plan.added == std::vector<size_t>{0});
  CHECK(plan.closed == std::vector<int32_t>{0});
  // An unchanged config changes nothing.
  const ListenerPlan same = set.plan({listener("127.0.0.1:8080")});
  CHECK(same.ids == std::vector<int32_t>{0});
  CHECK(same.added.empty());
  CHECK(same.closed.empty());
}

// A port that was free a moment ago.
conf::ListenerConfig free_listener() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  socklen_t length = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &length);
  ::close(fd);
  return listener("127.0.0.1:" + std::to_string(ntohs(sa.sin_port)));
}

TEST_CASE("kept workers get sockets for added listeners, new workers for all", "[server]") {
  const conf::ListenerConfig kept = free_listener(), added = free_listener();
  ListenerSet set({kept});
  const std::vector<conf::ListenerConfig> next = {kept, added};
  const ListenerPlan plan = set.plan(next);
  WorkerSockets sockets(3);
  std::string error;
  REQUIRE(sockets.open(next, plan, 2, nullptr, &error));
  for (size_t w = 0; w < 2; ++w) {
    const ListenSockets mine = sockets.take_listeners(w);
    REQUIRE(mine.size() == 1);
    CHECK(mine[0].id == 1);
    ::close(mine[0].fd);
  }
  const ListenSockets fresh = sockets.take_listeners(2);
  REQUIRE(fresh.size() == 2);
  CHECK(fresh[0].id == 0);
  CHECK(fresh[1].id == 1);
  for (const ListenSocket& s : fresh) ::close(s.fd);
  CHECK(sockets.take_admin(2) == -1);
}

TEST_CASE("an address in use fails the whole batch, which closes what it opened", "[server]") {
  const conf::ListenerConfig free = free_listener(), taken = free_listener();
  const int holder = ::socket(AF_INET, SOCK_STREAM, 0);  // no SO_REUSEPORT: nobody may share
  const auto* sa = reinterpret_cast<const sockaddr*>(&taken.address.storage);
  REQUIRE(::bind(holder, sa, taken.address.length) == 0);
  REQUIRE(::listen(holder, 1) == 0);
  ListenerSet set({});
  const std::vector<conf::ListenerConfig> next = {free, taken};
  std::string error;
  {
    WorkerSockets sockets(2);
    CHECK_FALSE(sockets.open(next, set.plan(next), 0, nullptr, &error));
  }
  CHECK(error.find(taken.address.text) != std::string::npos);
  CHECK(error.find("in use") != std::string::npos);
  // The sockets opened on the free address before the failure are closed: a plain bind works.
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  CHECK(::bind(probe, reinterpret_cast<const sockaddr*>(&free.address.storage),
               free.address.length) == 0);
  ::close(probe);
  ::close(holder);
}

TEST_CASE("max_connections is shared out by the worker count, rounded up", "[server]") {
  CHECK(connection_share(10, 4) == 3);
  CHECK(connection_share(10, 1) == 10);
  CHECK(connection_share(10, 0) == 10);
  CHECK(connection_share(1, 8) == 1);
  CHECK(connection_share(4'000'000'000u, 3) == 1'333'333'334u);
}

}  // namespace
}  // namespace sluice::core
