// The forward proxy's users: Proxy-Authorization Basic credentials (RFC 7617, RFC 9110 11.7.2)
// checked against the users' scrypt hashes. A derivation costs tens of milliseconds, so it runs
// on libuv's thread pool, a few at a time per worker, and a worker's loop never waits on one: a
// client sending wrong passwords slows only other logins. Accepted credentials are remembered
// by digest, so a client's later requests cost one SHA-256.
#include <openssl/evp.h>

#include <cstring>
#include <memory>

#include "core/forward/origins.h"
#include "core/forward/password.h"
#include "core/http/http_head.h"

namespace sluice::forward {

struct ForwardOrigins::Login {
  uv_work_t work;
  ForwardOrigins* owner;
  core::OriginWaiter* waiter;  // null once cancelled
  core::OriginQuery query;     // its views stay valid while the waiter waits
  Digest digest;
  std::string hash;  // the user's, or for an unknown user another's: the same cost either way
  std::string password;
  bool known_user;
  bool accepted = false;
};

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
  return decode_base64(value, out) && out->find(':') != std::string::npos;
}

// SHA-256 of the stored hash and the credentials: a changed password (a new hash) forgets them.
bool digest_of(std::string_view hash, std::string_view credentials, uint8_t* out) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  unsigned int length = 0;
  const char separator = '\0';
  const bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(md, hash.data(), hash.size()) == 1 &&
                  EVP_DigestUpdate(md, &separator, 1) == 1 &&
                  EVP_DigestUpdate(md, credentials.data(), credentials.size()) == 1 &&
                  EVP_DigestFinal_ex(md, out, &length) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

}  // namespace

size_t ForwardOrigins::DigestHash::operator()(const Digest& d) const {
  size_t h;
  std::memcpy(&h, d.data(), sizeof h);
  return h;
}

void ForwardOrigins::refuse_login(core::OriginWaiter* waiter) {
  const core::LocalReply refusal{407, "this proxy needs a user name and password", 0,
                                 core::Outcome::kDenied, kChallenge};
  waiter->on_origin(nullptr, &refusal);
}

void ForwardOrigins::log_in(const core::OriginQuery& query, core::OriginWaiter* waiter) {
  std::string credentials;
  if (!basic_credentials(query.credentials, &credentials)) return refuse_login(waiter);
  const std::string_view name(credentials.data(), credentials.find(':'));
  const conf::ProxyUser* user = nullptr;
  for (const conf::ProxyUser& u : query.forward->users)
    if (u.name == name) user = &u;
  const std::string& hash = user ? user->hash : query.forward->users.front().hash;
  Digest digest{};
  if (user && digest_of(hash, credentials, digest.data()) && accepted_.count(digest))
    return find_destination(query, waiter);
  if (logins_.size() >= kLoginsAtOnce + kLoginsWaiting) {
    const core::LocalReply busy{503, "too many proxy logins at once", 1};
    return waiter->on_origin(nullptr, &busy);
  }
  auto* login = new Login{
      {}, this, waiter, query, digest, hash, credentials.substr(name.size() + 1), user != nullptr};
  login->work.data = login;
  logins_[waiter] = login;
  queued_.push_back(login);
  start_logins();
}

void ForwardOrigins::start_logins() {
  while (running_ < kLoginsAtOnce && !queued_.empty()) {
    Login* login = queued_.front();
    queued_.pop_front();
    if (!login->waiter) {  // cancelled while it waited its turn
      delete login;
      continue;
    }
    ++running_;
    uv_queue_work(loop_, &login->work, &ForwardOrigins::verify, &ForwardOrigins::on_verified);
  }
}

void ForwardOrigins::verify(uv_work_t* work) {
  auto* login = static_cast<Login*>(work->data);
  const bool matches = verify_password(login->hash, login->password);
  login->accepted = matches && login->known_user;
}

void ForwardOrigins::on_verified(uv_work_t* work, int) {
  std::unique_ptr<Login> login(static_cast<Login*>(work->data));
  ForwardOrigins* self = login->owner;
  if (!self) return;
  --self->running_;
  core::OriginWaiter* waiter = login->waiter;
  if (waiter) {
    self->logins_.erase(waiter);
    if (login->accepted) {
      if (self->accepted_.size() >= kRemembered) self->accepted_.clear();
      self->accepted_.insert(login->digest);
    }
  }
  self->start_logins();
  if (!waiter) return;
  if (!login->accepted) return self->refuse_login(waiter);
  self->find_destination(login->query, waiter);
}

void ForwardOrigins::forget_login(core::OriginWaiter* waiter) {
  auto it = logins_.find(waiter);
  if (it == logins_.end()) return;
  it->second->waiter = nullptr;  // freed when its turn or its verification comes
  logins_.erase(it);
}

void ForwardOrigins::orphan_logins() {
  for (Login* login : queued_) login->waiter = nullptr;
  for (auto& [waiter, login] : logins_) login->owner = nullptr;
  for (Login* login : queued_) delete login;
  queued_.clear();
}

}  // namespace sluice::forward
