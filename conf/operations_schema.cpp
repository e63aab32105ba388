// The operator-facing top-level keys: request IDs, logs and the admin listener.
#include <algorithm>
#include <array>
#include <cstring>

#include "conf/validator.h"

namespace sluice::conf {
namespace {

constexpr std::array<std::string_view, 3> kRequestIdModes = {"keep", "generate", "off"};
constexpr std::array<std::string_view, 4> kLevels = {"debug", "info", "warn", "error"};

template <size_t N>
bool one_of(const std::array<std::string_view, N>& names, std::string_view value) {
  return std::find(names.begin(), names.end(), value) != names.end();
}

template <size_t N>
std::vector<std::string_view> as_list(const std::array<std::string_view, N>& names) {
  return {names.begin(), names.end()};
}

}  // namespace

// The admin socket shares no address with a listener: with SO_REUSEPORT both would bind, and
// the kernel would spread clients over proxy and admin sockets alike.
void Validator::check_admin_address(const Config& config) {
  const SocketAddress& admin = config.admin.address;
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const SocketAddress& l = config.listeners[i].address;
    if (l.length == admin.length && admin.length > 0 &&
        std::memcmp(&l.storage, &admin.storage, l.length) == 0)
      fail("/admin/address", "the admin address \"" + admin.text + "\" is also listener " +
                                 std::to_string(i) + "'s address");
  }
}

void Validator::read_operations(const Json& root, Config& config) {
  read_uint(root, "", "shutdown_delay_ms", 0, 600000, config.shutdown_delay_ms);
  if (auto it = root.find("request_id"); it != root.end()) {
    std::string mode;
    if (read_string(*it, "/request_id", mode)) {
      if (!one_of(kRequestIdModes, mode)) {
        expected("/request_id", "\"keep\", \"generate\" or \"off\"", *it);
        errors_.back().message += did_you_mean(mode, as_list(kRequestIdModes));
      }
      config.request_id = mode == "generate" ? RequestIdMode::kGenerate
                          : mode == "off"    ? RequestIdMode::kOff
                                             : RequestIdMode::kKeep;
    }
  }
  if (auto it = root.find("log"); it != root.end() && expect_object(*it, "/log")) {
    check_keys(*it, "/log", {"access", "level"});
    if (auto a = it->find("access");
        a != it->end() && read_string(*a, "/log/access", config.log.access)) {
      if (config.log.access.empty())
        expected("/log/access", "\"stdout\", \"off\" or a file path", *a);
      else if (config.log.access != "stdout" && config.log.access != "off")
        read_path(*it, "/log", "access", config.log.access);
    }
    if (auto l = it->find("level"); l != it->end() &&
                                    read_string(*l, "/log/level", config.log.level) &&
                                    !one_of(kLevels, config.log.level)) {
      expected("/log/level", "\"debug\", \"info\", \"warn\" or \"error\"", *l);
      errors_.back().message += did_you_mean(config.log.level, as_list(kLevels));
    }
  }
  if (auto it = root.find("admin"); it != root.end() && expect_object(*it, "/admin")) {
    check_keys(*it, "/admin", {"address"});
    config.admin.enabled = true;
    if (it->contains("address")) {
      read_address(*it, "/admin", config.admin.address);
    } else {
      config.admin.address = *parse_socket_address("127.0.0.1:9901");
    }
    check_admin_address(config);
  }
}

}  // namespace sluice::conf
