// The prefix tree: built as a plain binary trie (a node per bit), then copied without the nodes
// that neither hold a network nor fork, so a lookup of 1,000 scattered /24s visits about a dozen
// nodes rather than 24.
#include "conf/prefix_tree.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>

namespace sluice::conf {
namespace {

constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

uint64_t load64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

uint32_t load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

// Bit `i` (0 first) of the 128 bits high:low.
unsigned bit_at(uint64_t high, uint64_t low, unsigned i) {
  return i < 64 ? (high >> (63 - i)) & 1 : (low >> (127 - i)) & 1;
}

void set_bit(uint64_t* high, uint64_t* low, unsigned i) {
  if (i < 64)
    *high |= uint64_t{1} << (63 - i);
  else
    *low |= uint64_t{1} << (127 - i);
}

// Dotted-quad IPv4 exactly as inet_pton reads it (four decimal numbers 0..255, no leading
// zeros), in a tenth of its instructions: X-Forwarded-For entries are read on the request path.
bool parse_ipv4(std::string_view text, uint8_t* out) {
  unsigned part = 0, digits = 0, value = 0;
  for (const char c : text) {
    if (c >= '0' && c <= '9') {
      if (digits > 0 && value == 0) return false;  // a leading zero
      value = value * 10 + static_cast<unsigned>(c - '0');
      if (value > 255 || ++digits > 3) return false;
    } else if (c == '.' && digits > 0 && part < 3) {
      out[part++] = static_cast<uint8_t>(value);
      value = digits = 0;
    } else {
      return false;
    }
  }
  if (part != 3 || digits == 0) return false;
  out[3] = static_cast<uint8_t>(value);
  return true;
}

char* put_octet(char* p, unsigned v) {
  if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
  if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
  *p++ = static_cast<char>('0' + v % 10);
  return p;
}

// Do the first `len` bits of high:low equal the node's? (A shift by 64 would be undefined.)
bool prefix_matches(uint64_t high, uint64_t low, uint64_t node_high, uint64_t node_low,
                    unsigned len) {
  const uint64_t dh = high ^ node_high, dl = low ^ node_low;
  if (len <= 64) return len == 0 || (dh >> (64 - len)) == 0;
  return dh == 0 && (len == 128 ? dl == 0 : (dl >> (128 - len)) == 0);
}

// The plain trie the tree is copied from: one node per bit, children by index (-1: none).
struct RawNode {
  int32_t child[2] = {-1, -1};
  int16_t value = PrefixTree::kNone;
};

}  // namespace

IpAddress ip_address(const sockaddr* address) {
  IpAddress out;
  if (address->sa_family == AF_INET) {
    out.family = AF_INET;
    std::memcpy(out.bytes, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, 4);
  } else if (address->sa_family == AF_INET6) {
    const uint8_t* v6 = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr.s6_addr;
    const bool mapped = std::memcmp(v6, kMapped, sizeof kMapped) == 0;
    out.family = mapped ? AF_INET : AF_INET6;
    std::memcpy(out.bytes, mapped ? v6 + 12 : v6, mapped ? 4 : 16);
  }
  return out;
}

bool parse_ip_address(std::string_view text, IpAddress* out) {
  *out = IpAddress{};
  if (text.find(':') == std::string_view::npos) {
    if (!parse_ipv4(text, out->bytes)) return false;
    out->family = AF_INET;
    return true;
  }
  char copy[INET6_ADDRSTRLEN];
  if (text.size() >= sizeof copy) return false;
  std::memcpy(copy, text.data(), text.size());
  copy[text.size()] = '\0';
  if (std::memchr(copy, '\0', text.size()) != nullptr) return false;
  if (inet_pton(AF_INET6, copy, out->bytes) != 1) return false;
  out->family = AF_INET6;
  if (std::memcmp(out->bytes, kMapped, sizeof kMapped) == 0) {
    out->family = AF_INET;
    std::memmove(out->bytes, out->bytes + 12, 4);
    std::memset(out->bytes + 4, 0, 12);
  }
  return true;
}

void format_ip_address(const IpAddress& address, char* out, size_t size) {
  if (address.family == AF_INET && size >= INET_ADDRSTRLEN) {
    char* p = out;
    for (int i = 0; i < 4; ++i) {
      if (i > 0) *p++ = '.';
      p = put_octet(p, address.bytes[i]);
    }
    *p = '\0';
  } else if (address.family == AF_INET || address.family == AF_INET6) {
    inet_ntop(address.family, address.bytes, out, static_cast<socklen_t>(size));
  } else {
    std::snprintf(out, size, "unknown");
  }
}

void PrefixTree::Builder::add(const Cidr& network, uint8_t value) {
  Entry entry{network.family, {}, network.prefix, value};
  std::memcpy(entry.bytes, network.bytes, sizeof entry.bytes);
  if (entry.family == AF_INET6 && entry.prefix >= 96 &&
      std::memcmp(entry.bytes, kMapped, sizeof kMapped) == 0) {
    entry.family = AF_INET;
    entry.prefix = static_cast<uint8_t>(entry.prefix - 96);
    std::memmove(entry.bytes, entry.bytes + 12, 4);
    std::memset(entry.bytes + 4, 0, 12);
  }
  entries_.push_back(entry);
}

namespace {

class Compressor {
 public:
  template <typename Node>
  void run(const std::vector<RawNode>& raw, std::vector<Node>& out) {
    if (raw.empty()) return;
    copy(raw, out, 0, 0, 0, 0);
  }

 private:
  // Copies raw node `r` (at depth `length`, reached by the bits high:low) and what hangs below
  // it; a chain of nodes with one child and no value becomes the node at its end. Returns the
  // index of the copy. Recursion depth is at most 129.
  template <typename Node>
  uint32_t copy(const std::vector<RawNode>& raw, std::vector<Node>& out, int32_t r, unsigned length,
                uint64_t high, uint64_t low) {
    const auto at = static_cast<uint32_t>(out.size());
    out.emplace_back();
    out[at].high = high;
    out[at].low = low;
    out[at].length = static_cast<uint8_t>(length);
    out[at].value = raw[r].value;
    for (unsigned b = 0; b < 2; ++b) {
      int32_t c = raw[r].child[b];
      if (c < 0) continue;
      unsigned depth = length + 1;
      uint64_t h = high, l = low;
      if (b) set_bit(&h, &l, length);
      while (raw[c].value == PrefixTree::kNone && (raw[c].child[0] < 0) != (raw[c].child[1] < 0)) {
        const unsigned next = raw[c].child[0] < 0 ? 1 : 0;
        if (next) set_bit(&h, &l, depth);
        c = raw[c].child[next];
        ++depth;
      }
      const uint32_t child = copy(raw, out, c, depth, h, l);
      out[at].child[b] = child;
    }
    return at;
  }
};

}  // namespace

PrefixTree PrefixTree::Builder::build() const {
  std::vector<RawNode> raw[2];  // IPv4, IPv6
  for (const Entry& e : entries_) {
    std::vector<RawNode>& trie = raw[e.family == AF_INET ? 0 : 1];
    if (trie.empty()) trie.emplace_back();
    const uint64_t high = e.family == AF_INET ? uint64_t{load32(e.bytes)} << 32 : load64(e.bytes);
    const uint64_t low = e.family == AF_INET ? 0 : load64(e.bytes + 8);
    int32_t node = 0;
    for (unsigned i = 0; i < e.prefix; ++i) {
      const unsigned b = bit_at(high, low, i);
      if (trie[node].child[b] < 0) {
        trie[node].child[b] = static_cast<int32_t>(trie.size());
        trie.emplace_back();
      }
      node = trie[node].child[b];
    }
    if (trie[node].value < e.value) trie[node].value = e.value;
  }
  PrefixTree tree;
  Compressor().run(raw[0], tree.v4_);
  Compressor().run(raw[1], tree.v6_);
  return tree;
}

int PrefixTree::walk(const std::vector<Node>& nodes, uint64_t high, uint64_t low) {
  if (nodes.empty()) return kNone;
  int best = kNone;
  uint32_t i = 0;
  for (;;) {
    const Node& n = nodes[i];
    // Only a node with a network is compared whole: past a fork that does not match, no
    // network below it matches either, so the next comparison ends the walk anyway.
    if (n.value != kNone) {
      if (!prefix_matches(high, low, n.high, n.low, n.length)) break;
      best = n.value;
    }
    if (n.length >= 128) break;
    const uint32_t next = n.child[bit_at(high, low, n.length)];
    if (next == 0) break;
    i = next;
  }
  return best;
}

int PrefixTree::walk_v4(const std::vector<Node>& nodes, uint32_t address) {
  if (nodes.empty()) return kNone;
  int best = kNone;
  uint32_t i = 0;
  for (;;) {
    const Node& n = nodes[i];
    const unsigned len = n.length;
    if (n.value != kNone) {
      const auto differ = address ^ static_cast<uint32_t>(n.high >> 32);
      if (len != 0 && (differ >> (32 - len)) != 0) break;
      best = n.value;
    }
    if (len >= 32) break;
    const uint32_t next = n.child[(address >> (31 - len)) & 1];
    if (next == 0) break;
    i = next;
  }
  return best;
}

int PrefixTree::lookup(const IpAddress& address) const {
  if (address.family == AF_INET) return walk_v4(v4_, load32(address.bytes));
  if (address.family == AF_INET6)
    return walk(v6_, load64(address.bytes), load64(address.bytes + 8));
  return kNone;
}

}  // namespace sluice::conf
