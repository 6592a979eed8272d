// FlowCache with synthetic PacketViews: keys and direction, timeouts from packet time,
// end reasons (RFC 5102 flowEndReason), eviction, per-direction counters, memory bound.
#include "flow/flow_cache.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace flowsec::flow {
namespace {

constexpr std::int64_t kSec = 1'000'000'000;
constexpr std::int64_t kMs = 1'000'000;

constexpr std::uint16_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

struct Host {
  std::array<std::uint8_t, 16> addr{};
  std::uint16_t port = 0;
  std::array<std::uint8_t, 6> mac{};
};

Host v4(std::uint8_t last, std::uint16_t port) {
  Host h;
  h.addr = {10, 0, 0, last};
  h.port = port;
  h.mac = {0x02, 0, 0, 0, 0, last};
  return h;
}

packet::PacketView ip_packet(const Host& s, const Host& d, std::uint8_t proto,
                             std::uint32_t ip_len) {
  packet::PacketView v;
  v.kind = packet::PacketKind::ip;
  v.ip_version = 4;
  v.src_addr = s.addr;
  v.dst_addr = d.addr;
  v.src_mac = s.mac;
  v.dst_mac = d.mac;
  v.has_src_mac = v.has_dst_mac = true;
  v.protocol = proto;
  v.ip_length = ip_len;
  v.ttl = 64;
  v.has_l4 = true;
  v.src_port = s.port;
  v.dst_port = d.port;
  return v;
}

packet::PacketView udp(const Host& s, const Host& d, std::uint32_t payload = 10) {
  auto v = ip_packet(s, d, 17, 28 + payload);
  v.l4_payload_length = payload;
  return v;
}

packet::PacketView tcp(const Host& s, const Host& d, std::uint16_t flags, std::uint32_t seq = 0,
                       std::uint32_t payload = 0, std::uint16_t window = 1000) {
  auto v = ip_packet(s, d, 6, 40 + payload);
  v.tcp_flags = flags;
  v.tcp_seq = seq;
  v.tcp_window = window;
  v.tcp_header_length = 20;
  v.l4_payload_length = payload;
  return v;
}

// A TCP segment that carries an acknowledgment number.
packet::PacketView tcp_acking(const Host& s, const Host& d, std::uint16_t flags, std::uint32_t seq,
                              std::uint32_t ack, std::uint32_t payload = 0) {
  auto v = tcp(s, d, flags, seq, payload);
  v.tcp_ack = ack;
  return v;
}

class FlowCacheTest : public ::testing::Test {
 protected:
  FlowCache make(FlowCacheConfig cfg = {}) {
    return FlowCache(cfg, [this](const FlowRecord& r) { out.push_back(r); });
  }
  std::vector<FlowRecord> out;
  const Host a = v4(1, 40000);
  const Host b = v4(2, 80);
  const Host c = v4(3, 53);
};

TEST_F(FlowCacheTest, BothDirectionsMergeIntoOneFlow) {
  auto cache = make();
  cache.add(udp(a, c, 20), 1 * kSec);
  cache.add(udp(c, a, 100), 2 * kSec);
  cache.add(udp(a, c, 30), 3 * kSec);
  EXPECT_EQ(cache.active_flows(), 1U);
  cache.flush();
  ASSERT_EQ(out.size(), 1U);
  const FlowRecord& r = out[0];
  EXPECT_EQ(r.key.src_addr, a.addr);
  EXPECT_EQ(r.key.dst_addr, c.addr);
  EXPECT_EQ(r.key.src_port, a.port);
  EXPECT_EQ(r.key.dst_port, c.port);
  EXPECT_EQ(r.key.protocol, 17);
  EXPECT_EQ(r.key.ip_version, 4);
  EXPECT_EQ(r.in.packets, 2U);
  EXPECT_EQ(r.in.bytes, 48U + 58U);
  EXPECT_EQ(r.out.packets, 1U);
  EXPECT_EQ(r.out.bytes, 128U);
  EXPECT_EQ(r.first_ns, 1 * kSec);
  EXPECT_EQ(r.last_ns, 3 * kSec);
  EXPECT_EQ(r.end_reason, EndReason::forced_end);
}

TEST_F(FlowCacheTest, DifferentPortsVlansOrProtocolsAreDifferentFlows) {
  auto cache = make();
  cache.add(udp(a, c), kSec);
  Host a2 = a;
  a2.port = 40001;
  cache.add(udp(a2, c), kSec);
  auto tagged = udp(a, c);
  tagged.vlan_count = 1;
  tagged.vlan_outer = 10;
  cache.add(tagged, kSec);
  cache.add(tcp(a, c, kAck), kSec);
  EXPECT_EQ(cache.active_flows(), 4U);
  cache.flush();
  ASSERT_EQ(out.size(), 4U);
  int vlan10 = 0;
  for (const auto& r : out) vlan10 += r.key.vlan == 10 ? 1 : 0;
  EXPECT_EQ(vlan10, 1);
}

TEST_F(FlowCacheTest, ClientIsTheSynSender) {
  auto cache = make();
  cache.add(tcp(a, b, kSyn, 100), kSec);
  cache.add(tcp(b, a, kSyn | kAck, 500), kSec + kMs);
  cache.add(tcp(a, b, kAck, 101), kSec + 2 * kMs);
  cache.flush();
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].key.src_addr, a.addr);
  EXPECT_EQ(out[0].key.src_port, a.port);
  EXPECT_EQ(out[0].in.packets, 2U);
  EXPECT_EQ(out[0].out.packets, 1U);
  EXPECT_EQ(out[0].in.tcp_flags, kSyn | kAck);
  EXPECT_EQ(out[0].out.tcp_flags, kSyn | kAck);
}

TEST_F(FlowCacheTest, SynAckSeenFirstMakesItsReceiverTheClient) {
  auto cache = make();
  cache.add(tcp(b, a, kSyn | kAck, 500), kSec);
  cache.add(tcp(a, b, kAck, 101), kSec + kMs);
  cache.flush();
  ASSERT_EQ(out.size(), 1U);
  const FlowRecord& r = out[0];
  EXPECT_EQ(r.key.src_addr, a.addr);
  EXPECT_EQ(r.key.dst_addr, b.addr);
  EXPECT_EQ(r.key.src_port, a.port);
  EXPECT_EQ(r.key.dst_port, b.port);
  EXPECT_EQ(r.out.packets, 1U);  // the SYN-ACK, server → client
  EXPECT_EQ(r.in.packets, 1U);
  EXPECT_EQ(r.client_mac, a.mac);
  EXPECT_EQ(r.server_mac, b.mac);
}

TEST_F(FlowCacheTest, FirstSenderIsTheClientWithoutSyn) {
  auto cache = make();
  // UDP: the first packet is a DNS response; its sender (port 53) is the "client".
  cache.add(udp(c, a), kSec);
  cache.add(udp(a, c), 2 * kSec);
  // TCP picked up mid-connection.
  cache.add(tcp(b, a, kAck | kPsh, 7, 100), 3 * kSec);
  cache.flush();
  ASSERT_EQ(out.size(), 2U);
  for (const auto& r : out) {
    if (r.key.protocol == 17) {
      EXPECT_EQ(r.key.src_addr, c.addr);
      EXPECT_EQ(r.key.src_port, 53);
    } else {
      EXPECT_EQ(r.key.src_addr, b.addr);
      EXPECT_EQ(r.in.packets, 1U);
    }
  }
}

TEST_F(FlowCacheTest, IdleTimeoutFollowsPacketTime) {
  FlowCacheConfig cfg;
  cfg.idle_timeout_ns = 60 * kSec;
  auto cache = make(cfg);
  cache.add(udp(a, c), 10 * kSec);
  cache.add(udp(c, a), 20 * kSec);
  cache.expire(80 * kSec - 1);
  EXPECT_TRUE(out.empty());
  cache.expire(80 * kSec);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].end_reason, EndReason::idle_timeout);
  EXPECT_EQ(cache.active_flows(), 0U);
  EXPECT_EQ(cache.stats().exported(EndReason::idle_timeout), 1U);
}

// A busy flow moves to the LRU tail at most once per 100 ms of packet time (flow_cache.cpp
// kLruStepMs), yet it must not hold back an idle flow created after it: the idle one is
// exported on time, the busy one stays.
TEST_F(FlowCacheTest, BusyFlowDoesNotHoldBackAnIdleOne) {
  FlowCacheConfig cfg;
  cfg.idle_timeout_ns = 2 * kSec;
  auto cache = make(cfg);
  cache.add(udp(a, c), 0);        // busy: a packet every 50 ms for 10 s
  cache.add(udp(b, c), 1 * kMs);  // idle after its only packet
  for (std::int64_t t = 50 * kMs; t <= 10 * kSec; t += 50 * kMs) {
    cache.add(udp(a, c), t);
    if (t == 2 * kSec + 50 * kMs) {
      cache.expire(t);
      ASSERT_EQ(out.size(), 1U);
      EXPECT_EQ(out[0].key.src_addr, b.addr);
      EXPECT_EQ(out[0].end_reason, EndReason::idle_timeout);
    }
  }
  cache.expire(10 * kSec + 50 * kMs);
  EXPECT_EQ(out.size(), 1U);
  EXPECT_EQ(cache.active_flows(), 1U);
  cache.expire(12 * kSec + 100 * kMs);  // idle 2.1 s: at most one step late
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[1].in.packets, 201U);
}

TEST_F(FlowCacheTest, IdleFlowRestartsOnItsNextPacketWithoutExpire) {
  auto cache = make();
  cache.add(udp(a, c), 0);
  cache.add(udp(c, a), 61 * kSec);  // idle 61 s > 60 s: a new flow, client = c
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].end_reason, EndReason::idle_timeout);
  EXPECT_EQ(out[0].in.packets, 1U);
  cache.flush();
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[1].key.src_addr, c.addr);
  EXPECT_EQ(out[1].first_ns, 61 * kSec);
}

TEST_F(FlowCacheTest, ActiveTimeoutSplitsALongFlow) {
  FlowCacheConfig cfg;
  cfg.active_timeout_ns = 120 * kSec;
  auto cache = make(cfg);
  for (int t = 0; t <= 200; t += 10) {
    cache.add(udp(a, c), t * kSec);
    cache.expire(t * kSec);
  }
  // Packets at 0..110 s, then the expiry at 120 s exports them; 120..200 s form the next.
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].end_reason, EndReason::active_timeout);
  EXPECT_EQ(out[0].in.packets, 12U);
  EXPECT_EQ(out[0].first_ns, 0);
  EXPECT_EQ(out[0].last_ns, 110 * kSec);
  cache.flush();
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[1].in.packets, 9U);
  EXPECT_EQ(out[1].end_reason, EndReason::forced_end);
}

TEST_F(FlowCacheTest, ActiveTimeoutAppliesAtThePacketEvenWithoutExpire) {
  auto cache = make();
  for (int t = 0; t <= 130; t += 10) cache.add(udp(a, c), t * kSec);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].end_reason, EndReason::active_timeout);
  EXPECT_EQ(out[0].in.packets, 12U);
  EXPECT_EQ(cache.active_flows(), 1U);
}

TEST_F(FlowCacheTest, FinFromBothSidesEndsTheFlow) {
  auto cache = make();
  cache.add(tcp(a, b, kSyn, 100), kSec);
  cache.add(tcp(b, a, kSyn | kAck, 500), kSec + 1);
  cache.add(tcp(a, b, kAck, 101), kSec + 2);
  cache.add(tcp(a, b, kFin | kAck, 101), kSec + 3);
  cache.expire(kSec + 3);
  EXPECT_TRUE(out.empty()) << "one FIN does not end a flow";
  cache.add(tcp(b, a, kFin | kAck, 501), kSec + 4);
  cache.expire(kSec + 5);
  EXPECT_TRUE(out.empty()) << "an ended flow waits FlowCache::kEndLingerNs for its last ACK";
  // The ACK of the last FIN, a round trip later and after an expiry scan, still belongs
  // to the flow.
  cache.add(tcp(a, b, kAck, 102), kSec + 300 * kMs);
  cache.expire(kSec + 300 * kMs + FlowCache::kEndLingerNs - 1);
  EXPECT_TRUE(out.empty());
  cache.expire(kSec + 300 * kMs + FlowCache::kEndLingerNs);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].end_reason, EndReason::end_of_flow);
  EXPECT_EQ(out[0].in.packets, 4U);
  EXPECT_EQ(out[0].out.packets, 2U);
  EXPECT_EQ(cache.stats().exported(EndReason::end_of_flow), 1U);
  EXPECT_EQ(cache.active_flows(), 0U);
}

// RFC 9293 §3.6: once each side's FIN is acknowledged the connection is closed; the flow
// leaves at the next scan instead of waiting out the linger, and its entry is free again.
TEST_F(FlowCacheTest, ClosedConnectionLeavesAtTheNextScan) {
  auto cache = make();
  cache.add(tcp_acking(a, b, kSyn, 100, 0), kSec);
  cache.add(tcp_acking(b, a, kSyn | kAck, 500, 101), kSec + 1);
  cache.add(tcp_acking(a, b, kAck, 101, 501), kSec + 2);
  cache.add(tcp_acking(a, b, kFin | kAck, 101, 501), kSec + 3);  // the client's FIN is 101
  cache.add(tcp_acking(b, a, kFin | kAck, 501, 102), kSec + 4);  // acks it; its FIN is 501
  cache.expire(kSec + 5);
  EXPECT_TRUE(out.empty()) << "the server's FIN is not acknowledged yet";
  cache.add(tcp_acking(a, b, kAck, 102, 502), kSec + 6);
  cache.expire(kSec + 7);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].end_reason, EndReason::end_of_flow);
  EXPECT_EQ(out[0].in.packets, 4U);
  EXPECT_EQ(out[0].out.packets, 2U);
  EXPECT_EQ(cache.active_flows(), 0U);
}

// A FIN occupies the sequence number after the segment's data: acknowledging the data
// alone does not close the connection, and a flow whose last FIN is never acknowledged
// keeps its linger.
TEST_F(FlowCacheTest, AcknowledgingTheDataButNotTheFinKeepsTheLinger) {
  auto cache = make();
  cache.add(tcp_acking(a, b, kSyn, 100, 0), kSec);
  cache.add(tcp_acking(b, a, kSyn | kAck, 500, 101), kSec + 1);
  cache.add(tcp_acking(a, b, kFin | kAck | kPsh, 101, 501, 10),
            kSec + 2);                                           // data 101..110, FIN 111
  cache.add(tcp_acking(b, a, kFin | kAck, 501, 111), kSec + 3);  // acks the data, not the FIN
  cache.add(tcp_acking(a, b, kAck, 112, 502), kSec + 4);         // acks the server's FIN
  cache.expire(kSec + 5);
  EXPECT_TRUE(out.empty()) << "the client's FIN was never acknowledged";
  cache.expire(kSec + 4 + FlowCache::kEndLingerNs);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].end_reason, EndReason::end_of_flow);
  EXPECT_EQ(out[0].in.packets, 3U);
}

// Both sides close at once: each FIN is acknowledged by its own ACK, in either order. The
// flow is closed only by the second, and then leaves ahead of an older ended flow still in
// its linger.
TEST_F(FlowCacheTest, SimultaneousCloseNeedsBothAcknowledgments) {
  auto cache = make();
  const Host a2 = v4(4, 40001);
  cache.add(tcp_acking(a2, b, kSyn, 100, 0), 0);
  cache.add(tcp_acking(b, a2, kRst | kAck, 0, 101), 10 * kMs);  // ended, lingering
  cache.add(tcp_acking(a, b, kSyn, 100, 0), 20 * kMs);
  cache.add(tcp_acking(b, a, kSyn | kAck, 500, 101), 21 * kMs);
  cache.add(tcp_acking(a, b, kFin | kAck, 101, 501), 30 * kMs);
  cache.add(tcp_acking(b, a, kFin | kAck, 501, 101), 31 * kMs);  // crosses the client's FIN
  cache.add(tcp_acking(a, b, kAck, 102, 502), 32 * kMs);         // the server's FIN acked
  cache.expire(40 * kMs);
  EXPECT_TRUE(out.empty()) << "the client's FIN is not acknowledged yet";
  cache.add(tcp_acking(b, a, kAck, 502, 102), 33 * kMs);  // now it is
  cache.expire(40 * kMs);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].key.src_addr, a.addr);
  EXPECT_EQ(out[0].in.packets, 3U);
  EXPECT_EQ(out[0].out.packets, 3U);
  cache.expire(10 * kMs + FlowCache::kEndLingerNs);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[1].key.src_addr, a2.addr);
}

// Ended flows leave in the order they ended, each after its own linger, and an idle flow
// does not wait behind them (nor they behind it).
TEST_F(FlowCacheTest, EndedFlowsLeaveInTheOrderTheyEnded) {
  FlowCacheConfig cfg;
  cfg.idle_timeout_ns = 3 * kSec;
  auto cache = make(cfg);
  const Host a2 = v4(4, 40001);
  cache.add(udp(a, c), 0);  // idle from 0
  cache.add(tcp(a, b, kSyn, 100), 0);
  cache.add(tcp(a2, b, kSyn, 100), 0);
  cache.add(tcp(b, a2, kRst | kAck, 0), 500 * kMs);  // a2's flow ends first
  cache.add(tcp(b, a, kRst | kAck, 0), 800 * kMs);
  cache.expire(1500 * kMs);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].key.src_addr, a2.addr);
  cache.expire(1800 * kMs);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[1].key.src_addr, a.addr);
  EXPECT_EQ(out[1].key.protocol, 6);
  cache.expire(3 * kSec);
  ASSERT_EQ(out.size(), 3U);
  EXPECT_EQ(out[2].end_reason, EndReason::idle_timeout);
}

TEST_F(FlowCacheTest, RstEndsTheFlow) {
  auto cache = make();
  cache.add(tcp(a, b, kSyn, 100), kSec);
  cache.add(tcp(b, a, kRst | kAck, 0), kSec + 1);
  cache.add(udp(a, c), kSec + 2);  // an unrelated, active flow stays
  cache.expire(kSec + 1 + FlowCache::kEndLingerNs);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].end_reason, EndReason::end_of_flow);
  EXPECT_EQ(out[0].key.protocol, 6);
  EXPECT_EQ(cache.active_flows(), 1U);
}

TEST_F(FlowCacheTest, NewSynAfterTheEndStartsANewFlow) {
  auto cache = make();
  cache.add(tcp(a, b, kSyn, 100), kSec);
  cache.add(tcp(b, a, kRst | kAck, 0), kSec + 1);
  cache.add(tcp(a, b, kSyn, 9000), kSec + 2);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].end_reason, EndReason::end_of_flow);
  EXPECT_EQ(out[0].in.packets, 1U);
  EXPECT_EQ(cache.active_flows(), 1U);
}

TEST_F(FlowCacheTest, FullCacheEvictsTheLeastRecentlyUpdatedFlow) {
  FlowCacheConfig cfg;
  cfg.max_flows = 3;
  auto cache = make(cfg);
  const Host h1 = v4(11, 1), h2 = v4(12, 2), h3 = v4(13, 3), h4 = v4(14, 4);
  cache.add(udp(h1, c), 1 * kSec);
  cache.add(udp(h2, c), 2 * kSec);
  cache.add(udp(h3, c), 3 * kSec);
  cache.add(udp(c, h1), 4 * kSec);  // h1's flow is now the most recent
  EXPECT_TRUE(out.empty());
  cache.add(udp(h4, c), 5 * kSec);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].key.src_addr, h2.addr);
  EXPECT_EQ(out[0].end_reason, EndReason::lack_of_resources);
  EXPECT_EQ(cache.stats().evictions, 1U);
  EXPECT_EQ(cache.stats().exported(EndReason::lack_of_resources), 1U);
  EXPECT_EQ(cache.active_flows(), 3U);
}

TEST_F(FlowCacheTest, FlushExportsEverythingAsForcedEnd) {
  auto cache = make();
  for (std::uint8_t i = 0; i < 50; ++i) cache.add(udp(v4(i, 1000), c), kSec + i);
  cache.flush();
  ASSERT_EQ(out.size(), 50U);
  for (const auto& r : out) EXPECT_EQ(r.end_reason, EndReason::forced_end);
  EXPECT_EQ(cache.active_flows(), 0U);
  EXPECT_EQ(cache.stats().flows_created, 50U);
  EXPECT_EQ(cache.stats().exported(EndReason::forced_end), 50U);
}

// flush() resets the table in one pass: afterwards the same packets make the same flows
// again, in the slab entries freed, and ended flows kept their reason. A second round that
// did not reuse the entries would hand out new ones, and bytes_in_use() would grow.
TEST_F(FlowCacheTest, CacheIsUsableAfterAFlushAndReusesItsEntries) {
  constexpr std::uint32_t kUdpFlows = 16383;  // + 1 TCP flow
  auto host = [](std::uint32_t i) {
    return v4(static_cast<std::uint8_t>(i % 200), static_cast<std::uint16_t>(1000 + i / 200));
  };
  auto cache = make();
  auto round = [&](std::int64_t t0) {
    for (std::uint32_t i = 0; i < kUdpFlows; ++i) cache.add(udp(host(i), c), t0 + i);
    cache.add(tcp(a, b, kSyn), t0);
    cache.add(tcp(b, a, kSyn | kAck), t0 + 1);
    cache.add(tcp(a, b, kFin | kAck), t0 + 2);
    cache.add(tcp(b, a, kFin | kAck), t0 + 3);
  };
  round(kSec);
  EXPECT_EQ(cache.active_flows(), kUdpFlows + 1U);
  cache.flush();
  const std::size_t memory = cache.bytes_in_use();
  ASSERT_EQ(out.size(), kUdpFlows + 1U);
  EXPECT_EQ(cache.stats().exported(EndReason::end_of_flow), 1U);
  out.clear();
  round(2 * kSec);
  EXPECT_EQ(cache.active_flows(), kUdpFlows + 1U);
  EXPECT_EQ(cache.bytes_in_use(), memory);
  cache.add(udp(host(7), c), 3 * kSec);  // found again: no new flow
  EXPECT_EQ(cache.active_flows(), kUdpFlows + 1U);
  cache.flush();
  ASSERT_EQ(out.size(), kUdpFlows + 1U);
  std::uint64_t packets = 0;
  for (const auto& r : out) packets += r.in.packets + r.out.packets;
  EXPECT_EQ(packets, kUdpFlows + 4U + 1U);
  EXPECT_EQ(cache.stats().exported(EndReason::end_of_flow), 2U);
  EXPECT_EQ(cache.stats().flows_created, 2U * (kUdpFlows + 1U));
}

TEST_F(FlowCacheTest, CountersPerDirection) {
  auto cache = make();
  auto p1 = tcp(a, b, kSyn, 100, 0, 500);
  p1.tos = 0x10;
  p1.ttl = 60;
  auto p2 = tcp(b, a, kSyn | kAck, 900, 0, 2000);
  p2.tos = 0x20;
  p2.ttl = 50;
  auto p3 = tcp(a, b, kAck | kPsh, 101, 200, 700);
  p3.tos = 0x30;
  p3.ttl = 62;
  auto p4 = tcp(b, a, kAck, 901, 0, 1500);
  cache.add(p1, kSec);
  cache.add(p2, kSec + 1);
  cache.add(p3, kSec + 2);
  cache.add(p4, kSec + 3);
  auto ping = ip_packet(a, c, 1, 84);
  ping.src_port = ping.dst_port = 0;
  ping.icmp_type = 8;
  auto pong = ip_packet(c, a, 1, 84);
  pong.src_port = pong.dst_port = 0;
  pong.icmp_type = 0;
  cache.add(ping, kSec + 4);
  cache.add(pong, kSec + 5);
  cache.flush();
  ASSERT_EQ(out.size(), 2U);
  const FlowRecord& t = out[0].key.protocol == 6 ? out[0] : out[1];
  const FlowRecord& i = out[0].key.protocol == 6 ? out[1] : out[0];
  EXPECT_EQ(t.in.packets, 2U);
  EXPECT_EQ(t.in.bytes, 40U + 240U);
  EXPECT_EQ(t.out.packets, 2U);
  EXPECT_EQ(t.out.bytes, 80U);
  EXPECT_EQ(t.in.tcp_flags, kSyn | kAck | kPsh);
  EXPECT_EQ(t.out.tcp_flags, kSyn | kAck);
  EXPECT_EQ(t.in.tcp_window_max, 700);
  EXPECT_EQ(t.out.tcp_window_max, 2000);
  EXPECT_EQ(t.in.tos, 0x10);  // first packet's
  EXPECT_EQ(t.out.tos, 0x20);
  EXPECT_EQ(t.min_ttl, 60);  // client's packets only
  EXPECT_EQ(t.max_ttl, 62);
  EXPECT_EQ(t.client_mac, a.mac);
  EXPECT_EQ(t.server_mac, b.mac);
  EXPECT_EQ(i.icmp_type, 8);  // first packet's
  EXPECT_EQ(i.icmp_code, 0);
  EXPECT_EQ(i.in.packets, 1U);
  EXPECT_EQ(i.out.packets, 1U);
  EXPECT_EQ(cache.stats().packets, 6U);
  EXPECT_EQ(cache.stats().bytes, 40U + 40U + 240U + 40U + 84U + 84U);
}

TEST_F(FlowCacheTest, HandshakeLatencyIsHalfOfEachLeg) {
  auto cache = make();
  cache.add(tcp(a, b, kSyn, 100), 10 * kSec);
  cache.add(tcp(b, a, kSyn | kAck, 500), 10 * kSec + 30 * kMs);  // server RTT 30 ms
  cache.add(tcp(a, b, kAck, 101), 10 * kSec + 38 * kMs);         // client RTT 8 ms
  cache.add(tcp(a, b, kAck, 101), 10 * kSec + 90 * kMs);         // a later ACK changes nothing
  cache.flush();
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].server_latency_us, 15'000U);
  EXPECT_EQ(out[0].client_latency_us, 4'000U);
}

TEST_F(FlowCacheTest, NoLatencyWithoutAHandshake) {
  auto cache = make();
  cache.add(tcp(a, b, kAck, 100), kSec);
  cache.add(tcp(b, a, kAck, 500), kSec + kMs);
  cache.flush();
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].server_latency_us, 0U);
  EXPECT_EQ(out[0].client_latency_us, 0U);
}

TEST_F(FlowCacheTest, RetransmissionsAndOutOfOrderSegments) {
  auto cache = make();
  cache.add(tcp(a, b, kSyn, 999), kSec);
  cache.add(tcp(a, b, kAck, 1000, 100), kSec + 1);  // [1000,1100)
  cache.add(tcp(a, b, kAck, 1100, 100), kSec + 2);  // [1100,1200)
  cache.add(tcp(a, b, kAck, 1000, 100), kSec + 3);  // seen: retransmission
  cache.add(tcp(a, b, kAck, 1300, 100), kSec + 4);  // gap [1200,1300)
  cache.add(tcp(a, b, kAck, 1200, 100), kSec + 5);  // fills the gap: out of order
  cache.add(tcp(a, b, kAck, 1200, 100), kSec + 6);  // now seen: retransmission
  cache.add(tcp(a, b, kAck, 1400, 0), kSec + 7);    // pure ACK: neither
  cache.add(tcp(b, a, kAck, 5000, 50), kSec + 8);   // server side, first data
  cache.add(tcp(b, a, kAck, 5000, 50), kSec + 9);   // server retransmission
  cache.flush();
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].in.retransmitted_packets, 2U);
  EXPECT_EQ(out[0].in.retransmitted_bytes, 2U * 140U);  // IP bytes of those packets
  EXPECT_EQ(out[0].in.out_of_order_packets, 1U);
  EXPECT_EQ(out[0].out.retransmitted_packets, 1U);
  EXPECT_EQ(out[0].out.retransmitted_bytes, 90U);
  EXPECT_EQ(out[0].out.out_of_order_packets, 0U);
}

TEST_F(FlowCacheTest, SequenceNumbersWrapAround) {
  auto cache = make();
  cache.add(tcp(a, b, kAck, 0xFFFFFFC0U, 0x40), kSec);
  cache.add(tcp(a, b, kAck, 0, 0x40), kSec + 1);
  cache.add(tcp(a, b, kAck, 0xFFFFFFC0U, 0x40), kSec + 2);
  cache.flush();
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].in.retransmitted_packets, 1U);
  EXPECT_EQ(out[0].in.out_of_order_packets, 0U);
}

packet::PacketView fragment(packet::PacketView v, std::uint32_t id, std::uint16_t offset,
                            bool more) {
  v.is_fragment = true;
  v.fragment_id = id;
  v.fragment_offset = offset;
  v.more_fragments = more;
  if (offset != 0) {
    v.has_l4 = false;
    v.src_port = v.dst_port = 0;
  }
  return v;
}

TEST_F(FlowCacheTest, LaterFragmentsJoinTheFlowOfTheFirst) {
  auto cache = make();
  cache.add(udp(a, c, 10), kSec);                               // query
  cache.add(fragment(udp(c, a, 1472), 77, 0, true), kSec + 1);  // answer, 1st fragment
  cache.add(fragment(ip_packet(c, a, 17, 1500), 77, 185, true), kSec + 2);
  cache.add(fragment(ip_packet(c, a, 17, 300), 77, 370, false), kSec + 3);
  EXPECT_EQ(cache.active_flows(), 1U);
  EXPECT_EQ(cache.stats().fragments_matched, 2U);
  EXPECT_EQ(cache.stats().fragments_unmatched, 0U);
  cache.flush();
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].in.packets, 1U);
  EXPECT_EQ(out[0].in.fragments, 0U);
  EXPECT_EQ(out[0].out.packets, 3U);
  EXPECT_EQ(out[0].out.fragments, 3U);
  EXPECT_EQ(out[0].out.bytes, 1500U + 1500U + 300U);
}

TEST_F(FlowCacheTest, FragmentWithoutItsFirstGoesToAPortlessFlow) {
  auto cache = make();
  cache.add(udp(a, c, 10), kSec);
  cache.add(fragment(ip_packet(c, a, 17, 1500), 78, 185, true), kSec + 1);
  cache.add(fragment(ip_packet(c, a, 17, 300), 78, 370, false), kSec + 2);
  EXPECT_EQ(cache.stats().fragments_unmatched, 2U);
  cache.flush();
  ASSERT_EQ(out.size(), 2U);
  const FlowRecord& f = out[0].key.src_port == 0 ? out[0] : out[1];
  EXPECT_EQ(f.key.src_port, 0);
  EXPECT_EQ(f.key.dst_port, 0);
  EXPECT_EQ(f.key.src_addr, c.addr);
  EXPECT_EQ(f.in.packets, 2U);
  EXPECT_EQ(f.in.fragments, 2U);
}

TEST_F(FlowCacheTest, NonIpPacketsAreCountedAndIgnored) {
  auto cache = make();
  packet::PacketView arp;
  arp.ethertype = 0x0806;
  cache.add(arp, kSec);
  EXPECT_EQ(cache.stats().non_ip_packets, 1U);
  EXPECT_EQ(cache.stats().packets, 0U);
  EXPECT_EQ(cache.active_flows(), 0U);
}

TEST_F(FlowCacheTest, PerFlowMemoryStaysWithinTheSpecBound) {
  // SPEC §8: ≤ 256 bytes per active flow, hash table included, without L7 state.
  EXPECT_LE(FlowCache::kBytesPerFlow, 256U);
  auto big = make();  // default -M 1048576
  EXPECT_LE(big.memory_per_flow(), 256U);
  FlowCacheConfig cfg;
  cfg.max_flows = 1000;  // buckets rounded up to 1024
  auto odd = make(cfg);
  EXPECT_LE(odd.memory_per_flow(), 256U);
  // Fill it: memory in use divided by the flows held stays near the entry size.
  for (std::uint32_t i = 0; i < 1000; ++i) {
    Host h = v4(static_cast<std::uint8_t>(i & 0xff), static_cast<std::uint16_t>(i));
    odd.add(udp(h, c), kSec);
  }
  EXPECT_EQ(odd.active_flows(), 1000U);
  // A large cache holding few flows: the bucket array grew with them, not with -M, and every
  // flow is still found (a second packet joins its flow instead of creating one).
  auto sparse = make();  // -M 1048576
  for (std::uint32_t i = 0; i < 20000; ++i) {
    Host h = v4(static_cast<std::uint8_t>(i & 0xff), static_cast<std::uint16_t>(i));
    sparse.add(udp(h, c), kSec);
    sparse.add(udp(h, c), kSec);
  }
  EXPECT_EQ(sparse.active_flows(), 20000U);
  EXPECT_EQ(sparse.stats().flows_created, 20000U);
  // bytes_in_use = slab entries handed out + buckets (+ the fragment table, made with the
  // first fragment: none here). An empty cache holds kInitialBuckets buckets and nothing else.
  EXPECT_EQ(make().bytes_in_use(), FlowCache::kInitialBuckets * sizeof(std::uint32_t));
  const std::size_t slab = 20000 * FlowCache::kEntrySize;
  const std::size_t buckets = sparse.bytes_in_use() - slab;
  EXPECT_LE(buckets, 4 * sizeof(std::uint32_t) * 20000) << "bucket array sized for -M, not flows";
}

// Hash flooding: keys an attacker can choose without knowing the per-process hash keys
// must spread over the buckets like any others. Each pattern puts 30 000 flows in one
// cache (load between 1/4 and 1/2); hashed at random, the longest chain is ~7, so 24 is
// only exceeded by a hash that the pattern defeats (the ports summed linearly put all
// 30 000 of the first pattern into one chain).
TEST_F(FlowCacheTest, CraftedKeysDoNotShareABucketChain) {
  constexpr int kFlows = 30000;
  const auto longest = [&](auto&& packet_of) {
    auto cache = make();
    for (int i = 0; i < kFlows; ++i) cache.add(packet_of(i), kSec);
    EXPECT_EQ(cache.active_flows(), std::size_t{kFlows});
    return cache.longest_bucket_chain();
  };
  const auto with_port = [](Host h, int port) {
    h.port = static_cast<std::uint16_t>(port);
    return h;
  };
  // Two hosts, ports with a constant sum.
  EXPECT_LE(longest([&](int i) { return udp(with_port(a, i + 1), with_port(b, 60000 - i)); }), 24U);
  // Two hosts, one port counting.
  EXPECT_LE(longest([&](int i) { return udp(with_port(a, i + 1), b); }), 24U);
  // Addresses counting in their low byte and the ones above it, the same ports.
  EXPECT_LE(longest([&](int i) {
              Host s = a;
              s.addr[2] = static_cast<std::uint8_t>(i >> 8);
              s.addr[3] = static_cast<std::uint8_t>(i);
              return udp(s, b);
            }),
            24U);
  // Endpoints mirrored around a middle address: (x, y) and (y, x) pairs of others.
  EXPECT_LE(longest([&](int i) {
              Host s = a, d = b;
              s.addr[2] = static_cast<std::uint8_t>(i >> 8);
              s.addr[3] = static_cast<std::uint8_t>(i);
              d.addr[2] = static_cast<std::uint8_t>((kFlows - i) >> 8);
              d.addr[3] = static_cast<std::uint8_t>(kFlows - i);
              d.addr[1] = 1;
              return udp(s, d);
            }),
            24U);
  // IPv6 sources counting in their low 64 bits (an attacker's own /64), two ports.
  EXPECT_LE(longest([&](int i) {
              Host s = a;
              s.addr = {0x20, 0x01, 0x0d, 0xb8};
              s.addr[14] = static_cast<std::uint8_t>(i >> 8);
              s.addr[15] = static_cast<std::uint8_t>(i);
              Host d = b;
              d.addr = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
              auto v = udp(with_port(s, 1000 + (i & 1)), d);
              v.ip_version = 6;
              return v;
            }),
            24U);
}

// -M above 2^31 (the constructor takes any 32-bit value) is capped there: the bucket count,
// bit_ceil(max_flows), would not fit 32 bits, and the reservation would fail.
TEST_F(FlowCacheTest, MaxFlowsAboveTwoToThe31IsCapped) {
  FlowCacheConfig cfg;
  cfg.max_flows = 0xfffffff0U;
  auto huge = make(cfg);
  EXPECT_EQ(huge.config().max_flows, FlowCache::kMaxFlows);
  huge.add(udp(a, b), kSec);
  huge.add(udp(b, a), kSec);
  EXPECT_EQ(huge.active_flows(), 1U);
}

TEST_F(FlowCacheTest, ManyFlowsThroughASmallCacheConservePackets) {
  FlowCacheConfig cfg;
  cfg.max_flows = 5000;
  std::uint64_t exported_packets = 0;
  std::uint64_t exported_flows = 0;
  FlowCache cache(cfg, [&](const FlowRecord& r) {
    exported_packets += r.in.packets + r.out.packets;
    ++exported_flows;
  });
  std::uint64_t sent = 0;
  for (std::uint32_t i = 0; i < 40000; ++i) {
    Host s;
    s.addr = {10, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
              static_cast<std::uint8_t>(i)};
    s.port = 1234;
    const auto ts = static_cast<std::int64_t>(i) * kMs;
    cache.add(udp(s, c), ts);
    cache.add(udp(c, s), ts + 1);
    sent += 2;
    if (i % 1000 == 0) cache.expire(ts);
  }
  EXPECT_EQ(cache.active_flows(), 5000U);
  EXPECT_EQ(cache.stats().evictions, 35000U);
  cache.flush();
  EXPECT_EQ(exported_packets, sent);
  EXPECT_EQ(exported_flows, 40000U);
  EXPECT_EQ(cache.stats().flows_created, 40000U);
}

}  // namespace
}  // namespace flowsec::flow

namespace flowsec::flow {
namespace {

// add_batch() prefetches ahead but must account exactly as add() one packet at a time:
// same flows, counters, times and end reasons, through bucket growth, eviction, FIN/RST,
// idle timeouts, fragments and non-IP frames, in runs longer than its internal 256.
struct BatchCase {
  std::uint32_t max_flows;
  bool idle_gaps;  // now and then 90 s without packets: idle timeouts
};

void expect_batch_equals_one_by_one(const BatchCase& bc, FlowCacheStats& stats) {
  std::vector<packet::PacketView> views;
  std::vector<std::int64_t> times;
  std::int64_t t = kSec;
  for (std::uint32_t i = 0; i < 12000; ++i) {
    const Host s = v4(static_cast<std::uint8_t>(1 + i % 97),
                      static_cast<std::uint16_t>(1024 + (i * 7) % 4099));
    const Host d = v4(static_cast<std::uint8_t>(100 + i % 13),
                      static_cast<std::uint16_t>(i % 3 == 0 ? 53 : 443));
    packet::PacketView v;
    switch (i % 7) {
      case 0:
        v = udp(s, d, i % 50);
        break;
      case 1:
        v = udp(d, s, 100);
        break;
      case 2:
        v = tcp(s, d, kSyn);
        break;
      case 3:
        v = tcp(d, s, kSyn | kAck);
        break;
      case 4:
        v = tcp(s, d, i % 11 == 0 ? kRst : kAck | kPsh, i, 200);
        break;
      case 5:
        v = tcp(s, d, kFin | kAck);
        break;
      default:
        v = udp(s, d, 1400);
        v.is_fragment = true;
        v.fragment_offset = (i % 2 == 0) ? 0 : 185;
        v.fragment_id = i / 2;
        break;
    }
    if (i % 101 == 0) v.kind = packet::PacketKind::not_ip;
    views.push_back(v);
    t += (bc.idle_gaps && i % 500 == 499) ? 90 * kSec : 3 * kMs;
    times.push_back(t);
  }
  FlowCacheConfig cfg;
  cfg.max_flows = bc.max_flows;
  std::vector<FlowRecord> one, batch;
  FlowCache a(cfg, [&](const FlowRecord& r) { one.push_back(r); });
  FlowCache b(cfg, [&](const FlowRecord& r) { batch.push_back(r); });
  std::vector<FlowCache::Packet> run;
  for (std::size_t i = 0; i < views.size(); ++i) {
    a.add(views[i], times[i]);
    run.push_back({&views[i], {}, times[i]});
    if (run.size() == 1200 || i + 1 == views.size()) {
      b.add_batch(run);
      run.clear();
      a.expire(times[i]);
      b.expire(times[i]);
    }
  }
  stats = a.stats();  // before the flush: active flows at the end of the run
  a.flush();
  b.flush();
  ASSERT_EQ(one.size(), batch.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(one[i].key.src_addr, batch[i].key.src_addr);
    EXPECT_EQ(one[i].key.dst_addr, batch[i].key.dst_addr);
    EXPECT_EQ(one[i].key.src_port, batch[i].key.src_port);
    EXPECT_EQ(one[i].key.dst_port, batch[i].key.dst_port);
    EXPECT_EQ(one[i].key.protocol, batch[i].key.protocol);
    EXPECT_EQ(one[i].in.packets, batch[i].in.packets);
    EXPECT_EQ(one[i].in.bytes, batch[i].in.bytes);
    EXPECT_EQ(one[i].out.packets, batch[i].out.packets);
    EXPECT_EQ(one[i].out.bytes, batch[i].out.bytes);
    EXPECT_EQ(one[i].first_ns, batch[i].first_ns);
    EXPECT_EQ(one[i].last_ns, batch[i].last_ns);
    EXPECT_EQ(one[i].end_reason, batch[i].end_reason);
  }
  EXPECT_EQ(a.stats().packets, b.stats().packets);
  EXPECT_EQ(a.stats().evictions, b.stats().evictions);
  EXPECT_EQ(a.stats().fragments_matched, b.stats().fragments_matched);
}

TEST(FlowCacheBatch, AddBatchAccountsExactlyAsAddWithEvictionsAndIdleTimeouts) {
  FlowCacheStats s;
  expect_batch_equals_one_by_one({300, true}, s);
  EXPECT_GT(s.evictions, 0U);
  EXPECT_GT(s.exported(EndReason::idle_timeout), 0U);
}

TEST(FlowCacheBatch, AddBatchAccountsExactlyAsAddWhileBucketsGrow) {
  FlowCacheStats s;
  expect_batch_equals_one_by_one({1u << 20, false}, s);
  EXPECT_GT(s.active_flows, FlowCache::kInitialBuckets);  // the bucket array had to grow
}

}  // namespace
}  // namespace flowsec::flow
