// A blocking loop per lookup keeps the c-ares channel private to one thread.
#include "health/dns_lookup.h"

#include <ares.h>
#include <arpa/inet.h>
#include <poll.h>

#include <algorithm>
#include <mutex>

namespace sluice::health {
namespace {

void ensure_library() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

void collect(void* arg, int status, int, ares_addrinfo* result) {
  auto* out = static_cast<DnsResult*>(arg);
  out->status = status;
  if (status != ARES_SUCCESS || result == nullptr) return;
  bool first = true;
  for (ares_addrinfo_node* n = result->nodes; n != nullptr; n = n->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    uint16_t port = 0;
    if (n->ai_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(n->ai_addr);
      inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
      port = ntohs(sin->sin_port);
    } else if (n->ai_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(n->ai_addr);
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
      port = ntohs(sin6->sin6_port);
    } else {
      continue;
    }
    std::string host;
    if (n->ai_family == AF_INET6)
      host.append("[").append(text).append("]");
    else
      host.append(text);
    host.append(":").append(std::to_string(port));
    if (auto parsed = conf::parse_socket_address(host))
      out->addresses.push_back(std::move(*parsed));
    const uint32_t ttl = n->ai_ttl > 0 ? static_cast<uint32_t>(n->ai_ttl) : 0;
    out->ttl_s = first ? ttl : std::min(out->ttl_s, ttl);
    first = false;
  }
  ares_freeaddrinfo(result);
}

}  // namespace

const char* DnsResult::error() const {
  if (status == ARES_SUCCESS) return addresses.empty() ? "no addresses" : "no error";
  return ares_strerror(status);
}

DnsResult lookup_name(const std::string& name, uint16_t port, const conf::ResolverConfig& resolver,
                      bool search) {
  ensure_library();
  DnsResult result;
  ares_channel channel;
  ares_options options{};
  options.timeout = static_cast<int>(resolver.timeout_ms);
  options.tries = 2;
  options.flags = search ? 0 : ARES_FLAG_NOSEARCH;
  if (ares_init_options(&channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS) !=
      ARES_SUCCESS) {
    result.status = ARES_ENOMEM;
    return result;
  }
  std::string servers;
  for (const std::string& s : resolver.nameservers) {
    if (!servers.empty()) servers += ',';
    servers += s;
  }
  if (!servers.empty()) ares_set_servers_ports_csv(channel, servers.c_str());
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NUMERICSERV;
  const std::string service = std::to_string(port);
  result.status = ARES_ETIMEOUT;
  ares_getaddrinfo(channel, name.c_str(), service.c_str(), &hints, &collect, &result);
  // poll(), not select(): a busy proxy has descriptors past FD_SETSIZE, which an fd_set cannot
  // hold.
  for (;;) {
    ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
    const int bits = ares_getsock(channel, sockets, ARES_GETSOCK_MAXNUM);
    pollfd fds[ARES_GETSOCK_MAXNUM];
    nfds_t count = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      const bool readable = ARES_GETSOCK_READABLE(bits, i);
      const bool writable = ARES_GETSOCK_WRITABLE(bits, i);
      if (!readable && !writable) continue;
      fds[count++] = pollfd{
          sockets[i], static_cast<short>((readable ? POLLIN : 0) | (writable ? POLLOUT : 0)), 0};
    }
    if (count == 0) break;
    timeval tv;
    const timeval* wait = ares_timeout(channel, nullptr, &tv);
    const int ms = wait ? static_cast<int>(wait->tv_sec * 1000 + wait->tv_usec / 1000) : 1000;
    if (::poll(fds, count, ms) <= 0) {
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
      continue;
    }
    for (nfds_t i = 0; i < count; ++i) {
      const bool in = fds[i].revents & (POLLIN | POLLERR | POLLHUP);
      const bool out = fds[i].revents & POLLOUT;
      ares_process_fd(channel, in ? fds[i].fd : ARES_SOCKET_BAD, out ? fds[i].fd : ARES_SOCKET_BAD);
    }
  }
  ares_destroy(channel);
  return result;
}

}  // namespace sluice::health
