#pragma once
// Sequence-number tracking for one exporter (one collector session), per
// (protocol, observation domain). Each protocol numbers something different:
//  - IPFIX counts data records: next = sequence + data records (RFC 7011 §3.1);
//  - NetFlow v5 counts flows: next = flow_sequence + count (Cisco's format);
//  - NetFlow v9 counts export packets: next = sequence + 1 (RFC 3954 §5.1);
//  - sFlow v5 counts datagrams per sub-agent: next = sequence + 1 (sFlow v5 §4).
// observe() compares each message with the number expected, modulo 2^32:
//  - equal: in order;
//  - ahead by at most max_gap: the difference is lost (records for IPFIX/v5, packets
//    for v9/sFlow) and tracking continues from this message;
//  - behind by at most reorder_window: a late or duplicate message, counted in
//    out_of_order; the expectation is kept. `lost` is a monotonic counter and is not
//    reduced when a message it counted arrives late;
//  - anything else (a jump back past the window, or forward past max_gap): the
//    exporter restarted or renumbered; counted in resets, tracking resynchronises
//    without counting loss.
// The first message of a domain only starts tracking. State is bounded: at most
// max_domains domains are tracked; messages of further domains are counted in
// messages and untracked, never in loss. No allocation beyond that bound, no
// errors, no exceptions beyond std::bad_alloc; one thread at a time.
#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "ipfix/record.hpp"

namespace flowsec::ipfix {

struct SequenceCounters {
  std::uint64_t messages = 0;
  std::uint64_t lost = 0;          // records (IPFIX, v5) or packets (v9, sFlow)
  std::uint64_t out_of_order = 0;  // late or duplicate messages
  std::uint64_t resets = 0;        // resynchronisations after a huge jump
  std::uint64_t untracked = 0;     // messages of domains beyond max_domains
};

class SequenceTracker {
 public:
  struct Config {
    std::size_t max_domains = 1024;
    // In the protocol's unit: records for IPFIX/v5, packets for v9/sFlow.
    std::uint32_t record_reorder_window = 1u << 16;
    std::uint32_t record_max_gap = 1u << 24;
    std::uint32_t packet_reorder_window = 1u << 10;
    std::uint32_t packet_max_gap = 1u << 20;
  };

  SequenceTracker() : SequenceTracker(Config{}) {}
  explicit SequenceTracker(const Config& config) : config_(config) {}

  // `records_in_message`: data records for IPFIX, flow count for v5; ignored for v9
  // and sFlow, whose sequence counts messages.
  void observe(Protocol protocol, std::uint32_t domain, std::uint32_t sequence,
               std::uint32_t records_in_message);

  // All protocols together, and per protocol (units differ, see SequenceCounters).
  [[nodiscard]] SequenceCounters counters() const;
  [[nodiscard]] const SequenceCounters& counters(Protocol protocol) const {
    return per_protocol_[static_cast<std::size_t>(protocol)];
  }
  [[nodiscard]] std::size_t tracked_domains() const { return expected_.size(); }

 private:
  static constexpr std::size_t kProtocols = 4;
  static std::uint64_t key(Protocol p, std::uint32_t domain) {
    return (std::uint64_t{static_cast<std::uint8_t>(p)} << 32) | domain;
  }

  Config config_;
  std::unordered_map<std::uint64_t, std::uint32_t> expected_;  // next sequence per domain
  std::array<SequenceCounters, kProtocols> per_protocol_{};
};

}  // namespace flowsec::ipfix
