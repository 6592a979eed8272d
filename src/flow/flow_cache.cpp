#include "flow/flow_cache.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <type_traits>
#include <utility>

#include "flow/l7_classifier.hpp"

namespace flowsec::flow {

namespace {

constexpr std::uint32_t kNil = std::numeric_limits<std::uint32_t>::max();

// LRU moves: at most one per flow per this much packet time (see update()).
constexpr std::uint32_t kLruStepMs = 100;

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoIcmpv6 = 58;

// TCP flag bits (RFC 9293 §3.1).
constexpr std::uint16_t kFin = 0x01;
constexpr std::uint16_t kSyn = 0x02;
constexpr std::uint16_t kRst = 0x04;
constexpr std::uint16_t kAck = 0x10;

// Entry::state bits.
enum : std::uint16_t {
  kLive = 1U << 0,
  kEnded = 1U << 1,  // FIN both ways or RST: on the ended list, exported after the linger
  kFinClient = 1U << 2,
  kFinServer = 1U << 3,
  kSynSeen = 1U << 4,     // client's SYN (handshake timing)
  kSynAckSeen = 1U << 5,  // server's SYN-ACK
  kAckTimed = 1U << 6,    // client latency measured
  kL7Done = 1U << 7,      // classifier finished (or none attached)
  kSeqInit0 = 1U << 8,    // TcpDir[0] holds a sequence number
  kSeqInit1 = 1U << 9,
  kTtlSeen = 1U << 10,         // min/max TTL hold a client packet's TTL
  kIcmpSeen = 1U << 11,        // icmp type/code set
  kFinClientAcked = 1U << 12,  // the server acknowledged the client's FIN
  kFinServerAcked = 1U << 13,  // the client acknowledged the server's FIN
  // Both: the connection is closed (RFC 9293 §3.6); the flow is at the head of the ended
  // list and leaves at the next expire(), without the linger.
  kClosed = kFinClientAcked | kFinServerAcked,
};

// Serial number arithmetic on 32-bit TCP sequence numbers (RFC 1982 §3.2).
inline bool seq_lt(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::int32_t>(a - b) < 0;
}
inline bool seq_le(std::uint32_t a, std::uint32_t b) {
  return !seq_lt(b, a);
}

inline std::uint64_t load64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline std::uint64_t mix(std::uint64_t h, std::uint64_t w) {
  h ^= w;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 29;
  return h;
}

inline std::uint64_t finalize(std::uint64_t h) {
  h ^= h >> 31;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

// Per-direction TCP sequence tracking: the highest sequence end seen and the latest gap
// below it, enough to tell a retransmission (data seen before) from an out-of-order
// segment (fills the gap).
struct TcpDir {
  std::uint32_t next = 0;  // highest seq + payload seen
  std::uint32_t hole_lo = 0;
  std::uint32_t hole_hi = 0;  // hole_lo == hole_hi: no gap known
};

// One flow. Links and the hash come first so the chain walk touches the key's cache line.
struct FlowCache::Entry {
  std::uint32_t hash = 0;
  std::uint32_t hash_next = kNil;  // bucket chain, or the free list when not live
  std::uint32_t lru_prev = kNil, lru_next = kNil;
  std::uint32_t fifo_prev = kNil, fifo_next = kNil;
  FlowRecord rec;
  TcpDir tcp[2];
  std::uint32_t syn_us = 0;     // SYN time, µs after rec.first_ns
  std::uint32_t synack_us = 0;  // SYN-ACK time, µs after rec.first_ns
  std::uint32_t lru_ms = 0;     // when it last moved to the LRU tail, ms after rec.first_ns
  std::uint16_t state = 0;
};

struct FlowCache::FragmentSlot {
  std::array<std::uint8_t, 16> src{};  // as in the first fragment
  std::array<std::uint8_t, 16> dst{};
  std::int64_t ts = 0;  // first fragment's time
  std::uint32_t id = 0;
  std::uint32_t flow = kNil;
  std::uint8_t ip_version = 0;
  std::uint8_t protocol = 0;
};

// The packet's key in its own direction, plus the direction-independent hash.
struct FlowCache::Lookup {
  FlowKey key;
  std::uint32_t hash = 0;
};

inline FlowCache::Entry& FlowCache::entry(std::uint32_t idx) {
  return slab_.get()[idx];
}

// Asks for every cache line of an entry that is about to be read or written whole.
inline void FlowCache::prefetch_entry(std::uint32_t idx) {
  const auto* e = reinterpret_cast<const char*>(&entry(idx));
  for (std::size_t at = 0; at < sizeof(Entry); at += 64) __builtin_prefetch(e + at, 1);
  __builtin_prefetch(e + sizeof(Entry) - 1, 1);
}

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;

// Reserves `bytes` of address space (rounded up to whole pages) for the slab or the bucket
// array: huge-page aligned when it spans a huge page, and offered to transparent huge
// pages. Nothing is committed until touched (MAP_NORESERVE), so a large -M costs only
// address space, and a huge page is two page faults where 4 KiB pages are ~1000 (each
// ~13 µs on the VMs measured; the first touch of fresh pages was the probe's largest cost
// after the hash lookup, docs/benchmarks.md). Returns the mapping and its rounded size.
std::pair<std::byte*, std::size_t> reserve_space(std::size_t bytes) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  bytes = (bytes + page - 1) / page * page;
  const bool huge = bytes >= kHugePage;
  const std::size_t mapped = huge ? bytes + kHugePage : bytes;
  void* raw = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  auto* base = static_cast<std::byte*>(raw);
  if (huge) {  // keep the aligned `bytes` in the middle, give back both ends
    const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(base);
    std::byte* aligned = base + ((kHugePage - at % kHugePage) % kHugePage);
    if (aligned > base) ::munmap(base, static_cast<std::size_t>(aligned - base));
    std::byte* end = base + mapped;
    if (aligned + bytes < end)
      ::munmap(aligned + bytes, static_cast<std::size_t>(end - (aligned + bytes)));
    (void)::madvise(aligned, bytes, MADV_HUGEPAGE);  // advice only: fine if refused
    base = aligned;
  }
  return {base, bytes};
}
}  // namespace

template <class T>
void FlowCache::Unmap<T>::operator()(T* p) const {
  static_assert(std::is_trivially_destructible_v<T>, "reserved space is unmapped, not destroyed");
  ::munmap(p, bytes);
}

const std::size_t FlowCache::kEntrySize = sizeof(FlowCache::Entry);
const std::size_t FlowCache::kBytesPerFlow = sizeof(FlowCache::Entry) + sizeof(std::uint32_t);

namespace {

FlowKey reversed(const FlowKey& k) {
  FlowKey r = k;
  r.src_addr = k.dst_addr;
  r.dst_addr = k.src_addr;
  r.src_port = k.dst_port;
  r.dst_port = k.src_port;
  return r;
}

// A per-process random seed (see FlowCache::seed_).
std::uint64_t hash_seed() {
  static const std::uint64_t seed = [] {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd();
  }();
  return seed;
}

// Addresses as two 64-bit words: compared and ordered without a call to memcmp (which
// was 4% of the probe's CPU through std::array's operator==).
struct Words {
  std::uint64_t hi, lo;
};
inline Words words(const std::array<std::uint8_t, 16>& a) {
  return {load64(a.data()), load64(a.data() + 8)};
}
inline bool same16(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b) {
  const Words x = words(a), y = words(b);
  return ((x.hi ^ y.hi) | (x.lo ^ y.lo)) == 0;
}

// 64 x 64 -> 128-bit product folded to 64 bits: the mixing step of wyhash-style hashes.
// (GCC and Clang have unsigned __int128 on every 64-bit target; `__extension__` tells
// -Wpedantic so.)
__extension__ using Uint128 = unsigned __int128;
inline std::uint64_t mul_fold(std::uint64_t a, std::uint64_t b) {
  const Uint128 p = static_cast<Uint128>(a) * b;
  return static_cast<std::uint64_t>(p) ^ static_cast<std::uint64_t>(p >> 64);
}

// One endpoint (address words and port) under the per-process keys. The port enters after
// the address is mixed, through a multiplication of its own, so that it cannot be traded
// for address bits (IPv6 senders choose their low 64 address bits), and not linearly: as
// `+ port * key`, the two endpoints' ports added up, and every flow between two hosts
// whose ports had the same sum fell into one bucket chain (hash flooding; see
// FlowCacheTest.CraftedKeysDoNotShareABucketChain).
inline std::uint64_t endpoint_hash(const std::array<std::uint64_t, 4>& k, Words a,
                                   std::uint16_t port) {
  return mul_fold(mul_fold(a.hi ^ k[0], a.lo ^ k[1]) ^ port, k[2]);
}

// Both directions of a flow hash alike: the endpoints' hashes are added, which does not
// depend on their order (an explicit canonical order cost a dozen compares and moves per
// packet). Takes the key's parts as words, so that it can run on a packet's fields
// before (and without waiting for) the FlowKey's bytes to be stored.
inline std::uint32_t flow_hash(const std::array<std::uint64_t, 4>& k, Words s, Words d,
                               std::uint16_t sp, std::uint16_t dp,
                               std::uint64_t vlan_version_protocol) {
  const std::uint64_t h =
      mul_fold(endpoint_hash(k, s, sp) + endpoint_hash(k, d, dp), vlan_version_protocol ^ k[3]);
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

// The flow hash's keys, drawn from the seed with splitmix64, so that they are four
// unrelated values whatever the seed.
std::array<std::uint64_t, 4> hash_keys(std::uint64_t seed) {
  std::array<std::uint64_t, 4> k{};
  for (auto& key : k) {
    seed += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    key = z ^ (z >> 31);
  }
  return k;
}

bool same_endpoints(const FlowKey& k, const FlowKey& p) {
  return k.src_port == p.src_port && k.dst_port == p.dst_port && same16(k.src_addr, p.src_addr) &&
         same16(k.dst_addr, p.dst_addr) && k.vlan == p.vlan && k.protocol == p.protocol &&
         k.ip_version == p.ip_version;
}

bool reverse_endpoints(const FlowKey& k, const FlowKey& p) {
  return k.src_port == p.dst_port && k.dst_port == p.src_port && same16(k.src_addr, p.dst_addr) &&
         same16(k.dst_addr, p.src_addr) && k.vlan == p.vlan && k.protocol == p.protocol &&
         k.ip_version == p.ip_version;
}

std::uint32_t clamp_u32(std::int64_t v) {
  if (v <= 0) return 0;
  if (v > std::numeric_limits<std::uint32_t>::max())
    return std::numeric_limits<std::uint32_t>::max();
  return static_cast<std::uint32_t>(v);
}

// A FIN occupies the sequence number after its segment's data (RFC 9293 §3.4): `next`
// moves past it, so the peer's acknowledgment number reaches `next` exactly when it
// acknowledges the FIN. Called after track_sequence() has taken the segment's data; a FIN
// beyond the highest end seen leaves a gap, as data would; a repeated FIN changes nothing.
void track_fin(TcpDir& t, bool& initialised, std::uint32_t seq, std::uint32_t len) {
  const std::uint32_t fin = seq + len;
  if (!initialised) {
    initialised = true;
    t.next = fin + 1;
    return;
  }
  if (seq_lt(fin, t.next)) return;
  if (fin != t.next) {
    t.hole_lo = t.next;
    t.hole_hi = fin;
  }
  t.next = fin + 1;
}

// Retransmission / out-of-order accounting for one TCP segment with payload.
void track_sequence(TcpDir& t, bool& initialised, DirectionCounters& c, std::uint32_t seq,
                    std::uint32_t len, std::uint32_t ip_len) {
  const std::uint32_t end = seq + len;
  if (!initialised) {
    initialised = true;
    t.next = end;
    return;
  }
  if (seq_le(t.next, seq)) {  // at or beyond the highest end: in order, or after a gap
    if (seq != t.next) {
      t.hole_lo = t.next;
      t.hole_hi = seq;
    }
    t.next = end;
    return;
  }
  // Starts below the highest end seen: fills the known gap, or repeats seen data.
  const bool in_hole = t.hole_lo != t.hole_hi && seq_le(t.hole_lo, seq) && seq_lt(seq, t.hole_hi);
  if (in_hole) {
    ++c.out_of_order_packets;
    if (seq == t.hole_lo) {
      t.hole_lo = seq_lt(end, t.hole_hi) ? end : t.hole_hi;
    } else if (seq_le(t.hole_hi, end)) {
      t.hole_hi = seq;
    }
    if (!seq_lt(t.hole_lo, t.hole_hi)) t.hole_lo = t.hole_hi;
  } else {
    ++c.retransmitted_packets;
    c.retransmitted_bytes += ip_len;
  }
  if (seq_lt(t.next, end)) t.next = end;
}

}  // namespace

FlowCache::FlowCache(const FlowCacheConfig& config, ExportFn on_export, L7Classifier* l7)
    : config_(config),
      seed_(hash_seed()),
      hash_keys_(hash_keys(seed_)),
      lookups_(std::make_unique<Lookup[]>(kLookupRun)),
      on_export_(std::move(on_export)),
      l7_(l7),
      free_head_(kNil),
      lru_head_(kNil),
      lru_tail_(kNil),
      ended_head_(kNil),
      ended_tail_(kNil),
      fifo_head_(kNil),
      fifo_tail_(kNil) {
  // SPEC §8: ≤ 256 bytes per active flow without L7 state. The bucket array has at most
  // four 32-bit buckets per flow (it doubles when half full, see create()).
  static_assert(sizeof(Entry) + 4 * sizeof(std::uint32_t) <= 256,
                "flow entry too large for the SPEC §8 memory bound");
  if (config_.max_flows == 0) config_.max_flows = 1;
  // Indices are 32-bit with kNil reserved, and the bucket count is bit_ceil(max_flows),
  // which a 32-bit value holds only up to 2^31.
  config_.max_flows = std::min(config_.max_flows, kMaxFlows);
  // The bucket array starts small and doubles as flows arrive (grow_buckets), so a large
  // -M costs nothing until it is used and memory per active flow stays within the bound.
  const auto [buckets, bucket_bytes] =
      reserve_space(std::size_t{std::bit_ceil(config_.max_flows)} * sizeof(std::uint32_t));
  buckets_ = std::unique_ptr<std::uint32_t[], Unmap<std::uint32_t>>(
      reinterpret_cast<std::uint32_t*>(buckets), {bucket_bytes});
  const std::uint32_t nb = std::min(std::bit_ceil(config_.max_flows), kInitialBuckets);
  std::fill_n(buckets_.get(), nb, kNil);
  bucket_mask_ = nb - 1;
  // The slab is one reservation for max_flows entries, so that an index is an offset
  // (entry() on every packet was a chunk table load and a multiply). Nothing is written
  // before create() constructs an entry in place: only entries handed out are touched.
  const auto [slab, slab_bytes] = reserve_space(std::size_t{config_.max_flows} * sizeof(Entry));
  slab_ = std::unique_ptr<Entry[], Unmap<Entry>>(reinterpret_cast<Entry*>(slab), {slab_bytes});
}

FlowCache::~FlowCache() {
  // Release L7 state of flows never exported (the classifier may outlive the cache).
  if (l7_ == nullptr) return;
  for (const std::uint32_t head : {lru_head_, ended_head_}) {
    for (std::uint32_t i = head; i != kNil; i = entry(i).lru_next) {
      if ((entry(i).state & kL7Done) == 0) l7_->release(i);
    }
  }
}

// Doubles the bucket array and re-links every live flow. Amortised O(1) per flow; load
// factor stays between 1/4 and 1/2 once past kInitialBuckets (up to bit_ceil(max_flows)
// buckets, where a full cache has a load of up to 1). The slab is walked in memory
// order (the hardware prefetcher follows it) rather than along the LRU list, whose
// scattered entries made this 5% of the probe's CPU.
void FlowCache::grow_buckets() {
  const std::uint32_t count = bucket_count() * 2;
  std::fill_n(buckets_.get(), count, kNil);
  const std::uint32_t mask = count - 1;
  for (std::uint32_t i = 0; i < allocated_; ++i) {
    Entry& e = entry(i);
    if ((e.state & kLive) == 0) continue;  // on the free list
    e.hash_next = buckets_[e.hash & mask];
    buckets_[e.hash & mask] = i;
  }
  bucket_mask_ = mask;
}

std::size_t FlowCache::memory_per_flow() const {
  // At most four buckets per flow once the array has grown (load factor >= 1/4).
  return kEntrySize + 4 * sizeof(std::uint32_t);
}

std::size_t FlowCache::longest_bucket_chain() const {
  std::size_t longest = 0;
  for (std::uint32_t b = 0; b < bucket_count(); ++b) {
    std::size_t n = 0;
    for (std::uint32_t i = buckets_[b]; i != kNil; i = slab_.get()[i].hash_next) ++n;
    longest = std::max(longest, n);
  }
  return longest;
}

std::size_t FlowCache::bytes_in_use() const {
  return std::size_t{allocated_} * kEntrySize +
         std::size_t{bucket_count()} * sizeof(std::uint32_t) +
         (fragments_ ? kFragmentSlots * sizeof(FragmentSlot) : 0);
}

// ---- intrusive lists ----

void FlowCache::hash_unlink(std::uint32_t idx) {
  Entry& e = entry(idx);
  std::uint32_t* link = &buckets_[e.hash & bucket_mask_];
  while (*link != idx) link = &entry(*link).hash_next;
  *link = e.hash_next;
  e.hash_next = kNil;
}

// Intrusive doubly linked lists through an entry's (Prev, Next) index fields.
template <auto Prev, auto Next>
void FlowCache::list_unlink(std::uint32_t& head, std::uint32_t& tail, std::uint32_t idx) {
  Entry& e = entry(idx);
  if (e.*Prev != kNil)
    entry(e.*Prev).*Next = e.*Next;
  else
    head = e.*Next;
  if (e.*Next != kNil)
    entry(e.*Next).*Prev = e.*Prev;
  else
    tail = e.*Prev;
  e.*Prev = e.*Next = kNil;
}

template <auto Prev, auto Next>
void FlowCache::list_push_back(std::uint32_t& head, std::uint32_t& tail, std::uint32_t idx) {
  Entry& e = entry(idx);
  e.*Prev = tail;
  e.*Next = kNil;
  if (tail != kNil)
    entry(tail).*Next = idx;
  else
    head = idx;
  tail = idx;
}

template <auto Prev, auto Next>
void FlowCache::list_push_front(std::uint32_t& head, std::uint32_t& tail, std::uint32_t idx) {
  Entry& e = entry(idx);
  e.*Prev = kNil;
  e.*Next = head;
  if (head != kNil)
    entry(head).*Prev = idx;
  else
    tail = idx;
  head = idx;
}

// A live flow is on the LRU list, an ended one on the ended list (the same link fields).
void FlowCache::lru_unlink(std::uint32_t idx) {
  if ((entry(idx).state & kEnded) != 0) {
    list_unlink<&Entry::lru_prev, &Entry::lru_next>(ended_head_, ended_tail_, idx);
  } else {
    list_unlink<&Entry::lru_prev, &Entry::lru_next>(lru_head_, lru_tail_, idx);
  }
}

void FlowCache::lru_push_back(std::uint32_t idx) {
  list_push_back<&Entry::lru_prev, &Entry::lru_next>(lru_head_, lru_tail_, idx);
}

void FlowCache::fifo_unlink(std::uint32_t idx) {
  list_unlink<&Entry::fifo_prev, &Entry::fifo_next>(fifo_head_, fifo_tail_, idx);
}

void FlowCache::fifo_push_back(std::uint32_t idx) {
  list_push_back<&Entry::fifo_prev, &Entry::fifo_next>(fifo_head_, fifo_tail_, idx);
}

// ---- lookup, creation, export ----

std::uint32_t FlowCache::find(const Lookup& lk, bool& reverse) {
  for (std::uint32_t i = buckets_[lk.hash & bucket_mask_]; i != kNil;) {
    const Entry& e = entry(i);
    if (e.hash == lk.hash) {
      if (same_endpoints(e.rec.key, lk.key)) {
        reverse = false;
        return i;
      }
      if (reverse_endpoints(e.rec.key, lk.key)) {
        reverse = true;
        return i;
      }
    }
    i = e.hash_next;
  }
  return kNil;
}

std::uint32_t FlowCache::allocate(std::int64_t ts) {
  if (active_ >= config_.max_flows) {
    // Full: the least recently updated flow goes first (SPEC §5). It may have ended or
    // timed out already, in which case it leaves with its real reason.
    const std::uint32_t victim = ended_head_ != kNil ? ended_head_ : lru_head_;
    const Entry& v = entry(victim);
    EndReason reason = EndReason::lack_of_resources;
    if ((v.state & kEnded) != 0) {
      reason = EndReason::end_of_flow;
    } else if (ts - v.rec.last_ns >= config_.idle_timeout_ns) {
      reason = EndReason::idle_timeout;
    } else if (ts - v.rec.first_ns >= config_.active_timeout_ns) {
      reason = EndReason::active_timeout;
    } else {
      ++stats_.evictions;
    }
    export_flow(victim, reason);
  }
  std::uint32_t idx;
  if (free_head_ != kNil) {
    idx = free_head_;
    free_head_ = entry(idx).hash_next;
    // The next flow created reuses this entry: a freed flow's, long out of the cache.
    // Fetched now, it is there by then rather than a miss in the middle of create().
    if (free_head_ != kNil) prefetch_entry(free_head_);
  } else {
    idx = allocated_++;  // below max_flows: a full cache evicted above
  }
  return idx;
}

std::uint32_t FlowCache::create(const Lookup& lk, const packet::PacketView& v, std::int64_t ts,
                                bool& reverse) {
  const std::uint32_t idx = allocate(ts);
  // A copy of a blank entry rather than `Entry{}`, which GCC zeroes with `rep stosq` (see
  // parse_packet_into): never written, not const so that its value stays opaque.
  static Entry blank;
  Entry& e = *new (&entry(idx)) Entry(blank);
  // Client = initiator: the SYN sender; the receiver of a SYN-ACK seen first; otherwise
  // the sender of the first packet.
  reverse = v.protocol == kProtoTcp && v.has_l4 && (v.tcp_flags & (kSyn | kAck)) == (kSyn | kAck);
  e.rec.key = reverse ? reversed(lk.key) : lk.key;
  e.rec.first_ns = ts;
  e.rec.last_ns = ts;
  e.hash = lk.hash;
  e.state = kLive | (l7_ == nullptr ? kL7Done : 0);
  std::uint32_t& bucket = buckets_[lk.hash & bucket_mask_];
  e.hash_next = bucket;
  bucket = idx;
  lru_push_back(idx);
  fifo_push_back(idx);
  ++active_;
  ++stats_.flows_created;
  stats_.active_flows = active_;
  // Doubling at half load rather than full keeps bucket chains short: a new flow's lookup
  // walks its whole chain, each link an entry long out of the cache (the largest stall
  // left in add_batch()), and an export walks to its flow. A quarter to a half full, the
  // array costs 8 to 16 bytes a flow, within SPEC §8's 256 with the 240-byte entry.
  if (active_ > bucket_count() / 2 && bucket_count() < std::bit_ceil(config_.max_flows)) {
    grow_buckets();
  }
  return idx;
}

void FlowCache::export_flow(std::uint32_t idx, EndReason reason) {
  Entry& e = entry(idx);
  finish_record(idx, reason);
  hash_unlink(idx);
  lru_unlink(idx);
  fifo_unlink(idx);
  e.state = 0;
  e.hash_next = free_head_;
  free_head_ = idx;
  --active_;
  stats_.active_flows = active_;
  ++stats_.flows_exported[static_cast<std::size_t>(reason)];
  // The entry is on the free list now, but nothing reuses it before the next packet: the
  // callback may not call back into the cache (class contract), so it reads it in place.
  if (on_export_) on_export_(e.rec);
}

void FlowCache::finish_record(std::uint32_t idx, EndReason reason) {
  Entry& e = entry(idx);
  e.rec.end_reason = reason;
  if ((e.state & kL7Done) == 0 && l7_ != nullptr) {
    const L7Result r = l7_->finish(idx);
    e.rec.l7_master = r.master;
    e.rec.l7_app = r.app;
    e.rec.l7_confidence = r.confidence;
  }
}

void FlowCache::mark_ended(std::uint32_t idx) {
  Entry& e = entry(idx);
  if ((e.state & kEnded) != 0) return;
  lru_unlink(idx);  // from the LRU list: not ended yet
  e.state |= kEnded;
  list_push_back<&Entry::lru_prev, &Entry::lru_next>(ended_head_, ended_tail_, idx);
}

void FlowCache::mark_closed(std::uint32_t idx) {
  list_unlink<&Entry::lru_prev, &Entry::lru_next>(ended_head_, ended_tail_, idx);
  list_push_front<&Entry::lru_prev, &Entry::lru_next>(ended_head_, ended_tail_, idx);
}

// ---- fragments ----

namespace {
std::size_t fragment_slot(std::uint64_t seed, const packet::PacketView& v) {
  std::uint64_t h = 0x2545f4914f6cdd1dULL ^ seed;
  h = mix(h, load64(v.src_addr.data()) ^ load64(v.src_addr.data() + 8));
  h = mix(h, load64(v.dst_addr.data()) ^ load64(v.dst_addr.data() + 8));
  h = mix(h, (std::uint64_t{v.fragment_id} << 8) | v.protocol);
  return static_cast<std::size_t>(finalize(h) & (FlowCache::kFragmentSlots - 1));
}
}  // namespace

void FlowCache::remember_fragment(std::uint32_t idx, const packet::PacketView& v, std::int64_t ts) {
  // Made with the first fragment: most traffic has none, and its 48 fresh pages were a
  // tenth of the probe's start-up page faults.
  if (!fragments_) fragments_ = std::make_unique<FragmentSlot[]>(kFragmentSlots);
  FragmentSlot& s = fragments_[fragment_slot(seed_, v)];
  s.src = v.src_addr;
  s.dst = v.dst_addr;
  s.ts = ts;
  s.id = v.fragment_id;
  s.flow = idx;
  s.ip_version = v.ip_version;
  s.protocol = v.protocol;
}

std::uint32_t FlowCache::match_fragment(const packet::PacketView& v, std::int64_t ts,
                                        bool& reverse) {
  if (!fragments_) return kNil;  // no first fragment seen yet
  const FragmentSlot& s = fragments_[fragment_slot(seed_, v)];
  if (s.flow == kNil || s.id != v.fragment_id || s.protocol != v.protocol ||
      s.ip_version != v.ip_version || s.src != v.src_addr || s.dst != v.dst_addr ||
      ts - s.ts >= kFragmentLifetimeNs || ts < s.ts) {
    return kNil;
  }
  // The slot may have been reused for another flow since: check it still fits.
  const Entry& e = entry(s.flow);
  if ((e.state & kLive) == 0 || e.rec.key.protocol != v.protocol) return kNil;
  const int vlan = v.vlan_count > 0 ? v.vlan_outer : 0;
  if (e.rec.key.vlan != vlan) return kNil;
  if (e.rec.key.src_addr == v.src_addr && e.rec.key.dst_addr == v.dst_addr) {
    reverse = false;
  } else if (e.rec.key.src_addr == v.dst_addr && e.rec.key.dst_addr == v.src_addr) {
    reverse = true;
  } else {
    return kNil;
  }
  return s.flow;
}

// ---- per packet ----

// The packet's key in its own direction and its hash. Non-first fragments carry no
// ports: their key has ports 0 (see the header). The address words are loaded once and
// serve both the hash and the key's stores.
inline void FlowCache::lookup_of(const packet::PacketView& v, Lookup& lk) const {
  // has_l4 is never set for a non-first fragment (PacketView): no ports then.
  const Words s = words(v.src_addr), d = words(v.dst_addr);
  const std::uint16_t sp = v.has_l4 ? v.src_port : 0;
  const std::uint16_t dp = v.has_l4 ? v.dst_port : 0;
  const std::uint16_t vlan = v.vlan_count > 0 ? v.vlan_outer : 0;
  std::memcpy(lk.key.src_addr.data(), &s, sizeof s);
  std::memcpy(lk.key.dst_addr.data(), &d, sizeof d);
  lk.key.src_port = sp;
  lk.key.dst_port = dp;
  lk.key.vlan = vlan;
  lk.key.ip_version = v.ip_version;
  lk.key.protocol = v.protocol;
  lk.hash =
      flow_hash(hash_keys_, s, d, sp, dp,
                (std::uint64_t{vlan} << 16) | (std::uint64_t{v.ip_version} << 8) | v.protocol);
}

void FlowCache::add_one(const packet::PacketView& v, std::span<const std::byte> frame,
                        std::int64_t ts, const Lookup& lk) {
  if (!v.is_ip()) {
    ++stats_.non_ip_packets;
    return;
  }
  ++stats_.packets;
  stats_.bytes += v.ip_length;

  bool reverse = false;
  std::uint32_t idx = kNil;
  const bool later_fragment = v.is_fragment && v.fragment_offset != 0;
  if (later_fragment) {
    idx = match_fragment(v, ts, reverse);
    if (idx != kNil)
      ++stats_.fragments_matched;
    else
      ++stats_.fragments_unmatched;
  }
  if (idx != kNil) {
    // A fragment joined through the table: timeouts apply as for any packet below.
    const Entry& e = entry(idx);
    if (ts - e.rec.last_ns >= config_.idle_timeout_ns ||
        ts - e.rec.first_ns >= config_.active_timeout_ns) {
      idx = kNil;  // its flow is over; fall back to the ports-0 flow
    }
  }
  if (idx == kNil) {
    idx = find(lk, reverse);
    if (idx != kNil) {
      const Entry& e = entry(idx);
      EndReason reason{};
      bool restart = false;
      const bool ended = (e.state & kEnded) != 0;
      if (ts - e.rec.last_ns >= config_.idle_timeout_ns) {
        reason = ended ? EndReason::end_of_flow : EndReason::idle_timeout;
        restart = true;
      } else if (ts - e.rec.first_ns >= config_.active_timeout_ns) {
        reason = ended ? EndReason::end_of_flow : EndReason::active_timeout;
        restart = true;
      } else if (ended && v.protocol == kProtoTcp && v.has_l4 &&
                 (v.tcp_flags & (kSyn | kAck)) == kSyn) {
        // A new connection on the same ports after FIN/RST.
        reason = EndReason::end_of_flow;
        restart = true;
      }
      if (restart) {
        export_flow(idx, reason);
        idx = kNil;
      }
    }
    if (idx == kNil) idx = create(lk, v, ts, reverse);
  }
  update(idx, reverse, v, frame, ts);
  if (v.is_fragment && !later_fragment && v.has_l4) remember_fragment(idx, v, ts);
}

void FlowCache::add(const packet::PacketView& v, std::span<const std::byte> frame,
                    std::int64_t ts) {
  const Packet p{&v, frame, ts};
  add_batch({&p, 1});
}

void FlowCache::add_batch(std::span<const Packet> packets) {
  // Two prefetch stages: the bucket head 2 * kAhead packets ahead, and the entry it points
  // to kAhead packets ahead (by then the bucket line has arrived). Prefetching every
  // bucket of a run at once instead left the later ones to queue for fill buffers.
  // Lookups are computed for every packet, IP or not: a non-IP packet's is a hash and a
  // prefetch, whatever its view holds, and add_one() never reads it. add_one() has this
  // one call site, so that it (and update()) is inlined here.
  constexpr std::size_t kAhead = 8;
  Lookup* const lookups = lookups_.get();
  for (std::size_t base = 0; base < packets.size(); base += kLookupRun) {
    const std::size_t n = std::min(kLookupRun, packets.size() - base);
    const Packet* run = packets.data() + base;
    for (std::size_t i = 0; i < n; ++i) {
      lookup_of(*run[i].view, lookups[i]);
      if (i < 2 * kAhead) __builtin_prefetch(&buckets_[lookups[i].hash & bucket_mask_]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (i + 2 * kAhead < n)
        __builtin_prefetch(&buckets_[lookups[i + 2 * kAhead].hash & bucket_mask_]);
      if (i + kAhead < n) {
        const std::uint32_t head = buckets_[lookups[i + kAhead].hash & bucket_mask_];
        if (head != kNil) __builtin_prefetch(&entry(head));
      }
      add_one(*run[i].view, run[i].frame, run[i].timestamp_ns, lookups[i]);
    }
  }
}

void FlowCache::update(std::uint32_t idx, bool reverse, const packet::PacketView& v,
                       std::span<const std::byte> frame, std::int64_t ts) {
  Entry& e = entry(idx);
  FlowRecord& r = e.rec;
  DirectionCounters& c = reverse ? r.out : r.in;

  // The tests below are ordered so that a packet of an established flow takes as few of
  // them as it can: first-packet facts, then TCP before ICMP, and the handshake and FIN
  // bookkeeping only when a flag or the flow's state says there is any to do.
  if (c.packets == 0) {  // the first packet of its direction
    c.tos = v.tos;
    const bool first_of_flow = r.in.packets == 0 && r.out.packets == 0;
    // MACs are those of the client's packets; a server packet seen first fills them in
    // mirrored until a client packet arrives.
    if (!reverse) {
      r.client_mac = v.src_mac;
      r.server_mac = v.dst_mac;
    } else if (first_of_flow) {
      r.client_mac = v.dst_mac;
      r.server_mac = v.src_mac;
    }
    if (first_of_flow) r.tunnel_id = v.tunnel_id;
  }
  ++c.packets;
  c.bytes += v.ip_length;
  if (v.is_fragment) ++c.fragments;
  if (ts > r.last_ns) r.last_ns = ts;

  if (!reverse) {
    if ((e.state & kTtlSeen) == 0) {
      r.min_ttl = r.max_ttl = v.ttl;
      e.state |= kTtlSeen;
    } else {
      r.min_ttl = std::min(r.min_ttl, v.ttl);
      r.max_ttl = std::max(r.max_ttl, v.ttl);
    }
  }

  if (v.has_l4) {
    if (v.protocol == kProtoTcp) {
      const std::uint16_t f = v.tcp_flags;
      c.tcp_flags |= f;
      c.tcp_window_max = std::max(c.tcp_window_max, v.tcp_window);
      // Handshake timing (nProbe CLIENT_/SERVER_NW_LATENCY): half of each leg's round
      // trip as the probe sees it, per the FlowRecord contract. Only a SYN, or a segment
      // after the SYN-ACK while the client's latency is still open, can take part; the
      // packet's time after the flow's start is worked out for those alone.
      if ((f & kSyn) != 0 || (e.state & (kSynAckSeen | kAckTimed)) == kSynAckSeen) {
        const auto since_first_us = [&] { return clamp_u32((ts - r.first_ns) / 1000); };
        if ((f & (kSyn | kAck)) == kSyn && !reverse) {
          e.syn_us = since_first_us();
          e.state |= kSynSeen;
          e.state &= static_cast<std::uint16_t>(~(kSynAckSeen | kAckTimed));
        } else if ((f & (kSyn | kAck)) == (kSyn | kAck) && reverse) {
          const std::uint32_t rel_us = since_first_us();
          e.synack_us = rel_us;
          e.state |= kSynAckSeen;
          if ((e.state & kSynSeen) != 0)
            r.server_latency_us = (rel_us - std::min(rel_us, e.syn_us)) / 2;
        } else if ((f & (kSyn | kAck)) == kAck && !reverse &&
                   (e.state & (kSynAckSeen | kAckTimed)) == kSynAckSeen) {
          const std::uint32_t rel_us = since_first_us();
          r.client_latency_us = (rel_us - std::min(rel_us, e.synack_us)) / 2;
          e.state |= kAckTimed;
        }
      }

      const int d = reverse ? 1 : 0;
      const std::uint16_t init_bit = reverse ? kSeqInit1 : kSeqInit0;
      TcpDir& t = e.tcp[d];
      if ((f & kSyn) != 0) {
        t = TcpDir{};
        t.next = v.tcp_seq + 1;  // SYN occupies one sequence number
        e.state |= init_bit;
      } else if (v.l4_payload_length > 0 && (f & kRst) == 0) {
        bool init = (e.state & init_bit) != 0;
        track_sequence(t, init, c, v.tcp_seq, v.l4_payload_length, v.ip_length);
        e.state |= init_bit;
      }

      if ((f & kFin) != 0) {
        if ((f & (kSyn | kRst)) == 0) {
          bool init = (e.state & init_bit) != 0;
          track_fin(t, init, v.tcp_seq, v.l4_payload_length);
          e.state |= init_bit;
        }
        e.state |= reverse ? kFinServer : kFinClient;
      }
      // Only a RST or a FIN seen (in either direction) can end the flow.
      if (((f & kRst) | (e.state & (kFinClient | kFinServer))) != 0) {
        // Does this segment acknowledge the other side's FIN? If that closes the
        // connection (both FINs seen, so the flow is ended just below), nothing of it is
        // left to wait for.
        const std::uint16_t peer_fin = reverse ? kFinClient : kFinServer;
        const std::uint16_t peer_fin_acked = reverse ? kFinClientAcked : kFinServerAcked;
        bool closes = false;
        if ((f & (kAck | kRst)) == kAck && (e.state & (peer_fin | peer_fin_acked)) == peer_fin &&
            seq_le(e.tcp[1 - d].next, v.tcp_ack)) {
          e.state |= peer_fin_acked;
          closes = (e.state & kClosed) == kClosed;
        }
        if ((f & kRst) != 0 || (e.state & (kFinClient | kFinServer)) == (kFinClient | kFinServer)) {
          mark_ended(idx);
          if (closes) mark_closed(idx);
        }
      }
    } else if ((v.protocol == kProtoIcmp || v.protocol == kProtoIcmpv6) &&
               (e.state & kIcmpSeen) == 0) {
      r.icmp_type = v.icmp_type;
      r.icmp_code = v.icmp_code;
      e.state |= kIcmpSeen;
    }
  }

  if ((e.state & kEnded) == 0 && lru_tail_ != idx) {
    // Most recently updated goes to the tail (ended flows stay at the head), at most once
    // per kLruStepMs of packet time: a busy flow's every packet was two writes into its
    // list neighbours. The list stays ordered by the time of each flow's last move, which
    // is at most kLruStepMs before its last packet, so expire() exports an idle flow at most
    // kLruStepMs late (the probe scans every 100 ms of packet time) and a full cache evicts a flow
    // idle for at most that much less than the least recently updated one.
    // In nanoseconds, so that the division into milliseconds is made only for a move:
    // now_ms - lru_ms >= kLruStepMs, or now_ms < lru_ms, is `since_move` out of
    // [0, kLruStepMs ms) (now_ms: the time since the flow's start in whole milliseconds,
    // clamped to 32 bits, as lru_ms is).
    constexpr std::int64_t kMsNs = 1'000'000;
    const std::int64_t now_ns =
        std::clamp<std::int64_t>(ts - r.first_ns, 0, std::int64_t{0xffffffff} * kMsNs);
    const std::int64_t since_move = now_ns - std::int64_t{e.lru_ms} * kMsNs;
    if (static_cast<std::uint64_t>(since_move) >= std::uint64_t{kLruStepMs} * kMsNs) {
      e.lru_ms = static_cast<std::uint32_t>(now_ns / kMsNs);
      lru_unlink(idx);
      lru_push_back(idx);
    }
  }

  if ((e.state & kL7Done) == 0 && !frame.empty() && v.has_l4) {
    L7Result res;
    if (l7_->process(idx, frame, v, ts, res)) {
      r.l7_master = res.master;
      r.l7_app = res.app;
      r.l7_confidence = res.confidence;
      e.state |= kL7Done;
    }
  }
}

// ---- expiry ----

void FlowCache::expire(std::int64_t now_ns) {
  // Closed flows (both FINs acknowledged, at the head of the ended list) at once; then
  // ended flows, in the order they ended, once kEndLingerNs passed without a packet: the
  // ACK of the last FIN (or a retransmitted FIN) still joins its flow. A flow refreshed by
  // such a packet holds the ones behind it back by at most the linger.
  // Each loop fetches the entry after the one it exports: the lists are walked in the
  // order flows ended or went quiet, long after their entries were last touched, and the
  // walk was a cache miss per flow, waited for one after the other.
  while (ended_head_ != kNil) {
    const Entry& e = entry(ended_head_);
    if ((e.state & kClosed) != kClosed && now_ns - e.rec.last_ns < kEndLingerNs) break;
    if (e.lru_next != kNil) prefetch_entry(e.lru_next);
    export_flow(ended_head_, EndReason::end_of_flow);
  }
  while (lru_head_ != kNil) {
    const Entry& e = entry(lru_head_);
    if (now_ns - e.rec.last_ns < config_.idle_timeout_ns) break;
    if (e.lru_next != kNil) prefetch_entry(e.lru_next);
    export_flow(lru_head_, EndReason::idle_timeout);
  }
  while (fifo_head_ != kNil) {
    const Entry& e = entry(fifo_head_);
    if (now_ns - e.rec.first_ns < config_.active_timeout_ns) break;
    if (e.fifo_next != kNil) prefetch_entry(e.fifo_next);
    export_flow(fifo_head_,
                (e.state & kEnded) != 0 ? EndReason::end_of_flow : EndReason::active_timeout);
  }
}

// Every flow goes, in slab order (the order entries were handed out, which the hardware
// prefetcher follows; walking the LRU list instead was 3-4% of the probe's CPU on a large
// trace), and the table is reset in the same pass rather than each flow unlinked (each
// unlink is a few cache misses in the bucket chain and the lists). The export callback
// must not call back into the cache (class contract), so the walk is safe.
void FlowCache::flush() {
  free_head_ = kNil;
  std::uint32_t* free_link = &free_head_;  // the free list, rebuilt in slab order
  for (std::uint32_t i = 0; i < allocated_; ++i) {
    Entry& e = entry(i);
    if ((e.state & kLive) != 0) {
      const EndReason reason =
          (e.state & kEnded) != 0 ? EndReason::end_of_flow : EndReason::forced_end;
      finish_record(i, reason);
      --active_;
      stats_.active_flows = active_;
      ++stats_.flows_exported[static_cast<std::size_t>(reason)];
      if (on_export_) on_export_(e.rec);
    }
    e.state = 0;
    e.lru_prev = e.lru_next = e.fifo_prev = e.fifo_next = kNil;
    *free_link = i;
    free_link = &e.hash_next;
  }
  *free_link = kNil;
  std::fill_n(buckets_.get(), bucket_count(), kNil);
  lru_head_ = lru_tail_ = ended_head_ = ended_tail_ = fifo_head_ = fifo_tail_ = kNil;
}

}  // namespace flowsec::flow
