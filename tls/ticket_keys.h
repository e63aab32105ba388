// Session-ticket keys for the whole process: every listener context encrypts tickets with the
// current key, so a session made on one worker resumes on any other. The main thread rotates the
// set on a schedule; workers read it in a handshake through one atomic load, never a lock.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::tls {

struct TicketKey {
  std::array<unsigned char, 16> name;
  std::array<unsigned char, 32> aes_key;
  std::array<unsigned char, 32> hmac_key;
};

class TicketKeys {
 public:
  static constexpr uint32_t kRotateEveryS = 12 * 3600;
  static constexpr size_t kKept = 3;  // the current key and two before it still decrypt

  static TicketKeys& process();

  // Makes a new current key; the oldest beyond kKept stops being accepted. Main thread.
  void rotate();
  // Installs the ticket callback on a server context.
  static void attach(SSL_CTX* ctx);
  // Keys newest first; never empty.
  std::shared_ptr<const std::vector<TicketKey>> keys() const { return keys_.load(); }

 private:
  TicketKeys();
  std::atomic<std::shared_ptr<const std::vector<TicketKey>>> keys_;
};

}  // namespace sluice::tls
