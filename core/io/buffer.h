// Pooled, reference-counted read buffers. A read lands in a Block from the worker's pool; body
// bytes are forwarded as Slices that point into it, so a body is never copied, and the Block
// returns to the pool when the last write that uses it completes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::core {

class BlockPool;

struct Block {
  BlockPool* pool;
  uint32_t refs;
  uint32_t size;
  char* data() { return reinterpret_cast<char*>(this + 1); }
};

void block_ref(Block* block);
void block_unref(Block* block);

// A Block that lends bytes held elsewhere (a stored response that every worker may send): its
// slices point outside it, it has no pool, and when its last reference goes `release` lets go
// of `owner`. So bytes shared between workers go out with no copy, counted like any read.
struct LentBlock {
  Block block;
  void (*release)(LentBlock* lent);
  void* owner;
};
// A LentBlock with one reference; `release` gets it back when the last one goes (and frees it
// with delete_lent_block).
Block* lend_block(void (*release)(LentBlock*), void* owner);
void delete_lent_block(LentBlock* lent);

// A counted reference to bytes inside a Block.
struct Slice {
  Block* block = nullptr;
  const char* data = nullptr;
  size_t length = 0;
};

class BlockPool {
 public:
  // Up to `max_free` blocks wait for reuse; beyond that a released block goes back to the
  // allocator, so a burst does not keep its memory after it has passed.
  explicit BlockPool(uint32_t block_size = 64 * 1024, size_t max_free = 32);
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  Block* acquire();  // refs == 1
  // A block of at least `size` bytes: pooled when it fits, a one-off allocation otherwise.
  Block* acquire(size_t size);
  void recycle(Block* block);
  uint32_t block_size() const { return block_size_; }

 private:
  uint32_t block_size_;
  size_t max_free_;
  std::vector<Block*> free_;
};

}  // namespace sluice::core
