#pragma once
// FlowCache: turns parsed IP packets into bidirectional flows (SPEC §5 "Flow cache").
//
// Contract:
//  - Single-threaded: one cache per capture thread; no locks, no shared state. The export
//    callback runs on the caller's thread, inside add()/expire()/flush(), and must not call
//    back into the cache.
//  - Packet time drives everything: timeouts are measured from PacketView timestamps, never
//    a wall clock, so a pcap yields the same flows every run. expire(now_ns) is called by
//    the probe periodically with the latest packet time.
//  - No allocation per packet: flow entries live in a slab, and the power-of-two bucket
//    array of 32-bit indices doubles in place as flows arrive (at most four buckets per
//    flow); both are address space reserved for max_flows at construction, of which only
//    what the flows use is touched (a slab entry when it is first handed out). Per flow the cache
//    holds kBytesPerFlow bytes (≤ 256, SPEC §8) including the hash table; L7 state lives in the
//    classifier.
//  - Never fails on input: non-IP packets are counted and ignored; anything the parser
//    accepted is accounted to some flow.
//
// Direction and keys: see flow_record.hpp. The client (FlowKey source) is the TCP SYN
// sender (the receiver when the first packet seen is a SYN-ACK), otherwise the sender of
// the first packet. "in" counters are client → server.
//
// Fragments: every IP fragment counts in its direction's `fragments`. The first fragment
// carries the ports and is accounted to its flow normally; it also records (addresses,
// protocol, fragment id) → flow in a small direct-mapped table (kFragmentSlots), so later
// fragments of the same datagram land in the same flow. A non-first fragment without a
// match (lost or reordered first fragment, table slot overwritten, older than
// kFragmentLifetimeNs) is accounted to the flow of its addresses and protocol with ports 0.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "flow/flow_record.hpp"
#include "packet/packet_view.hpp"

namespace flowsec::flow {

class L7Classifier;

struct FlowCacheConfig {
  std::int64_t active_timeout_ns = 120'000'000'000;  // -t, --lifetime-timeout
  std::int64_t idle_timeout_ns = 60'000'000'000;     // -d, --idle-timeout
  std::uint32_t max_flows = 1'048'576;               // -M, --max-num-flows (1 .. 2^31)
};

struct FlowCacheStats {
  std::uint64_t packets = 0;         // IP packets accounted to flows
  std::uint64_t bytes = 0;           // their IP lengths
  std::uint64_t non_ip_packets = 0;  // ignored: no IP packet in the frame
  std::uint64_t flows_created = 0;
  // Indexed by the EndReason value (RFC 5102 flowEndReason); index 0 is unused.
  std::array<std::uint64_t, 6> flows_exported{};
  std::uint64_t evictions = 0;            // flows exported early because the cache was full
  std::uint64_t active_flows = 0;         // flows in the cache now
  std::uint64_t fragments_matched = 0;    // non-first fragments joined to their datagram's flow
  std::uint64_t fragments_unmatched = 0;  // non-first fragments accounted with ports 0
  [[nodiscard]] std::uint64_t exported(EndReason r) const {
    return flows_exported[static_cast<std::size_t>(r)];
  }
};

class FlowCache {
 public:
  using ExportFn = std::function<void(const FlowRecord&)>;

  // `l7` (optional, not owned, must outlive the cache) receives the packets of flows it
  // has not classified yet; pass nullptr for --no-l7.
  FlowCache(const FlowCacheConfig& config, ExportFn on_export, L7Classifier* l7 = nullptr);
  ~FlowCache();
  FlowCache(const FlowCache&) = delete;
  FlowCache& operator=(const FlowCache&) = delete;

  // Accounts one parsed packet at packet time `timestamp_ns`. The frame overload also
  // feeds the L7 classifier; `frame` must be the bytes `view` was parsed from.
  void add(const packet::PacketView& view, std::int64_t timestamp_ns) {
    add(view, {}, timestamp_ns);
  }
  void add(const packet::PacketView& view, std::span<const std::byte> frame,
           std::int64_t timestamp_ns);
  // The same for a run of packets, in order, with exactly the result of add() on each;
  // faster: the hash buckets and entries of packets a few places ahead are prefetched so
  // the table's cache misses overlap instead of queueing one after the other.
  struct Packet {
    const packet::PacketView* view;
    std::span<const std::byte> frame;
    std::int64_t timestamp_ns;
  };
  void add_batch(std::span<const Packet> packets);

  // Exports flows that closed (TCP: both FINs seen and acknowledged), that ended otherwise
  // (a FIN each way with one not yet acknowledged, or RST) and saw no packet for
  // kEndLingerNs since, were idle for idle_timeout or longer, or started active_timeout or
  // longer before `now_ns`.
  void expire(std::int64_t now_ns);
  // Exports every flow (shutdown, end of a capture file): forced_end, or end_of_flow for
  // those that had ended, in no particular order. The cache is empty and usable afterwards.
  void flush();

  [[nodiscard]] const FlowCacheStats& stats() const { return stats_; }
  [[nodiscard]] std::size_t active_flows() const { return static_cast<std::size_t>(active_); }
  [[nodiscard]] const FlowCacheConfig& config() const { return config_; }

  // Memory: bytes one flow costs (entry + its share of the bucket array at full load),
  // and bytes held now (slab entries handed out + buckets + the fragment table, made with the
  // first fragment).
  [[nodiscard]] std::size_t memory_per_flow() const;
  [[nodiscard]] std::size_t bytes_in_use() const;
  // The most flows in one bucket's chain (a walk of the whole table: for tests, which
  // check that crafted keys do not pile up in one chain).
  [[nodiscard]] std::size_t longest_bucket_chain() const;

  // Fixed parts of the design, public for tests and benchmarks.
  static constexpr std::size_t kFragmentSlots = 4096;
  static constexpr std::uint32_t kInitialBuckets = 4096;
  static constexpr std::uint32_t kMaxFlows = std::uint32_t{1} << 31;   // larger max_flows: this
  static constexpr std::int64_t kFragmentLifetimeNs = 30'000'000'000;  // Linux ipfrag_time
  // An ended TCP flow whose FINs are not both acknowledged yet stays this long after its
  // last packet, so that the ACK of the last FIN, up to a round trip later, is counted in it
  // rather than as a flow of its own. Once both are acknowledged it leaves at the next
  // expire(), which frees its entry for new flows that much sooner.
  static constexpr std::int64_t kEndLingerNs = 1'000'000'000;
  static const std::size_t kEntrySize;
  // Entry + one 32-bit bucket: a full cache (load factor ≤ 1); memory_per_flow() is the
  // bound while the array grows.
  static const std::size_t kBytesPerFlow;

 private:
  struct Entry;
  struct FragmentSlot;
  struct Lookup;

  Entry& entry(std::uint32_t idx);
  void prefetch_entry(std::uint32_t idx);
  // `lk`: lookup_of(v), read only when v is an IP packet.
  void add_one(const packet::PacketView& v, std::span<const std::byte> frame, std::int64_t ts,
               const Lookup& lk);
  // The packet's key in its own direction and its hash, written into `out`.
  void lookup_of(const packet::PacketView& v, Lookup& out) const;

  std::uint32_t find(const Lookup& lk, bool& reverse);
  std::uint32_t create(const Lookup& lk, const packet::PacketView& v, std::int64_t ts,
                       bool& reverse);
  std::uint32_t allocate(std::int64_t ts);
  void update(std::uint32_t idx, bool reverse, const packet::PacketView& v,
              std::span<const std::byte> frame, std::int64_t ts);
  void export_flow(std::uint32_t idx, EndReason reason);
  // Completes the flow's record for export, in place: end reason and L7 result.
  void finish_record(std::uint32_t idx, EndReason reason);
  void mark_ended(std::uint32_t idx);
  void mark_closed(std::uint32_t idx);

  void hash_unlink(std::uint32_t idx);
  void grow_buckets();
  template <auto Prev, auto Next>
  void list_unlink(std::uint32_t& head, std::uint32_t& tail, std::uint32_t idx);
  template <auto Prev, auto Next>
  void list_push_back(std::uint32_t& head, std::uint32_t& tail, std::uint32_t idx);
  template <auto Prev, auto Next>
  void list_push_front(std::uint32_t& head, std::uint32_t& tail, std::uint32_t idx);
  void lru_unlink(std::uint32_t idx);  // from the LRU or the ended list, as the flow is on
  void lru_push_back(std::uint32_t idx);
  void fifo_unlink(std::uint32_t idx);
  void fifo_push_back(std::uint32_t idx);

  void remember_fragment(std::uint32_t idx, const packet::PacketView& v, std::int64_t ts);
  std::uint32_t match_fragment(const packet::PacketView& v, std::int64_t ts, bool& reverse);

  FlowCacheConfig config_;
  // Per-process random hash seed, so that nobody can precompute keys that fall into one
  // bucket chain and turn every lookup into a list walk (hash flooding).
  std::uint64_t seed_;
  std::array<std::uint64_t, 4> hash_keys_;  // the flow hash's, derived from seed_
  // add_batch()'s keys and hashes for one run of packets, computed before the lookups.
  static constexpr std::size_t kLookupRun = 256;
  std::unique_ptr<Lookup[]> lookups_;
  ExportFn on_export_;
  L7Classifier* l7_;
  FlowCacheStats stats_;

  // Address space reserved at construction (the .cpp's reserve_space()), given back whole.
  template <class T>
  struct Unmap {
    std::size_t bytes;
    void operator()(T* p) const;
  };
  // max_flows entries; the first allocated_ have been handed out (and touched).
  std::unique_ptr<Entry[], Unmap<Entry>> slab_;
  std::uint32_t allocated_ = 0;  // entries handed out from the slab so far
  std::uint32_t free_head_;      // free list through Entry::hash_next
  std::uint32_t active_ = 0;

  // Address space for bit_ceil(max_flows) buckets, offered to huge pages; the first
  // bucket_mask_ + 1 are in use. Growing doubles them in place, so no bucket array is ever
  // copied and only memory in use is touched.
  std::unique_ptr<std::uint32_t[], Unmap<std::uint32_t>> buckets_;
  std::uint32_t bucket_mask_ = 0;
  [[nodiscard]] std::uint32_t bucket_count() const { return bucket_mask_ + 1; }

  // LRU: live flows, least recently updated at the head (to within 100 ms of packet time:
  // a flow moves at most that often, see update()). Ended: flows that ended (FIN both ways
  // or RST), in the order they ended, through the same links; eviction takes them first.
  // FIFO: every flow in creation order, for the active timeout.
  std::uint32_t lru_head_, lru_tail_;
  std::uint32_t ended_head_, ended_tail_;
  std::uint32_t fifo_head_, fifo_tail_;

  std::unique_ptr<FragmentSlot[]> fragments_;
};

}  // namespace flowsec::flow
