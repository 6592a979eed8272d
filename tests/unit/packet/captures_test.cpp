// Packet parser on real frames from the shared corpus (tests/data/packets/, see
// tests/data/README.md). Every expected value comes from tshark 4.0, with the
// command given above each test; tshark's reassembly is switched off where it would
// move ports to another fragment. The last tests feed every prefix and many
// mutations of these frames to the parser: it must never read out of bounds
// (AddressSanitizer watches) and what it reports must stay inside the frame.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "frame_builder.hpp"
#include "packet/parser.hpp"

namespace flowsec::packet {
namespace {

using namespace flowsec::packet::test;

PacketView frame_view(const std::vector<CapturedFrame>& frames, std::size_t number,
                      const ParseOptions& opts = kPlain) {
  const CapturedFrame& f = frames.at(number - 1);  // tshark numbers frames from 1
  return parsed(f.link_type, f.data, opts);
}

// tshark -r 802.1ad_QinQ.pcap -V | grep -E 'ID:|Type:'
//   IEEE 802.1ad, ID: 200; 802.1Q Virtual LAN, ID: 2001; Type: ARP (0x0806)
TEST(Captures, QinQArp) {
  const auto frames = read_frames("802.1ad_QinQ.pcap");
  ASSERT_EQ(frames.size(), 2u);
  const PacketView v = frame_view(frames, 1);
  EXPECT_EQ(v.kind, PacketKind::not_ip);
  EXPECT_EQ(v.vlan_count, 2);
  EXPECT_EQ(v.vlan_outer, 200);
  EXPECT_EQ(v.vlan_inner, 2001);
  EXPECT_EQ(v.ethertype, 0x0806);
  EXPECT_EQ(v.src_mac, (std::array<std::uint8_t, 6>{0x00, 0x20, 0xd2, 0x5a, 0xfb, 0x3f}));
  EXPECT_EQ(v.dst_mac, (std::array<std::uint8_t, 6>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
}

// tshark -r dns.pcap -T fields -e vlan.id -e pppoe.session_id -e ip.src -e ip.dst -e ip.len
//   -e ip.ttl -e udp.srcport -e udp.dstport
//   frame 1: - - 192.168.170.20 192.168.170.8 62 128 53 32795
//   frame 4: 421,785 0x556a 82.178.113.245 82.178.158.181 61 64 47255 53
TEST(Captures, PppoeUnderQinQ) {
  const auto frames = read_frames("dns.pcap");
  PacketView v = frame_view(frames, 1);
  EXPECT_EQ(v.src_ip().to_string(), "192.168.170.20");
  EXPECT_EQ(v.ip_length, 62u);
  EXPECT_EQ(v.src_port, 53);
  EXPECT_FALSE(v.has_pppoe);
  v = frame_view(frames, 4);
  EXPECT_EQ(v.vlan_count, 2);
  EXPECT_EQ(v.vlan_outer, 421);
  EXPECT_EQ(v.vlan_inner, 785);
  EXPECT_TRUE(v.has_pppoe);
  EXPECT_EQ(v.pppoe_session, 0x556a);
  EXPECT_EQ(v.src_ip().to_string(), "82.178.113.245");
  EXPECT_EQ(v.dst_ip().to_string(), "82.178.158.181");
  EXPECT_EQ(v.ip_length, 61u);
  EXPECT_EQ(v.ttl, 64);
  EXPECT_EQ(v.src_port, 47255);
  EXPECT_EQ(v.dst_port, 53);
}

// tshark -r vxlan.pcap -T fields -e ip.src -e ip.dst -e ip.proto -e udp.srcport -e udp.dstport
//   -e vxlan.vni -e icmp.type -e frame.protocols
//   frame 1: 192.168.203.1,192.168.203.3 192.168.202.1,192.168.203.5 17,1 45149 4789 100 8
//   frame 2: 192.168.202.1 192.168.203.1 17 42710 4789 100 - eth:...:vxlan:eth:ethertype:arp
TEST(Captures, Vxlan) {
  const auto frames = read_frames("vxlan.pcap");
  PacketView v = frame_view(frames, 1);
  EXPECT_EQ(v.src_ip().to_string(), "192.168.203.1");
  EXPECT_EQ(v.src_port, 45149);
  EXPECT_EQ(v.dst_port, 4789);
  v = frame_view(frames, 1, kStrip);
  EXPECT_EQ(v.tunnel_type, TunnelType::vxlan);
  EXPECT_EQ(v.tunnel_id, 100u);
  EXPECT_EQ(v.src_ip().to_string(), "192.168.203.3");
  EXPECT_EQ(v.dst_ip().to_string(), "192.168.203.5");
  EXPECT_EQ(v.protocol, kIcmp);
  EXPECT_EQ(v.icmp_type, 8);
  EXPECT_EQ(v.ip_length, 84u);
  v = frame_view(frames, 2, kStrip);
  EXPECT_EQ(v.kind, PacketKind::not_ip);
  EXPECT_EQ(v.tunnel_depth, 1);
}

// tshark -r gre.pcapng -T fields -e vlan.id -e ip.src -e ip.dst -e ip.proto -e ip.len
//   -e gre.flags_and_version -e gre.key.call_id -e udp.srcport -e udp.dstport
//   142 109.105.228.253,192.168.10.210 10.177.98.84,192.168.103.40 47,17 366,326 0x3081 38992
//   5060 5060   (PPTP: enhanced GRE version 1 carrying PPP carrying IPv4)
TEST(Captures, PptpGre) {
  const auto frames = read_frames("gre.pcapng");
  PacketView v = frame_view(frames, 1);
  EXPECT_EQ(v.vlan_outer, 142);
  EXPECT_EQ(v.protocol, kGre);
  EXPECT_EQ(v.ip_length, 366u);
  v = frame_view(frames, 1, kStrip);
  EXPECT_EQ(v.tunnel_type, TunnelType::gre);
  EXPECT_EQ(v.tunnel_id, 38992u);
  EXPECT_EQ(v.src_ip().to_string(), "192.168.10.210");
  EXPECT_EQ(v.dst_ip().to_string(), "192.168.103.40");
  EXPECT_EQ(v.ip_length, 326u);
  EXPECT_EQ(v.src_port, 5060);
  EXPECT_EQ(v.dst_port, 5060);
}

// tshark -r ipv6_in_gtp.pcap -T fields -e vlan.id -e ip.src -e gtp.teid -e ipv6.src -e ipv6.dst
//   -e ipv6.nxt -e ipv6.plen -e ipv6.hlim -e ipv6.flow -e udp.srcport -e udp.dstport
//   frame 1: 3233,5 10.238.80.26 0x12808fb8 2607:fc20:4052:39e:490a:ea4d:17fe:e09c
//            fd00:976a:bc67:193e::7 17 52 64 0x08b852 2152,49120 2152,25658
//   frame 2: 3231,2 ... 0x074c15b0 2a01:4c8:c014:144e:1:2:945b:6761 2a01:4c8:f000:f49::4 50 68
TEST(Captures, GtpUWithIpv6Inside) {
  const auto frames = read_frames("ipv6_in_gtp.pcap");
  PacketView v = frame_view(frames, 1, kStrip);
  EXPECT_EQ(v.vlan_outer, 3233);
  EXPECT_EQ(v.vlan_inner, 5);
  EXPECT_EQ(v.tunnel_type, TunnelType::gtp_u);
  EXPECT_EQ(v.tunnel_id, 0x12808fb8u);
  EXPECT_EQ(v.src_ip().to_string(), "2607:fc20:4052:39e:490a:ea4d:17fe:e09c");
  EXPECT_EQ(v.dst_ip().to_string(), "fd00:976a:bc67:193e::7");
  EXPECT_EQ(v.ip_length, 40u + 52u);
  EXPECT_EQ(v.ttl, 64);
  EXPECT_EQ(v.flow_label, 0x08b852u);
  EXPECT_EQ(v.src_port, 49120);
  EXPECT_EQ(v.dst_port, 25658);
  v = frame_view(frames, 2, kStrip);
  EXPECT_EQ(v.tunnel_id, 0x074c15b0u);
  EXPECT_EQ(v.protocol, 50);  // ESP: the walk stops
  EXPECT_FALSE(v.has_l4);
}

// tshark -r 4in4tunnel.pcap -T fields -e vlan.id -e ip.src -e ip.dst -e ip.proto -e ip.ttl
//   -e udp.srcport -e udp.dstport
//   1624,505 69.67.35.146,10.10.100.25 41.202.46.110,10.10.101.2 4,17 255,254 62367 17000
// tshark -r 6in6tunnel.pcap -T fields -e ipv6.src -e ipv6.dst -e ipv6.nxt -e udp.srcport
//   -e udp.dstport
//   2001:4f8:4:7:2e0:81ff:fe52:ffff,dead::beef 2001:4f8:4:7:2e0:81ff:fe52:9a6b,cafe::babe 41,17
//   30000 13000
TEST(Captures, IpInIp) {
  const auto four = read_frames("4in4tunnel.pcap");
  PacketView v = frame_view(four, 1);
  EXPECT_EQ(v.protocol, kIpIp);
  EXPECT_EQ(v.src_ip().to_string(), "69.67.35.146");
  v = frame_view(four, 1, kStrip);
  EXPECT_EQ(v.tunnel_type, TunnelType::ip_in_ip);
  EXPECT_EQ(v.src_ip().to_string(), "10.10.100.25");
  EXPECT_EQ(v.dst_ip().to_string(), "10.10.101.2");
  EXPECT_EQ(v.ttl, 254);
  EXPECT_EQ(v.src_port, 62367);
  EXPECT_EQ(v.dst_port, 17000);
  const auto six = read_frames("6in6tunnel.pcap");
  v = frame_view(six, 1, kStrip);
  EXPECT_EQ(v.src_ip().to_string(), "dead::beef");
  EXPECT_EQ(v.dst_ip().to_string(), "cafe::babe");
  EXPECT_EQ(v.src_port, 30000);
  EXPECT_EQ(v.dst_port, 13000);
}

// tshark -r ipv6-routing-header.pcap -T fields -e ipv6.nxt -e ipv6.plen -e ipv6.hlim
//   -e icmpv6.type -e udp.srcport -e udp.dstport
//   frame 1: 43 32 4 128 - -      frame 3: 43 32 4 - 5645 5642
TEST(Captures, Ipv6RoutingHeader) {
  const auto frames = read_frames("ipv6-routing-header.pcap");
  PacketView v = frame_view(frames, 1);
  EXPECT_EQ(v.protocol, kIcmpv6);
  EXPECT_EQ(v.icmp_type, 128);
  EXPECT_EQ(v.ttl, 4);
  EXPECT_EQ(v.ip_length, 72u);
  EXPECT_EQ(v.dst_ip().to_string(), "2200::240:2:0:0:4");
  v = frame_view(frames, 3);
  EXPECT_EQ(v.protocol, kUdp);
  EXPECT_EQ(v.src_port, 5645);
  EXPECT_EQ(v.dst_port, 5642);
}

// tshark -r icmpv6.pcap -T fields -e ipv6.src -e ipv6.nxt -e ipv6.plen -e icmpv6.type
//   frame 1: fe80::b299:28ff:fec8:d66c 58 176 134
//   frame 2: fe80::215:17ff:fecc:e546 0 36 143   (hop-by-hop, then MLDv2 report)
TEST(Captures, Icmpv6AfterHopByHop) {
  const auto frames = read_frames("icmpv6.pcap");
  PacketView v = frame_view(frames, 1);
  EXPECT_EQ(v.icmp_type, 134);
  EXPECT_EQ(v.ip_length, 216u);
  v = frame_view(frames, 2);
  EXPECT_EQ(v.src_ip().to_string(), "fe80::215:17ff:fecc:e546");
  EXPECT_EQ(v.protocol, kIcmpv6);
  EXPECT_EQ(v.icmp_type, 143);
  EXPECT_EQ(v.ip_header_length, 48);
  EXPECT_EQ(v.ttl, 1);
}

// tshark -r dns_fragmented.pcap -o ip.defragment:FALSE -o ipv6.defragment:FALSE -T fields
//   -e ip.flags.mf -e ip.frag_offset -e ipv6.fraghdr.offset -e ipv6.fraghdr.more
//   -e ipv6.fraghdr.ident -e udp.srcport -e udp.dstport -e ip.len -e ipv6.plen
//   frame 2: 1 0 - - - 53 56680 1500        frame 3: 0 185 - - - - - 250
//   frame 5: - - 0 1 0x28403c0b 53 46433 - 1456   frame 6: - - 181 0 0x28403c0b - - - 69
TEST(Captures, Ipv4AndIpv6Fragments) {
  const auto frames = read_frames("dns_fragmented.pcap");
  PacketView v = frame_view(frames, 2);
  EXPECT_TRUE(v.first_fragment());
  EXPECT_EQ(v.fragment_id, 0xd0feu);
  EXPECT_EQ(v.src_port, 53);
  EXPECT_EQ(v.dst_port, 56680);
  EXPECT_EQ(v.ip_length, 1500u);
  v = frame_view(frames, 3);
  EXPECT_TRUE(v.is_fragment);
  EXPECT_FALSE(v.more_fragments);
  EXPECT_EQ(v.fragment_offset, 185);
  EXPECT_FALSE(v.has_l4);
  EXPECT_EQ(v.ip_length, 250u);
  v = frame_view(frames, 5);
  EXPECT_TRUE(v.first_fragment());
  EXPECT_EQ(v.fragment_id, 0x28403c0bu);
  EXPECT_EQ(v.protocol, kUdp);
  EXPECT_EQ(v.src_port, 53);
  EXPECT_EQ(v.dst_port, 46433);
  EXPECT_EQ(v.ip_length, 40u + 1456u);
  v = frame_view(frames, 6);
  EXPECT_EQ(v.fragment_offset, 181);
  EXPECT_FALSE(v.more_fragments);
  EXPECT_EQ(v.protocol, kUdp);
  EXPECT_FALSE(v.has_l4);
}

// tshark -r ipv6_frag6_negative_len.pcap -x: payload length 0 (tshark: "maybe TSO", then
// Malformed), next header 44; the fragment header at frame offset 54 reads
// 02 13 05 00 80 00 00 74: next header 2 (IGMP), offset 0x0500 >> 3 = 160, M = 0,
// id 0x80000074. We take the length from the capture and stop at the non-first fragment.
TEST(Captures, Ipv6FragmentWithZeroPayloadLength) {
  const auto frames = read_frames("ipv6_frag6_negative_len.pcap");
  const PacketView v = frame_view(frames, 1);
  EXPECT_TRUE(v.length_from_capture);
  EXPECT_EQ(v.ip_length, 56u);  // 70 captured bytes - 14 of Ethernet
  EXPECT_EQ(v.fragment_offset, 160);
  EXPECT_EQ(v.fragment_id, 0x80000074u);
  EXPECT_EQ(v.protocol, 2);
  EXPECT_FALSE(v.has_l4);
}

// tshark -r sctp.cap -T fields -e ip.src -e ip.dst -e ip.proto -e sctp.srcport -e sctp.dstport
//   frame 1: 10.28.6.43 10.28.6.44 132 16384 2944
TEST(Captures, Sctp) {
  const auto frames = read_frames("sctp.cap");
  const PacketView v = frame_view(frames, 1);
  EXPECT_EQ(v.protocol, kSctp);
  EXPECT_EQ(v.src_port, 16384);
  EXPECT_EQ(v.dst_port, 2944);
  EXPECT_EQ(v.ip_length, 124u);
}

// tshark -r tcp-handshake-nano.pcap -T fields -e sll.halen -e ip.src -e tcp.srcport
//   -e tcp.dstport -e tcp.flags -e tcp.seq_raw -e tcp.ack_raw -e tcp.window_size_value
//   -e tcp.hdr_len
//   frame 2: 0 137.116.81.94 80 46656 0x0012 3078856592 797190860 8192 40
TEST(Captures, LinuxCookedTcpHandshake) {
  const auto frames = read_frames("tcp-handshake-nano.pcap");
  ASSERT_EQ(frames[0].link_type, link_type::kLinuxSll);
  const PacketView v = frame_view(frames, 2);
  EXPECT_FALSE(v.has_src_mac);
  EXPECT_EQ(v.src_ip().to_string(), "137.116.81.94");
  EXPECT_EQ(v.src_port, 80);
  EXPECT_EQ(v.dst_port, 46656);
  EXPECT_EQ(v.tcp_flags, 0x012);
  EXPECT_EQ(v.tcp_seq, 3078856592u);
  EXPECT_EQ(v.tcp_ack, 797190860u);
  EXPECT_EQ(v.tcp_window, 8192);
  EXPECT_EQ(v.tcp_header_length, 40);
}

// tshark -r LINKTYPE_RAW_ipv6.pcap -T fields -e ipv6.src -e ipv6.dst -e udp.srcport
//   -e udp.dstport -e ipv6.plen           2001:db8::1 2620:fe::9 12345 53 37
// tshark -r iqiyi.pcap -T fields -e ip.src -e ip.dst -e udp.srcport -e udp.dstport -e ip.len
//   frame 1: 10.215.173.1 116.211.199.199 50412 16600 163
TEST(Captures, RawIp) {
  const auto six = read_frames("LINKTYPE_RAW_ipv6.pcap");
  PacketView v = frame_view(six, 1);
  EXPECT_EQ(v.src_ip().to_string(), "2001:db8::1");
  EXPECT_EQ(v.dst_ip().to_string(), "2620:fe::9");
  EXPECT_EQ(v.src_port, 12345);
  EXPECT_EQ(v.dst_port, 53);
  EXPECT_EQ(v.l4_payload_length, 37u - 8u);
  const auto four = read_frames("iqiyi.pcap");
  v = frame_view(four, 1);
  EXPECT_EQ(v.src_ip().to_string(), "10.215.173.1");
  EXPECT_EQ(v.dst_port, 16600);
  EXPECT_EQ(v.ip_length, 163u);
}

// tshark -r nats.pcap -T fields -e null.family -e ip.src -e tcp.srcport -e tcp.dstport
//   -e tcp.flags                                   frame 1: 2 127.0.0.1 54820 4222 0x0002
// tshark -r quic_handshake.pcap -T fields -e null.family -e ipv6.src -e udp.srcport
//   -e udp.dstport -e ipv6.plen                   frame 1: 30 ::1 50606 443 1208
TEST(Captures, BsdLoopback) {
  const auto v4 = read_frames("nats.pcap");
  ASSERT_EQ(v4[0].link_type, link_type::kNull);
  PacketView v = frame_view(v4, 1);
  EXPECT_EQ(v.src_ip().to_string(), "127.0.0.1");
  EXPECT_EQ(v.src_port, 54820);
  EXPECT_EQ(v.dst_port, 4222);
  EXPECT_EQ(v.tcp_flags, kSyn);
  const auto v6 = read_frames("quic_handshake.pcap");
  v = frame_view(v6, 1);
  EXPECT_EQ(v.ip_version, 6);
  EXPECT_EQ(v.src_ip().to_string(), "::1");
  EXPECT_EQ(v.src_port, 50606);
  EXPECT_EQ(v.dst_port, 443);
  EXPECT_EQ(v.ip_length, 40u + 1208u);
}

// tshark -r ah.pcapng -T fields -e ip.proto -e ip.src -e icmp.type
//   frame 5: 51 10.2.3.2 8   (IPv4 AH: the protocol is AH; only IPv6 walks it)
TEST(Captures, Ipv4AuthenticationHeader) {
  const auto frames = read_frames("ah.pcapng");
  PacketView v = frame_view(frames, 5);
  EXPECT_EQ(v.protocol, kAh);
  EXPECT_FALSE(v.has_l4);
  EXPECT_EQ(v.src_ip().to_string(), "10.2.3.2");
  v = frame_view(frames, 1);
  EXPECT_EQ(v.src_port, 500);
}

const char* const kAllFixtures[] = {
    "802.1ad_QinQ.pcap",
    "dns.pcap",
    "vxlan.pcap",
    "gre.pcapng",
    "ipv6_in_gtp.pcap",
    "4in4tunnel.pcap",
    "6in6tunnel.pcap",
    "ipv6-routing-header.pcap",
    "icmpv6.pcap",
    "dns_fragmented.pcap",
    "ipv6_frag6_negative_len.pcap",
    "sctp.cap",
    "tcp-handshake-nano.pcap",
    "LINKTYPE_RAW_ipv6.pcap",
    "iqiyi.pcap",
    "nats.pcap",
    "quic_handshake.pcap",
    "ah.pcapng",
};

// What must hold for any view, whatever the input.
void expect_consistent(const PacketView& v, std::size_t frame_size) {
  if (v.is_ip()) {
    EXPECT_TRUE(v.ip_version == 4 || v.ip_version == 6);
    EXPECT_LE(v.l3_offset, frame_size);
    EXPECT_LE(v.l4_offset, frame_size);
    EXPECT_GE(v.l4_offset, v.l3_offset);
  }
  // A snap length may cut TCP options: then the payload starts beyond the capture.
  if (v.has_l4 && !v.truncated) {
    EXPECT_LE(v.payload_offset, frame_size);
  }
  EXPECT_LE(v.vlan_count, kMaxVlanTags);
  EXPECT_LE(v.mpls_depth, kMaxMplsLabels);
  EXPECT_LE(v.tunnel_depth, kDefaultMaxTunnelDepth);
}

// Every fixture parses without error, with and without tunnel stripping.
TEST(Captures, EveryFixtureFrameParses) {
  std::size_t frames_seen = 0;
  for (const char* name : kAllFixtures) {
    SCOPED_TRACE(name);
    for (const auto& f : read_frames(name)) {
      for (const ParseOptions& o : {kPlain, kStrip}) {
        const PacketView v = parsed(f.link_type, f.data, o);
        expect_consistent(v, f.data.size());
      }
      ++frames_seen;
    }
  }
  EXPECT_GT(frames_seen, 100u);
}

// Each prefix of each frame, in a buffer of exactly that size so that AddressSanitizer
// catches a read one byte too far. A cut frame either parses or is refused; if it parses,
// the view stays inside the bytes it was given.
TEST(Captures, EveryPrefixIsSafe) {
  for (const char* name : kAllFixtures) {
    SCOPED_TRACE(name);
    const auto frames = read_frames(name);
    for (std::size_t i = 0; i < frames.size() && i < 6; ++i) {
      const CapturedFrame& f = frames[i];
      const std::size_t limit = std::min<std::size_t>(f.data.size(), 200);
      for (std::size_t n = 0; n <= limit; ++n) {
        const auto cut = std::make_unique<std::byte[]>(n);
        std::copy_n(f.data.begin(), n, cut.get());
        for (const ParseOptions& o : {kPlain, kStrip}) {
          PacketView v;
          if (!parse_packet_into(f.link_type, {cut.get(), n}, o, v)) expect_consistent(v, n);
        }
      }
    }
  }
}

// Random single-byte and two-byte mutations of the fixture frames (fixed seed, so the
// test is the same every run): no crash, no out-of-bounds read, consistent views.
TEST(Captures, MutatedFramesAreSafe) {
  std::mt19937 rng(20261126);
  std::size_t refused_count = 0, parsed_count = 0;
  for (const char* name : kAllFixtures) {
    const auto frames = read_frames(name);
    for (std::size_t i = 0; i < frames.size() && i < 4; ++i) {
      const CapturedFrame& f = frames[i];
      const std::size_t n = std::min<std::size_t>(f.data.size(), 160);
      for (int round = 0; round < 300; ++round) {
        const auto buf = std::make_unique<std::byte[]>(n);
        std::copy_n(f.data.begin(), n, buf.get());
        for (int k = 0; k < 2; ++k) {
          buf[rng() % n] = static_cast<std::byte>(rng() & 0xff);
        }
        PacketView v;
        if (parse_packet_into(f.link_type, {buf.get(), n}, kStrip, v)) {
          ++refused_count;
        } else {
          ++parsed_count;
          expect_consistent(v, n);
        }
      }
    }
  }
  // Both outcomes must have happened, or the mutations tested nothing.
  EXPECT_GT(refused_count, 100u);
  EXPECT_GT(parsed_count, 100u);
}

}  // namespace
}  // namespace flowsec::packet
