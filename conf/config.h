// The config file's content as plain, validated values. conf/ parses JSON into a Config and
// reports every problem with its JSON path and line; nothing here touches sockets or threads.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/destination.h"

namespace sluice::conf {

// A numeric "host:port" (IPv4, or [IPv6]:port), resolved when the config is parsed.
struct SocketAddress {
  std::string text;
  sockaddr_storage storage{};
  socklen_t length = 0;
};

// One certificate chain and its key, with an optional DER OCSP response to staple. Paths are
// absolute once parsed: relative ones are taken from the config file's folder.
struct CertificateFiles {
  std::string cert;
  std::string key;
  std::string ocsp;  // empty: no stapling
};

// TLS termination on a listener. The first certificate is the default for clients whose SNI
// names none of them; an RSA and an ECDSA certificate for the same names are both served.
struct ListenerTlsConfig {
  std::vector<CertificateFiles> certificates;
  std::string min_version = "1.2";  // "1.2" or "1.3"; older versions are never offered
  std::string ciphers;              // TLS 1.2 cipher list (OpenSSL syntax); empty: the modern set
  std::vector<std::string> alpn = {"http/1.1"};
  bool session_tickets = true;
  std::string client_ca;  // set: clients must present a certificate this CA signed (mTLS)
  uint32_t handshake_timeout_ms = 10000;
};

// An IPv4 or IPv6 network: "10.0.0.0/8", "2001:db8::/32"; a bare address is one host.
struct Cidr {
  std::string text;
  sa_family_t family = AF_UNSPEC;
  uint8_t bytes[16] = {};  // the network, host bits zero (4 used for IPv4)
  uint8_t prefix = 0;      // bits that count
  bool contains(const sockaddr_storage& address) const;
};

// Who may use a listener or a route (docs/access.md). Each list, when given, holds at least one
// network; the most specific network across both decides, and one in both lists denies.
struct AccessConfig {
  std::vector<Cidr> allow;  // not empty: an address in neither list is refused
  std::vector<Cidr> deny;
};

// "forwarded", the anonymity level: what the origin learns of the client and of the proxy.
// transparent: X-Forwarded-For/-Proto/-Host, Forwarded and Via; anonymous: Via only, the
// client's forwarding fields removed; elite: none of them, either way (docs/anonymity.md).
enum class ForwardedMode : uint8_t { kTransparent, kAnonymous, kElite };

// What a listener's clients ask for: a site behind the proxy (reverse: the routes decide), any
// origin they name (forward: absolute-form requests and CONNECT), or the address the kernel
// redirected them from (intercept).
enum class ListenerMode : uint8_t { kReverse, kForward, kIntercept };

// A forward-proxy user: "name" and the output of `sluice hash-password`.
struct ProxyUser {
  std::string name;
  std::string hash;  // "scrypt$N$r$p$salt$key", salt and key in base64
};

// The six "$"-separated parts of a stored hash, in order: scheme, N, r, p, salt, key. False
// when there are not exactly six. Both the config check and the verification split with it.
bool split_password_hash(std::string_view hash, std::string_view (&parts)[6]);

struct ForwardConfig {
  DestinationList allow;         // empty: every destination is refused
  bool allow_private = false;    // names may resolve to loopback, private, link-local addresses
  std::vector<ProxyUser> users;  // empty: no Proxy-Authorization asked for
  ForwardedMode forwarded = ForwardedMode::kTransparent;
};

struct ListenerConfig {
  SocketAddress address;
  ListenerMode mode = ListenerMode::kReverse;
  ForwardConfig forward;                 // forward and intercept listeners
  std::optional<ListenerTlsConfig> tls;  // absent: plain TCP
  // Every connection starts with a PROXY protocol header (v1 or v2), read before anything else
  // (TLS included); its source address stands for the client's from then on.
  bool proxy_protocol = false;
  std::vector<Cidr> proxy_protocol_from;  // peers allowed to send one; empty: any
  // Checked at accept, on the socket's address (or the PROXY header's), before a byte is read.
  std::optional<AccessConfig> access;
};

// TLS to an upstream's backends. Connections with different settings are never pooled together.
struct UpstreamTlsConfig {
  bool verify = true;  // check the backend's certificate chain and name
  std::string ca;      // PEM bundle of trusted CAs; empty: the system's store
  std::string sni;     // server name sent and verified; empty: none sent, the backend's IP verified
  std::string client_cert;  // a client certificate for backends that ask for one
  std::string client_key;
};

enum class ProxyProtocolVersion : uint8_t { kNone, kV1, kV2 };

struct BackendConfig {
  SocketAddress address;  // unset when dns_name is set
  uint32_t weight = 1;    // 1..256
  bool backup = false;
  // A DNS-discovered set: every A/AAAA record of dns_name becomes a backend on dns_port.
  std::string dns_name;
  uint16_t dns_port = 0;
  uint32_t refresh_s = 10;
  // Requests in flight to this backend at once (to each address of a DNS set); unset: the
  // upstream's max_connections; 0: no limit.
  std::optional<uint32_t> max_connections;
  bool from_dns() const { return !dns_name.empty(); }
};

// Active HTTP checks: GET `path` every interval; `rise` passes bring a backend up, `fall`
// failures take it down.
struct HealthCheckConfig {
  bool enabled = false;
  std::string path = "/health";
  std::string host;  // Host header; empty: the backend's address
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;
  uint32_t rise = 2;
  uint32_t fall = 3;
  uint32_t expect_min = 200, expect_max = 399;
};

// Passive outlier detection: `failures` consecutive connect failures or 5xx answers eject a
// backend for `ejection_ms`, doubled on each repeat up to `max_ejection_ms`.
struct PassiveHealthConfig {
  uint32_t failures = 5;  // 0 disables
  uint32_t ejection_ms = 10000;
  uint32_t max_ejection_ms = 300000;
};

struct UpstreamConfig {
  std::string name;
  std::string balance = "round_robin";
  std::vector<BackendConfig> backends;
  uint32_t keepalive = 64;                // idle connections kept per backend, per worker
  uint32_t keepalive_timeout_ms = 60000;  // an idle pooled connection is closed after this
  uint32_t retries = 1;                   // other backends tried after a failed connect
  // A request that cannot be retried goes on a pooled connection only if it has been idle for
  // less than this; an older one may be closing at the backend's end as we send.
  uint32_t non_retriable_max_idle_ms = 500;
  std::string hash_key = "client_ip";  // client_ip, path, uri, header:NAME, cookie:NAME
  uint32_t slow_start_ms = 0;          // a recovered backend's weight ramps up over this
  HealthCheckConfig health;
  PassiveHealthConfig passive;
  std::optional<UpstreamTlsConfig> tls;  // absent: plain TCP
  // Each new connection to a backend starts with a PROXY protocol header naming the client.
  ProxyProtocolVersion send_proxy_protocol = ProxyProtocolVersion::kNone;
  // Per backend, unless the backend says otherwise: requests in flight at once (0: no limit).
  // Past it a request waits in the upstream's queue (at most queue_max of them, each at most
  // queue_timeout_ms), then gets 503. All three are shared out by the workers.
  uint32_t max_connections = 0;
  uint32_t queue_max = 1024;
  uint32_t queue_timeout_ms = 5000;
};

class RequestFilter;  // a route's compiled "filters" (conf/request_filter.h)
// Request rates allowed on a route (docs/access.md): per client address, and for the whole route.
// At least one of per_client_rps and rps is set (0: that limit is off).
struct RateLimitConfig {
  uint32_t per_client_rps = 0;
  uint32_t burst = 0;  // requests a client may make at once; 0 in the file: per_client_rps
  uint32_t rps = 0;    // the whole route's, with a burst of as many
  uint32_t max_clients = 65536;  // client buckets kept, the least recently charged given up first
  bool operator==(const RateLimitConfig&) const = default;
};

// A route's shared HTTP cache (docs/cache.md): off unless the route has a "cache" object.
struct CacheConfig {
  uint64_t max_bytes = 268435456;         // stored responses of the route, over every worker
  uint64_t max_object_bytes = 8388608;    // a larger body streams through and is not stored
  uint32_t default_ttl_s = 0;             // freshness of a response that states none (0: none)
  uint32_t stale_if_error_s = 0;          // a stale answer may stand in for an error this long
  uint32_t stale_while_revalidate_s = 0;  // ... or be served while it is refreshed
  // A miss waits this long for another request's fetch of the same response to bring its
  // head, then fetches for itself (0: misses never wait on one another).
  uint32_t collapse_wait_ms = 5000;
  bool operator==(const CacheConfig&) const = default;
};

struct RouteConfig {
  std::string host;                    // empty: any host; "*.example.com": any subdomain
  std::string path_prefix = "/";       // matched against the request target's path
  std::string upstream;                // name of an entry in Config::upstreams
  std::optional<AccessConfig> access;  // checked per request, on the client's address
  ForwardedMode forwarded = ForwardedMode::kTransparent;
  std::shared_ptr<const RequestFilter> filters;  // deny rules; null: none
  // Overrides limits.max_request_body_bytes on this route (0: no limit); unset: the global one.
  std::optional<uint32_t> max_request_body_bytes;
  std::optional<RateLimitConfig> rate_limit;  // past it: 429 with Retry-After
  std::optional<CacheConfig> cache;           // absent: nothing of this route is stored
};

struct Timeouts {
  uint32_t client_header_ms = 10000;  // whole request head must arrive within this
  uint32_t client_idle_ms = 60000;    // keep-alive wait for the next request
  uint32_t upstream_connect_ms = 2000;
  uint32_t upstream_response_ms = 60000;  // response head, and any silence while reading it
  uint32_t client_send_ms = 60000;  // a client that takes none of a response's bytes for this long
  uint32_t drain_ms = 30000;        // SIGTERM waits this long for in-flight requests
};

struct Limits {
  uint32_t request_line_bytes = 8192;   // 414 beyond
  uint32_t header_bytes = 32768;        // 431 beyond
  uint32_t header_count = 100;          // 431 beyond
  uint32_t max_request_body_bytes = 0;  // 413 beyond (0: no limit)
  uint32_t max_connections = 0;         // open client connections per listener (0: no limit)
};

// Where DNS-discovered backends are resolved; empty: the system's resolv.conf.
struct ResolverConfig {
  std::vector<std::string> nameservers;  // "ip:port" or "ip"
  uint32_t timeout_ms = 2000;
};

// X-Request-Id: keep a valid one the client sent (else make one), always make one, or leave
// the field alone.
enum class RequestIdMode : uint8_t { kKeep, kGenerate, kOff };

// Where the access log goes and how much the error log says.
struct LogConfig {
  std::string access = "stdout";  // "stdout", "off", or a file path (absolute once parsed)
  std::string level = "info";     // debug, info, warn, error: the least severe line kept
};

// The admin listener: health, readiness, status and metrics pages, GET only. Off when absent.
struct AdminConfig {
  bool enabled = false;
  SocketAddress address;  // 127.0.0.1:9901 unless given
};

struct Config {
  uint32_t workers = 0;  // 0: one per core
  std::vector<ListenerConfig> listeners;
  std::vector<UpstreamConfig> upstreams;
  std::vector<RouteConfig> routes;
  Timeouts timeouts;
  Limits limits;
  ResolverConfig resolver;
  RequestIdMode request_id = RequestIdMode::kKeep;
  LogConfig log;
  AdminConfig admin;
  // On SIGTERM: /readyz says 503 at once, and the listeners keep accepting this long before the
  // drain, while load balancers (a Kubernetes Service) stop sending new connections.
  uint32_t shutdown_delay_ms = 0;
  // Proxies whose X-Forwarded-For is believed: a request from one is the client's its header
  // names (the rightmost address that is not itself a trusted proxy). On a proxy_protocol
  // listener without proxy_protocol_from, also who may send a PROXY header.
  std::vector<Cidr> trusted_proxies;
};

// One problem found in a config file: where (JSON path, line and column) and what was expected.
// The line and column are where the value the error is about starts, or its key for an unknown
// or repeated key; for a missing key, where the object that lacks it starts.
struct ConfigError {
  std::string path;  // JSON pointer, e.g. "/upstreams/app/backends/1/address"
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based, in characters; 0 when unknown
  std::string message;
  // "line 7, column 12: /upstreams/app/backends/1/address: expected ..."
  std::string to_string() const;
};

struct ParseResult {
  std::optional<Config> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
};

// Relative file paths in the config (certificates, keys, CAs) are taken from `base_dir`.
ParseResult parse_config(std::string_view json_text, std::string_view base_dir = {});
ParseResult load_config_file(const std::string& file_path);

// Parses "1.2.3.4:80" or "[::1]:80"; nullopt when it is not a numeric address with a port.
std::optional<SocketAddress> parse_socket_address(std::string_view text);

}  // namespace sluice::conf
