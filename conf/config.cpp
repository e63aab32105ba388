// Parses and validates the JSON config. Validation never stops at the first problem: an
// operator fixing a file wants every mistake in one go, each with its JSON path and line.
#include "conf/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <nlohmann/json.hpp>

#include "balancer/policy.h"
#include "conf/filter_schema.h"
#include "conf/json_lines.h"
#include "conf/near_miss.h"
#include "conf/socket_address.h"
#include "conf/validator.h"

namespace sluice::conf {
namespace {

// The schema itself is five levels deep; the rest of the allowance is for comment values.
constexpr int kMaxDepth = 64;

}  // namespace

std::string describe(const Json& value) {
  if (value.is_object()) return value.empty() ? "an empty object" : "an object";
  if (value.is_array()) return value.empty() ? "an empty array" : "an array";
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

std::string join(const std::vector<std::string_view>& names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& known) {
  const std::optional<std::string_view> near = near_miss(word, known);
  return near ? " (did you mean \"" + std::string(*near) + "\"?)" : std::string();
}

namespace {

constexpr std::array<UintField<Timeouts>, 6> kTimeoutFields = {{
    {"client_header_ms", &Timeouts::client_header_ms, 1, kMaxMs},
    {"client_idle_ms", &Timeouts::client_idle_ms, 1, kMaxMs},
    {"upstream_connect_ms", &Timeouts::upstream_connect_ms, 1, kMaxMs},
    {"upstream_response_ms", &Timeouts::upstream_response_ms, 1, kMaxMs},
    {"client_send_ms", &Timeouts::client_send_ms, 1, kMaxMs},
    {"drain_ms", &Timeouts::drain_ms, 1, kMaxMs},
}};

constexpr std::array<UintField<Limits>, 5> kLimitFields = {{
    {"request_line_bytes", &Limits::request_line_bytes, 256, 1'048'576},
    {"header_bytes", &Limits::header_bytes, 1024, 1'048'576},
    {"header_count", &Limits::header_count, 8, 10'000},
    {"max_request_body_bytes", &Limits::max_request_body_bytes, 0, UINT32_MAX},
    {"max_connections", &Limits::max_connections, 0, 10'000'000},
}};

// For an address whose host is a name ("app.internal:8080", or "app.internal" without a port),
// what to write instead, starting with "; "; else empty. Names are never resolved here, so a
// listener needs an IP, and a backend named by DNS is a "dns" backend (read_dns_backend).
std::string host_name_hint(std::string_view text, AddressOf owner) {
  if (text.starts_with('[')) return {};
  const size_t colon = text.rfind(':');
  const std::string_view name = text.substr(0, colon);
  std::string port = "PORT";
  if (colon != std::string_view::npos) {
    port = text.substr(colon + 1);
    if (!parse_socket_address("0.0.0.0:" + port)) return {};  // the port is wrong too
  }
  const auto name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  };
  const bool is_name = !name.empty() && std::all_of(name.begin(), name.end(), name_char) &&
                       std::any_of(name.begin(), name.end(), [](char c) {
                         return std::isalpha(static_cast<unsigned char>(c));
                       });
  if (!is_name) return {};
  if (owner == AddressOf::kListener)
    return "; a listener needs a numeric IP address: \"0.0.0.0:" + port +
           "\" for every interface, \"127.0.0.1:" + port + "\" for this host only";
  return "; a backend named by DNS is written {\"dns\": " +
         Json(std::string(name) + ":" + port).dump() + "}";
}

// "*" may only stand for the first label ("*.example.com"). A port could never match, since
// the request's port is stripped before comparing.
bool valid_route_host(std::string_view host) {
  const size_t star = host.find('*');
  if (star != std::string_view::npos && (star != 0 || !host.starts_with("*.") || host.size() < 3 ||
                                         host.find('*', 1) != std::string_view::npos))
    return false;
  return host.starts_with('[') || host.find(':') == std::string_view::npos;
}

}  // namespace

bool Validator::expect_object(const Json& value, const std::string& path) {
  if (value.is_object()) return true;
  expected(path, "an object", value);
  return false;
}

// Unknown keys are errors, not warnings: a misspelt "wieght" would otherwise silently leave
// the default in place.
void Validator::check_keys(const Json& object, const std::string& path,
                           const std::vector<std::string_view>& known) {
  for (const auto& [key, value] : object.items()) {
    if (is_comment_key(key)) continue;
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    fail_at_key(path + "/" + pointer_token(key), "unknown key \"" + key + "\"" +
                                                     did_you_mean(key, known) +
                                                     "; expected one of: " + join(known));
  }
}

const Json* Validator::require(const Json& object, const std::string& path, std::string_view key) {
  auto it = object.find(key);
  if (it != object.end()) return &*it;
  fail(path + "/" + pointer_token(key), "missing required key \"" + std::string(key) + "\"");
  return nullptr;
}

void Validator::read_uint(const Json& object, const std::string& path, std::string_view key,
                          uint32_t min, uint32_t max, uint32_t& out) {
  uint64_t wide = out;
  read_uint(object, path, key, uint64_t{min}, uint64_t{max}, wide);
  out = static_cast<uint32_t>(wide);  // unchanged, or checked against max
}

void Validator::read_uint(const Json& object, const std::string& path, std::string_view key,
                          uint64_t min, uint64_t max, uint64_t& out) {
  auto it = object.find(key);
  if (it == object.end()) return;
  const std::string at = path + "/" + pointer_token(key);
  const bool in_range =
      it->is_number_unsigned() && it->get<uint64_t>() >= min && it->get<uint64_t>() <= max;
  // A negative integer is never unsigned, so it lands here too.
  if (!in_range) {
    expected(at, "an integer " + std::to_string(min) + ".." + std::to_string(max), *it);
    return;
  }
  out = it->get<uint64_t>();
}

bool Validator::read_string(const Json& value, const std::string& path, std::string& out) {
  if (!value.is_string()) {
    expected(path, "a string", value);
    return false;
  }
  out = value.get<std::string>();
  return true;
}

bool Validator::read_address(const Json& object, const std::string& path, SocketAddress& out,
                             AddressOf owner) {
  const Json* value = require(object, path, "address");
  if (value == nullptr) return false;
  const std::string at = path + "/address";
  std::string text;
  if (!read_string(*value, at, text)) return false;
  std::string problem;
  std::optional<SocketAddress> parsed = parse_socket_address(text, &problem);
  if (!parsed) {
    expected(at, "a numeric address \"host:port\" such as \"127.0.0.1:8080\" or \"[::1]:8080\"",
             *value);
    errors_.back().message += " (" + problem + host_name_hint(text, owner) + ")";
    return false;
  }
  out = std::move(*parsed);
  return true;
}

Config Validator::read(const Json& root) {
  Config config;
  if (!root.is_object()) {
    expected("", "the config to be an object", root);
    return config;
  }
  check_keys(root, "",
             {"workers", "listeners", "upstreams", "routes", "timeouts", "limits", "resolver",
              "request_id", "log", "admin", "shutdown_delay_ms", "trusted_proxies"});
  read_uint(root, "", "workers", 0, 1024, config.workers);
  if (const Json* v = require(root, "", "listeners")) read_listeners(*v, "/listeners", config);
  // A proxy with only forward or intercept listeners needs no upstreams or routes.
  const bool reverse =
      config.listeners.empty() ||
      std::any_of(config.listeners.begin(), config.listeners.end(),
                  [](const ListenerConfig& l) { return l.mode == ListenerMode::kReverse; });
  if (reverse || root.contains("upstreams")) {
    if (const Json* v = require(root, "", "upstreams")) read_upstreams(*v, "/upstreams", config);
  }
  // Routes come after upstreams: they are checked against the upstream names.
  if (reverse || root.contains("routes")) {
    if (const Json* v = require(root, "", "routes")) read_routes(*v, "/routes", config);
  }
  if (auto it = root.find("timeouts"); it != root.end())
    read_fields(*it, "/timeouts", config.timeouts, kTimeoutFields);
  if (auto it = root.find("limits"); it != root.end())
    read_fields(*it, "/limits", config.limits, kLimitFields);
  if (auto it = root.find("resolver"); it != root.end())
    read_resolver(*it, "/resolver", config.resolver);
  read_operations(root, config);
  read_trusted_proxies(root, config);  // after the listeners: it may fill proxy_protocol_from
  return config;
}

void Validator::read_listeners(const Json& value, const std::string& path, Config& config) {
  if (!value.is_array() || value.empty()) {
    expected(path, "an array of at least one listener", value);
    return;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string at = path + "/" + std::to_string(i);
    if (!expect_object(value[i], at)) continue;
    check_keys(
        value[i], at,
        {"address", "tls", "proxy_protocol", "proxy_protocol_from", "access", "mode", "forward"});
    ListenerConfig listener;
    read_listener_mode(value[i], at, listener);
    if (auto it = value[i].find("access"); it != value[i].end())
      read_access(*it, at + "/access", listener.access);
    if (auto it = value[i].find("tls"); it != value[i].end())
      read_listener_tls(*it, at + "/tls", listener.tls.emplace());
    read_proxy_protocol(value[i], at, listener);
    if (!read_address(value[i], at, listener.address, AddressOf::kListener)) continue;
    // Compare the resolved bytes, so "0.0.0.0:80" and "0.0.0.0:080" count as one address.
    for (size_t j = 0; j < config.listeners.size(); ++j) {
      const SocketAddress& other = config.listeners[j].address;
      if (other.length == listener.address.length &&
          std::memcmp(&other.storage, &listener.address.storage, other.length) == 0) {
        fail(at + "/address", "duplicate listener address \"" + listener.address.text +
                                  "\" (already used by listener \"" + other.text + "\")");
      }
    }
    config.listeners.push_back(std::move(listener));
  }
}

// "proxy_protocol": true, and who may send the header: a list of networks, only with it.
void Validator::read_proxy_protocol(const Json& value, const std::string& path,
                                    ListenerConfig& listener) {
  read_bool(value, path, "proxy_protocol", listener.proxy_protocol);
  auto it = value.find("proxy_protocol_from");
  if (it == value.end()) return;
  const std::string at = path + "/proxy_protocol_from";
  if (!listener.proxy_protocol)
    return fail(at, "applies only with \"proxy_protocol\": true on the same listener");
  read_networks(*it, at, listener.proxy_protocol_from);
}

void Validator::read_routes(const Json& value, const std::string& path, Config& config) {
  if (!value.is_array() || value.empty()) {
    expected(path, "an array of at least one route", value);
    return;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    RouteConfig route;
    read_route(value[i], path + "/" + std::to_string(i), route);
    config.routes.push_back(std::move(route));
  }
}

void Validator::read_route(const Json& value, const std::string& path, RouteConfig& route) {
  if (!expect_object(value, path)) return;
  check_keys(value, path,
             {"host", "path_prefix", "upstream", "forwarded", "access", "max_request_body_bytes",
              "filters", "rate_limit", "cache"});
  read_forwarded(value, path, route.forwarded);
  read_route_filters(*this, value, path, route);
  if (value.contains("max_request_body_bytes"))
    read_uint(value, path, "max_request_body_bytes", 0, UINT32_MAX,
              route.max_request_body_bytes.emplace());
  if (auto it = value.find("rate_limit"); it != value.end())
    read_rate_limit(*it, path + "/rate_limit", route.rate_limit);
  if (auto it = value.find("cache"); it != value.end())
    read_cache(*it, path + "/cache", route.cache);
  if (auto it = value.find("access"); it != value.end())
    read_access(*it, path + "/access", route.access);
  if (auto it = value.find("host"); it != value.end()) {
    const std::string at = path + "/host";
    if (read_string(*it, at, route.host) && !valid_route_host(route.host))
      expected(at, "a host name without a port, such as \"example.com\" or \"*.example.com\"", *it);
  }
  if (auto it = value.find("path_prefix"); it != value.end()) {
    const std::string at = path + "/path_prefix";
    if (read_string(*it, at, route.path_prefix) && !route.path_prefix.starts_with('/'))
      expected(at, "a path starting with \"/\"", *it);
  }
  const Json* upstream = require(value, path, "upstream");
  if (upstream == nullptr || !read_string(*upstream, path + "/upstream", route.upstream)) return;
  if (std::find(upstream_names_.begin(), upstream_names_.end(), route.upstream) ==
      upstream_names_.end()) {
    std::vector<std::string_view> names(upstream_names_.begin(), upstream_names_.end());
    expected(path + "/upstream", "the name of an upstream (one of: " + join(names) + ")",
             *upstream);
    errors_.back().message += did_you_mean(route.upstream, names);
  }
}

namespace {

// nlohmann's message starts with its own "[json.exception...] parse error at line L, column C:"
// prefix; keep only the reason, since the line and column are ours.
std::string parse_error_reason(const char* what) {
  std::string_view text = what;
  const size_t column = text.find("column ");
  const size_t colon = column == std::string_view::npos ? column : text.find(": ", column);
  if (colon != std::string_view::npos) text.remove_prefix(colon + 2);
  return std::string(text);
}

}  // namespace

std::string ConfigError::to_string() const {
  std::string out;
  if (line > 0) {
    out += "line " + std::to_string(line);
    if (column > 0) out += ", column " + std::to_string(column);
    out += ": ";
  }
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

ParseResult parse_config(std::string_view json_text, std::string_view base_dir) {
  ParseResult result;
  if (const size_t at = find_excess_nesting(json_text, kMaxDepth); at != std::string_view::npos) {
    const TextPosition where = position_of(json_text, at);
    result.errors.push_back(
        ConfigError{"", where.line, where.column,
                    "nested deeper than " + std::to_string(kMaxDepth) + " levels"});
    return result;
  }
  Json root;
  try {
    root = Json::parse(json_text);
  } catch (const Json::parse_error& e) {
    // e.byte counts the characters read, so the offending one is at byte - 1.
    const TextPosition at = position_of(json_text, e.byte == 0 ? 0 : e.byte - 1);
    result.errors.push_back(
        ConfigError{"", at.line, at.column, "invalid JSON: " + parse_error_reason(e.what())});
    return result;
  } catch (const Json::exception& e) {
    // Not a syntax error but a value nlohmann cannot hold: a number beyond a double's range.
    std::string_view what = e.what();
    if (const size_t close = what.find("] "); close != std::string_view::npos)
      what.remove_prefix(close + 2);
    result.errors.push_back(ConfigError{"", 0, 0, "invalid JSON: " + std::string(what)});
    return result;
  }
  const LineIndex lines(json_text);
  for (const DuplicateKey& dup : lines.duplicates()) {
    result.errors.push_back(
        ConfigError{dup.pointer, dup.line, dup.column,
                    "duplicate key (also on line " + std::to_string(dup.first_line) + ")"});
  }
  Config config = Validator(lines, result.errors, base_dir).read(root);
  // In the order the file reads: by line, then by column.
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     return a.line != b.line ? a.line < b.line : a.column < b.column;
                   });
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

ParseResult load_config_file(const std::string& file_path) {
  ParseResult result;
  const int fd = ::open(file_path.c_str(), O_RDONLY | O_CLOEXEC);
  std::string text;
  int error = fd < 0 ? errno : 0;
  char buffer[65536];
  while (error == 0) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      text.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      error = errno;
    }
  }
  if (fd >= 0) ::close(fd);
  if (error != 0) {
    result.errors.push_back(ConfigError{
        "", 0, 0, "cannot read config file \"" + file_path + "\": " + std::strerror(error)});
    return result;
  }
  const size_t slash = file_path.rfind('/');
  std::string base_dir = slash == std::string::npos ? "." : file_path.substr(0, slash);
  if (base_dir.empty()) base_dir = "/";
  return parse_config(text, base_dir);
}

}  // namespace sluice::conf
