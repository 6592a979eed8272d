#include "ipfix/sequence_tracker.hpp"

namespace flowsec::ipfix {

void SequenceTracker::observe(Protocol protocol, std::uint32_t domain, std::uint32_t sequence,
                              std::uint32_t records_in_message) {
  const auto p = static_cast<std::size_t>(protocol);
  if (p >= kProtocols) return;
  SequenceCounters& c = per_protocol_[p];
  ++c.messages;

  // What one message advances the sequence by, and the tolerances in that unit.
  const bool counts_records = protocol == Protocol::ipfix || protocol == Protocol::netflow_v5;
  const std::uint32_t step = counts_records ? records_in_message : 1;
  const std::uint32_t window =
      counts_records ? config_.record_reorder_window : config_.packet_reorder_window;
  const std::uint32_t max_gap = counts_records ? config_.record_max_gap : config_.packet_max_gap;

  const std::uint64_t k = key(protocol, domain);
  auto it = expected_.find(k);
  if (it == expected_.end()) {
    if (expected_.size() >= config_.max_domains) {
      ++c.untracked;
      return;
    }
    expected_.emplace(k, sequence + step);  // unsigned: wraps modulo 2^32
    return;
  }

  std::uint32_t& expected = it->second;
  // Distances modulo 2^32 (RFC 7011 §3.1 and RFC 3954 §5.1 sequence numbers wrap).
  const std::uint32_t ahead = sequence - expected;
  const std::uint32_t behind = expected - sequence;
  if (ahead == 0) {
    expected = sequence + step;
  } else if (ahead <= max_gap) {
    c.lost += ahead;
    expected = sequence + step;
  } else if (behind <= window) {
    ++c.out_of_order;
  } else {
    ++c.resets;
    expected = sequence + step;
  }
}

SequenceCounters SequenceTracker::counters() const {
  SequenceCounters total;
  for (const SequenceCounters& c : per_protocol_) {
    total.messages += c.messages;
    total.lost += c.lost;
    total.out_of_order += c.out_of_order;
    total.resets += c.resets;
    total.untracked += c.untracked;
  }
  return total;
}

}  // namespace flowsec::ipfix
