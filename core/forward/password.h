// Passwords of the forward proxy's users, stored as salted scrypt hashes (OpenSSL's KDF):
// `sluice hash-password` prints one for the config, and Proxy-Authorization is checked against
// it in constant time.
#pragma once

#include <string>
#include <string_view>

namespace sluice::forward {

// "scrypt$N$r$p$salt$key" with a fresh random salt; empty if OpenSSL fails.
std::string hash_password(std::string_view password);

// True when `password` derives the key `hash` holds. False for a hash of another shape, or with
// parameters past what it accepts (N up to 2^20, r up to 32, p up to 16).
bool verify_password(std::string_view hash, std::string_view password);

// Standard base64 (with padding, at most 1024 characters) decoded into `out`; false for
// anything else. The stored hashes and Basic credentials both use it.
bool decode_base64(std::string_view text, std::string* out);

}  // namespace sluice::forward
