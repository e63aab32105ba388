// Forward-proxy passwords: what hash_password prints, that verify_password checks it (and the
// scrypt test vector of RFC 7914), and that a malformed hash is refused without deriving a key.
// Each derivation costs tens of milliseconds: the cases below share few of them.
#include "core/forward/password.h"

#include <catch2/catch.hpp>
#include <string>

namespace sluice::forward {
namespace {

// RFC 7914 section 12: scrypt("password", "NaCl", N=1024, r=8, p=16, dkLen=64).
constexpr const char* kRfc7914 =
    "scrypt$1024$8$16$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/"
    "xCSedmDDaxyevuUqD7m2DYMvfoswGQA==";

const std::string& stored_hash() {
  static const std::string hash = hash_password("correct horse");
  return hash;
}

TEST_CASE("hash_password prints scrypt$N$r$p$salt$key with the fixed parameters",
          "[forward][password]") {
  const std::string& hash = stored_hash();
  CHECK_THAT(hash, Catch::StartsWith("scrypt$16384$8$1$"));
  const std::string salt_and_key = hash.substr(std::string("scrypt$16384$8$1$").size());
  const size_t dollar = salt_and_key.find('$');
  REQUIRE(dollar != std::string::npos);
  CHECK(dollar == 24);                            // 16 bytes of salt in base64
  CHECK(salt_and_key.size() - dollar - 1 == 44);  // 32 bytes of key in base64
}

TEST_CASE("a password verifies against its own hash", "[forward][password]") {
  CHECK(verify_password(stored_hash(), "correct horse"));
}

TEST_CASE("another password does not verify", "[forward][password]") {
  CHECK_FALSE(verify_password(stored_hash(), "correct horse "));
}

TEST_CASE("hashing the same password twice gives different salts and keys", "[forward][password]") {
  const std::string again = hash_password("correct horse");
  CHECK_THAT(again, Catch::StartsWith("scrypt$"));
  CHECK(again != stored_hash());
  CHECK(again.substr(0, 41) != stored_hash().substr(0, 41));  // the salt differs
}

TEST_CASE("the RFC 7914 test vector verifies: the parameters come from the hash",
          "[forward][password]") {
  CHECK(verify_password(kRfc7914, "password"));
}

TEST_CASE("a hash whose key was changed does not verify", "[forward][password]") {
  std::string changed = kRfc7914;
  changed[changed.size() - 4] = changed[changed.size() - 4] == 'A' ? 'B' : 'A';
  CHECK_FALSE(verify_password(changed, "password"));
}

TEST_CASE("a malformed hash is refused without a crash", "[forward][password]") {
  for (const char* hash : {
           "",
           "scrypt",
           "bcrypt$1024$8$16$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",  // prefix
           "SCRYPT$1024$8$16$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",
           "scrypt$1000$8$16$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",    // N not 2^k
           "scrypt$2097152$8$1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",  // N 2^21
           "scrypt$0$8$1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",
           "scrypt$-1024$8$1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",
           "scrypt$1024$33$1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",  // r over 32
           "scrypt$1024$8$17$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",  // p over 16
           "scrypt$1024$8$1$TmF!bA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",   // salt base64
           "scrypt$1024$8$1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s",    // key length
           "scrypt$1024$8$1$TmFDbA==$",                                           // no key
           "scrypt$1024$8$1$$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",           // no salt
           "scrypt$1024$8$1$TmFDbA==",                                            // a part missing
           "scrypt$1024$8$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=",
           "scrypt$1024$8$1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s=$",  // one too many
           "scrypt$$$$$",
       }) {
    INFO(hash);
    CHECK_FALSE(verify_password(hash, "password"));
  }
}

TEST_CASE("a key longer than 64 bytes is refused", "[forward][password]") {
  const std::string key(88, 'A');  // 66 bytes
  CHECK_FALSE(verify_password("scrypt$1024$8$1$TmFDbA==$" + key, "password"));
}

}  // namespace
}  // namespace sluice::forward
