// FlowCache and L7Classifier on real captures (tests/data/flow/README.md). Expected
// values come from peers: tshark for flows, packets, bytes and timestamps, nDPI's own
// result files (ntop/nDPI tests/cfgs/default/result/<file>.out) for the application.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "capture/pcap_file.hpp"
#include "flow/flow_cache.hpp"
#include "flow/l7_classifier.hpp"
#include "packet/parser.hpp"

namespace flowsec::flow {
namespace {

constexpr std::uint32_t kEthernet = 14;  // every frame of dns-google-nsid is untagged, unpadded

std::array<std::uint8_t, 16> ipv4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return {a, b, c, d};
}

struct FlowRun {
  std::vector<FlowRecord> flows;
  FlowCacheStats stats;
};

FlowRun run(const std::string& name, L7Classifier* l7) {
  FlowRun out;
  auto file = capture::PcapFile::open(std::string(FLOWSEC_TEST_DATA) + "/flow/" + name);
  EXPECT_TRUE(file.has_value()) << (file ? "" : file.error());
  if (!file) return out;
  FlowCache cache(
      {}, [&](const FlowRecord& r) { out.flows.push_back(r); }, l7);
  while (auto pkt = file->next()) {
    auto view = packet::parse_packet(pkt->link_type, pkt->data, {});
    EXPECT_TRUE(view.has_value());
    if (!view) continue;
    cache.add(*view, pkt->data, pkt->timestamp_ns);
  }
  EXPECT_TRUE(file->error().empty()) << file->error();
  cache.flush();
  out.stats = cache.stats();
  return out;
}

std::unique_ptr<L7Classifier> classifier() {
  auto c = L7Classifier::create();
  EXPECT_TRUE(c.has_value());
  return c ? std::move(*c) : nullptr;
}

TEST(PcapFlows, HttpConnection) {
  auto l7 = classifier();
  ASSERT_NE(l7, nullptr);
  const FlowRun r = run("http.pcapng", l7.get());
  // tshark -r http.pcapng -q -z conv,tcp:
  //   192.168.1.128:42170 <-> 216.58.208.142:80   <- 4 frames 800 bytes   -> 6 frames 478 bytes
  // IP bytes per direction: tshark -r http.pcapng -T fields -e ip.src -e ip.len, summed by
  // source: 192.168.1.128 394, 216.58.208.142 744.
  ASSERT_EQ(r.flows.size(), 1U);
  const FlowRecord& f = r.flows[0];
  EXPECT_EQ(f.key.src_addr, ipv4(192, 168, 1, 128));
  EXPECT_EQ(f.key.dst_addr, ipv4(216, 58, 208, 142));
  EXPECT_EQ(f.key.src_port, 42170);
  EXPECT_EQ(f.key.dst_port, 80);
  EXPECT_EQ(f.in.packets, 6U);
  EXPECT_EQ(f.in.bytes, 394U);
  EXPECT_EQ(f.out.packets, 4U);
  EXPECT_EQ(f.out.bytes, 744U);
  // tshark -T fields -e tcp.flags.str: FIN from both sides (frames 8, 9).
  EXPECT_EQ(f.end_reason, EndReason::end_of_flow);
  // tshark -T fields -e frame.time_epoch: SYN 1643129441.023341461, SYN-ACK .030591673,
  // ACK .030633829 → halves of 7250 µs and 42 µs (µs offsets, truncated).
  EXPECT_NEAR(f.server_latency_us, 3625, 1);
  EXPECT_NEAR(f.client_latency_us, 21, 1);
  // nDPI result file: [proto: 7.126/HTTP.Google]
  EXPECT_EQ(f.l7_master, 7);
  EXPECT_EQ(f.l7_app, 126);
  EXPECT_EQ(l7_protocol_name(f.l7_master, f.l7_app), "HTTP.Google");
  EXPECT_EQ(l7->name(f.l7_master, f.l7_app), "HTTP.Google");
  EXPECT_EQ(l7->stats().states_in_use, 0U);
  // The classifier's per-slot table follows the flows seen, not the cache's -M (1048576
  // by default): one flow needs the smallest table.
  EXPECT_LE(l7->slot_capacity(), 1024U);
}

TEST(PcapFlows, TlsConnectionWithRetransmissions) {
  auto l7 = classifier();
  ASSERT_NE(l7, nullptr);
  const FlowRun r = run("google_ssl.pcap", l7.get());
  // tshark -r google_ssl.pcap -q -z conv,tcp:
  //   172.31.3.224:42835 <-> 216.58.212.100:443   <- 12 frames 7596 bytes   -> 16 frames 1512 bytes
  // IP bytes (tshark -T fields -e ip.src -e ip.len, summed by source; some frames carry
  // Ethernet padding): 172.31.3.224 1288, 216.58.212.100 7408.
  ASSERT_EQ(r.flows.size(), 1U);
  const FlowRecord& f = r.flows[0];
  EXPECT_EQ(f.key.src_addr, ipv4(172, 31, 3, 224));
  EXPECT_EQ(f.key.src_port, 42835);
  EXPECT_EQ(f.key.dst_port, 443);
  EXPECT_EQ(f.in.packets, 16U);
  EXPECT_EQ(f.in.bytes, 1288U);
  EXPECT_EQ(f.out.packets, 12U);
  EXPECT_EQ(f.out.bytes, 7408U);
  EXPECT_EQ(f.end_reason, EndReason::end_of_flow);
  // tshark -r google_ssl.pcap -Y 'tcp.analysis.retransmission or tcp.analysis.out_of_order'
  // → 5 server segments (frames 8 10 12 13 15) start below the highest sequence seen.
  // tshark calls all five retransmissions; we call the two that fill the gap before
  // frame 6's sequence out-of-order, so only the sum is the peer's number.
  EXPECT_EQ(f.out.retransmitted_packets + f.out.out_of_order_packets, 5U);
  EXPECT_EQ(f.in.retransmitted_packets + f.in.out_of_order_packets, 0U);
  // tshark frame.time_epoch: SYN 1434443394.683939, SYN-ACK .717671, ACK .851093.
  EXPECT_NEAR(f.server_latency_us, 16866, 1);
  EXPECT_NEAR(f.client_latency_us, 66711, 1);
  // nDPI result file: [proto: 91/TLS][IP: 126/Google]. That file is from a newer nDPI,
  // which keeps the address-based match apart; Debian's 4.2 folds it into the pair
  // (91.126, "TLS.Google"). The protocol itself must agree: TLS (91) as master.
  EXPECT_EQ(f.l7_master, 91);
  EXPECT_TRUE(f.l7_app == 126 || f.l7_app == 91) << f.l7_app;
  EXPECT_EQ(l7_protocol_name(f.l7_master, 0), "TLS");
}

TEST(PcapFlows, DnsOverIpv4AndIpv6) {
  auto l7 = classifier();
  ASSERT_NE(l7, nullptr);
  const FlowRun r = run("dns-google-nsid.pcapng", l7.get());
  // tshark -r dns-google-nsid.pcapng -q -z conv,udp: 7 conversations (3 IPv4, 4 IPv6),
  // each 1 frame each way, 14 frames, 2170 frame bytes.
  ASSERT_EQ(r.flows.size(), 7U);
  EXPECT_EQ(r.stats.packets, 14U);
  EXPECT_EQ(r.stats.bytes, 2170U - 14 * kEthernet);
  int v6 = 0;
  for (const auto& f : r.flows) {
    v6 += f.key.ip_version == 6 ? 1 : 0;
    EXPECT_EQ(f.key.dst_port, 53);
    EXPECT_EQ(f.in.packets, 1U);
    EXPECT_EQ(f.out.packets, 1U);
    EXPECT_EQ(f.end_reason, EndReason::forced_end);
    // nDPI result file: [proto: 5/DNS] for all seven. nDPI 4.2 (Debian) also matches
    // the query name to an application ("DNS.Wikipedia", "DNS.ntop"); newer nDPI, which
    // wrote the result file, no longer does. DNS must be there, as master or alone.
    const std::uint16_t proto = f.l7_master != 0 ? f.l7_master : f.l7_app;
    EXPECT_EQ(proto, 5) << l7_protocol_name(f.l7_master, f.l7_app);
  }
  EXPECT_EQ(v6, 4);
}

TEST(PcapFlows, WithoutL7TheFlowsAreTheSame) {
  const FlowRun with = run("google_ssl.pcap", nullptr);
  ASSERT_EQ(with.flows.size(), 1U);
  EXPECT_EQ(with.flows[0].in.packets, 16U);
  EXPECT_EQ(with.flows[0].l7_master, 0);
  EXPECT_EQ(with.flows[0].l7_app, 0);
}

TEST(L7Names, NprobeStyle) {
  // Ids from nDPI's ndpi_protocol_ids.h: 5 DNS, 7 HTTP, 91 TLS, 126 Google.
  EXPECT_EQ(l7_protocol_name(91, 126), "TLS.Google");
  EXPECT_EQ(l7_protocol_name(0, 5), "DNS");
  EXPECT_EQ(l7_protocol_name(0, 0), "Unknown");
}

}  // namespace
}  // namespace flowsec::flow
