// RFC 5077 style tickets: AES-256-CBC with HMAC-SHA256, keys named so that a ticket made under
// an older key is still recognised (and renewed) after a rotation.
#include "tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

namespace sluice::tls {
namespace {

TicketKey fresh_key() {
  TicketKey k;
  if (RAND_bytes(k.name.data(), k.name.size()) != 1 ||
      RAND_bytes(k.aes_key.data(), k.aes_key.size()) != 1 ||
      RAND_bytes(k.hmac_key.data(), k.hmac_key.size()) != 1)
    std::abort();  // no randomness: nothing safe to do
  return k;
}

bool init_mac(EVP_MAC_CTX* mac, const TicketKey& key) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(
          OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key.hmac_key.data()), key.hmac_key.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(mac, params) == 1;
}

// OpenSSL's contract: 1 ticket ok, 2 ok but issue a new one, 0 unknown key, -1 error.
int on_ticket(SSL*, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
              EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) {
  const auto keys = TicketKeys::process().keys();
  if (encrypt) {
    const TicketKey& key = keys->front();
    if (RAND_bytes(iv, 16) != 1) return -1;
    std::memcpy(name, key.name.data(), key.name.size());
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes_key.data(), iv) != 1)
      return -1;
    return init_mac(mac, key) ? 1 : -1;
  }
  for (size_t i = 0; i < keys->size(); ++i) {
    const TicketKey& key = (*keys)[i];
    if (std::memcmp(name, key.name.data(), key.name.size()) != 0) continue;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes_key.data(), iv) != 1)
      return -1;
    if (!init_mac(mac, key)) return -1;
    return i == 0 ? 1 : 2;
  }
  return 0;
}

}  // namespace

TicketKeys& TicketKeys::process() {
  static TicketKeys keys;
  return keys;
}

TicketKeys::TicketKeys() {
  keys_.store(std::make_shared<const std::vector<TicketKey>>(1, fresh_key()));
}

void TicketKeys::rotate() {
  auto next = std::make_shared<std::vector<TicketKey>>();
  next->push_back(fresh_key());
  const auto now = keys_.load();
  for (size_t i = 0; i < now->size() && next->size() < kKept; ++i) next->push_back((*now)[i]);
  keys_.store(std::move(next));
}

void TicketKeys::attach(SSL_CTX* ctx) {
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &on_ticket);
}

}  // namespace sluice::tls
