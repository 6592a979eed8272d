// Collector (SPEC §3, §6, §9): the ListenerHandler that turns the bytes of transport
// sessions into published record batches. The tests call on_session_open / on_data /
// on_session_close / flush directly with hand-made SessionInfo values (no sockets) and
// drive template lifetimes with a ManualClock (no real clock).
//
// Expected counts for real exporter captures come from the peers' own tools (tshark,
// ipfixDump), quoted next to each test; never from flowsec's output.
#include "collector/collector.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/bytes.hpp"
#include "common/clock.hpp"
#include "common/ip_address.hpp"
#include "ipfix/errors.hpp"
#include "ipfix/message_builder.hpp"
#include "ipfix/netflow_v5.hpp"
#include "ipfix/netflow_v9_builder.hpp"
#include "ipfix/record.hpp"
#include "ipfix/template.hpp"
#include "ipfix/value.hpp"
#include "support/udp_datagrams.hpp"
#include "transport/listener.hpp"

namespace flowsec::collector {
namespace {

using Buf = std::vector<std::byte>;
using ipfix::Errc;
using ipfix::FieldSpec;
using ipfix::TemplatePtr;
using ipfix::Value;
using transport::Scheme;
using transport::SessionInfo;

// ---------------------------------------------------------------------------
// Building messages
// ---------------------------------------------------------------------------

TemplatePtr make_template(std::uint16_t id, std::vector<FieldSpec> fields) {
  auto t = ipfix::Template::make(id, std::move(fields));
  if (!t) ADD_FAILURE() << "bad test template " << id;
  return t ? *t : nullptr;
}

// sourceIPv4Address, destinationIPv4Address, octetDeltaCount (RFC 7012 ids 8, 12, 1).
TemplatePtr flow_template(std::uint16_t id = 256) {
  return make_template(id, {{0, 8, 4}, {0, 12, 4}, {0, 1, 8}});
}
// Same id, another layout: packetDeltaCount (2) in 4 bytes, sourceTransportPort (7).
TemplatePtr other_template(std::uint16_t id = 256) {
  return make_template(id, {{0, 2, 4}, {0, 7, 2}});
}

// Records for flow_template(): octetDeltaCount first, first + 1, ...
std::vector<std::vector<Value>> flows(std::uint64_t first, std::size_t n) {
  std::vector<std::vector<Value>> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back({IpAddress::v4(0x0a000001), IpAddress::v4(0xc0000201), Value{first + i}});
  }
  return out;
}

// One IPFIX message (RFC 7011 §3) through IpfixMessageBuilder and RecordWriter: a template
// set with `templates`, then one data set of `records` for `data_template` (if any).
Buf ipfix_message(const std::vector<TemplatePtr>& templates, const TemplatePtr& data_template,
                  const std::vector<std::vector<Value>>& records, std::uint32_t sequence = 0,
                  std::uint32_t domain = 1) {
  ipfix::IpfixMessageBuilder builder(domain);
  builder.begin(1700000000, sequence);
  for (const TemplatePtr& t : templates) EXPECT_TRUE(builder.add_template(*t));
  if (data_template) {
    const ipfix::RecordWriter writer(data_template);
    for (const auto& values : records) {
      Buf record;
      EXPECT_TRUE(writer.append(values, record).has_value());
      EXPECT_TRUE(builder.add_record(*data_template, Bytes(record)));
    }
  }
  return builder.finish();
}

Buf template_message(const TemplatePtr& t, std::uint32_t sequence = 0, std::uint32_t domain = 1) {
  return ipfix_message({t}, nullptr, {}, sequence, domain);
}

Buf data_message(const TemplatePtr& t, const std::vector<std::vector<Value>>& records,
                 std::uint32_t sequence = 0, std::uint32_t domain = 1) {
  return ipfix_message({}, t, records, sequence, domain);
}

Buf concat(std::initializer_list<Buf> parts) {
  Buf out;
  for (const Buf& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Buf read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  const std::vector<char> chars((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  Buf out(chars.size());
  std::transform(chars.begin(), chars.end(), out.begin(),
                 [](char c) { return static_cast<std::byte>(c); });
  return out;
}

std::string data_path(const std::string& relative) {
  return std::string(FLOWSEC_TEST_DATA) + "/" + relative;
}

IpAddress address(std::string_view text) {
  const auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

SessionInfo session(std::uint64_t id, Scheme scheme, std::string_view peer, std::uint16_t port,
                    std::string identity = {}) {
  SessionInfo s;
  s.id = id;
  s.scheme = scheme;
  s.peer_address = address(peer);
  s.peer_port = port;
  s.tls_identity = std::move(identity);
  return s;
}

// ---------------------------------------------------------------------------
// Fixture: a collector whose publish() keeps every batch
// ---------------------------------------------------------------------------

class CollectorTest : public ::testing::Test {
 protected:
  CollectorOptions options(std::size_t batch_records = 4096) {
    CollectorOptions o;
    o.batch_records = batch_records;
    o.clock = &clock_;
    o.publish = [this](BatchPtr batch) {
      EXPECT_NE(batch, nullptr);
      EXPECT_FALSE(batch->empty()) << "an empty batch was published";
      published_.push_back(std::move(batch));
    };
    return o;
  }

  [[nodiscard]] std::size_t published_records() const {
    std::size_t n = 0;
    for (const BatchPtr& b : published_) n += b->size();
    return n;
  }

  // octetDeltaCount of every published record, in publish order.
  [[nodiscard]] std::vector<std::uint64_t> published_octets() const {
    std::vector<std::uint64_t> out;
    for (const BatchPtr& b : published_) {
      for (std::size_t i = 0; i < b->size(); ++i)
        out.push_back((*b)[i].unsigned_field(0, 1).value_or(0));
    }
    return out;
  }

  static std::uint64_t errors(const CollectorStats& s, Errc code) {
    return s.decode_errors[static_cast<std::size_t>(code)];
  }

  static std::uint64_t total_errors(const CollectorStats& s) {
    std::uint64_t n = 0;
    for (std::uint64_t e : s.decode_errors) n += e;
    return n;
  }

  // Feeds every UDP datagram of a capture, one session per exporter address and port,
  // as the UDP listener does (listener.hpp). Returns the number of sessions.
  std::size_t feed_capture(Collector& c, const std::string& relative, std::uint64_t first_id = 1) {
    std::map<std::pair<std::string, std::uint16_t>, SessionInfo> sessions;
    for (const auto& d : test::read_udp_datagrams(data_path(relative))) {
      const auto key = std::make_pair(d.src.to_string(), d.src_port);
      auto it = sessions.find(key);
      if (it == sessions.end()) {
        SessionInfo info;
        info.id = first_id + sessions.size();
        info.scheme = Scheme::udp;
        info.peer_address = d.src;
        info.peer_port = d.src_port;
        it = sessions.emplace(key, info).first;
        c.on_session_open(info);
      }
      EXPECT_TRUE(c.on_data(it->second, Bytes(d.payload)));
    }
    return sessions.size();
  }

  ManualClock clock_;
  std::vector<BatchPtr> published_;
};

// ---------------------------------------------------------------------------
// UDP
// ---------------------------------------------------------------------------

TEST_F(CollectorTest, UdpIpfixTemplateThenDataPublishedOnFlush) {
  Collector c(options());
  const SessionInfo s = session(1, Scheme::udp, "10.1.2.3", 4739);
  c.on_session_open(s);
  const TemplatePtr t = flow_template();
  const Buf tmpl = template_message(t, 0);
  const Buf data = data_message(t, flows(100, 3), 0);
  EXPECT_TRUE(c.on_data(s, Bytes(tmpl)));
  EXPECT_TRUE(c.on_data(s, Bytes(data)));
  EXPECT_TRUE(published_.empty()) << "below batch_records nothing is published before flush";

  c.flush();
  ASSERT_EQ(published_.size(), 1u);
  const ipfix::RecordBatch& b = *published_[0];
  EXPECT_EQ(b.exporter.address.to_string(), "10.1.2.3");
  EXPECT_EQ(b.exporter.port, 4739);
  EXPECT_TRUE(b.exporter.tls_identity.empty());
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(published_octets(), (std::vector<std::uint64_t>{100, 101, 102}));
  EXPECT_EQ(b[0].unsigned_field(0, 8), 0x0a000001u);
  EXPECT_EQ(b[0].unsigned_field(0, 12), 0xc0000201u);
  EXPECT_EQ(b[0].message().protocol, ipfix::Protocol::ipfix);
  EXPECT_EQ(b[0].message().observation_domain, 1u);

  const CollectorStats st = c.stats();
  EXPECT_EQ(st.sessions_opened, 1u);
  EXPECT_EQ(st.sessions_active, 1u);
  EXPECT_EQ(st.messages, 2u);
  EXPECT_EQ(st.records, 3u);
  EXPECT_EQ(st.bytes, tmpl.size() + data.size());
  EXPECT_EQ(st.batches_published, 1u);
  EXPECT_EQ(st.messages_malformed, 0u);
  EXPECT_EQ(total_errors(st), 0u);
  EXPECT_EQ(st.unknown_template_sets, 0u);

  // A second flush with nothing pending publishes nothing.
  c.flush();
  EXPECT_EQ(published_.size(), 1u);
  EXPECT_EQ(c.stats().batches_published, 1u);

  c.on_session_close(s, "test");
  EXPECT_EQ(c.stats().sessions_active, 0u);
  EXPECT_EQ(published_.size(), 1u);
}

TEST_F(CollectorTest, UdpTemplatesAreKeptPerSession) {
  // RFC 7011 §8: templates belong to one transport session; another exporter port
  // (another UDP session) does not see them.
  Collector c(options());
  const SessionInfo a = session(1, Scheme::udp, "10.1.2.3", 4739);
  const SessionInfo b = session(2, Scheme::udp, "10.1.2.3", 4740);
  const TemplatePtr t = flow_template();
  EXPECT_TRUE(c.on_data(a, Bytes(template_message(t))));
  EXPECT_TRUE(c.on_data(b, Bytes(data_message(t, flows(1, 2)))));
  EXPECT_TRUE(c.on_data(a, Bytes(data_message(t, flows(5, 1)))));
  c.flush();
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0]->exporter.port, 4739);
  EXPECT_EQ(published_octets(), (std::vector<std::uint64_t>{5}));
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.unknown_template_sets, 1u);
  EXPECT_EQ(st.sessions_opened, 2u);  // on_data opens a session it has not seen
  EXPECT_EQ(st.records, 1u);
}

// pmacct test 100: a Cisco exporter 138.187.0.13 sending IPFIX from two UDP ports.
//   tshark -r pmacct/100-IPFIXv10-CISCO_traffic-00.pcap -d udp.port==9991,cflow -V
//     | grep -oE '\(([0-9]+) flows\)'
//   frames 1, 2: templates 260 (port 50109) and 263 (port 50111); frames 3, 5: set 260 with
//   4 flows each; frames 4, 6: set 263 with 2 flows each → 12 records.
//   tshark ... -T fields -e udp.srcport -e udp.length: payloads 1020 bytes from 50109 and
//   812 from 50111 (udp.length - 8), 1832 in all.
//   tshark ... -T fields -e cflow.sequence: 50109: 4210974 (template), 4210974 (4 flows),
//   4210978 (4 flows); 50111: 1058772, 1058772 (2 flows), 1058774: no gap, no repeat.
TEST_F(CollectorTest, UdpIpfixCapturePmacct100) {
  Collector c(options());
  EXPECT_EQ(feed_capture(c, "export/pmacct/100-IPFIXv10-CISCO_traffic-00.pcap"), 2u);
  c.flush();
  ASSERT_EQ(published_.size(), 2u);
  std::map<std::uint16_t, std::size_t> per_port;
  for (const BatchPtr& b : published_) {
    EXPECT_EQ(b->exporter.address.to_string(), "138.187.0.13");
    EXPECT_TRUE(b->exporter.tls_identity.empty());
    per_port[b->exporter.port] += b->size();
    for (std::size_t i = 0; i < b->size(); ++i) {
      EXPECT_EQ((*b)[i].record_template().id(), b->exporter.port == 50109 ? 260 : 263);
    }
  }
  EXPECT_EQ(per_port, (std::map<std::uint16_t, std::size_t>{{50109, 8}, {50111, 4}}));
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.messages, 6u);
  EXPECT_EQ(st.records, 12u);
  EXPECT_EQ(st.bytes, 1832u);
  EXPECT_EQ(st.messages_malformed, 0u);
  EXPECT_EQ(st.unknown_template_sets, 0u);
  EXPECT_EQ(st.sequence_lost, 0u);
  EXPECT_EQ(st.sequence_out_of_order, 0u);
  ASSERT_EQ(st.exporters.count("138.187.0.13"), 1u);
  const ExporterCounters& e = st.exporters.at("138.187.0.13");
  EXPECT_EQ(e.messages, 6u);
  EXPECT_EQ(e.records, 12u);
  EXPECT_EQ(e.bytes, 1832u);
}

// pmacct test 101: Cisco NetFlow v9 from 138.187.57.55:43853, 40 datagrams.
//   tshark -r pmacct/101-NFv9-CISCO-cust_primitives_traffic-00.pcap -d udp.port==9991,cflow -V
//     | grep -oE '\(([0-9]+) flows\)' | tr -dc '0-9\n' | paste -sd+ | bc   → 51
//   (frame 1 is template 313 only; every other frame one data flowset of 1 to 3 flows)
//   tshark ... -T fields -e udp.length: 7780 payload bytes (udp.length - 8).
//   tshark ... -T fields -e cflow.sequence (v9 counts export packets, RFC 3954 §5.1):
//     147688 147674 147675 147676 147677 147678 147684 147685 147686 147687 147689 147690
//     147691 ... 147696 147702 147703 147704 147706 147707 ... 147710 147716 147718 147719
//     ... 147724 147730 147732 147733 ... 147736
//   By the tracker's rules (sequence_tracker.hpp): the first packet starts tracking at
//   147688; the nine packets 147674..147678 and 147684..147687 are behind it (out of
//   order); from 147689 on, the jumps 147696→147702, 147704→147706, 147710→147716,
//   147716→147718, 147724→147730 and 147730→147732 lose 5+1+5+1+5+1 = 18 packets.
TEST_F(CollectorTest, UdpNetflowV9CapturePmacct101) {
  Collector c(options());
  EXPECT_EQ(feed_capture(c, "export/pmacct/101-NFv9-CISCO-cust_primitives_traffic-00.pcap"), 1u);
  c.flush();
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0]->exporter.address.to_string(), "138.187.57.55");
  EXPECT_EQ(published_[0]->exporter.port, 43853);
  EXPECT_EQ(published_records(), 51u);
  EXPECT_EQ((*published_[0])[0].message().protocol, ipfix::Protocol::netflow_v9);
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.messages, 40u);
  EXPECT_EQ(st.records, 51u);
  EXPECT_EQ(st.bytes, 7780u);
  EXPECT_EQ(st.messages_malformed, 0u);
  EXPECT_EQ(st.unknown_template_sets, 0u);
  EXPECT_EQ(st.sequence_out_of_order, 9u);
  EXPECT_EQ(st.sequence_lost, 18u);
  EXPECT_EQ(st.sequence_resets, 0u);
  EXPECT_EQ(st.exporters.at("138.187.57.55").records, 51u);
}

// akvorado's NetFlow v5 datagram from 10.19.144.41:40000.
//   tshark -r akvorado/netflow_nfv5.pcap -d udp.port==9990,cflow -T fields -e cflow.count
//     -e udp.length → Count 29, udp.length 1424 (1416 payload bytes).
TEST_F(CollectorTest, UdpNetflowV5CaptureAkvorado) {
  Collector c(options());
  EXPECT_EQ(feed_capture(c, "export/akvorado/netflow_nfv5.pcap"), 1u);
  c.flush();
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0]->exporter.address.to_string(), "10.19.144.41");
  EXPECT_EQ(published_[0]->exporter.port, 40000);
  EXPECT_EQ(published_records(), 29u);
  EXPECT_EQ((*published_[0])[0].message().protocol, ipfix::Protocol::netflow_v5);
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.messages, 1u);
  EXPECT_EQ(st.records, 29u);
  EXPECT_EQ(st.bytes, 1416u);
  EXPECT_EQ(st.messages_malformed, 0u);
}

// tcpdump's sFlow v5 capture over IPv6 from [30::1:1:1]:36123.
//   tshark -r tcpdump/sflow-print-v6.pcap -d udp.port==6343,sflow -T fields -e ipv6.src
//     -e udp.srcport -e sflow_245.sequence_number -e sflow_245.sampletype
//   25 datagrams, sequence 109..133 in order; sample type 1 (flow sample) appears 13 times
//   (1 in 112, 116, 122; 6 in 128; 4 in 129), the rest are counter samples (not records).
//   tshark ... -e udp.length: 11508 payload bytes.
TEST_F(CollectorTest, UdpSflowCaptureIpv6Exporter) {
  Collector c(options());
  EXPECT_EQ(feed_capture(c, "export/tcpdump/sflow-print-v6.pcap"), 1u);
  c.flush();
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0]->exporter.address.to_string(), "30::1:1:1");
  EXPECT_EQ(published_[0]->exporter.port, 36123);
  EXPECT_EQ(published_records(), 13u);
  EXPECT_EQ((*published_[0])[0].message().protocol, ipfix::Protocol::sflow_v5);
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.messages, 25u);
  EXPECT_EQ(st.records, 13u);
  EXPECT_EQ(st.bytes, 11508u);
  EXPECT_EQ(st.messages_malformed, 0u);
  EXPECT_EQ(st.sequence_lost, 0u);
  EXPECT_EQ(st.sequence_out_of_order, 0u);
  ASSERT_EQ(st.exporters.count("30::1:1:1"), 1u);
  EXPECT_EQ(st.exporters.at("30::1:1:1").messages, 25u);
}

TEST_F(CollectorTest, UdpMixedVersionsFromOneExporter) {
  // v5, v9 and IPFIX built by our encoders, all from one UDP session.
  Collector c(options());
  const SessionInfo s = session(1, Scheme::udp, "10.1.2.3", 2055);
  ipfix::NetflowV5Header h5;
  h5.flow_sequence = 7;
  std::vector<ipfix::NetflowV5Record> recs(2);
  recs[0].octets = 500;
  recs[1].octets = 501;
  const Buf v5 = ipfix::encode_netflow_v5(h5, recs);
  ASSERT_FALSE(v5.empty());

  const TemplatePtr t = flow_template(300);
  ipfix::NetflowV9MessageBuilder v9(42);
  v9.begin(1000, 1700000000, 1);
  EXPECT_TRUE(v9.add_template(*t));
  const ipfix::RecordWriter writer(t);
  for (const auto& values : flows(900, 3)) {
    Buf record;
    EXPECT_TRUE(writer.append(values, record).has_value());
    EXPECT_TRUE(v9.add_record(*t, Bytes(record)));
  }
  const Buf v9_packet = v9.finish();
  const Buf v10 = ipfix_message({t}, t, flows(10, 1));

  EXPECT_TRUE(c.on_data(s, Bytes(v5)));
  EXPECT_TRUE(c.on_data(s, Bytes(v9_packet)));
  EXPECT_TRUE(c.on_data(s, Bytes(v10)));
  c.flush();
  EXPECT_EQ(published_octets(), (std::vector<std::uint64_t>{500, 501, 900, 901, 902, 10}));
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.messages, 3u);
  EXPECT_EQ(st.records, 6u);
  EXPECT_EQ(st.bytes, v5.size() + v9_packet.size() + v10.size());
}

TEST_F(CollectorTest, DtlsDatagramsCarryIdentity) {
  Collector c(options());
  const SessionInfo s = session(9, Scheme::dtls, "10.1.2.3", 4740, "CN=exporter1");
  c.on_session_open(s);
  const TemplatePtr t = flow_template();
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(t))));
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(1, 2)))));
  c.on_session_close(s, "close_notify");
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0]->exporter.tls_identity, "CN=exporter1");
  EXPECT_EQ(published_[0]->size(), 2u);
}

// ---------------------------------------------------------------------------
// TLS / TCP streams
// ---------------------------------------------------------------------------

// Feeds `stream` in chunks whose sizes cycle through `sizes`; every on_data must accept.
void feed_chunks(Collector& c, const SessionInfo& s, const Buf& stream,
                 std::initializer_list<std::size_t> sizes) {
  std::size_t at = 0;
  while (at < stream.size()) {
    for (std::size_t size : sizes) {
      if (at >= stream.size()) break;
      const std::size_t n = std::min(size, stream.size() - at);
      ASSERT_TRUE(c.on_data(s, Bytes(stream).subspan(at, n))) << "chunk at " << at;
      at += n;
    }
  }
}

// softflowd 1.1.0 IPFIX over TCP, received by socat (tests/data/README.md).
//   ipfixDump -i ipfix/softflowd_1kxun_tcp.ipfix -s
//   → *** File Stats: 10 Messages, 298 Data Records, 5 Template Records ***
//   (298 includes one options record); the file is 13884 bytes (`stat -c %s`).
TEST_F(CollectorTest, TlsStreamInOddChunksSoftflowd) {
  const Buf stream = read_file(data_path("ipfix/softflowd_1kxun_tcp.ipfix"));
  ASSERT_EQ(stream.size(), 13884u);
  Collector c(options(100));
  const SessionInfo s = session(7, Scheme::tls, "10.1.2.3", 50000, "CN=exporter1");
  c.on_session_open(s);
  feed_chunks(c, s, stream, {1, 7, 1000, 3, 64, 2, 5000, 16, 15});
  c.on_session_close(s, "peer closed");

  EXPECT_EQ(published_records(), 298u);
  ASSERT_FALSE(published_.empty());
  EXPECT_GT(published_.size(), 1u) << "batch_records 100 splits 298 records";
  for (const BatchPtr& b : published_) {
    EXPECT_EQ(b->exporter.tls_identity, "CN=exporter1");
    EXPECT_EQ(b->exporter.address.to_string(), "10.1.2.3");
    EXPECT_EQ(b->exporter.port, 50000);
  }
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.messages, 10u);
  EXPECT_EQ(st.records, 298u);
  EXPECT_EQ(st.bytes, 13884u);
  EXPECT_EQ(st.messages_malformed, 0u);
  EXPECT_EQ(total_errors(st), 0u);
  EXPECT_EQ(st.unknown_template_sets, 0u);
  EXPECT_EQ(st.streams_truncated, 0u);
  EXPECT_EQ(st.sessions_active, 0u);
  EXPECT_EQ(st.batches_published, published_.size());
  EXPECT_EQ(st.exporters.at("10.1.2.3").records, 298u);
  EXPECT_EQ(st.exporters.at("10.1.2.3").bytes, 13884u);
}

// ipfixcol2's example file (tests/data/README.md):
//   ipfixDump -i ipfix/ipfixcol2_example_flows.ipfix -s
//   → *** File Stats: 67 Messages, 3979 Data Records, 8 Template Records ***
//   The file holds 68 messages: ipfixDump leaves out the second, a bare 16-byte header
//   (`xxd -s 3472 -l 16`: 000a 0010 ...); it is a valid message, so the collector counts it.
//   The file is 200032 bytes (`stat -c %s`).
TEST_F(CollectorTest, TcpStreamInOddChunksIpfixcol2) {
  const Buf stream = read_file(data_path("ipfix/ipfixcol2_example_flows.ipfix"));
  ASSERT_EQ(stream.size(), 200032u);
  for (std::size_t batch : {std::size_t{4096}, std::size_t{10}}) {
    published_.clear();
    Collector c(options(batch));
    const SessionInfo s = session(3, Scheme::tls, "192.0.2.10", 4739, "CN=exporter1");
    c.on_session_open(s);
    feed_chunks(c, s, stream, {1000, 1, 7, 65536, 4095});
    c.flush();
    EXPECT_EQ(published_records(), 3979u) << "batch_records " << batch;
    for (const BatchPtr& b : published_) EXPECT_EQ(b->exporter.tls_identity, "CN=exporter1");
    const CollectorStats st = c.stats();
    EXPECT_EQ(st.messages, 68u);
    EXPECT_EQ(st.records, 3979u);
    EXPECT_EQ(st.bytes, 200032u);
    EXPECT_EQ(st.messages_malformed, 0u);
    EXPECT_EQ(st.unknown_template_sets, 0u);
    c.on_session_close(s, "eof");
    EXPECT_EQ(c.stats().streams_truncated, 0u);
  }
}

TEST_F(CollectorTest, StreamTemplatesDoNotExpire) {
  // RFC 7011 §8: over a stream a template lives as long as the session.
  Collector c(options());
  const SessionInfo s = session(1, Scheme::tcp, "10.1.2.3", 40000);
  const TemplatePtr t = flow_template();
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(t))));
  clock_.advance(std::chrono::hours(5));
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(1, 2)))));
  c.flush();
  EXPECT_EQ(published_records(), 2u);
  EXPECT_EQ(c.stats().unknown_template_sets, 0u);
}

// ---------------------------------------------------------------------------
// Batching
// ---------------------------------------------------------------------------

TEST_F(CollectorTest, BatchPublishedWhenFullThenOnFlushThenOnClose) {
  Collector c(options(10));
  const SessionInfo s = session(1, Scheme::udp, "10.1.2.3", 4739);
  c.on_session_open(s);
  const TemplatePtr t = flow_template();
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(t))));
  std::uint64_t next = 0;
  auto send = [&](std::size_t n) {
    EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(next, n)))));
    next += n;
  };
  send(4);
  send(4);
  EXPECT_TRUE(published_.empty());
  send(4);  // 12 >= 10: published during on_data
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0]->size(), 12u);
  send(4);
  send(4);
  EXPECT_EQ(published_.size(), 1u);
  c.flush();  // the rest: 8
  ASSERT_EQ(published_.size(), 2u);
  EXPECT_EQ(published_[1]->size(), 8u);
  send(3);
  EXPECT_EQ(published_.size(), 2u);
  c.on_session_close(s, "gone");  // the rest: 3
  ASSERT_EQ(published_.size(), 3u);
  EXPECT_EQ(published_[2]->size(), 3u);

  std::vector<std::uint64_t> expected(23);
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = i;
  EXPECT_EQ(published_octets(), expected) << "records published in arrival order";
  EXPECT_EQ(c.stats().batches_published, 3u);
  c.flush();
  EXPECT_EQ(published_.size(), 3u) << "a closed session publishes nothing more";
}

TEST_F(CollectorTest, StreamBatchPublishedInsideOnData) {
  Collector c(options(10));
  const SessionInfo s = session(1, Scheme::tls, "10.1.2.3", 4739, "CN=exporter1");
  const TemplatePtr t = flow_template();
  const Buf stream = concat({template_message(t), data_message(t, flows(0, 6)),
                             data_message(t, flows(6, 6)), data_message(t, flows(12, 2))});
  EXPECT_TRUE(c.on_data(s, Bytes(stream)));
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0]->size(), 12u);
  c.flush();
  ASSERT_EQ(published_.size(), 2u);
  EXPECT_EQ(published_[1]->size(), 2u);
  EXPECT_EQ(published_[1]->exporter.tls_identity, "CN=exporter1");
}

TEST_F(CollectorTest, FlushCoversEverySession) {
  Collector c(options());
  const TemplatePtr t = flow_template();
  const SessionInfo a = session(1, Scheme::udp, "10.1.2.3", 1000);
  const SessionInfo b = session(2, Scheme::tcp, "10.1.2.4", 2000);
  EXPECT_TRUE(c.on_data(a, Bytes(ipfix_message({t}, t, flows(1, 1)))));
  EXPECT_TRUE(c.on_data(b, Bytes(ipfix_message({t}, t, flows(2, 2)))));
  c.flush();
  ASSERT_EQ(published_.size(), 2u);
  std::map<std::string, std::size_t> per_exporter;
  for (const BatchPtr& p : published_) per_exporter[p->exporter.address.to_string()] = p->size();
  EXPECT_EQ(per_exporter, (std::map<std::string, std::size_t>{{"10.1.2.3", 1}, {"10.1.2.4", 2}}));
}

// ---------------------------------------------------------------------------
// Bad input (SPEC §9)
// ---------------------------------------------------------------------------

TEST_F(CollectorTest, MalformedDatagramsCountedByReasonAndDropped) {
  Collector c(options());
  const SessionInfo s = session(1, Scheme::udp, "10.1.2.3", 4739);
  const TemplatePtr t = flow_template();
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(t))));
  const Buf good = data_message(t, flows(1, 2));

  // Truncated: the header announces more bytes than arrived.
  Buf truncated(good.begin(), good.end() - 5);
  EXPECT_TRUE(c.on_data(s, Bytes(truncated)));
  // Too short for any header.
  const Buf tiny(good.begin(), good.begin() + 3);
  EXPECT_TRUE(c.on_data(s, Bytes(tiny)));
  // A version no decoder reads.
  Buf bad_version = good;
  store_be<std::uint16_t>(bad_version.data(), 11);
  EXPECT_TRUE(c.on_data(s, Bytes(bad_version)));
  // The data set's length runs past the end of the message (set header at byte 16).
  Buf bad_set = good;
  store_be<std::uint16_t>(bad_set.data() + 18, 0x0400);
  EXPECT_TRUE(c.on_data(s, Bytes(bad_set)));
  // A set length under 4.
  Buf short_set = good;
  store_be<std::uint16_t>(short_set.data() + 18, 2);
  EXPECT_TRUE(c.on_data(s, Bytes(short_set)));

  c.flush();
  EXPECT_TRUE(published_.empty()) << "nothing of a malformed datagram is published";
  CollectorStats st = c.stats();
  EXPECT_EQ(st.messages_malformed, 5u);
  EXPECT_EQ(errors(st, Errc::length_exceeds_data), 1u);
  EXPECT_EQ(errors(st, Errc::truncated_header), 1u);
  EXPECT_EQ(errors(st, Errc::unsupported_version), 1u);
  EXPECT_EQ(errors(st, Errc::set_overruns_message), 1u);
  EXPECT_EQ(errors(st, Errc::set_too_short), 1u);
  EXPECT_EQ(total_errors(st), 5u);
  EXPECT_EQ(st.not_flow_protocol, 1u);
  EXPECT_EQ(st.records, 0u);

  // The session survives: the next good datagram decodes with the template from before.
  EXPECT_TRUE(c.on_data(s, Bytes(good)));
  c.flush();
  EXPECT_EQ(published_octets(), (std::vector<std::uint64_t>{1, 2}));
  st = c.stats();
  EXPECT_EQ(st.records, 2u);
  EXPECT_EQ(st.messages_malformed, 5u);
}

TEST_F(CollectorTest, MalformedTemplateInDatagramLeavesNoTemplate) {
  // All or nothing (decode.hpp): a datagram whose template set is valid but whose
  // second set is malformed is dropped whole, its template included.
  Collector c(options());
  const SessionInfo s = session(1, Scheme::udp, "10.1.2.3", 4739);
  const TemplatePtr t = flow_template();
  Buf msg = ipfix_message({t}, t, flows(1, 1));
  // Template set: 4 + 4 + 3 * 4 = 20 bytes at offset 16; the data set header follows at 36.
  ASSERT_EQ(load_be<std::uint16_t>(msg.data() + 16), 2);
  ASSERT_EQ(load_be<std::uint16_t>(msg.data() + 18), 20);
  store_be<std::uint16_t>(msg.data() + 36 + 2, 3);
  EXPECT_TRUE(c.on_data(s, Bytes(msg)));
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(5, 1)))));
  c.flush();
  EXPECT_TRUE(published_.empty());
  const CollectorStats st = c.stats();
  EXPECT_EQ(errors(st, Errc::set_too_short), 1u);
  EXPECT_EQ(st.unknown_template_sets, 1u);
}

TEST_F(CollectorTest, MalformedStreamClosesSession) {
  Collector c(options());
  const SessionInfo s = session(1, Scheme::tls, "10.1.2.3", 4739, "CN=exporter1");
  c.on_session_open(s);
  const TemplatePtr t = flow_template();
  Buf bad = data_message(t, flows(9, 1));
  store_be<std::uint16_t>(bad.data(), 9);  // a NetFlow v9 header in an IPFIX stream
  const Buf stream = concat(
      {template_message(t), data_message(t, flows(1, 2)), bad, data_message(t, flows(3, 1))});
  EXPECT_FALSE(c.on_data(s, Bytes(stream)));
  CollectorStats st = c.stats();
  EXPECT_EQ(st.messages_malformed, 1u);
  EXPECT_EQ(errors(st, Errc::stream_bad_version), 1u);
  EXPECT_EQ(st.messages, 2u) << "messages before the bad header are decoded";
  c.on_session_close(s, "malformed");
  EXPECT_EQ(published_octets(), (std::vector<std::uint64_t>{1, 2}));
  st = c.stats();
  EXPECT_EQ(st.streams_truncated, 0u) << "a failed stream is malformed, not truncated";
  EXPECT_EQ(st.sessions_active, 0u);
}

TEST_F(CollectorTest, MalformedStreamHeaderArrivingByteByByte) {
  // The same failure whatever the chunking: a bad header split over several on_data calls
  // fails when its fourth byte arrives, and is not also counted as a truncated stream.
  Collector c(options());
  const SessionInfo s = session(1, Scheme::tcp, "10.1.2.3", 4739);
  const TemplatePtr t = flow_template();
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(t))));
  const Buf bad = {std::byte{0}, std::byte{9}, std::byte{0}, std::byte{40}, std::byte{0}};
  EXPECT_TRUE(c.on_data(s, Bytes(bad).subspan(0, 1)));
  EXPECT_TRUE(c.on_data(s, Bytes(bad).subspan(1, 1)));
  EXPECT_TRUE(c.on_data(s, Bytes(bad).subspan(2, 1)));
  EXPECT_FALSE(c.on_data(s, Bytes(bad).subspan(3, 2)));
  c.on_session_close(s, "malformed");
  const CollectorStats st = c.stats();
  EXPECT_EQ(errors(st, Errc::stream_bad_version), 1u);
  EXPECT_EQ(st.messages_malformed, 1u);
  EXPECT_EQ(st.streams_truncated, 0u);
}

TEST_F(CollectorTest, StreamHeaderLengthTooSmall) {
  Collector c(options());
  const SessionInfo s = session(1, Scheme::tcp, "10.1.2.3", 4739);
  Buf msg = template_message(flow_template());
  store_be<std::uint16_t>(msg.data() + 2, 8);  // below the 16-byte header (RFC 7011 §3.1)
  EXPECT_FALSE(c.on_data(s, Bytes(msg)));
  const CollectorStats st = c.stats();
  EXPECT_EQ(errors(st, Errc::stream_bad_length), 1u);
  EXPECT_EQ(st.messages_malformed, 1u);
  EXPECT_EQ(st.messages, 0u);
}

TEST_F(CollectorTest, MalformedMessageInsideStreamClosesTheSession) {
  // A well-framed message whose set length lies: counted by reason, its records dropped, and
  // the session closed (SPEC §9) — the good message after it in the same chunk is not trusted.
  Collector c(options());
  const SessionInfo s = session(1, Scheme::tcp, "10.1.2.3", 4739);
  const TemplatePtr t = flow_template();
  Buf bad = data_message(t, flows(7, 1));
  store_be<std::uint16_t>(bad.data() + 18, 0x0400);
  EXPECT_FALSE(
      c.on_data(s, Bytes(concat({template_message(t), bad, data_message(t, flows(3, 1))}))));
  c.flush();
  EXPECT_TRUE(published_.empty());
  const CollectorStats st = c.stats();
  EXPECT_EQ(errors(st, Errc::set_overruns_message), 1u);
  EXPECT_EQ(st.messages_malformed, 1u);
  EXPECT_EQ(st.records, 0u);
  EXPECT_EQ(st.messages, 2u);  // the template message and the bad one were received
  EXPECT_EQ(st.exporters.at("10.1.2.3").messages, 2u);
}

TEST_F(CollectorTest, DataBeforeTemplateCountedThenDecodedAfterIt) {
  for (Scheme scheme : {Scheme::udp, Scheme::tcp}) {
    published_.clear();
    Collector c(options());
    const SessionInfo s = session(1, scheme, "10.1.2.3", 4739);
    const TemplatePtr t = flow_template();
    const Buf early = data_message(t, flows(1, 3));
    EXPECT_TRUE(c.on_data(s, Bytes(early)));
    c.flush();
    EXPECT_TRUE(published_.empty()) << to_string(scheme);
    CollectorStats st = c.stats();
    EXPECT_EQ(st.unknown_template_sets, 1u);
    // The set body: the message minus the 16-byte message and 4-byte set headers.
    EXPECT_EQ(st.unknown_template_bytes, early.size() - 20);
    EXPECT_EQ(st.messages_malformed, 0u) << "data without its template is not an error";
    EXPECT_EQ(st.records, 0u);

    EXPECT_TRUE(c.on_data(s, Bytes(template_message(t))));
    EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(10, 2)))));
    c.flush();
    EXPECT_EQ(published_octets(), (std::vector<std::uint64_t>{10, 11})) << to_string(scheme);
    st = c.stats();
    EXPECT_EQ(st.unknown_template_sets, 1u);
    EXPECT_EQ(st.records, 2u);
  }
}

TEST_F(CollectorTest, TemplateRedefinedMidStream) {
  // SPEC §6: a redefinition (same id, other fields) replaces the old template.
  Collector c(options());
  const SessionInfo s = session(1, Scheme::tls, "10.1.2.3", 4739, "CN=exporter1");
  const TemplatePtr first = flow_template(256);
  const TemplatePtr second = other_template(256);
  const Buf stream =
      concat({template_message(first), data_message(first, flows(100, 2)), template_message(second),
              data_message(second, {{Value{std::uint64_t{77}}, Value{std::uint64_t{443}}}})});
  feed_chunks(c, s, stream, {7, 1, 13});
  c.on_session_close(s, "done");

  ASSERT_EQ(published_records(), 3u);
  std::vector<ipfix::RecordView> records;
  for (const BatchPtr& b : published_) {
    for (std::size_t i = 0; i < b->size(); ++i) records.push_back((*b)[i]);
  }
  EXPECT_EQ(records[0].unsigned_field(0, 1), 100u);
  EXPECT_EQ(records[1].unsigned_field(0, 1), 101u);
  EXPECT_EQ(records[0].record_template().fields().size(), 3u);
  // The later record uses the new layout: 6 bytes, packetDeltaCount then sourceTransportPort.
  EXPECT_EQ(records[2].record_template().fields().size(), 2u);
  EXPECT_EQ(records[2].bytes().size(), 6u);
  EXPECT_EQ(records[2].unsigned_field(0, 2), 77u);
  EXPECT_EQ(records[2].unsigned_field(0, 7), 443u);
  EXPECT_FALSE(records[2].unsigned_field(0, 1).has_value());
  EXPECT_EQ(c.stats().records, 3u);
}

TEST_F(CollectorTest, TemplateRedefinedOverUdp) {
  Collector c(options());
  const SessionInfo s = session(1, Scheme::udp, "10.1.2.3", 4739);
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(flow_template(300)))));
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(other_template(300)))));
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(other_template(300), {{Value{std::uint64_t{5}},
                                                                     Value{std::uint64_t{53}}}}))));
  c.flush();
  ASSERT_EQ(published_records(), 1u);
  EXPECT_EQ((*published_[0])[0].unsigned_field(0, 7), 53u);
  EXPECT_EQ((*published_[0])[0].bytes().size(), 6u);
}

TEST_F(CollectorTest, StreamClosedInsideMessageIsTruncated) {
  Collector c(options());
  const SessionInfo s = session(1, Scheme::tls, "10.1.2.3", 4739, "CN=exporter1");
  c.on_session_open(s);
  const TemplatePtr t = flow_template();
  const Buf whole = concat({template_message(t), data_message(t, flows(1, 2))});
  const Buf cut = data_message(t, flows(3, 2));
  EXPECT_TRUE(c.on_data(s, Bytes(whole)));
  EXPECT_TRUE(c.on_data(s, Bytes(cut).first(cut.size() / 2)));
  EXPECT_EQ(c.stats().streams_truncated, 0u);
  c.on_session_close(s, "connection reset");
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.streams_truncated, 1u);
  EXPECT_EQ(st.sessions_active, 0u);
  EXPECT_EQ(published_octets(), (std::vector<std::uint64_t>{1, 2}))
      << "the complete messages are published on close";
}

TEST_F(CollectorTest, StreamClosedBetweenMessagesIsNotTruncated) {
  Collector c(options());
  const SessionInfo s = session(1, Scheme::tcp, "10.1.2.3", 4739);
  const TemplatePtr t = flow_template();
  EXPECT_TRUE(c.on_data(s, Bytes(concat({template_message(t), data_message(t, flows(1, 1))}))));
  c.on_session_close(s, "eof");
  EXPECT_EQ(c.stats().streams_truncated, 0u);
  EXPECT_EQ(published_records(), 1u);
}

TEST_F(CollectorTest, CloseOfUnknownSessionIsHarmless) {
  Collector c(options());
  c.on_session_close(session(99, Scheme::tcp, "10.1.2.3", 1), "never opened");
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.sessions_active, 0u);
  EXPECT_EQ(st.sessions_opened, 0u);
}

// ---------------------------------------------------------------------------
// Sequence numbers
// ---------------------------------------------------------------------------

TEST_F(CollectorTest, IpfixSequenceGapCountsLostRecords) {
  // RFC 7011 §3.1: the sequence number counts data records sent before this message.
  Collector c(options());
  const SessionInfo s = session(1, Scheme::udp, "10.1.2.3", 4739);
  const TemplatePtr t = flow_template();
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(t, 0))));
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(0, 3), 0))));  // next: 3
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(0, 2), 3))));  // next: 5
  CollectorStats st = c.stats();
  EXPECT_EQ(st.sequence_lost, 0u);
  EXPECT_EQ(st.sequence_out_of_order, 0u);

  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(0, 4), 12))));  // 7 records lost
  st = c.stats();
  EXPECT_EQ(st.sequence_lost, 7u);
  EXPECT_EQ(st.sequence_out_of_order, 0u);

  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(0, 4), 12))));  // repeat
  st = c.stats();
  EXPECT_EQ(st.sequence_lost, 7u);
  EXPECT_EQ(st.sequence_out_of_order, 1u);
  EXPECT_EQ(st.sequence_resets, 0u);

  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(0, 1), 16))));  // in order again
  st = c.stats();
  EXPECT_EQ(st.sequence_lost, 7u);
  EXPECT_EQ(st.sequence_out_of_order, 1u);
  EXPECT_EQ(st.records, 14u) << "a repeated message is still delivered";
}

TEST_F(CollectorTest, SequenceTrackedPerDomainAndPerSession) {
  Collector c(options());
  const SessionInfo a = session(1, Scheme::udp, "10.1.2.3", 4739);
  const SessionInfo b = session(2, Scheme::udp, "10.1.2.3", 4740);
  const TemplatePtr t = flow_template();
  for (const SessionInfo* s : {&a, &b}) {
    for (std::uint32_t domain : {1u, 2u}) {
      EXPECT_TRUE(c.on_data(*s, Bytes(template_message(t, 1000, domain))));
    }
  }
  // Interleaved domains and sessions, each in order on its own: nothing lost.
  EXPECT_TRUE(c.on_data(a, Bytes(data_message(t, flows(0, 2), 1000, 1))));
  EXPECT_TRUE(c.on_data(a, Bytes(data_message(t, flows(0, 5), 1000, 2))));
  EXPECT_TRUE(c.on_data(b, Bytes(data_message(t, flows(0, 1), 1000, 1))));
  EXPECT_TRUE(c.on_data(a, Bytes(data_message(t, flows(0, 1), 1002, 1))));
  EXPECT_TRUE(c.on_data(a, Bytes(data_message(t, flows(0, 1), 1005, 2))));
  EXPECT_TRUE(c.on_data(b, Bytes(data_message(t, flows(0, 1), 1001, 1))));
  CollectorStats st = c.stats();
  EXPECT_EQ(st.sequence_lost, 0u);
  EXPECT_EQ(st.sequence_out_of_order, 0u);
  // A gap of 2 in domain 2 of session b only.
  EXPECT_TRUE(c.on_data(b, Bytes(data_message(t, flows(0, 1), 1002, 2))));
  st = c.stats();
  EXPECT_EQ(st.sequence_lost, 2u);
}

TEST_F(CollectorTest, NetflowV5SequenceGapCountsFlows) {
  Collector c(options());
  const SessionInfo s = session(1, Scheme::udp, "10.1.2.3", 2055);
  std::vector<ipfix::NetflowV5Record> recs(3);
  ipfix::NetflowV5Header h;
  h.flow_sequence = 100;
  EXPECT_TRUE(c.on_data(s, Bytes(ipfix::encode_netflow_v5(h, recs))));  // next: 103
  h.flow_sequence = 110;
  EXPECT_TRUE(c.on_data(s, Bytes(ipfix::encode_netflow_v5(h, recs))));  // 7 flows lost
  EXPECT_EQ(c.stats().sequence_lost, 7u);
  h.flow_sequence = 100;
  EXPECT_TRUE(c.on_data(s, Bytes(ipfix::encode_netflow_v5(h, recs))));  // late
  EXPECT_EQ(c.stats().sequence_out_of_order, 1u);
  EXPECT_EQ(c.stats().records, 9u);
}

// ---------------------------------------------------------------------------
// --collector-allow
// ---------------------------------------------------------------------------

TEST_F(CollectorTest, AllowListIgnoresOtherExporters) {
  CollectorOptions o = options();
  const auto net = IpNetwork::parse("10.0.0.0/8");
  ASSERT_TRUE(net.has_value());
  o.allow = {*net};
  Collector c(std::move(o));
  const TemplatePtr t = flow_template();
  const Buf msg = ipfix_message({t}, t, flows(1, 2));

  const SessionInfo outside_udp = session(1, Scheme::udp, "192.0.2.1", 4739);
  c.on_session_open(outside_udp);
  (void)c.on_data(outside_udp, Bytes(msg));  // the return value is ignored for plain UDP

  const SessionInfo outside_tcp = session(2, Scheme::tcp, "192.0.2.1", 50000);
  c.on_session_open(outside_tcp);
  EXPECT_FALSE(c.on_data(outside_tcp, Bytes(msg))) << "a refused stream is closed";
  // Half a message, then close: the refused stream is not counted as truncated.
  (void)c.on_data(outside_tcp, Bytes(msg).first(10));
  c.on_session_close(outside_tcp, "refused");

  const SessionInfo inside = session(3, Scheme::udp, "10.1.2.3", 4739);
  c.on_session_open(inside);
  EXPECT_TRUE(c.on_data(inside, Bytes(msg)));
  c.flush();

  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0]->exporter.address.to_string(), "10.1.2.3");
  EXPECT_EQ(published_[0]->size(), 2u);
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.sessions_not_allowed, 2u);
  EXPECT_EQ(st.sessions_opened, 3u);
  EXPECT_EQ(st.sessions_active, 2u);
  EXPECT_EQ(st.messages, 1u);
  EXPECT_EQ(st.records, 2u);
  EXPECT_EQ(st.bytes, msg.size());
  EXPECT_EQ(st.messages_malformed, 0u);
  EXPECT_EQ(st.streams_truncated, 0u);
  EXPECT_EQ(st.exporters.count("192.0.2.1"), 0u);
  EXPECT_EQ(st.exporters.count("10.1.2.3"), 1u);
}

TEST_F(CollectorTest, AllowListWithIpv6AndSeveralNetworks) {
  CollectorOptions o = options();
  o.allow = {*IpNetwork::parse("192.0.2.0/24"), *IpNetwork::parse("2001:db8::/32")};
  Collector c(std::move(o));
  const TemplatePtr t = flow_template();
  const Buf msg = ipfix_message({t}, t, flows(1, 1));
  EXPECT_TRUE(c.on_data(session(1, Scheme::udp, "192.0.2.77", 1), Bytes(msg)));
  EXPECT_TRUE(c.on_data(session(2, Scheme::tcp, "2001:db8::5", 2), Bytes(msg)));
  EXPECT_FALSE(c.on_data(session(3, Scheme::tcp, "2001:db9::5", 3), Bytes(msg)));
  EXPECT_FALSE(c.on_data(session(4, Scheme::tcp, "198.51.100.1", 4), Bytes(msg)));
  c.flush();
  EXPECT_EQ(published_records(), 2u);
  EXPECT_EQ(c.stats().sessions_not_allowed, 2u);
}

TEST_F(CollectorTest, EmptyAllowListAcceptsEveryone) {
  Collector c(options());
  const TemplatePtr t = flow_template();
  const Buf msg = ipfix_message({t}, t, flows(1, 1));
  EXPECT_TRUE(c.on_data(session(1, Scheme::tcp, "198.51.100.1", 1), Bytes(msg)));
  c.flush();
  EXPECT_EQ(published_records(), 1u);
  EXPECT_EQ(c.stats().sessions_not_allowed, 0u);
}

// ---------------------------------------------------------------------------
// Per-exporter counters
// ---------------------------------------------------------------------------

TEST_F(CollectorTest, PerExporterCountersMatchWhatWasSent) {
  Collector c(options());
  const TemplatePtr t = flow_template();
  // Exporter 10.1.2.3 over two UDP ports and one TLS session; 2001:db8::1 over TCP.
  const SessionInfo a1 = session(1, Scheme::udp, "10.1.2.3", 1000);
  const SessionInfo a2 = session(2, Scheme::udp, "10.1.2.3", 1001);
  const SessionInfo a3 = session(3, Scheme::tls, "10.1.2.3", 1002, "CN=exporter1");
  const SessionInfo b = session(4, Scheme::tcp, "2001:db8::1", 1003);

  std::map<std::string, ExporterCounters> sent;
  auto send = [&](const SessionInfo& s, const Buf& m, std::uint64_t records) {
    EXPECT_TRUE(c.on_data(s, Bytes(m)));
    ExporterCounters& e = sent[s.peer_address.to_string()];
    ++e.messages;
    e.records += records;
    e.bytes += m.size();
  };
  for (const SessionInfo* s : {&a1, &a2, &a3, &b}) send(*s, template_message(t), 0);
  send(a1, data_message(t, flows(0, 5)), 5);
  send(a2, data_message(t, flows(0, 1)), 1);
  send(a3, data_message(t, flows(0, 7)), 7);
  send(a1, data_message(t, flows(0, 2), 5), 2);
  send(b, data_message(t, flows(0, 4)), 4);
  send(b, data_message(t, flows(0, 3), 4), 3);

  const CollectorStats st = c.stats();
  ASSERT_EQ(st.exporters.size(), 2u);
  for (const auto& [addr, e] : sent) {
    ASSERT_EQ(st.exporters.count(addr), 1u) << addr;
    EXPECT_EQ(st.exporters.at(addr).messages, e.messages) << addr;
    EXPECT_EQ(st.exporters.at(addr).records, e.records) << addr;
    EXPECT_EQ(st.exporters.at(addr).bytes, e.bytes) << addr;
  }
  EXPECT_EQ(st.exporters.at("10.1.2.3").records, 15u);
  EXPECT_EQ(st.exporters.at("2001:db8::1").records, 7u);
  EXPECT_EQ(st.records, 22u);
  EXPECT_EQ(st.messages, 10u);

  // Counters outlive the sessions: they are per exporter address.
  for (const SessionInfo* s : {&a1, &a2, &a3, &b}) c.on_session_close(*s, "done");
  EXPECT_EQ(c.stats().exporters.at("10.1.2.3").records, 15u);
  EXPECT_EQ(c.stats().sessions_active, 0u);
}

// ---------------------------------------------------------------------------
// Datagram template lifetime (RFC 7011 §8.4, SPEC §6: 30 minutes)
// ---------------------------------------------------------------------------

TEST_F(CollectorTest, DatagramTemplateExpiresAfterThirtyMinutes) {
  Collector c(options());
  const SessionInfo s = session(1, Scheme::udp, "10.1.2.3", 4739);
  const TemplatePtr t = flow_template();
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(t))));
  clock_.advance(std::chrono::minutes(29));
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(1, 1)))));
  EXPECT_EQ(c.stats().unknown_template_sets, 0u);

  // A refresh restarts the lifetime.
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(t))));
  clock_.advance(std::chrono::minutes(29));
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(2, 1)))));
  EXPECT_EQ(c.stats().unknown_template_sets, 0u);

  // 30 min and a second after the last refresh, and no data in between keeps it alive.
  clock_.advance(std::chrono::minutes(1) + std::chrono::seconds(1));
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(3, 1)))));
  CollectorStats st = c.stats();
  EXPECT_EQ(st.unknown_template_sets, 1u);
  EXPECT_EQ(st.records, 2u);

  // Re-announced, it decodes again.
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(t))));
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(4, 1)))));
  c.flush();
  EXPECT_EQ(published_octets(), (std::vector<std::uint64_t>{1, 2, 4}));
  st = c.stats();
  EXPECT_EQ(st.unknown_template_sets, 1u);
  EXPECT_EQ(st.records, 3u);
}

TEST_F(CollectorTest, DtlsTemplatesExpireLikeUdp) {
  Collector c(options());
  const SessionInfo s = session(1, Scheme::dtls, "10.1.2.3", 4739, "CN=exporter1");
  const TemplatePtr t = flow_template();
  EXPECT_TRUE(c.on_data(s, Bytes(template_message(t))));
  clock_.advance(std::chrono::minutes(31));
  EXPECT_TRUE(c.on_data(s, Bytes(data_message(t, flows(1, 1)))));
  EXPECT_EQ(c.stats().unknown_template_sets, 1u);
  EXPECT_EQ(c.stats().records, 0u);
}

}  // namespace
}  // namespace flowsec::collector

namespace flowsec::collector {
namespace {

// Per-exporter counters are keyed by source address: spoofed UDP sources must not grow them
// (and the metrics) without bound.
TEST(CollectorExporterCap, AddressesBeyondTheCapAreCountedTogether) {
  Collector c(CollectorOptions{});
  transport::SessionInfo s;
  s.scheme = transport::Scheme::udp;
  for (std::uint32_t i = 0; i < kMaxExporterEntries + 10; ++i) {
    s.id = i + 1;
    s.peer_address = IpAddress::v4(0x0a000000u + i);
    c.on_session_open(s);
    c.on_session_close(s, "test");
  }
  const CollectorStats st = c.stats();
  EXPECT_EQ(st.exporters.size(), kMaxExporterEntries + 1);
  EXPECT_TRUE(st.exporters.contains(std::string(kOtherExporters)));
}

}  // namespace
}  // namespace flowsec::collector
