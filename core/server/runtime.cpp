// Loading the TLS half of a runtime. Listener certificates are read again on every reload (that
// is how an operator swaps one); an upstream's client context is kept when its settings and the
// times and sizes of its files are unchanged.
#include "core/server/runtime.h"

#include <sys/stat.h>

namespace sluice::core {
namespace {

void stamp_file(const std::string& path, std::string* out) {
  struct stat st {};
  *out += path;
  if (!path.empty() && ::stat(path.c_str(), &st) == 0) {
    *out += '@' + std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec) +
            '/' + std::to_string(st.st_size);
  }
  *out += '\n';
}

std::string stamp(const conf::UpstreamTlsConfig& tls) {
  std::string out = tls.verify ? "verify\n" : "no-verify\n";
  out += tls.sni + '\n';
  stamp_file(tls.ca, &out);
  stamp_file(tls.client_cert, &out);
  stamp_file(tls.client_key, &out);
  return out;
}

}  // namespace

bool load_tls(const conf::Config& config, const Runtime* previous, Runtime* out,
              std::vector<std::string>* errors, std::vector<std::string>* warnings) {
  const size_t errors_before = errors->size();
  out->listener_tls.clear();
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const conf::ListenerConfig& l = config.listeners[i];
    out->listener_tls.push_back(
        l.tls ? tls::ServerContext::load(*l.tls, "/listeners/" + std::to_string(i) + "/tls", errors,
                                         warnings)
              : nullptr);
  }
  out->upstream_tls.clear();
  out->upstream_tls_stamps.clear();
  for (const conf::UpstreamConfig& up : config.upstreams) {
    std::shared_ptr<const tls::ClientContext> context;
    std::string mark;
    if (up.tls) {
      mark = stamp(*up.tls);
      for (size_t j = 0; previous && j < previous->upstream_tls.size(); ++j) {
        if (previous->upstream_tls[j] && previous->upstream_tls_stamps[j] == mark)
          context = previous->upstream_tls[j];
      }
      if (!context)
        context = tls::ClientContext::load(*up.tls, "/upstreams/" + up.name + "/tls", errors);
    }
    out->upstream_tls.push_back(std::move(context));
    out->upstream_tls_stamps.push_back(std::move(mark));
  }
  return errors->size() == errors_before;
}

void keep_route_caches(const conf::Config& config, const Runtime* previous, Runtime* out) {
  out->route_caches.clear();
  for (const conf::RouteConfig& route : config.routes) {
    std::shared_ptr<cache::SharedCache> kept;
    if (route.cache && previous && previous->snapshot) {
      const auto& before = previous->snapshot->config.routes;
      for (size_t i = 0; i < before.size() && i < previous->route_caches.size() && !kept; ++i)
        if (previous->route_caches[i] && before[i].host == route.host &&
            before[i].path_prefix == route.path_prefix && before[i].cache == route.cache)
          kept = previous->route_caches[i];
    }
    if (route.cache && !kept) kept = std::make_shared<cache::SharedCache>(*route.cache);
    out->route_caches.push_back(std::move(kept));
  }
}

}  // namespace sluice::core
