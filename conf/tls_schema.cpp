// The "tls" objects of listeners and upstreams. Only the shape is checked here; whether the files
// hold a matching certificate and key is for tls/ to say when it loads them.
#include <algorithm>

#include "conf/validator.h"

namespace sluice::conf {
namespace {

const std::vector<std::string_view> kVersions = {"1.2", "1.3"};
constexpr std::string_view kAlpn = "http/1.1";  // the one protocol served over TLS today

}  // namespace

// A path as written, or taken from the config file's folder when relative.
bool Validator::read_path(const Json& object, const std::string& path, std::string_view key,
                          std::string& out) {
  auto it = object.find(key);
  if (it == object.end()) return false;
  const std::string at = path + "/" + std::string(key);
  std::string text;
  if (!read_string(*it, at, text)) return false;
  if (text.empty() || text.find('\0') != std::string::npos) {
    expected(at, "a file path", *it);
    return false;
  }
  out = text.front() == '/' || base_dir_.empty() ? text : base_dir_ + "/" + text;
  return true;
}

void Validator::read_certificate(const Json& value, const std::string& path,
                                 CertificateFiles& files) {
  if (!expect_object(value, path)) return;
  check_keys(value, path, {"cert", "key", "ocsp"});
  if (require(value, path, "cert")) read_path(value, path, "cert", files.cert);
  if (require(value, path, "key")) read_path(value, path, "key", files.key);
  read_path(value, path, "ocsp", files.ocsp);
}

void Validator::read_listener_tls(const Json& value, const std::string& path,
                                  ListenerTlsConfig& tls) {
  if (!expect_object(value, path)) return;
  check_keys(value, path,
             {"certificates", "min_version", "ciphers", "alpn", "session_tickets", "client_ca",
              "handshake_timeout_ms"});
  if (const Json* certs = require(value, path, "certificates")) {
    const std::string at = path + "/certificates";
    if (!certs->is_array() || certs->empty()) {
      expected(at, "an array of at least one {\"cert\", \"key\"} object", *certs);
    } else {
      for (size_t i = 0; i < certs->size(); ++i) {
        read_certificate((*certs)[i], at + "/" + std::to_string(i),
                         tls.certificates.emplace_back());
      }
    }
  }
  if (auto it = value.find("min_version"); it != value.end()) {
    const std::string at = path + "/min_version";
    if (read_string(*it, at, tls.min_version) &&
        std::find(kVersions.begin(), kVersions.end(), tls.min_version) == kVersions.end()) {
      expected(at, "\"1.2\" or \"1.3\" (older versions are not offered)", *it);
      errors_.back().message += did_you_mean(tls.min_version, kVersions);
    }
  }
  if (auto it = value.find("ciphers"); it != value.end()) {
    const std::string at = path + "/ciphers";
    if (read_string(*it, at, tls.ciphers) && tls.ciphers.empty())
      expected(at, "an OpenSSL cipher list, or no key for the default", *it);
  }
  if (auto it = value.find("alpn"); it != value.end()) read_alpn(*it, path + "/alpn", tls.alpn);
  read_bool(value, path, "session_tickets", tls.session_tickets);
  read_path(value, path, "client_ca", tls.client_ca);
  read_uint(value, path, "handshake_timeout_ms", 1, kMaxMs, tls.handshake_timeout_ms);
}

void Validator::read_alpn(const Json& value, const std::string& path,
                          std::vector<std::string>& out) {
  if (!value.is_array() || value.empty()) {
    expected(path, "an array of protocol names such as [\"http/1.1\"]", value);
    return;
  }
  out.clear();
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string at = path + "/" + std::to_string(i);
    std::string name;
    if (!read_string(value[i], at, name)) continue;
    if (name != kAlpn) {
      expected(at, "\"http/1.1\" (the one protocol served over TLS today)", value[i]);
      errors_.back().message += did_you_mean(name, {kAlpn});
      continue;
    }
    out.push_back(std::move(name));
  }
}

void Validator::read_upstream_tls(const Json& value, const std::string& path,
                                  UpstreamTlsConfig& tls) {
  if (!expect_object(value, path)) return;
  check_keys(value, path, {"verify", "ca", "sni", "client_cert", "client_key"});
  read_bool(value, path, "verify", tls.verify);
  read_path(value, path, "ca", tls.ca);
  if (auto it = value.find("sni"); it != value.end()) {
    const std::string at = path + "/sni";
    if (read_string(*it, at, tls.sni) &&
        (tls.sni.empty() || tls.sni.find_first_of(" /:\t\r\n") != std::string::npos))
      expected(at, "a host name such as \"app.internal\"", *it);
  }
  const bool has_cert = read_path(value, path, "client_cert", tls.client_cert);
  const bool has_key = read_path(value, path, "client_key", tls.client_key);
  if (has_cert != has_key)
    fail(path + (has_cert ? "/client_cert" : "/client_key"),
         "client_cert and client_key go together: set both or neither");
}

}  // namespace sluice::conf
