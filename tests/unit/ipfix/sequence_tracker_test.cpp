// Sequence tracking: what each protocol counts, loss, reordering, wrap-around,
// exporter restarts, per-domain separation and the bound on tracked domains.
#include "ipfix/sequence_tracker.hpp"

#include <gtest/gtest.h>

namespace flowsec::ipfix {
namespace {

TEST(SequenceTracker, IpfixCountsDataRecords) {
  SequenceTracker t;
  // RFC 7011 §3.1: the next sequence is this one plus the data records sent.
  t.observe(Protocol::ipfix, 1, 100, 10);
  t.observe(Protocol::ipfix, 1, 110, 5);
  t.observe(Protocol::ipfix, 1, 115, 0);  // template-only message
  t.observe(Protocol::ipfix, 1, 115, 3);
  const auto& c = t.counters(Protocol::ipfix);
  EXPECT_EQ(c.messages, 4u);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.out_of_order, 0u);
  EXPECT_EQ(c.resets, 0u);

  t.observe(Protocol::ipfix, 1, 125, 1);  // 118..124 missing: 7 records lost
  EXPECT_EQ(c.lost, 7u);
}

TEST(SequenceTracker, NetflowV9CountsPackets) {
  SequenceTracker t;
  // RFC 3954 §5.1: the sequence counts export packets, whatever they hold.
  t.observe(Protocol::netflow_v9, 7, 1000, 30);
  t.observe(Protocol::netflow_v9, 7, 1001, 12);
  t.observe(Protocol::netflow_v9, 7, 1004, 1);  // 1002, 1003 lost
  const auto& c = t.counters(Protocol::netflow_v9);
  EXPECT_EQ(c.messages, 3u);
  EXPECT_EQ(c.lost, 2u);
}

TEST(SequenceTracker, NetflowV5CountsFlows) {
  SequenceTracker t;
  t.observe(Protocol::netflow_v5, 0x0103, 5000, 30);
  t.observe(Protocol::netflow_v5, 0x0103, 5030, 29);
  t.observe(Protocol::netflow_v5, 0x0103, 5089, 30);  // one datagram of 30 flows lost
  EXPECT_EQ(t.counters(Protocol::netflow_v5).lost, 30u);
}

TEST(SequenceTracker, SflowCountsDatagrams) {
  SequenceTracker t;
  t.observe(Protocol::sflow_v5, 0, 1, 8);
  t.observe(Protocol::sflow_v5, 0, 2, 3);
  t.observe(Protocol::sflow_v5, 0, 5, 3);
  EXPECT_EQ(t.counters(Protocol::sflow_v5).lost, 2u);
}

TEST(SequenceTracker, LateMessagesAreOutOfOrderNotLoss) {
  SequenceTracker t;
  t.observe(Protocol::netflow_v9, 1, 10, 1);
  t.observe(Protocol::netflow_v9, 1, 12, 1);  // 11 missing for now
  t.observe(Protocol::netflow_v9, 1, 11, 1);  // arrives late
  t.observe(Protocol::netflow_v9, 1, 13, 1);  // expectation kept at 13
  t.observe(Protocol::netflow_v9, 1, 13, 1);  // duplicate
  const auto& c = t.counters(Protocol::netflow_v9);
  EXPECT_EQ(c.messages, 5u);
  EXPECT_EQ(c.lost, 1u);  // counted when the gap opened; a monotonic counter
  EXPECT_EQ(c.out_of_order, 2u);
  EXPECT_EQ(c.resets, 0u);
}

TEST(SequenceTracker, WrapsAround) {
  SequenceTracker t;
  t.observe(Protocol::ipfix, 1, 0xfffffff0u, 0x10);  // next expected: 0
  t.observe(Protocol::ipfix, 1, 0, 5);
  t.observe(Protocol::ipfix, 1, 5, 1);
  EXPECT_EQ(t.counters(Protocol::ipfix).lost, 0u);

  t.observe(Protocol::netflow_v9, 1, 0xffffffffu, 1);
  t.observe(Protocol::netflow_v9, 1, 1, 1);  // 0 lost across the wrap
  EXPECT_EQ(t.counters(Protocol::netflow_v9).lost, 1u);
  t.observe(Protocol::netflow_v9, 1, 0, 1);  // ...and arrives late, across the wrap
  EXPECT_EQ(t.counters(Protocol::netflow_v9).out_of_order, 1u);
  EXPECT_EQ(t.counters(Protocol::netflow_v9).resets, 0u);
}

TEST(SequenceTracker, HugeJumpIsAResetWithoutLoss) {
  SequenceTracker t;
  t.observe(Protocol::netflow_v9, 1, 500000, 1);
  t.observe(Protocol::netflow_v9, 1, 0, 1);  // exporter restarted
  t.observe(Protocol::netflow_v9, 1, 1, 1);  // tracking resumed from the new numbering
  auto c = t.counters(Protocol::netflow_v9);
  EXPECT_EQ(c.resets, 1u);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.out_of_order, 0u);

  // A forward jump beyond max_gap is a renumbering too.
  t.observe(Protocol::ipfix, 2, 10, 1);
  t.observe(Protocol::ipfix, 2, 10 + (1u << 30), 1);
  EXPECT_EQ(t.counters(Protocol::ipfix).resets, 1u);
  EXPECT_EQ(t.counters(Protocol::ipfix).lost, 0u);
}

TEST(SequenceTracker, DomainsAndProtocolsAreSeparate) {
  SequenceTracker t;
  // Two v9 source ids interleaved, each in order.
  t.observe(Protocol::netflow_v9, 1, 100, 1);
  t.observe(Protocol::netflow_v9, 2, 9000, 1);
  t.observe(Protocol::netflow_v9, 1, 101, 1);
  t.observe(Protocol::netflow_v9, 2, 9001, 1);
  // Same domain number under IPFIX is another stream.
  t.observe(Protocol::ipfix, 1, 0, 4);
  t.observe(Protocol::ipfix, 1, 4, 4);
  const auto total = t.counters();
  EXPECT_EQ(total.messages, 6u);
  EXPECT_EQ(total.lost, 0u);
  EXPECT_EQ(total.out_of_order, 0u);
  EXPECT_EQ(total.resets, 0u);
  EXPECT_EQ(t.tracked_domains(), 3u);

  t.observe(Protocol::netflow_v9, 2, 9005, 1);  // loss on domain 2 only
  EXPECT_EQ(t.counters(Protocol::netflow_v9).lost, 3u);
  t.observe(Protocol::netflow_v9, 1, 102, 1);
  EXPECT_EQ(t.counters(Protocol::netflow_v9).lost, 3u);
}

TEST(SequenceTracker, BoundedNumberOfDomains) {
  SequenceTracker::Config cfg;
  cfg.max_domains = 2;
  SequenceTracker t(cfg);
  t.observe(Protocol::netflow_v9, 1, 0, 1);
  t.observe(Protocol::netflow_v9, 2, 0, 1);
  t.observe(Protocol::netflow_v9, 3, 0, 1);   // beyond the cap: untracked
  t.observe(Protocol::netflow_v9, 3, 50, 1);  // no loss can be counted for it
  t.observe(Protocol::netflow_v9, 1, 1, 1);   // tracked domains keep working
  t.observe(Protocol::netflow_v9, 2, 3, 1);
  const auto& c = t.counters(Protocol::netflow_v9);
  EXPECT_EQ(t.tracked_domains(), 2u);
  EXPECT_EQ(c.messages, 6u);
  EXPECT_EQ(c.untracked, 2u);
  EXPECT_EQ(c.lost, 2u);
}

TEST(SequenceTracker, ConfigurableWindows) {
  SequenceTracker::Config cfg;
  cfg.packet_reorder_window = 2;
  SequenceTracker t(cfg);
  t.observe(Protocol::netflow_v9, 1, 100, 1);
  t.observe(Protocol::netflow_v9, 1, 99, 1);  // 2 behind: late
  t.observe(Protocol::netflow_v9, 1, 97, 1);  // 4 behind: beyond the window, a reset
  const auto& c = t.counters(Protocol::netflow_v9);
  EXPECT_EQ(c.out_of_order, 1u);
  EXPECT_EQ(c.resets, 1u);
}

}  // namespace
}  // namespace flowsec::ipfix
