// scrypt through OpenSSL (EVP_PBE_scrypt): memory-hard, so a stolen config does not give its
// passwords away cheaply. N 16384, r 8, p 1 cost about 16 MiB and a few tens of milliseconds.
#include "core/forward/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <vector>

#include "conf/config.h"

namespace sluice::forward {
namespace {

constexpr uint64_t kN = 16384, kR = 8, kP = 1;
constexpr size_t kSaltBytes = 16, kKeyBytes = 32;

std::string base64(const unsigned char* data, size_t length) {
  std::string out(4 * ((length + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(length));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

bool number(std::string_view text, uint64_t max, uint64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && *out > 0 && *out <= max;
}

bool derive(std::string_view password, const void* salt, size_t salt_length, uint64_t n, uint64_t r,
            uint64_t p, unsigned char* key, size_t key_length) {
  const uint64_t memory = 128 * r * (n + p + 2) + (1u << 20);
  return EVP_PBE_scrypt(password.data(), password.size(), static_cast<const unsigned char*>(salt),
                        salt_length, n, r, p, memory, key, key_length) == 1;
}

}  // namespace

// EVP_DecodeBlock counts padding as zero bytes: take them off again.
bool decode_base64(std::string_view text, std::string* out) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 1024) return false;
  out->resize(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return false;
  size_t length = static_cast<size_t>(n);
  for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && length > 0; --i) --length;
  out->resize(length);
  return true;
}

std::string hash_password(std::string_view password) {
  std::vector<unsigned char> salt(kSaltBytes);
  std::array<unsigned char, kKeyBytes> key{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) return {};
  if (!derive(password, salt.data(), salt.size(), kN, kR, kP, key.data(), key.size())) return {};
  std::string out = "scrypt$" + std::to_string(kN);
  out.append("$").append(std::to_string(kR)).append("$").append(std::to_string(kP));
  out.append("$").append(base64(salt.data(), salt.size()));
  out.append("$").append(base64(key.data(), key.size()));
  return out;
}

bool verify_password(std::string_view hash, std::string_view password) {
  std::string_view parts[6];
  if (!conf::split_password_hash(hash, parts)) return false;
  uint64_t n = 0, r = 0, p = 0;
  std::string salt, key;
  if (parts[0] != "scrypt" || !number(parts[1], 1u << 20, &n) || (n & (n - 1)) != 0 ||
      !number(parts[2], 32, &r) || !number(parts[3], 16, &p) || !decode_base64(parts[4], &salt) ||
      !decode_base64(parts[5], &key) || key.empty() || key.size() > 64)
    return false;
  std::array<unsigned char, 64> derived{};
  if (!derive(password, salt.data(), salt.size(), n, r, p, derived.data(), key.size()))
    return false;
  return CRYPTO_memcmp(derived.data(), key.data(), key.size()) == 0;
}

}  // namespace sluice::forward
