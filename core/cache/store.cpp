// The sharded store. Each lock is held for one map lookup and a list splice; responses are
// freed outside the locks (the last shared_ptr may be a hit's, released on its worker).
#include "core/cache/store.h"

#include <functional>

#include "core/cache/clock.h"

namespace sluice::core::cache {

namespace {

bool case_insensitive_value(std::string_view name) {
  return equals_ignore_case(name, "accept-encoding") ||
         equals_ignore_case(name, "accept-charset") || equals_ignore_case(name, "accept-language");
}

}  // namespace

bool vary_value(const MessageHead& request, std::string_view name, std::string* value) {
  value->clear();
  bool present = false;
  for (size_t i = 0; i < request.field_count(); ++i) {
    if (!equals_ignore_case(request.name(i), name)) continue;
    std::string_view list = request.value(i), item;
    while (next_list_item(&list, &item)) {
      if (item.empty()) continue;
      if (!value->empty()) value->push_back(',');
      value->append(item);
    }
    present = true;
  }
  if (case_insensitive_value(name))
    for (char& c : *value)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return present;
}

bool vary_matches(const StoredResponse& stored, const MessageHead& request) {
  if (stored.vary_any) return false;
  std::string value;
  for (const VaryField& field : stored.vary) {
    const bool present = vary_value(request, field.name, &value);
    if (present != field.present || value != field.value) return false;
  }
  return true;
}

Store::Shard& Store::shard_of(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % kShards];
}

std::shared_ptr<const StoredResponse> Store::find(const std::string& key,
                                                  const MessageHead& request) {
  Shard& shard = shard_of(key);
  std::lock_guard<std::mutex> hold(shard.lock);
  auto it = shard.keys.find(key);
  if (it == shard.keys.end()) return nullptr;
  for (Position at : it->second) {
    if (!vary_matches(*at->response, request)) continue;
    at->used_ns = steady_ns();
    shard.lru.splice(shard.lru.begin(), shard.lru, at);  // iterators stay valid
    return at->response;
  }
  return nullptr;
}

void Store::drop(Shard& shard, Position at) {
  bytes_.fetch_sub(at->response->bytes, std::memory_order_relaxed);
  auto it = shard.keys.find(at->response->key);
  if (it != shard.keys.end()) {
    std::erase(it->second, at);
    if (it->second.empty()) shard.keys.erase(it);
  }
  shard.lru.erase(at);
}

void Store::put(std::shared_ptr<const StoredResponse> response) {
  if (response->bytes > max_bytes_) return;
  Shard& shard = shard_of(response->key);
  std::shared_ptr<const StoredResponse> replaced;
  {
    std::lock_guard<std::mutex> hold(shard.lock);
    auto& variants = shard.keys[response->key];
    // A response whose Vary names other fields replaces every variant: the backend changed how
    // it selects, and an older variant must not shadow the new one.
    for (auto it = variants.begin(); it != variants.end();) {
      const StoredResponse& old = *(*it)->response;
      bool same_names = old.vary.size() == response->vary.size();
      for (size_t i = 0; same_names && i < old.vary.size(); ++i)
        same_names = old.vary[i].name == response->vary[i].name;
      if (same_names) {
        ++it;
        continue;
      }
      bytes_.fetch_sub(old.bytes, std::memory_order_relaxed);
      shard.lru.erase(*it);
      it = variants.erase(it);
    }
    for (Position at : variants) {
      const StoredResponse& old = *at->response;
      bool same = old.vary.size() == response->vary.size();
      for (size_t i = 0; same && i < old.vary.size(); ++i)
        same = old.vary[i].name == response->vary[i].name &&
               old.vary[i].value == response->vary[i].value &&
               old.vary[i].present == response->vary[i].present;
      if (!same) continue;
      replaced = at->response;
      bytes_.fetch_sub(old.bytes, std::memory_order_relaxed);
      std::erase(variants, at);
      shard.lru.erase(at);
      break;
    }
    bytes_.fetch_add(response->bytes, std::memory_order_relaxed);
    shard.lru.push_front(Entry{std::move(response), steady_ns()});
    variants.push_back(shard.lru.begin());
  }
  counters_.stored.fetch_add(1, std::memory_order_relaxed);
  while (bytes() > max_bytes_ && evict_one()) {
  }
}

// Each shard's list is in order of use, so the store's least recently used response is the
// oldest of their last entries. Eviction is rare beside hits: looking at every shard is cheap.
bool Store::evict_one() {
  Shard* oldest = nullptr;
  uint64_t oldest_ns = UINT64_MAX;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> hold(shard.lock);
    if (!shard.lru.empty() && shard.lru.back().used_ns < oldest_ns) {
      oldest_ns = shard.lru.back().used_ns;
      oldest = &shard;
    }
  }
  if (oldest == nullptr) return false;
  std::shared_ptr<const StoredResponse> gone;  // freed after the lock
  {
    std::lock_guard<std::mutex> hold(oldest->lock);
    if (oldest->lru.empty()) return true;  // emptied meanwhile: look again
    gone = oldest->lru.back().response;
    drop(*oldest, std::prev(oldest->lru.end()));
  }
  counters_.evicted.fetch_add(1, std::memory_order_relaxed);
  return true;
}

size_t Store::erase(const std::string& key) {
  Shard& shard = shard_of(key);
  std::vector<std::shared_ptr<const StoredResponse>> gone;
  {
    std::lock_guard<std::mutex> hold(shard.lock);
    auto it = shard.keys.find(key);
    if (it == shard.keys.end()) return 0;
    for (Position at : it->second) {
      gone.push_back(at->response);
      bytes_.fetch_sub(at->response->bytes, std::memory_order_relaxed);
      shard.lru.erase(at);
    }
    shard.keys.erase(it);
  }
  counters_.invalidated.fetch_add(gone.size(), std::memory_order_relaxed);
  return gone.size();
}

size_t Store::erase_prefix(std::string_view prefix) {
  size_t count = 0;
  for (Shard& shard : shards_) {
    std::vector<std::shared_ptr<const StoredResponse>> gone;
    {
      std::lock_guard<std::mutex> hold(shard.lock);
      for (auto it = shard.lru.begin(); it != shard.lru.end();) {
        auto next = std::next(it);
        if (std::string_view(it->response->key).starts_with(prefix)) {
          gone.push_back(it->response);
          drop(shard, it);
        }
        it = next;
      }
    }
    count += gone.size();
  }
  counters_.invalidated.fetch_add(count, std::memory_order_relaxed);
  return count;
}

size_t Store::count() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> hold(shard.lock);
    n += shard.lru.size();
  }
  return n;
}

}  // namespace sluice::core::cache
