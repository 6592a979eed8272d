// NetFlow v5: encoder, decoder, the internal v5 template, and a real capture.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "ipfix/decode.hpp"
#include "ipfix/netflow_v5.hpp"
#include "support/udp_datagrams.hpp"

namespace flowsec::ipfix {
namespace {

NetflowV5Record sample_record(std::uint32_t n) {
  NetflowV5Record r;
  r.src_addr = 0xc0000201 + n;  // 192.0.2.1 + n
  r.dst_addr = 0xc6336401;      // 198.51.100.1
  r.next_hop = 0xcb007101;      // 203.0.113.1
  r.input = static_cast<std::uint16_t>(10 + n);
  r.output = 20;
  r.packets = 3 + n;
  r.octets = 1500 * (n + 1);
  r.first = 1000;
  r.last = 2000 + n;
  r.src_port = static_cast<std::uint16_t>(40000 + n);
  r.dst_port = 443;
  r.tcp_flags = 0x1b;
  r.protocol = 6;
  r.tos = 0x28;
  r.src_as = 64500;
  r.dst_as = 64501;
  r.src_mask = 24;
  r.dst_mask = 16;
  return r;
}

NetflowV5Header sample_header() {
  NetflowV5Header h;
  h.sys_uptime_ms = 123456;
  h.unix_secs = 1700000000;
  h.unix_nsecs = 999;
  h.flow_sequence = 4242;
  h.engine_type = 1;
  h.engine_id = 7;
  h.sampling_interval = 0x4064;  // mode 1, interval 100
  return h;
}

std::vector<std::byte> datagram(std::size_t records) {
  std::vector<NetflowV5Record> rs;
  for (std::size_t i = 0; i < records; ++i)
    rs.push_back(sample_record(static_cast<std::uint32_t>(i)));
  return encode_netflow_v5(sample_header(), rs);
}

TEST(NetflowV5, EncodeDecodeRoundTrip) {
  const std::array<NetflowV5Record, 2> in{sample_record(0), sample_record(1)};
  const auto wire = encode_netflow_v5(sample_header(), in);
  ASSERT_EQ(wire.size(), 24u + 2 * 48u);

  RecordBatch batch;
  auto stats = decode_netflow_v5(wire, batch);
  ASSERT_TRUE(stats) << describe(stats.error().code);
  EXPECT_EQ(stats->protocol, Protocol::netflow_v5);
  EXPECT_EQ(stats->data_records, 2u);
  EXPECT_EQ(stats->sequence, 4242u);
  EXPECT_EQ(stats->observation_domain, (1u << 8) | 7u);
  ASSERT_EQ(batch.size(), 2u);

  for (std::size_t i = 0; i < 2; ++i) {
    const RecordView r = batch[i];
    const NetflowV5Record& e = in[i];
    EXPECT_EQ(&r.record_template(), netflow_v5_template().get());
    EXPECT_EQ(r.bytes().size(), 48u);
    EXPECT_EQ(r.unsigned_field(0, 8), e.src_addr);
    EXPECT_EQ(r.unsigned_field(0, 12), e.dst_addr);
    EXPECT_EQ(r.unsigned_field(0, 15), e.next_hop);
    EXPECT_EQ(r.unsigned_field(0, 10), e.input);
    EXPECT_EQ(r.unsigned_field(0, 14), e.output);
    EXPECT_EQ(r.unsigned_field(0, 2), e.packets);
    EXPECT_EQ(r.unsigned_field(0, 1), e.octets);
    EXPECT_EQ(r.unsigned_field(0, 22), e.first);
    EXPECT_EQ(r.unsigned_field(0, 21), e.last);
    EXPECT_EQ(r.unsigned_field(0, 7), e.src_port);
    EXPECT_EQ(r.unsigned_field(0, 11), e.dst_port);
    EXPECT_EQ(r.unsigned_field(0, 6), e.tcp_flags);
    EXPECT_EQ(r.unsigned_field(0, 4), e.protocol);
    EXPECT_EQ(r.unsigned_field(0, 5), e.tos);
    EXPECT_EQ(r.unsigned_field(0, 16), e.src_as);
    EXPECT_EQ(r.unsigned_field(0, 17), e.dst_as);
    EXPECT_EQ(r.unsigned_field(0, 9), e.src_mask);
    EXPECT_EQ(r.unsigned_field(0, 13), e.dst_mask);

    const MessageMeta& m = r.message();
    EXPECT_EQ(m.protocol, Protocol::netflow_v5);
    EXPECT_EQ(m.export_time, 1700000000u);
    EXPECT_EQ(m.export_time_nsec, 999u);
    EXPECT_EQ(m.sequence, 4242u);
    EXPECT_EQ(m.observation_domain, 0x107u);
    EXPECT_EQ(m.sys_uptime_ms, 123456u);
  }
  // Zero-copy: the records are the datagram's own bytes.
  EXPECT_TRUE(std::equal(batch[1].bytes().begin(), batch[1].bytes().end(), wire.begin() + 72));
}

TEST(NetflowV5, HeaderWireLayout) {
  const auto wire = datagram(1);
  ASSERT_EQ(wire.size(), 72u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data()), 5u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + 2), 1u);
  EXPECT_EQ(load_be<std::uint32_t>(wire.data() + 4), 123456u);
  EXPECT_EQ(load_be<std::uint32_t>(wire.data() + 16), 4242u);
  EXPECT_EQ(static_cast<int>(wire[20]), 1);
  EXPECT_EQ(static_cast<int>(wire[21]), 7);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + 22), 0x4064u);
  // Record: octets at 20, ports at 32/34, protocol at 38 (Cisco's v5 layout).
  EXPECT_EQ(load_be<std::uint32_t>(wire.data() + 24 + 20), 1500u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + 24 + 32), 40000u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + 24 + 34), 443u);
  EXPECT_EQ(static_cast<int>(wire[24 + 38]), 6);
}

TEST(NetflowV5, TemplateDescribesTheFortyEightByteRecord) {
  const TemplatePtr& t = netflow_v5_template();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->id(), 0u);  // internal: no builder writes ids below 256
  EXPECT_FALSE(t->is_options());
  EXPECT_FALSE(t->has_variable_length());
  EXPECT_EQ(t->min_record_length(), 48u);
  EXPECT_EQ(t->fields().size(), 20u);
  EXPECT_EQ(t->fixed_offset(static_cast<std::size_t>(t->index_of(0, 1))), 20u);   // dOctets
  EXPECT_EQ(t->fixed_offset(static_cast<std::size_t>(t->index_of(0, 4))), 38u);   // prot
  EXPECT_EQ(t->fixed_offset(static_cast<std::size_t>(t->index_of(0, 16))), 40u);  // src_as
  EXPECT_EQ(&netflow_v5_template(), &t);  // one shared instance
}

TEST(NetflowV5, EncoderRefusesEmptyAndMoreThanThirty) {
  EXPECT_TRUE(encode_netflow_v5(sample_header(), {}).empty());
  EXPECT_TRUE(datagram(31).empty());
  const auto full = datagram(30);
  EXPECT_EQ(full.size(), 24u + 30 * 48u);
  RecordBatch batch;
  ASSERT_TRUE(decode_netflow_v5(full, batch));
  EXPECT_EQ(batch.size(), 30u);
}

TEST(NetflowV5, TruncatedHeader) {
  const auto wire = datagram(1);
  RecordBatch batch;
  for (std::size_t n : {0u, 1u, 23u}) {
    auto r = decode_netflow_v5(Bytes(wire).first(n), batch);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), (Error{Errc::truncated_header, 0}));
  }
  EXPECT_TRUE(batch.empty());
}

TEST(NetflowV5, BadVersion) {
  auto wire = datagram(1);
  wire[1] = std::byte{9};
  RecordBatch batch;
  auto r = decode_netflow_v5(wire, batch);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::bad_version);
}

TEST(NetflowV5, CountClaimsMoreRecordsThanPresent) {
  auto wire = datagram(2);
  store_be<std::uint16_t>(wire.data() + 2, 3);
  RecordBatch batch;
  auto r = decode_netflow_v5(wire, batch);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::count_mismatch, 2}));
  EXPECT_TRUE(batch.empty());
}

TEST(NetflowV5, CountClaimsFewerRecordsThanPresent) {
  auto wire = datagram(2);
  store_be<std::uint16_t>(wire.data() + 2, 1);
  RecordBatch batch;
  auto r = decode_netflow_v5(wire, batch);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::count_mismatch, 2}));
  EXPECT_TRUE(batch.empty());
}

TEST(NetflowV5, CountOutsideOneToThirty) {
  RecordBatch batch;
  auto header_only = datagram(1);
  header_only.resize(24);
  store_be<std::uint16_t>(header_only.data() + 2, 0);
  auto r = decode_netflow_v5(header_only, batch);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::count_mismatch);

  // 31 records, with a count that matches the size: still more than Cisco's 30.
  auto big = datagram(30);
  const auto one = datagram(1);
  big.insert(big.end(), one.begin() + 24, one.end());
  store_be<std::uint16_t>(big.data() + 2, 31);
  r = decode_netflow_v5(big, batch);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::count_mismatch);
  EXPECT_TRUE(batch.empty());
}

TEST(NetflowV5, AppendsToABatchThatAlreadyHoldsRecords) {
  RecordBatch batch;
  ASSERT_TRUE(decode_netflow_v5(datagram(2), batch));
  auto second = datagram(1);
  store_be<std::uint32_t>(second.data() + 16, 4244);  // next flow_sequence
  ASSERT_TRUE(decode_netflow_v5(second, batch));
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch.templates().size(), 1u);
  EXPECT_EQ(batch[0].message().sequence, 4242u);
  EXPECT_EQ(batch[2].message().sequence, 4244u);
  EXPECT_EQ(batch[2].unsigned_field(0, 8), 0xc0000201u);
}

// Real exporter capture: akvorado's NetFlow v5 datagram (UDP 9990).
// Expected values from the peer dissector:
//   tshark -r tests/data/export/akvorado/netflow_nfv5.pcap -d udp.port==9990,cflow -V
//   tshark ... -T fields -e cflow.srcaddr -e cflow.dstaddr -e cflow.srcport -e cflow.dstport
//              -e cflow.octets -e cflow.packets -e cflow.protocol
TEST(NetflowV5, RealCaptureAkvorado) {
  const auto datagrams = test::read_udp_datagrams(std::string(FLOWSEC_TEST_DATA) +
                                                  "/export/akvorado/netflow_nfv5.pcap");
  ASSERT_EQ(datagrams.size(), 1u);
  EXPECT_EQ(datagrams[0].dst_port, 9990u);
  RecordBatch batch;
  auto stats = decode_netflow_v5(datagrams[0].payload, batch);
  ASSERT_TRUE(stats) << describe(stats.error().code);
  EXPECT_EQ(stats->data_records, 29u);       // Count: 29
  EXPECT_EQ(stats->sequence, 1961402419u);   // FlowSequence
  EXPECT_EQ(stats->observation_domain, 3u);  // EngineType RP (0), EngineId 3
  ASSERT_EQ(batch.size(), 29u);
  EXPECT_EQ(batch[0].message().export_time, 1680626679u);    // CurrentSecs
  EXPECT_EQ(batch[0].message().sys_uptime_ms, 2874339000u);  // SysUptime 2874339 s

  // pdu 1/29
  const RecordView first = batch[0];
  EXPECT_EQ(first.unsigned_field(0, 8), 0xa1cad4d4u);   // 161.202.212.212
  EXPECT_EQ(first.unsigned_field(0, 12), 0xca984618u);  // 202.152.70.24
  EXPECT_EQ(first.unsigned_field(0, 15), 0x3d06ff96u);  // NextHop 61.6.255.150
  EXPECT_EQ(first.unsigned_field(0, 10), 117u);
  EXPECT_EQ(first.unsigned_field(0, 14), 86u);
  EXPECT_EQ(first.unsigned_field(0, 7), 30104u);
  EXPECT_EQ(first.unsigned_field(0, 11), 11963u);
  EXPECT_EQ(first.unsigned_field(0, 1), 133u);
  EXPECT_EQ(first.unsigned_field(0, 2), 1u);
  EXPECT_EQ(first.unsigned_field(0, 6), 0x18u);
  EXPECT_EQ(first.unsigned_field(0, 4), 6u);
  EXPECT_EQ(first.unsigned_field(0, 16), 36351u);
  EXPECT_EQ(first.unsigned_field(0, 17), 10101u);
  EXPECT_EQ(first.unsigned_field(0, 9), 19u);
  EXPECT_EQ(first.unsigned_field(0, 13), 24u);
  EXPECT_EQ(first.unsigned_field(0, 22), 2874324000u);  // StartTime 2874324 s

  // pdu 29/29: 157.240.211.205:443 -> 202.93.210.203:53369, 7462 octets, 6 packets.
  const RecordView last = batch[28];
  EXPECT_EQ(last.unsigned_field(0, 8), 0x9df0d3cdu);
  EXPECT_EQ(last.unsigned_field(0, 12), 0xca5dd2cbu);
  EXPECT_EQ(last.unsigned_field(0, 7), 443u);
  EXPECT_EQ(last.unsigned_field(0, 11), 53369u);
  EXPECT_EQ(last.unsigned_field(0, 1), 7462u);
  EXPECT_EQ(last.unsigned_field(0, 2), 6u);

  // Sum of cflow.octets over the 29 pdus: 88345.
  std::uint64_t octets = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) octets += *batch[i].unsigned_field(0, 1);
  EXPECT_EQ(octets, 88345u);
}

}  // namespace
}  // namespace flowsec::ipfix
