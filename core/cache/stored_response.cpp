// Stored bodies grow in blocks sized to the declared length where there is one, so a small
// response costs its size and a large one never moves once written.
#include "core/cache/stored_response.h"

#include <algorithm>
#include <cstring>

namespace sluice::core::cache {

void Body::append(const char* data, size_t length) {
  while (length > 0) {
    if (blocks_.empty() || blocks_.back().used == blocks_.back().capacity) {
      // The declared length left, else double what is held, between 4 KiB and a block.
      uint64_t want = expected_ > size_ ? expected_ - size_ : std::max<uint64_t>(size_, 4096);
      want = std::clamp<uint64_t>(want, std::min<uint64_t>(length, 4096), kBlockBytes);
      Stretch s;
      s.bytes = std::make_unique<char[]>(want);
      s.capacity = static_cast<size_t>(want);
      allocated_ += want;
      blocks_.push_back(std::move(s));
    }
    Stretch& last = blocks_.back();
    const size_t n = std::min(length, last.capacity - last.used);
    std::memcpy(last.bytes.get() + last.used, data, n);
    last.used += n;
    size_ += n;
    data += n;
    length -= n;
  }
}

namespace {

void release_response(LentBlock* lent) {
  delete static_cast<std::shared_ptr<const StoredResponse>*>(lent->owner);
  delete_lent_block(lent);
}

}  // namespace

Block* lend(std::shared_ptr<const StoredResponse> response) {
  return lend_block(&release_response,
                    new std::shared_ptr<const StoredResponse>(std::move(response)));
}

}  // namespace sluice::core::cache
