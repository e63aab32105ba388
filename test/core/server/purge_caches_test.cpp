// POST /cache/purge as core/server does it: over every cached route of a generation, a key with
// all its Vary variants or every key under a prefix, counted in the caches' figures.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/cache/route_cache.h"
#include "core/proxy/worker_context.h"
#include "core/server/worker.h"

namespace sluice::core {
namespace {

std::shared_ptr<const cache::StoredResponse> stored(const std::string& key,
                                                    const std::string& encoding = "") {
  auto r = std::make_shared<cache::StoredResponse>();
  r->key = key;
  r->bytes = 100;
  if (!encoding.empty()) r->vary.push_back({"accept-encoding", encoding, true});
  return r;
}

// Two cached routes around an uncached one, as wire_caches leaves them.
struct TwoCaches {
  TwoCaches() {
    generation.caches = {&first, nullptr, &second};
    first_shared->store.put(stored("http://a.test/x", "gzip"));
    first_shared->store.put(stored("http://a.test/x", "br"));
    first_shared->store.put(stored("http://a.test/x?page=2"));
    first_shared->store.put(stored("http://a.test/y"));
    second_shared->store.put(stored("http://a.test/x/z"));
    second_shared->store.put(stored("https://a.test/x"));
  }
  std::shared_ptr<cache::SharedCache> first_shared =
      std::make_shared<cache::SharedCache>(conf::CacheConfig{});
  std::shared_ptr<cache::SharedCache> second_shared =
      std::make_shared<cache::SharedCache>(conf::CacheConfig{});
  std::shared_ptr<cache::WorkerWake> wake = std::make_shared<cache::WorkerWake>([] {});
  cache::WorkerCache first{first_shared, wake}, second{second_shared, wake};
  Generation generation;
};

TEST_CASE("a purge by key drops every variant stored under exactly that key", "[server][cache]") {
  TwoCaches caches;
  CHECK(purge_caches(caches.generation, "http://a.test/x", false) == 2);
  CHECK(caches.first.figures().entries == 2);
  CHECK(caches.first.figures().invalidated == 2);
  CHECK(caches.first.figures().bytes == 200);
  CHECK(caches.second.figures().entries == 2);
  CHECK(purge_caches(caches.generation, "http://a.test/x", false) == 0);
}

TEST_CASE("a purge by prefix drops the keys under it in every cached route", "[server][cache]") {
  TwoCaches caches;
  CHECK(purge_caches(caches.generation, "http://a.test/x", true) == 4);
  CHECK(caches.first.figures().entries == 1);   // http://a.test/y
  CHECK(caches.second.figures().entries == 1);  // https://a.test/x
  CHECK(caches.second.figures().invalidated == 1);
}

TEST_CASE("the typed accessor gives each route's cache or null", "[server][cache]") {
  TwoCaches caches;
  CHECK(worker_cache(caches.generation, 0) == &caches.first);
  CHECK(worker_cache(caches.generation, 1) == nullptr);
  CHECK(worker_cache(caches.generation, 2) == &caches.second);
  CHECK(worker_cache(caches.generation, 3) == nullptr);
}

}  // namespace
}  // namespace sluice::core
