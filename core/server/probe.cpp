// A blocking HTTP/1.1 GET with one deadline for the whole exchange; see probe.h.
#include "core/server/probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>

#include "conf/socket_address.h"

namespace sluice::core {
namespace {

using Clock = std::chrono::steady_clock;

struct Target {
  conf::SocketAddress address;
  std::string authority;  // as written in the URL, for the Host header
  std::string path;       // with the query
};

ProbeResult fail(std::string why) {
  return {false, std::move(why)};
}

bool is_loopback(const conf::SocketAddress& address) {
  if (address.storage.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&address.storage);
    return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
}

// http://HOST[:PORT][/PATH][?QUERY][#FRAGMENT], HOST a numeric loopback address.
bool parse_url(std::string_view url, Target* out, std::string* why) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) {
    *why = url.starts_with("https://") ? "https is not supported (the admin listener is plain HTTP)"
                                       : "expected a URL starting with http://";
    return false;
  }
  url.remove_prefix(kScheme.size());
  if (const size_t hash = url.find('#'); hash != std::string_view::npos) url = url.substr(0, hash);
  const size_t end = url.find_first_of("/?");
  out->authority = std::string(url.substr(0, end));
  out->path = end == std::string_view::npos ? "/" : std::string(url.substr(end));
  if (out->path.starts_with('?')) out->path = "/" + out->path;
  for (const char c : out->path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      *why = "the path has a space or a control character";
      return false;
    }
  }
  if (out->authority.find('@') != std::string::npos) {
    *why = "user information in the URL is not supported";
    return false;
  }
  std::string host_port = out->authority;
  const bool has_port = host_port.starts_with('[') ? host_port.find("]:") != std::string::npos
                                                   : host_port.find(':') != std::string::npos;
  if (!has_port) host_port += ":80";
  std::string problem;
  std::optional<conf::SocketAddress> address = conf::parse_socket_address(host_port, &problem);
  if (!address) {
    *why = "\"" + out->authority + "\": " + problem +
           " (expected 127.0.0.1:PORT or [::1]:PORT; names are not resolved)";
    return false;
  }
  if (!is_loopback(*address)) {
    *why = "\"" + out->authority + "\" is not a loopback address (127.0.0.1 or [::1])";
    return false;
  }
  out->address = std::move(*address);
  return true;
}

// Milliseconds left before `deadline`, at least 0.
int remaining_ms(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Waits for `events` on fd; false when the deadline passed first.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

std::string system_error(const char* what, int error) {
  return std::string(what) + ": " + std::strerror(error);
}

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

ProbeResult exchange(const Target& target, int timeout_ms) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string timed_out = "no response within " + std::to_string(timeout_ms) + " ms";
  Socket socket(
      ::socket(target.address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (socket.fd() < 0) return fail(system_error("socket", errno));

  if (::connect(socket.fd(), reinterpret_cast<const sockaddr*>(&target.address.storage),
                target.address.length) != 0) {
    if (errno != EINPROGRESS) return fail(system_error("connect", errno));
    if (!wait_for(socket.fd(), POLLOUT, deadline)) return fail(timed_out + " (connecting)");
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(socket.fd(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) return fail(system_error("connect", error));
  }

  const std::string request = "GET " + target.path + " HTTP/1.1\r\nHost: " + target.authority +
                              "\r\nUser-Agent: sluice-probe\r\nConnection: close\r\n\r\n";
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n =
        ::send(socket.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
    } else if (errno == EAGAIN) {
      if (!wait_for(socket.fd(), POLLOUT, deadline)) return fail(timed_out + " (sending)");
    } else if (errno != EINTR) {
      return fail(system_error("send", errno));
    }
  }

  // The status line is all the probe needs; the rest of the response is left unread.
  std::string head;
  char buffer[1024];
  size_t line_end;
  while ((line_end = head.find("\r\n")) == std::string::npos) {
    if (head.size() > 4096) return fail("no status line in the first 4096 bytes");
    const ssize_t n = ::recv(socket.fd(), buffer, sizeof buffer, 0);
    if (n > 0) {
      head.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      return fail(head.empty() ? "the connection was closed without a response"
                               : "the connection was closed within the status line");
    } else if (errno == EAGAIN) {
      if (!wait_for(socket.fd(), POLLIN, deadline)) return fail(timed_out);
    } else if (errno != EINTR) {
      return fail(system_error("recv", errno));
    }
  }

  // "HTTP/1.x SSS reason"
  const std::string line = head.substr(0, line_end);
  const bool well_formed = line.size() >= 12 && line.starts_with("HTTP/1.") && line[8] == ' ' &&
                           std::isdigit(static_cast<unsigned char>(line[9])) &&
                           std::isdigit(static_cast<unsigned char>(line[10])) &&
                           std::isdigit(static_cast<unsigned char>(line[11])) &&
                           (line.size() == 12 || line[12] == ' ');
  if (!well_formed) {
    std::string shown = line.substr(0, 80);
    for (char& c : shown)
      if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) c = '?';
    return fail("not an HTTP/1 status line: \"" + shown + "\"");
  }
  const std::string status = line.substr(9);
  if (line[9] != '2') return fail("answered " + status);
  return {true, status};
}

}  // namespace

ProbeResult probe(std::string_view url, int timeout_ms) {
  Target target;
  std::string why;
  if (!parse_url(url, &target, &why)) return fail(why);
  return exchange(target, timeout_ms);
}

int probe_command(std::string_view url) {
  const ProbeResult result = probe(url);
  const std::string shown(url);
  if (result.ok) {
    std::printf("%s: %s\n", shown.c_str(), result.detail.c_str());
    return 0;
  }
  std::fprintf(stderr, "sluice: probe %s: %s\n", shown.c_str(), result.detail.c_str());
  return 1;
}

}  // namespace sluice::core
