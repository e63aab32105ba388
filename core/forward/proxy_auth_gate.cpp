// Basic credentials (RFC 7617) in Proxy-Authorization (RFC 9110 11.7.2). Unknown users cost a
// verification as known ones do, so timing does not tell which names exist.
#include "core/forward/proxy_auth_gate.h"

#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <string>

#include "core/forward/password.h"
#include "core/io/log.h"
#include "core/proxy/worker_context.h"

namespace sluice::forward {
namespace {

constexpr std::string_view kChallenge = "Proxy-Authenticate: Basic realm=\"sluice\"";

// The "user:password" of a Basic credential, decoded into `out`; false when it is not one.
bool basic_credentials(std::string_view value, std::string* out) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (value.size() < 6) return false;
  for (size_t i = 0; i < 5; ++i)
    if ((value[i] | 0x20) != "basic"[i]) return false;
  if (value[5] != ' ') return false;
  value.remove_prefix(6);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty() || value.size() % 4 != 0 || value.size() > 1024) return false;
  out->resize(value.size() / 4 * 3);
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                                reinterpret_cast<const unsigned char*>(value.data()),
                                static_cast<int>(value.size()));
  if (n < 0) return false;
  size_t length = static_cast<size_t>(n);
  for (size_t i = value.size(); i > 0 && value[i - 1] == '=' && length > 0; --i) --length;
  out->resize(length);
  return out->find(':') != std::string::npos;
}

}  // namespace

size_t ProxyAuthGate::DigestHash::operator()(const Digest& d) const {
  size_t h;
  std::memcpy(&h, d.data(), sizeof h);
  return h;
}

bool ProxyAuthGate::valid(const conf::ForwardConfig& forward, std::string_view credentials) const {
  const size_t colon = credentials.find(':');
  const std::string_view name = credentials.substr(0, colon);
  const std::string_view password = credentials.substr(colon + 1);
  const conf::ProxyUser* user = nullptr;
  for (const conf::ProxyUser& u : forward.users)
    if (u.name == name) user = &u;
  const bool ok = verify_password(user ? user->hash : forward.users.front().hash, password);
  return ok && user != nullptr;
}

core::GateVerdict ProxyAuthGate::check(const core::GateInput& input,
                                       core::LocalReply* reply) const {
  if (input.listener < 0) return core::GateVerdict::kPass;
  const conf::ListenerConfig& listener = snapshot_.config.listeners[input.listener];
  if (listener.mode == conf::ListenerMode::kReverse || listener.forward.users.empty())
    return core::GateVerdict::kPass;
  std::string_view value;
  std::string credentials;
  if (input.request.find(core::FieldKind::kProxyAuthorization, &value) &&
      basic_credentials(value, &credentials)) {
    Digest digest{};
    unsigned int length = 0;
    const int32_t index = input.listener;
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    const bool hashed = md && EVP_DigestInit_ex(md, EVP_sha256(), nullptr) == 1 &&
                        EVP_DigestUpdate(md, &index, sizeof index) == 1 &&
                        EVP_DigestUpdate(md, credentials.data(), credentials.size()) == 1 &&
                        EVP_DigestFinal_ex(md, digest.data(), &length) == 1;
    EVP_MD_CTX_free(md);
    if (hashed && accepted_.count(digest)) return core::GateVerdict::kPass;
    if (valid(listener.forward, credentials)) {
      if (accepted_.size() >= kRemembered) accepted_.clear();
      if (hashed) accepted_.insert(digest);
      return core::GateVerdict::kPass;
    }
  }
  *reply = core::LocalReply{407, "this proxy needs a user name and password", 0,
                            core::Outcome::kDenied, kChallenge};
  return core::GateVerdict::kAnswer;
}

void wire_forward_gates(core::Generation& generation) {
  const conf::Snapshot& snapshot = *generation.snapshot;
  bool users = false;
  for (const conf::ListenerConfig& l : snapshot.config.listeners)
    users = users || (l.mode != conf::ListenerMode::kReverse && !l.forward.users.empty());
  if (!users) return;
  auto gate = std::make_shared<ProxyAuthGate>(snapshot);
  generation.chains.request_gates.push_back(gate.get());
  generation.owned.push_back(std::move(gate));
}

}  // namespace sluice::forward
