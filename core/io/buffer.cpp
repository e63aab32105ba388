// Block pool: a per-worker free list, so steady traffic reuses the same few blocks.
#include "core/io/buffer.h"

#include <cstdlib>
#include <new>

namespace sluice::core {

void block_ref(Block* block) {
  ++block->refs;
}

void block_unref(Block* block) {
  if (--block->refs != 0) return;
  if (block->pool != nullptr) {
    block->pool->recycle(block);
    return;
  }
  auto* lent = reinterpret_cast<LentBlock*>(block);
  lent->release(lent);
}

Block* lend_block(void (*release)(LentBlock*), void* owner) {
  auto* lent = new LentBlock{Block{nullptr, 1, 0}, release, owner};
  return &lent->block;
}

void delete_lent_block(LentBlock* lent) {
  delete lent;
}

BlockPool::BlockPool(uint32_t block_size, size_t max_free)
    : block_size_(block_size), max_free_(max_free) {}

BlockPool::~BlockPool() {
  for (Block* b : free_) std::free(b);
}

Block* BlockPool::acquire() {
  Block* b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    b = static_cast<Block*>(std::malloc(sizeof(Block) + block_size_));
    if (!b) throw std::bad_alloc();
  }
  b->pool = this;
  b->refs = 1;
  b->size = block_size_;
  return b;
}

Block* BlockPool::acquire(size_t size) {
  if (size <= block_size_) return acquire();
  auto* b = static_cast<Block*>(std::malloc(sizeof(Block) + size));
  if (!b) throw std::bad_alloc();
  b->pool = this;
  b->refs = 1;
  b->size = static_cast<uint32_t>(size);
  return b;
}

void BlockPool::recycle(Block* block) {
  if (block->size == block_size_ && free_.size() < max_free_)
    free_.push_back(block);
  else
    std::free(block);
}

}  // namespace sluice::core
