// The sharded store. Each lock is held for one map lookup and a list splice; responses are
// freed outside the locks (the last shared_ptr may be a hit's, released on its worker).
#include "core/cache/store.h"

#include <functional>

namespace sluice::core::cache {

namespace {

bool case_insensitive_value(std::string_view name) {
  return name == "accept-encoding" || name == "accept-charset" || name == "accept-language";
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
  for (auto at : it->second) {
    if (!vary_matches(**at, request)) continue;
    shard.lru.splice(shard.lru.begin(), shard.lru, at);  // iterators stay valid
    return *at;
  }
  return nullptr;
}

void Store::drop(Shard& shard, std::list<std::shared_ptr<const StoredResponse>>::iterator at) {
  bytes_.fetch_sub((*at)->bytes, std::memory_order_relaxed);
  auto it = shard.keys.find((*at)->key);
  if (it != shard.keys.end()) {
    std::erase(it->second, at);
    if (it->second.empty()) shard.keys.erase(it);
  }
  shard.lru.erase(at);
}

void Store::put(std::shared_ptr<const StoredResponse> response) {
  if (response->bytes > max_bytes_) return;
  const size_t first = std::hash<std::string>{}(response->key) % kShards;
  Shard& shard = shards_[first];
  std::shared_ptr<const StoredResponse> replaced;
  {
    std::lock_guard<std::mutex> hold(shard.lock);
    auto& variants = shard.keys[response->key];
    for (auto at : variants) {
      const StoredResponse& old = **at;
      bool same = old.vary.size() == response->vary.size();
      for (size_t i = 0; same && i < old.vary.size(); ++i)
        same = old.vary[i].name == response->vary[i].name &&
               old.vary[i].value == response->vary[i].value &&
               old.vary[i].present == response->vary[i].present;
      if (!same) continue;
      replaced = *at;
      bytes_.fetch_sub(old.bytes, std::memory_order_relaxed);
      std::erase(variants, at);
      shard.lru.erase(at);
      break;
    }
    bytes_.fetch_add(response->bytes, std::memory_order_relaxed);
    shard.lru.push_front(std::move(response));
    variants.push_back(shard.lru.begin());
  }
  counters_.stored.fetch_add(1, std::memory_order_relaxed);
  evict_over(first);
}

// Least recently used first, from the shard that grew, then the others in turn.
void Store::evict_over(size_t first) {
  for (size_t n = 0; n < kShards && bytes() > max_bytes_; ++n) {
    Shard& shard = shards_[(first + n) % kShards];
    std::vector<std::shared_ptr<const StoredResponse>> gone;  // freed after the lock
    {
      std::lock_guard<std::mutex> hold(shard.lock);
      while (bytes() > max_bytes_ && !shard.lru.empty()) {
        gone.push_back(shard.lru.back());
        drop(shard, std::prev(shard.lru.end()));
      }
    }
    counters_.evicted.fetch_add(gone.size(), std::memory_order_relaxed);
  }
}

size_t Store::erase(const std::string& key) {
  Shard& shard = shard_of(key);
  std::vector<std::shared_ptr<const StoredResponse>> gone;
  {
    std::lock_guard<std::mutex> hold(shard.lock);
    auto it = shard.keys.find(key);
    if (it == shard.keys.end()) return 0;
    for (auto at : it->second) {
      gone.push_back(*at);
      bytes_.fetch_sub((*at)->bytes, std::memory_order_relaxed);
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
        if (std::string_view((*it)->key).starts_with(prefix)) {
          gone.push_back(*it);
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
