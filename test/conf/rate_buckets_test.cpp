// The rate buckets on an injected clock: refill arithmetic, burst, the wait until a token is
// back, eviction of the bucket charged longest ago in a set, a table full of clients staying
// within its bound, the route's bucket after the client's, and threads that race on one bucket
// never getting more than the limit allows.
#include "conf/rate_buckets.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "conf/prefix_tree.h"

namespace sluice::conf {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kStart = 1000 * kSecond;  // the injected clock's "now" at the start

// Tokens taken from `bucket` at `now` until the first refusal (at most `most`).
int drain(std::atomic<uint64_t>& bucket, const RateShape& shape, uint64_t now, int most = 10000) {
  int taken = 0;
  while (taken < most && take_token(bucket, shape, now) == 0) ++taken;
  return taken;
}

IpAddress ip(const char* text) {
  IpAddress out;
  REQUIRE(parse_ip_address(text, &out));
  return out;
}

RateLimitConfig limits(uint32_t per_client, uint32_t burst, uint32_t rps) {
  RateLimitConfig config;
  config.per_client_rps = per_client;
  config.burst = burst;
  config.rps = rps;
  config.max_clients = 64;
  return config;
}

}  // namespace

TEST_CASE("rate buckets: a full bucket gives its burst, then one token per interval",
          "[conf][rate]") {
  const RateShape shape = rate_shape(50, 100);
  CHECK(shape.interval_ns == 20'000'000);
  CHECK(shape.window_ns == 100 * shape.interval_ns);
  std::atomic<uint64_t> bucket{0};
  CHECK(drain(bucket, shape, kStart) == 100);
  // Empty: the wait is one interval, and shrinks as time passes.
  CHECK(take_token(bucket, shape, kStart) == shape.interval_ns);
  CHECK(take_token(bucket, shape, kStart + 5'000'000) == shape.interval_ns - 5'000'000);
  CHECK(drain(bucket, shape, kStart + shape.interval_ns - 1) == 0);
  CHECK(drain(bucket, shape, kStart + shape.interval_ns) == 1);
  // One second later: 50 more, never more than the burst however long it rested.
  CHECK(drain(bucket, shape, kStart + shape.interval_ns + kSecond) == 50);
  CHECK(drain(bucket, shape, kStart + 3600 * kSecond) == 100);
}

TEST_CASE("rate buckets: a rate that does not divide a second, and a burst of one",
          "[conf][rate]") {
  const RateShape shape = rate_shape(3, 3);
  std::atomic<uint64_t> bucket{0};
  CHECK(drain(bucket, shape, kStart) == 3);
  // Over 30 s at one request every 10 ms, 3 a second get through: 90, not 89 or 91. The burst
  // absorbs the up to 10 ms each request comes after its token.
  int taken = 0;
  for (uint64_t t = 10'000'000; t <= 30 * kSecond; t += 10'000'000)
    taken += take_token(bucket, shape, kStart + t) == 0;
  CHECK(taken == 90);

  // A burst of one holds no more than the next token: time a request comes late is lost.
  const RateShape one = rate_shape(3, 1);
  std::atomic<uint64_t> single{0};
  CHECK(drain(single, one, kStart) == 1);
  CHECK(drain(single, one, kStart + kSecond) == 1);
  CHECK(take_token(single, one, kStart + kSecond) == one.interval_ns);
}

TEST_CASE("rate buckets: a returned token can be taken again", "[conf][rate]") {
  const RateShape shape = rate_shape(10, 2);
  std::atomic<uint64_t> bucket{0};
  CHECK(drain(bucket, shape, kStart) == 2);
  return_token(bucket, shape);
  CHECK(drain(bucket, shape, kStart) == 1);
  std::atomic<uint64_t> full{0};
  return_token(full, shape);  // never below "full since forever"
  CHECK(full.load() == 0);
  CHECK(drain(full, shape, kStart) == 2);
}

TEST_CASE("rate buckets: a new client in a full set evicts the one charged longest ago",
          "[conf][rate]") {
  ClientBuckets table(rate_shape(1, 1), 16);  // two sets of 8; even keys share set 0
  REQUIRE(table.capacity() == 16);
  for (uint64_t n = 1; n <= 8; ++n) {
    CHECK(table.take(2 * n, kStart + n) == 0);  // the 8 slots of set 0, key 2 first
    CHECK(table.take(2 * n, kStart + n) > 0);   // each spent its burst of one
  }
  CHECK(table.clients() == 8);
  CHECK(table.take(18, kStart + 9) == 0);  // a ninth client: key 2 is given up
  CHECK(table.clients() == 8);
  CHECK(table.take(4, kStart + 10) > 0);   // key 4 still has its spent bucket
  CHECK(table.take(2, kStart + 10) == 0);  // key 2 starts over with a full one
  CHECK(table.take(4, kStart + 10) == 0);  // ... and took key 4's slot, the oldest now
  CHECK(table.take(6, kStart + 10) == 0);  // key 6 took key 8's... each newcomer the oldest
  CHECK(table.take(3, kStart + 10) == 0);  // set 1 is apart from all this
  CHECK(table.clients() == 9);
}

TEST_CASE("rate buckets: a table stays within its bound however many clients come",
          "[conf][rate]") {
  ClientBuckets table(rate_shape(5, 5), 100);
  CHECK(table.capacity() == 104);  // rounded up to sets of 8
  for (uint64_t key = 1; key <= 100'000; ++key) table.take(key * 0x9E3779B97F4A7C15ULL, kStart);
  CHECK(table.clients() == table.capacity());
  // A client that keeps coming keeps its bucket while 900 strangers pass through its set.
  ClientBuckets busy(rate_shape(1, 1000), 8);  // one set
  for (uint64_t key = 100; key < 1000; ++key) {
    CHECK(busy.take(key, kStart + key) == 0);
    CHECK(busy.take(7, kStart + key) == 0);
  }
  CHECK(busy.clients() == 8);
  int left = 0;
  while (busy.take(7, kStart + 1000) == 0) ++left;
  CHECK(left == 100);  // its own spent bucket, not a fresh one
}

TEST_CASE("rate buckets: the route's limit after the client's", "[conf][rate]") {
  RouteRate both(limits(2, 2, 3));
  const IpAddress a = ip("192.0.2.1"), b = ip("192.0.2.2"), c = ip("2001:db8::1");
  CHECK(both.client_key(a) != both.client_key(b));
  CHECK(both.client_key(c) != both.client_key(ip("2001:db8::2")));
  CHECK(both.admit(a, kStart).refused == RateRefusal::kNone);
  CHECK(both.admit(a, kStart).refused == RateRefusal::kNone);
  const RateVerdict over = both.admit(a, kStart);
  CHECK(over.refused == RateRefusal::kClient);  // spent nothing of the route's
  CHECK(over.wait_ns == kSecond / 2);
  CHECK(both.admit(b, kStart).refused == RateRefusal::kNone);
  const RateVerdict full = both.admit(c, kStart);
  CHECK(full.refused == RateRefusal::kRoute);
  CHECK(full.wait_ns == kSecond / 3);
  // c's token came back: once the route has one, c still has its whole burst.
  CHECK(both.admit(c, kStart + kSecond / 3).refused == RateRefusal::kNone);
  CHECK(both.admit(c, kStart + kSecond / 3).refused == RateRefusal::kRoute);  // c has one left
  CHECK(both.admit(c, kStart + 2 * kSecond / 3).refused == RateRefusal::kNone);
  CHECK(both.admit(c, kStart + 2 * kSecond / 3).refused == RateRefusal::kClient);  // now spent

  RouteRate route_only(limits(0, 0, 1));
  CHECK(route_only.clients() == nullptr);
  CHECK(route_only.admit(a, kStart).refused == RateRefusal::kNone);
  CHECK(route_only.admit(b, kStart).refused == RateRefusal::kRoute);
}

TEST_CASE("rate buckets: threads racing on one client never get more than the limit",
          "[conf][rate]") {
  constexpr int kThreads = 4;
  constexpr int kTries = 20000;
  constexpr uint32_t kBurst = 1000;
  RouteRate rate(limits(100, kBurst, 0));
  const IpAddress client = ip("198.51.100.7");
  std::atomic<int> passed{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      // Each thread's clock runs a little apart from the others', as workers' do; over the run
      // the clock moves on 10 s, so 1000 more tokens come back.
      for (int i = 0; i < kTries; ++i) {
        const uint64_t now = kStart + static_cast<uint64_t>(i) * 500'000 + t * 1000;
        passed += rate.admit(client, now).refused == RateRefusal::kNone;
      }
    });
  }
  go = true;
  for (std::thread& thread : threads) thread.join();
  const uint64_t span = (kTries - 1) * uint64_t{500'000} + (kThreads - 1) * 1000;
  const int most = static_cast<int>(kBurst + span * 100 / kSecond);  // burst + rate × time
  CHECK(passed.load() <= most);
  CHECK(passed.load() >= most - 2);  // and every token was handed out
  CHECK(rate.clients()->clients() == 1);
}

}  // namespace sluice::conf
