// Longest-prefix lookup of IPv4 and IPv6 addresses: the table behind access lists and
// trusted_proxies. Built once per snapshot on the main thread and only read after that, by every
// worker at once and without a lock; a lookup visits at most one node per prefix bit and
// allocates nothing.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "conf/ip_address.h"

namespace sluice::conf {

// Networks with a small value each (an access list's allow or deny, say); lookup() answers the
// value of the most specific network that contains an address. Each family has its own
// path-compressed binary trie: a node per network and per fork, none for the bits between.
class PrefixTree {
 public:
  static constexpr int kNone = -1;

  // Collects networks, then builds the immutable tree.
  class Builder {
   public:
    // The same network given twice keeps the larger value, so a caller can rank values (an
    // access list has deny over allow). A network inside ::ffff:0:0/96 is taken as IPv4.
    void add(const Cidr& network, uint8_t value);
    PrefixTree build() const;

   private:
    struct Entry {
      sa_family_t family;
      uint8_t bytes[16];
      uint8_t prefix;
      uint8_t value;
    };
    std::vector<Entry> entries_;
  };

  // The value of the longest network containing `address`, or kNone when none does.
  int lookup(const IpAddress& address) const;
  bool contains(const IpAddress& address) const { return lookup(address) != kNone; }
  bool empty() const { return v4_.empty() && v6_.empty(); }
  size_t node_count() const { return v4_.size() + v6_.size(); }

 private:
  struct Node {
    uint64_t high = 0, low = 0;  // the network's bits, first bit highest; zero past `length`
    uint32_t child[2] = {0, 0};  // by the bit after `length`; 0: none (the root is no child)
    uint8_t length = 0;          // prefix bits that count
    int16_t value = kNone;       // kNone: a fork only, no network of its own
  };
  static int walk(const std::vector<Node>& nodes, uint64_t high, uint64_t low);
  static int walk_v4(const std::vector<Node>& nodes, uint32_t address);  // the same, in 32 bits

  std::vector<Node> v4_, v6_;  // [0] is the root when not empty
};

}  // namespace sluice::conf
