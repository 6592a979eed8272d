// sFlow v5 decoder: datagrams written byte by byte for every rule the decoder
// enforces and every record it reads, then real agents' captures whose expected
// values come from `tshark -r FILE -d udp.port==6343,sflow -V` (tshark 4.0), quoted
// above each test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ipfix/decode.hpp"
#include "ipfix/limits.hpp"
#include "support/udp_datagrams.hpp"
#include "unit/packet/frame_builder.hpp"

namespace flowsec::ipfix {
namespace {

using packet::test::Buf;
using packet::test::bytes;
using packet::test::cat;
using packet::test::u32;
using packet::test::zeros;
namespace pk = packet::test;

// --- IPFIX elements of the sFlow records ---
constexpr std::uint16_t kOctets = 1, kPackets = 2, kProto = 4, kTos = 5, kTcpFlags = 6;
constexpr std::uint16_t kSrcPort = 7, kSrcV4 = 8, kIngress = 10, kDstPort = 11, kDstV4 = 12;
constexpr std::uint16_t kEgress = 14, kSrcV6 = 27, kDstV6 = 28, kFlowLabel = 31, kIcmp4 = 32;
constexpr std::uint16_t kSampling = 34, kSrcMac = 56, kVlan = 58, kPostVlan = 59;
constexpr std::uint16_t kIpVersion = 60, kDstMac = 80, kForwarding = 89, kIcmp6 = 139;
constexpr std::uint16_t kTtl = 192, kCustomerVlan = 245, kEtherType = 256;

// --- sFlow v5 writer (sflow_version_5.txt): XDR, every length in bytes ---
Buf opaque(std::uint32_t format, const Buf& body) {
  return cat(cat(u32(format), u32(static_cast<std::uint32_t>(body.size()))), body);
}
Buf concat(const std::vector<Buf>& parts) {
  Buf out;
  for (const Buf& p : parts) out = cat(out, p);
  return out;
}
struct Header {
  Buf agent = bytes({192, 0, 2, 9});  // 4 bytes: type 1, 16 bytes: type 2
  std::uint32_t sub_agent = 3;
  std::uint32_t sequence = 42;
  std::uint32_t uptime = 123456;
  std::optional<std::uint32_t> count{};  // default: the number of samples
};
Buf datagram(const std::vector<Buf>& samples, const Header& h = {}) {
  Buf b = cat(u32(5), u32(h.agent.size() == 16 ? 2 : 1));
  b = cat(cat(b, h.agent), cat(u32(h.sub_agent), u32(h.sequence)));
  b = cat(b, u32(h.uptime));
  b = cat(b, u32(h.count.value_or(static_cast<std::uint32_t>(samples.size()))));
  return cat(b, concat(samples));
}
// Compact flow sample (0:1): input and output carry the format in their top two bits.
Buf flow_sample(const std::vector<Buf>& records, std::uint32_t rate = 512, std::uint32_t input = 3,
                std::uint32_t output = 5) {
  Buf body = concat({u32(77), u32(3), u32(rate), u32(100000), u32(0), u32(input), u32(output)});
  body = cat(cat(body, u32(static_cast<std::uint32_t>(records.size()))), concat(records));
  return opaque(1, body);
}
// Expanded flow sample (0:3).
Buf expanded_flow_sample(const std::vector<Buf>& records, std::uint32_t rate,
                         std::uint32_t in_format, std::uint32_t in_value, std::uint32_t out_format,
                         std::uint32_t out_value) {
  Buf body = concat({u32(78), u32(0), u32(70000), u32(rate), u32(5000), u32(1), u32(in_format),
                     u32(in_value), u32(out_format), u32(out_value)});
  body = cat(cat(body, u32(static_cast<std::uint32_t>(records.size()))), concat(records));
  return opaque(3, body);
}
// Raw packet header (0:1), header bytes padded to 4.
Buf raw_header(std::uint32_t protocol, std::uint32_t frame_length, const Buf& header) {
  Buf h = header;
  h.resize((h.size() + 3) / 4 * 4);
  return opaque(1, cat(concat({u32(protocol), u32(frame_length), u32(4),
                               u32(static_cast<std::uint32_t>(header.size()))}),
                       h));
}
Buf mac8(std::initializer_list<int> mac) {
  return cat(bytes(mac), zeros(2));
}
Buf ethernet_data(std::uint32_t length, const Buf& src8, const Buf& dst8, std::uint32_t type) {
  return opaque(2, concat({u32(length), src8, dst8, u32(type)}));
}
Buf ipv4_data(std::uint32_t length, std::uint32_t proto, const Buf& src, const Buf& dst,
              std::uint32_t sport, std::uint32_t dport, std::uint32_t flags, std::uint32_t tos) {
  return opaque(
      3, concat({u32(length), u32(proto), src, dst, u32(sport), u32(dport), u32(flags), u32(tos)}));
}
Buf ipv6_data(std::uint32_t length, std::uint32_t proto, const Buf& src, const Buf& dst,
              std::uint32_t sport, std::uint32_t dport, std::uint32_t flags, std::uint32_t prio) {
  return opaque(4, concat({u32(length), u32(proto), src, dst, u32(sport), u32(dport), u32(flags),
                           u32(prio)}));
}
Buf ext_switch(std::uint32_t src_vlan, std::uint32_t dst_vlan) {
  return opaque(1001, concat({u32(src_vlan), u32(0), u32(dst_vlan), u32(0)}));
}
// Generic interface counters (0:1): every field a distinct value derived from `n`.
Buf if_counters(std::uint32_t n) {
  Buf b = concat({u32(n), u32(6), u32(0), u32(1000000000), u32(1), u32(3)});
  b = cat(b, cat(u32(0), u32(n * 1000)));  // in octets (64-bit)
  for (std::uint32_t i = 1; i <= 6; ++i) b = cat(b, u32(n + i));
  b = cat(b, cat(u32(1), u32(n * 2000)));  // out octets: 2^32 + n * 2000
  for (std::uint32_t i = 11; i <= 17; ++i) b = cat(b, u32(n + i));
  return opaque(1, b);
}
Buf counter_sample(std::uint32_t source_id, const std::vector<Buf>& records) {
  return opaque(
      2, cat(cat(cat(u32(9), u32(source_id)), u32(static_cast<std::uint32_t>(records.size()))),
             concat(records)));
}
Buf expanded_counter_sample(std::uint32_t type, std::uint32_t index,
                            const std::vector<Buf>& records) {
  return opaque(
      4,
      cat(concat({u32(9), u32(type), u32(index), u32(static_cast<std::uint32_t>(records.size()))}),
          concat(records)));
}

Buf tcp_frame() {
  return pk::eth(pk::kEtherVlan,
                 pk::tag(10, pk::kEtherIpv4,
                         pk::ipv4(pk::kTcp, pk::tcp(40000, 443, pk::kSyn | pk::kAck, zeros(20)),
                                  pk::V4{.tos = 0x28, .ttl = 61})));
}

// --- reading records back ---
std::uint64_t num(const RecordView& r, std::uint16_t id) {
  const auto v = r.unsigned_field(kIanaPen, id);
  EXPECT_TRUE(v.has_value()) << "no element " << id;
  return v.value_or(0xdeadbeef);
}
std::string addr(const RecordView& r, std::uint16_t id) {
  const auto b = r.field(kIanaPen, id);
  if (!b) return "absent";
  if (b->size() == 4) return IpAddress::v4(b->first<4>()).to_string();
  if (b->size() == 16) return IpAddress::v6(b->first<16>()).to_string();
  return "bad size";
}
std::string mac(const RecordView& r, std::uint16_t id) {
  const auto b = r.field(kIanaPen, id);
  if (!b || b->size() != 6) return "absent";
  char s[18];
  std::snprintf(s, sizeof s, "%02x:%02x:%02x:%02x:%02x:%02x", static_cast<unsigned>((*b)[0]),
                static_cast<unsigned>((*b)[1]), static_cast<unsigned>((*b)[2]),
                static_cast<unsigned>((*b)[3]), static_cast<unsigned>((*b)[4]),
                static_cast<unsigned>((*b)[5]));
  return s;
}

Result<DecodeStats> decode(const Buf& d, RecordBatch& batch,
                           std::vector<SflowInterfaceCounters>* counters = nullptr) {
  return decode_sflow_v5(Bytes(d.data(), d.size()), batch, counters);
}
Errc error_of(const Buf& d) {
  RecordBatch batch;
  std::vector<SflowInterfaceCounters> counters;
  const auto r = decode(d, batch, &counters);
  EXPECT_FALSE(r.has_value()) << "decoded, expected an error";
  EXPECT_TRUE(batch.empty());
  EXPECT_TRUE(counters.empty());
  return r ? Errc::unsupported_version : r.error().code;
}

// ===================== hand-written datagrams =====================

TEST(Sflow, FlowSampleWithEthernetHeader) {
  const Buf d =
      datagram({flow_sample({ext_switch(10, 20), raw_header(1, 1518, tcp_frame())}, 512, 3, 5)});
  RecordBatch batch;
  const auto r = decode(d, batch);
  ASSERT_TRUE(r.has_value()) << describe(r.error().code);
  EXPECT_EQ(r->protocol, Protocol::sflow_v5);
  EXPECT_EQ(r->sequence, 42u);
  EXPECT_EQ(r->observation_domain, 3u);
  EXPECT_EQ(r->data_records, 1u);
  EXPECT_EQ(r->counter_samples, 0u);
  ASSERT_EQ(batch.size(), 1u);
  const RecordView rec = batch[0];
  EXPECT_EQ(rec.record_template().id(), 1);
  const MessageMeta& m = rec.message();
  EXPECT_EQ(m.protocol, Protocol::sflow_v5);
  EXPECT_EQ(m.sequence, 42u);
  EXPECT_EQ(m.sys_uptime_ms, 123456u);
  EXPECT_EQ(m.observation_domain, 3u);
  EXPECT_EQ(m.export_time, 0u);
  EXPECT_EQ(addr(rec, kSrcV4), "192.0.2.1");
  EXPECT_EQ(addr(rec, kDstV4), "198.51.100.2");
  EXPECT_EQ(num(rec, kProto), 6u);
  EXPECT_EQ(num(rec, kSrcPort), 40000u);
  EXPECT_EQ(num(rec, kDstPort), 443u);
  EXPECT_EQ(num(rec, kTcpFlags), 0x12u);
  EXPECT_EQ(num(rec, kTos), 0x28u);
  EXPECT_EQ(num(rec, kTtl), 61u);
  EXPECT_EQ(num(rec, kIngress), 3u);
  EXPECT_EQ(num(rec, kEgress), 5u);
  EXPECT_EQ(num(rec, kForwarding), 0x40u);
  EXPECT_EQ(num(rec, kOctets), 1518u);
  EXPECT_EQ(num(rec, kPackets), 1u);
  EXPECT_EQ(num(rec, kSampling), 512u);  // the rate itself: counts are not scaled
  EXPECT_EQ(mac(rec, kSrcMac), "02:00:00:00:00:01");
  EXPECT_EQ(mac(rec, kDstMac), "02:00:00:00:00:02");
  EXPECT_EQ(num(rec, kVlan), 10u);
  EXPECT_EQ(num(rec, kPostVlan), 20u);
  EXPECT_EQ(num(rec, kCustomerVlan), 0u);
  EXPECT_EQ(num(rec, kEtherType), 0x0800u);
  EXPECT_EQ(num(rec, kIpVersion), 4u);
}

TEST(Sflow, Ipv6HeaderUsesTheIpv6Template) {
  const Buf frame =
      pk::eth(pk::kEtherIpv6, pk::ipv6(pk::kIcmpv6, pk::icmp(135, 0),
                                       pk::V6{.traffic_class = 0xb8, .flow_label = 0xabcde}));
  RecordBatch batch;
  ASSERT_TRUE(decode(datagram({flow_sample({raw_header(1, 90, frame)})}), batch));
  const RecordView rec = batch[0];
  EXPECT_EQ(rec.record_template().id(), 2);
  EXPECT_EQ(addr(rec, kSrcV6), "2001:db8::1");
  EXPECT_EQ(addr(rec, kDstV6), "2001:db8::2");
  EXPECT_FALSE(rec.field(kIanaPen, kSrcV4).has_value());
  EXPECT_EQ(num(rec, kIcmp6), 135u << 8);
  EXPECT_EQ(num(rec, kFlowLabel), 0xabcdeu);
  EXPECT_EQ(num(rec, kTos), 0xb8u);
  EXPECT_EQ(num(rec, kIpVersion), 6u);
  EXPECT_EQ(num(rec, kOctets), 90u);
}

TEST(Sflow, RawIpHeadersAndUnparsedProtocols) {
  // header_protocol 11 (IPv4) and 12 (IPv6): no link layer.
  RecordBatch batch;
  ASSERT_TRUE(
      decode(datagram({flow_sample({raw_header(11, 60, pk::ipv4(pk::kIcmp, pk::icmp(0, 0)))}),
                       flow_sample({raw_header(12, 80, pk::ipv6(pk::kUdp, pk::udp(1, 2)))})}),
             batch));
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(num(batch[0], kIcmp4), 0u);
  EXPECT_EQ(num(batch[0], kProto), 1u);
  EXPECT_EQ(mac(batch[0], kSrcMac), "00:00:00:00:00:00");
  EXPECT_EQ(batch[1].record_template().id(), 2);
  EXPECT_EQ(num(batch[1], kDstPort), 2u);
  // header_protocol 7 (PPP) is not parsed; IPv4 with an IPv6 packet is refused by the
  // parser: both still yield a record for the bytes, without addresses.
  batch.clear();
  ASSERT_TRUE(decode(datagram({flow_sample({raw_header(7, 333, zeros(40))}),
                               flow_sample({raw_header(11, 444, pk::ipv6(pk::kUdp, {}))})}),
                     batch));
  ASSERT_EQ(batch.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(batch[i].record_template().id(), 1);
    EXPECT_EQ(addr(batch[i], kSrcV4), "0.0.0.0");
    EXPECT_EQ(num(batch[i], kIpVersion), 0u);
  }
  EXPECT_EQ(num(batch[0], kOctets), 333u);
  EXPECT_EQ(num(batch[1], kOctets), 444u);
}

TEST(Sflow, NonIpSampleKeepsItsLinkLayer) {
  const Buf arp = pk::eth(0x0806, zeros(28));
  RecordBatch batch;
  ASSERT_TRUE(decode(datagram({flow_sample({raw_header(1, 64, arp)})}), batch));
  const RecordView rec = batch[0];
  EXPECT_EQ(rec.record_template().id(), 1);
  EXPECT_EQ(addr(rec, kSrcV4), "0.0.0.0");
  EXPECT_EQ(addr(rec, kDstV4), "0.0.0.0");
  EXPECT_EQ(num(rec, kIpVersion), 0u);
  EXPECT_EQ(num(rec, kEtherType), 0x0806u);
  EXPECT_EQ(mac(rec, kSrcMac), "02:00:00:00:00:01");
  EXPECT_EQ(num(rec, kOctets), 64u);
}

TEST(Sflow, CutSampledHeaderKeepsWhatWasParsed) {
  // Agents cut headers at 128 bytes or less; here the TCP header itself is cut.
  Buf frame = tcp_frame();
  frame.resize(18 + 20 + 10);
  RecordBatch batch;
  ASSERT_TRUE(decode(datagram({flow_sample({raw_header(1, 1000, frame)})}), batch));
  EXPECT_EQ(addr(batch[0], kSrcV4), "192.0.2.1");
  EXPECT_EQ(num(batch[0], kProto), 6u);
  EXPECT_EQ(num(batch[0], kSrcPort), 0u);
  EXPECT_EQ(num(batch[0], kVlan), 10u);  // from the 802.1Q tag: no extended switch record
}

TEST(Sflow, LongHeaderIsParsedLikeAShorterSnapLength) {
  const Buf frame = pk::eth(pk::kEtherIpv4,
                            pk::ipv4(pk::kUdp, pk::udp(7, 9, zeros(limits::kMaxSflowHeaderBytes))));
  RecordBatch batch;
  ASSERT_TRUE(decode(datagram({flow_sample({raw_header(1, 2000, frame)})}), batch));
  EXPECT_EQ(num(batch[0], kDstPort), 9u);
  EXPECT_EQ(num(batch[0], kOctets), 2000u);
}

TEST(Sflow, ExpandedSampleWithDataRecordsOnly) {
  // No sampled header: addresses from the IPv4 record, MACs and length from the
  // Ethernet record (its frame length beats the IP packet length).
  const Buf d = datagram({expanded_flow_sample(
      {ipv4_data(1344, 17, bytes({50, 50, 50, 50}), bytes({51, 51, 51, 51}), 46622, 58631, 0, 0x20),
       ethernet_data(1390, mac8({0x00, 0xfe, 0xc8, 0x99, 0x05, 0x47}),
                     mac8({0x01, 0x00, 0x5e, 0x2a, 0xaa, 0x04}), 0x0800)},
      256, 0, 70000, 0, 0x7fffffff)});
  RecordBatch batch;
  ASSERT_TRUE(decode(d, batch));
  const RecordView rec = batch[0];
  EXPECT_EQ(addr(rec, kSrcV4), "50.50.50.50");
  EXPECT_EQ(addr(rec, kDstV4), "51.51.51.51");
  EXPECT_EQ(num(rec, kProto), 17u);
  EXPECT_EQ(num(rec, kSrcPort), 46622u);
  EXPECT_EQ(num(rec, kTos), 0x20u);
  EXPECT_EQ(num(rec, kOctets), 1390u);
  EXPECT_EQ(num(rec, kSampling), 256u);
  EXPECT_EQ(num(rec, kIngress), 70000u);
  EXPECT_EQ(num(rec, kEgress), 0x7fffffffu);  // expanded interfaces use all 32 bits
  EXPECT_EQ(mac(rec, kSrcMac), "00:fe:c8:99:05:47");
  EXPECT_EQ(mac(rec, kDstMac), "01:00:5e:2a:aa:04");
  // IPv6 data record.
  Buf src(16), dst(16);
  src[0] = dst[0] = std::byte{0x20};
  src[15] = std::byte{1};
  dst[15] = std::byte{2};
  batch.clear();
  ASSERT_TRUE(decode(datagram({flow_sample({ipv6_data(100, 6, src, dst, 1, 2, 0x18, 0)})}), batch));
  EXPECT_EQ(batch[0].record_template().id(), 2);
  EXPECT_EQ(addr(batch[0], kDstV6), "2000::2");
  EXPECT_EQ(num(batch[0], kTcpFlags), 0x18u);
  EXPECT_EQ(num(batch[0], kOctets), 100u);
}

TEST(Sflow, SampledHeaderBeatsDataRecords) {
  // Records in any order: the sampled header's frame length and packet fields win over
  // the Ethernet and IPv4 data records, whose lengths count less of the frame.
  const Buf d = datagram(
      {flow_sample({ipv4_data(1300, 17, bytes({9, 9, 9, 9}), bytes({8, 8, 8, 8}), 1, 2, 0, 0),
                    raw_header(1, 1518, tcp_frame()),
                    ethernet_data(1400, mac8({1, 1, 1, 1, 1, 1}), mac8({2, 2, 2, 2, 2, 2}), 0x0800),
                    ipv4_data(1300, 17, bytes({7, 7, 7, 7}), bytes({6, 6, 6, 6}), 3, 4, 0, 0)})});
  RecordBatch batch;
  ASSERT_TRUE(decode(d, batch));
  const RecordView rec = batch[0];
  EXPECT_EQ(num(rec, kOctets), 1518u);
  EXPECT_EQ(addr(rec, kSrcV4), "192.0.2.1");
  EXPECT_EQ(num(rec, kProto), 6u);
  EXPECT_EQ(num(rec, kSrcPort), 40000u);
  EXPECT_EQ(mac(rec, kSrcMac), "02:00:00:00:00:01");
  // Without a header: the Ethernet length beats the IP length, in either order.
  batch.clear();
  ASSERT_TRUE(
      decode(datagram({flow_sample(
                 {ethernet_data(1400, mac8({1, 1, 1, 1, 1, 1}), mac8({2, 2, 2, 2, 2, 2}), 0x0800),
                  ipv4_data(1300, 17, bytes({9, 9, 9, 9}), bytes({8, 8, 8, 8}), 1, 2, 0, 0)})}),
             batch));
  EXPECT_EQ(num(batch[0], kOctets), 1400u);
  EXPECT_EQ(addr(batch[0], kSrcV4), "9.9.9.9");
  EXPECT_EQ(mac(batch[0], kSrcMac), "01:01:01:01:01:01");
}

TEST(Sflow, InterfaceFormats) {
  // flow_sample `output`: format 1 = discarded (value: reason), 2 = several interfaces;
  // 0x3FFFFFFF = the agent itself. RFC 7270 forwardingStatus: 64 forwarded, 128 dropped,
  // 192 consumed, 0 unknown.
  struct Case {
    std::uint32_t input, output;
    std::uint32_t ingress, egress, status;
  };
  const Case cases[] = {
      {7, 9, 7, 9, 64},           {7, (1u << 30) | 1, 7, 0, 128}, {7, (2u << 30) | 3, 7, 0, 64},
      {7, 0x3fffffff, 7, 0, 192}, {0x3fffffff, 4, 0, 4, 64},      {7, 0, 7, 0, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.output);
    RecordBatch batch;
    ASSERT_TRUE(decode(
        datagram({flow_sample({raw_header(1, 64, tcp_frame())}, 1, c.input, c.output)}), batch));
    EXPECT_EQ(num(batch[0], kIngress), c.ingress);
    EXPECT_EQ(num(batch[0], kEgress), c.egress);
    EXPECT_EQ(num(batch[0], kForwarding), c.status);
  }
}

TEST(Sflow, SwitchVlansAndQinQ) {
  // 0xFFFFFFFF from the switch means unknown: the header's tag is used instead.
  const Buf qinq = pk::eth(
      pk::kEtherQinQ, pk::tag(1062, pk::kEtherVlan,
                              pk::tag(1493, pk::kEtherIpv4, pk::ipv4(pk::kUdp, pk::udp(1, 2)))));
  RecordBatch batch;
  ASSERT_TRUE(decode(
      datagram({flow_sample({raw_header(1, 100, qinq), ext_switch(0xffffffff, 4096)})}), batch));
  EXPECT_EQ(num(batch[0], kVlan), 1062u);
  EXPECT_EQ(num(batch[0], kCustomerVlan), 1493u);
  EXPECT_EQ(num(batch[0], kPostVlan), 0u);
}

TEST(Sflow, SkipsWhatItDoesNotRead) {
  const Buf d = datagram({
      opaque(7, zeros(12)),                  // unknown standard sample format
      opaque((4413u << 12) | 5, zeros(20)),  // another enterprise's sample
      flow_sample({opaque(1002, zeros(12)),  // extended router
                   opaque((9u << 12) | 1, zeros(4)), raw_header(1, 64, tcp_frame())}),
      counter_sample(5, {opaque(2, zeros(52)), opaque(1005, zeros(8))}),  // no generic record
  });
  RecordBatch batch;
  std::vector<SflowInterfaceCounters> counters;
  const auto r = decode(d, batch, &counters);
  ASSERT_TRUE(r.has_value()) << describe(r.error().code);
  EXPECT_EQ(batch.size(), 1u);
  EXPECT_EQ(r->counter_samples, 0u);
  EXPECT_TRUE(counters.empty());
}

TEST(Sflow, GenericInterfaceCounters) {
  const Buf d = datagram({counter_sample(17, {opaque(2, zeros(52)), if_counters(17)}),
                          expanded_counter_sample(2, 1234, {if_counters(1234)})},
                         Header{.sub_agent = 8});
  RecordBatch batch;
  std::vector<SflowInterfaceCounters> counters;
  const auto r = decode(d, batch, &counters);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(r->counter_samples, 2u);
  ASSERT_EQ(counters.size(), 2u);
  const SflowInterfaceCounters& c = counters[0];
  EXPECT_EQ(c.agent.to_string(), "192.0.2.9");
  EXPECT_EQ(c.sub_agent_id, 8u);
  EXPECT_EQ(c.source_id, 17u);
  EXPECT_EQ(c.if_index, 17u);
  EXPECT_EQ(c.if_type, 6u);
  EXPECT_EQ(c.if_speed, 1000000000u);
  EXPECT_EQ(c.if_direction, 1u);
  EXPECT_EQ(c.if_status, 3u);
  EXPECT_EQ(c.in_octets, 17000u);
  EXPECT_EQ(c.in_ucast_pkts, 18u);
  EXPECT_EQ(c.in_multicast_pkts, 19u);
  EXPECT_EQ(c.in_broadcast_pkts, 20u);
  EXPECT_EQ(c.in_discards, 21u);
  EXPECT_EQ(c.in_errors, 22u);
  EXPECT_EQ(c.in_unknown_protos, 23u);
  EXPECT_EQ(c.out_octets, (1ull << 32) + 34000u);
  EXPECT_EQ(c.out_ucast_pkts, 28u);
  EXPECT_EQ(c.out_multicast_pkts, 29u);
  EXPECT_EQ(c.out_broadcast_pkts, 30u);
  EXPECT_EQ(c.out_discards, 31u);
  EXPECT_EQ(c.out_errors, 32u);
  EXPECT_EQ(c.promiscuous_mode, 33u);
  EXPECT_EQ(counters[1].source_id, (2u << 24) | 1234u);
  EXPECT_EQ(counters[1].if_index, 1234u);
  // Without a vector the samples are still counted.
  RecordBatch again;
  EXPECT_EQ(decode(d, again)->counter_samples, 2u);
}

TEST(Sflow, Ipv6AgentAndSeveralSamplesShareOneMessage) {
  Buf agent(16);
  agent[0] = std::byte{0x20};
  agent[1] = std::byte{0x01};
  agent[15] = std::byte{0x05};
  const Buf d =
      datagram({flow_sample({raw_header(1, 100, tcp_frame())}), counter_sample(1, {if_counters(1)}),
                flow_sample({raw_header(1, 200, tcp_frame())}, 1024)},
               Header{.agent = agent, .sequence = 9});
  RecordBatch batch;
  std::vector<SflowInterfaceCounters> counters;
  ASSERT_TRUE(decode(d, batch, &counters));
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(&batch[0].message(), &batch[1].message());
  EXPECT_EQ(batch[0].message().sequence, 9u);
  EXPECT_EQ(num(batch[0], kOctets), 100u);
  EXPECT_EQ(num(batch[1], kOctets), 200u);
  EXPECT_EQ(num(batch[1], kSampling), 1024u);
  ASSERT_EQ(counters.size(), 1u);
  EXPECT_EQ(counters[0].agent.to_string(), "2001::5");
}

// ===================== malformed datagrams =====================

TEST(SflowMalformed, TruncatedHeader) {
  const Buf good = datagram({});
  ASSERT_EQ(good.size(), 28u);
  for (std::size_t n : {0, 3, 7, 11, 20, 27}) {
    SCOPED_TRACE(n);
    EXPECT_EQ(error_of(Buf(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n))),
              Errc::truncated_header);
  }
  RecordBatch batch;
  EXPECT_TRUE(decode(good, batch).has_value());  // zero samples is a valid datagram
}

TEST(SflowMalformed, VersionAndAddressType) {
  Buf d = datagram({});
  pk::put32(d, 0, 4);
  EXPECT_EQ(error_of(d), Errc::bad_version);
  d = datagram({});
  pk::put32(d, 4, 3);
  RecordBatch batch;
  const auto r = decode(d, batch);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::sflow_address_type);
  EXPECT_EQ(r.error().offset, 4u);
  pk::put32(d, 4, 0);  // "unknown" address type: nothing to read an agent from
  EXPECT_EQ(error_of(d), Errc::sflow_address_type);
}

TEST(SflowMalformed, SampleCounts) {
  EXPECT_EQ(error_of(datagram({}, Header{.count = limits::kMaxSflowSamples + 1})),
            Errc::sflow_too_many);
  // The count promises more samples than follow, or fewer.
  EXPECT_EQ(error_of(datagram({flow_sample({})}, Header{.count = 2})), Errc::count_mismatch);
  // Exactly the cap is fine.
  std::vector<Buf> many(limits::kMaxSflowSamples, opaque(7, {}));
  RecordBatch batch;
  EXPECT_TRUE(decode(datagram(many), batch).has_value());
}

TEST(SflowMalformed, BytesAfterTheAnnouncedSamplesAreIgnored) {
  // As tshark and other collectors do (akvorado's discard-interface fixture is such a
  // datagram): only the announced samples are read.
  RecordBatch batch;
  auto r = decode(datagram({flow_sample({raw_header(1, 64, tcp_frame())}),
                            flow_sample({raw_header(1, 64, tcp_frame())})},
                           Header{.count = 1}),
                  batch);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->data_records, 1u);
  EXPECT_TRUE(decode(cat(datagram({}), zeros(3)), batch).has_value());
  // Inside a sample, bytes after the last record likewise.
  Buf padded = flow_sample({ext_switch(1, 2)});
  pk::put32(padded, 4, static_cast<std::uint32_t>(padded.size() - 8 + 4));
  padded = cat(padded, zeros(4));
  r = decode(datagram({padded, counter_sample(1, {if_counters(1)})}), batch);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->data_records, 1u);
  EXPECT_EQ(r->counter_samples, 1u);
}

TEST(SflowMalformed, SampleLengthLies) {
  Buf d = datagram({flow_sample({raw_header(1, 64, tcp_frame())})});
  pk::put32(d, 28 + 4, static_cast<std::uint32_t>(d.size() - 28 - 8 + 1));
  RecordBatch batch;
  const auto r = decode(d, batch);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::sflow_sample_length);
  EXPECT_EQ(r.error().offset, 32u);
  // Too short for the fixed part of a flow sample, of a counter sample.
  EXPECT_EQ(error_of(datagram({opaque(1, zeros(28))})), Errc::sflow_sample_length);
  EXPECT_EQ(error_of(datagram({opaque(3, zeros(40))})), Errc::sflow_sample_length);
  EXPECT_EQ(error_of(datagram({opaque(2, zeros(8))})), Errc::sflow_sample_length);
  // Two records announced, one present.
  Buf body = concat({u32(1), u32(3), u32(1), u32(1), u32(0), u32(1), u32(2), u32(2)});
  EXPECT_EQ(error_of(datagram({opaque(1, cat(body, ext_switch(1, 2)))})),
            Errc::sflow_sample_length);
}

TEST(SflowMalformed, RecordCountAndLength) {
  std::vector<Buf> records(limits::kMaxSflowRecordsPerSample + 1, opaque(1002, {}));
  EXPECT_EQ(error_of(datagram({flow_sample(records)})), Errc::sflow_too_many);
  EXPECT_EQ(error_of(datagram({counter_sample(1, records)})), Errc::sflow_too_many);
  records.pop_back();
  RecordBatch batch;
  EXPECT_TRUE(decode(datagram({flow_sample(records)}), batch).has_value());
  // A record longer than its sample.
  Buf s = flow_sample({ext_switch(1, 2)});
  pk::put32(s, 8 + 28 + 4 + 4, 17);
  EXPECT_EQ(error_of(datagram({s})), Errc::sflow_record_length);
  // Known records shorter than their fixed fields.
  EXPECT_EQ(error_of(datagram({flow_sample({opaque(1, zeros(12))})})), Errc::sflow_record_length);
  EXPECT_EQ(error_of(datagram({flow_sample({opaque(2, zeros(20))})})), Errc::sflow_record_length);
  EXPECT_EQ(error_of(datagram({flow_sample({opaque(3, zeros(28))})})), Errc::sflow_record_length);
  EXPECT_EQ(error_of(datagram({flow_sample({opaque(4, zeros(52))})})), Errc::sflow_record_length);
  EXPECT_EQ(error_of(datagram({flow_sample({opaque(1001, zeros(12))})})),
            Errc::sflow_record_length);
  EXPECT_EQ(error_of(datagram({counter_sample(1, {opaque(1, zeros(84))})})),
            Errc::sflow_record_length);
  // Sampled header length beyond the record.
  Buf h = raw_header(1, 64, tcp_frame());
  pk::put32(h, 8 + 12, static_cast<std::uint32_t>(h.size()));
  EXPECT_EQ(error_of(datagram({flow_sample({h})})), Errc::sflow_record_length);
}

TEST(SflowMalformed, RollbackLeavesNoTrace) {
  RecordBatch batch;
  std::vector<SflowInterfaceCounters> counters;
  ASSERT_TRUE(decode(datagram({flow_sample({raw_header(1, 64, tcp_frame())}),
                               counter_sample(1, {if_counters(1)})}),
                     batch, &counters));
  const RecordBatch::Mark before = batch.mark();
  // Good samples first (a record, a counter), then a lie: the whole datagram goes.
  Buf bad = datagram({flow_sample({raw_header(1, 64, tcp_frame())}),
                      counter_sample(2, {if_counters(2)}), opaque(1, zeros(4))});
  const auto r = decode(bad, batch, &counters);
  ASSERT_FALSE(r.has_value());
  const RecordBatch::Mark after = batch.mark();
  EXPECT_EQ(after.data, before.data);
  EXPECT_EQ(after.refs, before.refs);
  EXPECT_EQ(after.templates, before.templates);
  EXPECT_EQ(after.messages, before.messages);
  EXPECT_EQ(counters.size(), 1u);
  EXPECT_EQ(batch.size(), 1u);
}

TEST(SflowMalformed, EveryPrefixIsRefusedOrDecodedWhole) {
  const Buf d = datagram(
      {flow_sample({ext_switch(1, 2), raw_header(1, 64, tcp_frame())}),
       counter_sample(1, {if_counters(1)}),
       expanded_flow_sample({ipv4_data(1, 2, zeros(4), zeros(4), 1, 2, 3, 4)}, 1, 0, 1, 0, 2)});
  std::size_t refused = 0;
  for (std::size_t n = 0; n < d.size(); ++n) {
    const auto copy = std::make_unique<std::byte[]>(n);
    std::copy_n(d.begin(), n, copy.get());
    RecordBatch batch;
    std::vector<SflowInterfaceCounters> counters;
    const auto r = decode_sflow_v5(Bytes(copy.get(), n), batch, &counters);
    if (!r) {
      ++refused;
      EXPECT_TRUE(batch.empty());
      EXPECT_TRUE(counters.empty());
    }
  }
  // Every proper prefix cuts something the counts or lengths promised.
  EXPECT_EQ(refused, d.size());
  RecordBatch batch;
  std::vector<SflowInterfaceCounters> counters;
  ASSERT_TRUE(decode(d, batch, &counters));
  EXPECT_EQ(batch.size(), 2u);
  EXPECT_EQ(counters.size(), 1u);
}

// ===================== real agents =====================

std::vector<test::UdpDatagram> capture(const std::string& relative) {
  return test::read_udp_datagrams(std::string(FLOWSEC_TEST_DATA) + "/export/" + relative);
}
struct Decoded {
  RecordBatch batch;
  std::vector<SflowInterfaceCounters> counters;
  DecodeStats last;
  std::size_t datagrams = 0;
};
Decoded decode_capture(const std::string& relative) {
  Decoded out;
  for (const auto& d : capture(relative)) {
    if (d.dst_port != 6343) continue;
    const auto r = decode_sflow_v5(Bytes(d.payload), out.batch, &out.counters);
    EXPECT_TRUE(r.has_value()) << relative << ": " << describe(r.error().code) << " at "
                               << r.error().offset;
    if (r) out.last = *r;
    ++out.datagrams;
  }
  return out;
}

// tshark -r akvorado/sflow_data-1140.pcap -d udp.port==6343,sflow -V (summary):
//   agent 172.16.0.3, sub-agent 0, sequence 812646826, uptime 930960704 ms, 5 flow samples,
//   all 1 out of 1024; per sample: input / output, extended switch VLAN in / out,
//   frame length, Ethernet src > dst, IP src > dst, TCP ports, flags, TOS/TC, TTL/hop limit:
//   1: 27/28 100/100 1518 24:6e:96:90:7a:50 > 24:6e:96:04:3c:08
//      2a0c:8880:2:0:185:21:130:38 > ...:39 46026 > 22 0x010 0x08 64 (flow label 0x68094)
//   2: 49001/25 4294967295/100 439 c4:ca:2b:ae:34:37 > ae:18:b0:4b:26:8a
//      104.26.8.24 > 45.90.161.46 443 > 56876 0x018 0x00 59
//   3: 27/28 100/100 1518 (as 1)
//   4: 28/49001 100/4294967295 64 7e:12:7c:7b:fa:f0 > c4:ca:2b:ae:34:37
//      45.90.161.148 > 191.87.91.27 55658 > 5555 0x002 0x00 255
//   5: 27/28 100/100 1518 (as 1)
TEST(SflowCaptures, Akvorado1140) {
  Decoded d = decode_capture("akvorado/sflow_data-1140.pcap");
  ASSERT_EQ(d.datagrams, 1u);
  EXPECT_EQ(d.last.data_records, 5u);
  EXPECT_EQ(d.last.sequence, 812646826u);
  EXPECT_EQ(d.last.observation_domain, 0u);
  ASSERT_EQ(d.batch.size(), 5u);
  EXPECT_EQ(d.batch[0].message().sys_uptime_ms, 930960704u);
  const RecordView a = d.batch[0];
  EXPECT_EQ(a.record_template().id(), 2);
  EXPECT_EQ(addr(a, kSrcV6), "2a0c:8880:2:0:185:21:130:38");
  EXPECT_EQ(addr(a, kDstV6), "2a0c:8880:2:0:185:21:130:39");
  EXPECT_EQ(num(a, kSrcPort), 46026u);
  EXPECT_EQ(num(a, kDstPort), 22u);
  EXPECT_EQ(num(a, kTcpFlags), 0x10u);
  EXPECT_EQ(num(a, kTos), 0x08u);
  EXPECT_EQ(num(a, kTtl), 64u);
  EXPECT_EQ(num(a, kFlowLabel), 0x68094u);
  EXPECT_EQ(num(a, kOctets), 1518u);
  EXPECT_EQ(num(a, kSampling), 1024u);
  EXPECT_EQ(num(a, kIngress), 27u);
  EXPECT_EQ(num(a, kEgress), 28u);
  EXPECT_EQ(num(a, kVlan), 100u);
  EXPECT_EQ(num(a, kPostVlan), 100u);
  EXPECT_EQ(mac(a, kSrcMac), "24:6e:96:90:7a:50");
  EXPECT_EQ(mac(a, kDstMac), "24:6e:96:04:3c:08");
  const RecordView b = d.batch[1];
  EXPECT_EQ(b.record_template().id(), 1);
  EXPECT_EQ(addr(b, kSrcV4), "104.26.8.24");
  EXPECT_EQ(addr(b, kDstV4), "45.90.161.46");
  EXPECT_EQ(num(b, kSrcPort), 443u);
  EXPECT_EQ(num(b, kDstPort), 56876u);
  EXPECT_EQ(num(b, kTcpFlags), 0x18u);
  EXPECT_EQ(num(b, kTtl), 59u);
  EXPECT_EQ(num(b, kOctets), 439u);
  EXPECT_EQ(num(b, kIngress), 49001u);
  EXPECT_EQ(num(b, kEgress), 25u);
  EXPECT_EQ(num(b, kVlan), 0u);  // unknown to the switch, untagged in the header
  EXPECT_EQ(num(b, kPostVlan), 100u);
  EXPECT_EQ(mac(b, kSrcMac), "c4:ca:2b:ae:34:37");
  const RecordView c = d.batch[3];
  EXPECT_EQ(addr(c, kSrcV4), "45.90.161.148");
  EXPECT_EQ(addr(c, kDstV4), "191.87.91.27");
  EXPECT_EQ(num(c, kDstPort), 5555u);
  EXPECT_EQ(num(c, kTcpFlags), 0x02u);
  EXPECT_EQ(num(c, kTtl), 255u);
  EXPECT_EQ(num(c, kOctets), 64u);
  EXPECT_EQ(num(c, kEgress), 49001u);
  EXPECT_EQ(num(c, kPostVlan), 0u);
  std::uint64_t octets = 0;
  for (std::size_t i = 0; i < d.batch.size(); ++i) octets += num(d.batch[i], kOctets);
  EXPECT_EQ(octets, 1518u * 3 + 439u + 64u);
}

// Same sample, three output interfaces (tshark "Output interface format"):
//   discard-interface:   packet discarded (1), value Host Unreachable (1)
//   local-interface:     ifindex (0), value 1073741823 (0x3FFFFFFF)
//   multiple-interfaces: multiple interfaces (2), value 7
TEST(SflowCaptures, AkvoradoOutputInterfaces) {
  struct Case {
    const char* file;
    std::uint64_t status;
  };
  for (const Case& c : {Case{"akvorado/sflow_data-discard-interface.pcap", 128},
                        Case{"akvorado/sflow_data-local-interface.pcap", 192},
                        Case{"akvorado/sflow_data-multiple-interfaces.pcap", 64}}) {
    SCOPED_TRACE(c.file);
    Decoded d = decode_capture(c.file);
    ASSERT_EQ(d.batch.size(), 1u);
    EXPECT_EQ(num(d.batch[0], kForwarding), c.status);
    EXPECT_EQ(num(d.batch[0], kEgress), 0u);
    EXPECT_EQ(num(d.batch[0], kIngress), 27u);
    EXPECT_EQ(addr(d.batch[0], kSrcV6), "2a0c:8880:2:0:185:21:130:38");
  }
}

// tshark: agent 127.0.0.1, sub-agent 1402, 1 out of 1 packets, input and output
// 1073741823; frame length 172; 00:17:08:7d:77:42 > 30:e4:db:3e:33:7f, 192.168.108.40 >
// 192.168.15.14, UDP 45833 > 4789, VXLAN carrying IPv6 2001:db8:4::1 > 2001:db8:4::3.
TEST(SflowCaptures, AkvoradoVxlanStaysOuter) {
  Decoded d = decode_capture("akvorado/sflow_data-encap-vxlan.pcap");
  ASSERT_EQ(d.batch.size(), 1u);
  EXPECT_EQ(d.last.observation_domain, 1402u);
  const RecordView r = d.batch[0];
  EXPECT_EQ(addr(r, kSrcV4), "192.168.108.40");
  EXPECT_EQ(addr(r, kDstV4), "192.168.15.14");
  EXPECT_EQ(num(r, kSrcPort), 45833u);
  EXPECT_EQ(num(r, kDstPort), 4789u);
  EXPECT_EQ(num(r, kOctets), 172u);
  EXPECT_EQ(num(r, kSampling), 1u);
  EXPECT_EQ(num(r, kIngress), 0u);  // 0x3FFFFFFF: originated by the agent's host
  EXPECT_EQ(num(r, kForwarding), 192u);
  EXPECT_EQ(mac(r, kSrcMac), "00:17:08:7d:77:42");
}

// tshark: icmpv4: 203.0.113.4 > 203.0.113.5, ICMP type 8 code 0, frame length 102;
//         icmpv6: fe80::d05b:45ff:feee:5ecf > 2001:db8::, ICMPv6 type 135 code 0, hop
//         limit 255, frame length 90.
TEST(SflowCaptures, AkvoradoIcmp) {
  Decoded v4 = decode_capture("akvorado/sflow_data-icmpv4.pcap");
  ASSERT_EQ(v4.batch.size(), 1u);
  EXPECT_EQ(addr(v4.batch[0], kSrcV4), "203.0.113.4");
  EXPECT_EQ(addr(v4.batch[0], kDstV4), "203.0.113.5");
  EXPECT_EQ(num(v4.batch[0], kIcmp4), 0x0800u);
  EXPECT_EQ(num(v4.batch[0], kOctets), 102u);
  Decoded v6 = decode_capture("akvorado/sflow_data-icmpv6.pcap");
  ASSERT_EQ(v6.batch.size(), 1u);
  EXPECT_EQ(addr(v6.batch[0], kSrcV6), "fe80::d05b:45ff:feee:5ecf");
  EXPECT_EQ(addr(v6.batch[0], kDstV6), "2001:db8::");
  EXPECT_EQ(num(v6.batch[0], kIcmp6), 0x8700u);
  EXPECT_EQ(num(v6.batch[0], kTtl), 255u);
  EXPECT_EQ(num(v6.batch[0], kOctets), 90u);
}

// tshark: expanded flow sample, 1 out of 4096, input 369098852, output 369098851; frame
// length 106; 4c:ae:a3:52:0f:f6 > 00:01:10:62:14:93; 802.1Q ID 1062 then ID 1493;
// 49.49.49.2 > 49.49.49.109 TCP 32017 > 443 flags 0x010 TTL 62. Sub-agent 100.
TEST(SflowCaptures, AkvoradoQinQ) {
  Decoded d = decode_capture("akvorado/sflow_data-qinq.pcap");
  ASSERT_EQ(d.batch.size(), 1u);
  const RecordView r = d.batch[0];
  EXPECT_EQ(d.last.observation_domain, 100u);
  EXPECT_EQ(num(r, kSampling), 4096u);
  EXPECT_EQ(num(r, kIngress), 369098852u);
  EXPECT_EQ(num(r, kEgress), 369098851u);
  EXPECT_EQ(num(r, kVlan), 1062u);
  EXPECT_EQ(num(r, kCustomerVlan), 1493u);
  EXPECT_EQ(addr(r, kSrcV4), "49.49.49.2");
  EXPECT_EQ(addr(r, kDstV4), "49.49.49.109");
  EXPECT_EQ(num(r, kSrcPort), 32017u);
  EXPECT_EQ(num(r, kDstPort), 443u);
  EXPECT_EQ(num(r, kTtl), 62u);
  EXPECT_EQ(num(r, kOctets), 106u);
  EXPECT_EQ(mac(r, kDstMac), "00:01:10:62:14:93");
}

// tshark (both files hold the same datagram): expanded flow sample, 1 out of 1000 packets,
// input 29001, output 1285816721, frame length 126, 802.1Q ID 809, 52.52.52.52 >
// 53.53.53.53 TCP 22 > 52237 flags 0x018, DSCP field 0x08, TTL 61.
TEST(SflowCaptures, ExpandedSample) {
  for (const char* file :
       {"akvorado/sflow_data-sflow-expanded-sample.pcap", "tcpdump/sflow_expanded.pcap"}) {
    SCOPED_TRACE(file);
    Decoded d = decode_capture(file);
    ASSERT_EQ(d.batch.size(), 1u);
    const RecordView r = d.batch[0];
    EXPECT_EQ(num(r, kSampling), 1000u);
    EXPECT_EQ(num(r, kIngress), 29001u);
    EXPECT_EQ(num(r, kEgress), 1285816721u);
    EXPECT_EQ(num(r, kVlan), 809u);
    EXPECT_EQ(addr(r, kSrcV4), "52.52.52.52");
    EXPECT_EQ(addr(r, kDstV4), "53.53.53.53");
    EXPECT_EQ(num(r, kSrcPort), 22u);
    EXPECT_EQ(num(r, kDstPort), 52237u);
    EXPECT_EQ(num(r, kTcpFlags), 0x18u);
    EXPECT_EQ(num(r, kTos), 0x08u);
    EXPECT_EQ(num(r, kTtl), 61u);
    EXPECT_EQ(num(r, kOctets), 126u);
  }
}

// tshark: expanded sample with raw header (frame length 1390), Ethernet frame data
// (length 1390, 00:fe:c8:99:05:47 > 01:00:5e:2a:aa:04), extended switch (in VLAN 0,
// out VLAN 3001) and IPv4 data (length 1344, 50.50.50.50 > 51.51.51.51, 46622 > 58631);
// 1 out of 256, input 0, output 182.
TEST(SflowCaptures, AkvoradoIpv4DataRecords) {
  Decoded d = decode_capture("akvorado/sflow_data-sflow-ipv4-data.pcap");
  ASSERT_EQ(d.batch.size(), 1u);
  const RecordView r = d.batch[0];
  EXPECT_EQ(num(r, kOctets), 1390u);
  EXPECT_EQ(num(r, kSampling), 256u);
  EXPECT_EQ(num(r, kIngress), 0u);
  EXPECT_EQ(num(r, kEgress), 182u);
  EXPECT_EQ(addr(r, kSrcV4), "50.50.50.50");
  EXPECT_EQ(addr(r, kDstV4), "51.51.51.51");
  EXPECT_EQ(num(r, kProto), 17u);
  EXPECT_EQ(num(r, kSrcPort), 46622u);
  EXPECT_EQ(num(r, kDstPort), 58631u);
  EXPECT_EQ(num(r, kVlan), 0u);
  EXPECT_EQ(num(r, kPostVlan), 3001u);
  EXPECT_EQ(mac(r, kSrcMac), "00:fe:c8:99:05:47");
  EXPECT_EQ(mac(r, kDstMac), "01:00:5e:2a:aa:04");
}

// tshark: agent 172.19.64.116, sub-agent 100000, 2 flow samples, header protocol IPv4
// (11), frame length 50, header 32 bytes: 69.58.92.107 > 92.222.186.1 and >
// 92.222.184.1, ICMP type 0 code 0, DSCP field 0x08; input 0, output 2.
TEST(SflowCaptures, AkvoradoRawIpv4Headers) {
  Decoded d = decode_capture("akvorado/sflow_data-sflow-raw-ipv4.pcap");
  ASSERT_EQ(d.batch.size(), 2u);
  EXPECT_EQ(d.last.observation_domain, 100000u);
  EXPECT_EQ(addr(d.batch[0], kDstV4), "92.222.186.1");
  EXPECT_EQ(addr(d.batch[1], kDstV4), "92.222.184.1");
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(addr(d.batch[i], kSrcV4), "69.58.92.107");
    EXPECT_EQ(num(d.batch[i], kProto), 1u);
    EXPECT_EQ(num(d.batch[i], kIcmp4), 0u);
    EXPECT_EQ(num(d.batch[i], kTos), 0x08u);
    EXPECT_EQ(num(d.batch[i], kOctets), 50u);
    EXPECT_EQ(num(d.batch[i], kEgress), 2u);
    EXPECT_EQ(mac(d.batch[i], kSrcMac), "00:00:00:00:00:00");
  }
}

// tshark -r tcpdump/sflow-print-v6.pcap -d udp.port==6343,sflow -T fields -e sflow_245.sampletype
//   -e sflow.flow_sample.sampling_rate -e sflow_245.header.frame_length -e ip.src -e ip.dst
//   -e ip.proto -e sflow_245.counters_record_format
//   25 datagrams from agent 30::1:1:1 (IPv6 transport and agent address); 13 flow samples
//   (frames 4, 8, 14, 20 x6, 21 x4), all 1 out of 1, frame lengths 64, 250, 500 and 10 x 64,
//   10.10.10.2 > 50.1.1.2 protocol 63, switch VLAN 10; 48 counter samples, each with one
//   generic interface record. Frame 3, first sample: source 0:21001, ifIndex 21001, type 6,
//   speed 400000000000, full duplex, admin+oper up, out octets 11759, out packets 2, out
//   multicast 96. Frame 14: output 0x80000000 (multiple interfaces), input 7001.
TEST(SflowCaptures, TcpdumpIpv6Agent) {
  Decoded d = decode_capture("tcpdump/sflow-print-v6.pcap");
  EXPECT_EQ(d.datagrams, 25u);
  ASSERT_EQ(d.batch.size(), 13u);
  ASSERT_EQ(d.counters.size(), 48u);
  std::uint64_t octets = 0;
  for (std::size_t i = 0; i < d.batch.size(); ++i) {
    const RecordView r = d.batch[i];
    octets += num(r, kOctets);
    EXPECT_EQ(addr(r, kSrcV4), "10.10.10.2");
    EXPECT_EQ(addr(r, kDstV4), "50.1.1.2");
    EXPECT_EQ(num(r, kProto), 63u);
    EXPECT_EQ(num(r, kSampling), 1u);
    EXPECT_EQ(num(r, kVlan), 10u);
  }
  EXPECT_EQ(octets, 64u + 250u + 500u + 10u * 64u);
  EXPECT_EQ(num(d.batch[2], kIngress), 7001u);
  EXPECT_EQ(num(d.batch[2], kEgress), 0u);
  EXPECT_EQ(num(d.batch[2], kForwarding), 64u);
  const SflowInterfaceCounters* first = nullptr;
  for (const auto& c : d.counters) {
    EXPECT_EQ(c.agent.to_string(), "30::1:1:1");
    if (c.if_index == 21001 && c.out_octets == 11759) first = &c;
  }
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->source_id, 21001u);
  EXPECT_EQ(first->if_type, 6u);
  EXPECT_EQ(first->if_speed, 400000000000u);
  EXPECT_EQ(first->if_direction, 1u);
  EXPECT_EQ(first->if_status, 3u);
  EXPECT_EQ(first->out_ucast_pkts, 2u);
  EXPECT_EQ(first->out_multicast_pkts, 96u);
}

// tshark -r tcpdump/sflow_multiple_counter_30_pdus.pcap -d udp.port==6343,sflow -V:
//   30 UDP datagrams to 6343: 25 sFlow (144 counter samples, 142 generic interface
//   records) and 5 NetFlow v5 (frames 13, 19-22: "00 05 00 01 ..."), which this decoder
//   refuses as bad_version. tshark marks frames 12 and 18 Malformed: it misreads host
//   records 2001 (hsflowd host descriptors); by the record lengths, both are valid
//   datagrams with one counter sample of records 2001, 2005, 2004, 2003, 2006, 2000 and no
//   generic record. Frame 1: agent 15.184.8.4 sub-agent 2, expanded counters sample,
//   source 0:55, ifIndex 55, type 117, speed 1000000000, in octets 820721, in packets 9601,
//   in broadcast 1302, out octets 178785248, out packets 9736, out multicast 132958, out
//   broadcast 2213534, promiscuous 2.
TEST(SflowCaptures, TcpdumpCounterSamples) {
  std::size_t sflow = 0, v5 = 0;
  RecordBatch batch;
  std::vector<SflowInterfaceCounters> counters;
  std::uint32_t counted = 0;
  for (const auto& d : capture("tcpdump/sflow_multiple_counter_30_pdus.pcap")) {
    const auto r = decode_sflow_v5(Bytes(d.payload), batch, &counters);
    if (r) {
      ++sflow;
      counted += r->counter_samples;
    } else {
      EXPECT_EQ(r.error().code, Errc::bad_version);
      ++v5;
    }
  }
  EXPECT_EQ(sflow, 25u);
  EXPECT_EQ(v5, 5u);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(counted, 142u);
  ASSERT_EQ(counters.size(), 142u);
  const SflowInterfaceCounters& c = counters[0];
  EXPECT_EQ(c.agent.to_string(), "15.184.8.4");
  EXPECT_EQ(c.sub_agent_id, 2u);
  EXPECT_EQ(c.source_id, 55u);
  EXPECT_EQ(c.if_index, 55u);
  EXPECT_EQ(c.if_type, 117u);
  EXPECT_EQ(c.if_speed, 1000000000u);
  EXPECT_EQ(c.if_status, 3u);
  EXPECT_EQ(c.in_octets, 820721u);
  EXPECT_EQ(c.in_ucast_pkts, 9601u);
  EXPECT_EQ(c.in_broadcast_pkts, 1302u);
  EXPECT_EQ(c.out_octets, 178785248u);
  EXPECT_EQ(c.out_ucast_pkts, 9736u);
  EXPECT_EQ(c.out_multicast_pkts, 132958u);
  EXPECT_EQ(c.out_broadcast_pkts, 2213534u);
  EXPECT_EQ(c.promiscuous_mode, 2u);
}

// tshark -r ndpi/sflow.pcap -d udp.port==6343,sflow -V: 9 datagrams from 172.21.35.17,
//   sub-agent 1; 8 counter samples (frame 1: source 0:1036, ifIndex 1036, type 6, speed
//   100000000, in octets 25963724, in packets 39811, out octets 5455297) and, in frame 4
//   (sequence 418), one flow sample: 1 out of 2048, input 1048, output 1043, frame length
//   82, 802.1Q ID 32, 172.21.32.254 > 172.21.32.241, ICMP type 8, TTL 124.
TEST(SflowCaptures, NdpiMixed) {
  Decoded d = decode_capture("ndpi/sflow.pcap");
  EXPECT_EQ(d.datagrams, 9u);
  ASSERT_EQ(d.counters.size(), 8u);
  EXPECT_EQ(d.counters[0].source_id, 1036u);
  EXPECT_EQ(d.counters[0].if_speed, 100000000u);
  EXPECT_EQ(d.counters[0].in_octets, 25963724u);
  EXPECT_EQ(d.counters[0].in_ucast_pkts, 39811u);
  EXPECT_EQ(d.counters[0].out_octets, 5455297u);
  ASSERT_EQ(d.batch.size(), 1u);
  const RecordView r = d.batch[0];
  EXPECT_EQ(r.message().sequence, 418u);
  EXPECT_EQ(r.message().observation_domain, 1u);
  EXPECT_EQ(num(r, kSampling), 2048u);
  EXPECT_EQ(num(r, kIngress), 1048u);
  EXPECT_EQ(num(r, kEgress), 1043u);
  EXPECT_EQ(num(r, kOctets), 82u);
  EXPECT_EQ(num(r, kVlan), 32u);
  EXPECT_EQ(addr(r, kSrcV4), "172.21.32.254");
  EXPECT_EQ(addr(r, kDstV4), "172.21.32.241");
  EXPECT_EQ(num(r, kIcmp4), 0x0800u);
  EXPECT_EQ(num(r, kTtl), 124u);
}

}  // namespace
}  // namespace flowsec::ipfix
