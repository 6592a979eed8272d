// Packet parser, network and transport layers: IPv4 (options, lengths, TSO,
// fragments), IPv6 (extension headers, fragments, jumbograms), TCP, UDP, UDP-Lite,
// SCTP, ICMP and ICMPv6, with every malformed reason these layers can report.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "frame_builder.hpp"
#include "packet/parser.hpp"

namespace flowsec::packet {
namespace {

using namespace flowsec::packet::test;

// --- IPv4 (RFC 791) ---

TEST(Ipv4, HeaderFields) {
  const V4 o{.src = {10, 1, 2, 3}, .dst = {172, 16, 0, 9}, .tos = 0x2e, .ttl = 17, .id = 0xbeef};
  const PacketView v = parsed_eth(eth(kEtherIpv4, ipv4(kUdp, udp(68, 67, zeros(100)), o)));
  EXPECT_EQ(v.src_ip().to_string(), "10.1.2.3");
  EXPECT_EQ(v.dst_ip().to_string(), "172.16.0.9");
  EXPECT_EQ(v.src_addr[4], 0);  // the rest of the 16 bytes stays zero for flow keys
  EXPECT_EQ(v.tos, 0x2e);
  EXPECT_EQ(v.ttl, 17);
  EXPECT_EQ(v.fragment_id, 0xbeefu);
  EXPECT_FALSE(v.is_fragment);  // DF only
  EXPECT_EQ(v.ip_header_length, 20);
  EXPECT_EQ(v.ip_length, 128u);
  EXPECT_FALSE(v.truncated);
  EXPECT_FALSE(v.length_from_capture);
  EXPECT_EQ(v.protocol, kUdp);
  EXPECT_EQ(v.src_port, 68);
  EXPECT_EQ(v.dst_port, 67);
  EXPECT_EQ(v.l4_payload_length, 100u);
}

TEST(Ipv4, OptionsMoveTheTransportHeader) {
  const PacketView v =
      parsed_eth(eth(kEtherIpv4, ipv4(kTcp, tcp(1, 2, kAck), V4{.option_bytes = 12})));
  EXPECT_EQ(v.ip_header_length, 32);
  EXPECT_EQ(v.l4_offset, 14u + 32u);
  EXPECT_EQ(v.src_port, 1);
}

TEST(Ipv4, MalformedHeaders) {
  const Buf good = eth(kEtherIpv4, ipv4(kTcp, tcp(1, 2, kAck)));
  Buf f = good;
  f[14] = std::byte{0x44};  // IHL 4 (RFC 791: at least 5)
  EXPECT_EQ(refused_eth(f), "bad_ihl");
  f = good;
  f[14] = std::byte{0x65};  // EtherType IPv4, version 6
  EXPECT_EQ(refused_eth(f), "bad_ip_version");
  f = good;
  f[14] = std::byte{0x4f};  // IHL 15 = 60 bytes, only 40 after the Ethernet header
  EXPECT_EQ(refused_eth(f), "truncated_ip");
  f = good;
  f.resize(14 + 19);
  EXPECT_EQ(refused_eth(f), "truncated_ip");
  f = good;
  put16(f, 16, 19);  // total length below the header length
  EXPECT_EQ(refused_eth(f), "bad_ip_length");
}

TEST(Ipv4, SnapLengthCutsOnlyThePayload) {
  Buf f = eth(kEtherIpv4, ipv4(kTcp, tcp(1, 2, kAck | kPsh, zeros(1460))));
  f.resize(14 + 20 + 20 + 10);
  const PacketView v = parsed_eth(f);
  EXPECT_TRUE(v.truncated);
  EXPECT_EQ(v.ip_length, 1500u);
  EXPECT_EQ(v.l4_payload_length, 1460u);
  EXPECT_TRUE(v.has_l4);
}

TEST(Ipv4, EthernetPaddingIsNotPayload) {
  Buf f = eth(kEtherIpv4, ipv4(kUdp, udp(1, 2)));
  f = cat(f, Buf(18, std::byte{0xff}));  // padded to the 60-byte Ethernet minimum
  const PacketView v = parsed_eth(f);
  EXPECT_EQ(v.ip_length, 28u);
  EXPECT_EQ(v.l4_payload_length, 0u);
  EXPECT_FALSE(v.truncated);
}

TEST(Ipv4, ZeroTotalLengthIsATsoCapture) {
  Buf f = eth(kEtherIpv4, ipv4(kTcp, tcp(1, 2, kAck, zeros(3000))));
  put16(f, 16, 0);
  const PacketView v = parsed_eth(f);
  EXPECT_TRUE(v.length_from_capture);
  EXPECT_EQ(v.ip_length, 3040u);
  EXPECT_EQ(v.l4_payload_length, 3000u);
}

TEST(Ipv4, Fragments) {
  // First fragment: MF, offset 0 — the UDP header is here.
  PacketView v = parsed_eth(
      eth(kEtherIpv4, ipv4(kUdp, udp(53, 5000, zeros(100)), V4{.id = 7, .flags_frag = 0x2000})));
  EXPECT_TRUE(v.is_fragment);
  EXPECT_TRUE(v.first_fragment());
  EXPECT_TRUE(v.more_fragments);
  EXPECT_EQ(v.fragment_offset, 0);
  EXPECT_TRUE(v.has_l4);
  EXPECT_EQ(v.src_port, 53);
  // Middle fragment: MF, offset 185 (1480 bytes) — no transport header (RFC 791 §3.2).
  v = parsed_eth(eth(kEtherIpv4, ipv4(kUdp, zeros(100), V4{.id = 7, .flags_frag = 0x2000 | 185})));
  EXPECT_TRUE(v.is_fragment);
  EXPECT_FALSE(v.first_fragment());
  EXPECT_EQ(v.fragment_offset, 185);
  EXPECT_EQ(v.fragment_id, 7u);
  EXPECT_FALSE(v.has_l4);
  EXPECT_EQ(v.src_port, 0);
  EXPECT_EQ(v.protocol, kUdp);
  EXPECT_EQ(v.l4_payload_length, 100u);
  // Last fragment: offset, no MF. Its bytes would fail as a UDP header; they are not read.
  v = parsed_eth(eth(kEtherIpv4, ipv4(kUdp, zeros(3), V4{.flags_frag = 370})));
  EXPECT_TRUE(v.is_fragment);
  EXPECT_FALSE(v.more_fragments);
  EXPECT_FALSE(v.has_l4);
}

// --- IPv6 (RFC 8200) ---

TEST(Ipv6, HeaderFields) {
  const V6 o{.traffic_class = 0xa1, .flow_label = 0x12345, .hop_limit = 3};
  const PacketView v = parsed_eth(eth(kEtherIpv6, ipv6(kTcp, tcp(5, 6, kSyn), o)));
  EXPECT_EQ(v.ip_version, 6);
  EXPECT_EQ(v.src_ip().to_string(), "2001:db8::1");
  EXPECT_EQ(v.dst_ip().to_string(), "2001:db8::2");
  EXPECT_EQ(v.tos, 0xa1);
  EXPECT_EQ(v.flow_label, 0x12345u);
  EXPECT_EQ(v.ttl, 3);
  EXPECT_EQ(v.ip_length, 60u);
  EXPECT_EQ(v.ip_header_length, 40);
  EXPECT_EQ(v.protocol, kTcp);
  EXPECT_EQ(v.dst_port, 6);
  Buf cut = eth(kEtherIpv6, ipv6(kTcp, {}));
  cut.resize(14 + 39);
  EXPECT_EQ(refused_eth(cut), "truncated_ip");
  Buf v4_nibble = eth(kEtherIpv6, ipv6(kTcp, tcp(5, 6, kSyn)));
  v4_nibble[14] = std::byte{0x45};
  EXPECT_EQ(refused_eth(v4_nibble), "bad_ip_version");
}

TEST(Ipv6, ExtensionHeaderChain) {
  // Hop-by-hop (8) -> routing (16) -> destination options (8) -> TCP.
  const Buf chain = ext8(43, 0, ext8(60, 1, ext8(kTcp, 0, tcp(1000, 22, kAck))));
  const PacketView v = parsed_eth(eth(kEtherIpv6, ipv6(0, chain)));
  EXPECT_EQ(v.protocol, kTcp);
  EXPECT_EQ(v.ip_header_length, 40 + 8 + 16 + 8);
  EXPECT_EQ(v.l4_offset, 14u + 72u);
  EXPECT_EQ(v.src_port, 1000);
  EXPECT_EQ(v.dst_port, 22);
  EXPECT_EQ(v.l4_payload_length, 0u);
}

TEST(Ipv6, AuthenticationHeaderIsWalked) {
  const PacketView v = parsed_eth(eth(kEtherIpv6, ipv6(kAh, ah(kUdp, udp(500, 500)))));
  EXPECT_EQ(v.protocol, kUdp);
  EXPECT_EQ(v.ip_header_length, 40 + 24);
  EXPECT_EQ(v.src_port, 500);
}

TEST(Ipv6, MobilityEspAndNoNextHeaderStop) {
  // Mobility header (RFC 6275 §6.1.1) whose payload proto is No Next Header.
  PacketView v = parsed_eth(eth(kEtherIpv6, ipv6(135, ext8(59, 1, {}))));
  EXPECT_EQ(v.protocol, 59);
  EXPECT_FALSE(v.has_l4);
  EXPECT_EQ(v.ip_header_length, 40 + 16);
  v = parsed_eth(eth(kEtherIpv6, ipv6(0, ext8(kEsp, 0, zeros(40)))));
  EXPECT_EQ(v.protocol, kEsp);
  EXPECT_FALSE(v.has_l4);
  EXPECT_EQ(v.l4_payload_length, 40u);
  v = parsed_eth(eth(kEtherIpv6, ipv6(59, zeros(7))));
  EXPECT_EQ(v.protocol, 59);
  EXPECT_FALSE(v.has_l4);
}

TEST(Ipv6, Fragments) {
  PacketView v = parsed_eth(
      eth(kEtherIpv6, ipv6(44, frag6(kUdp, 0, true, 0x28403c0b, udp(53, 46433, zeros(64))))));
  EXPECT_TRUE(v.is_fragment);
  EXPECT_TRUE(v.first_fragment());
  EXPECT_EQ(v.fragment_id, 0x28403c0bu);
  EXPECT_EQ(v.protocol, kUdp);
  EXPECT_TRUE(v.has_l4);
  EXPECT_EQ(v.src_port, 53);
  v = parsed_eth(eth(kEtherIpv6, ipv6(44, frag6(kUdp, 181, false, 0x28403c0b, zeros(5)))));
  EXPECT_TRUE(v.is_fragment);
  EXPECT_FALSE(v.more_fragments);
  EXPECT_EQ(v.fragment_offset, 181);
  EXPECT_EQ(v.protocol, kUdp);
  EXPECT_FALSE(v.has_l4);
  EXPECT_EQ(v.ip_header_length, 48);
}

TEST(Ipv6, MalformedExtensionHeaders) {
  // RFC 8200 §4.1: hop-by-hop only right after the IPv6 header.
  EXPECT_EQ(refused_eth(eth(kEtherIpv6, ipv6(60, ext8(0, 0, ext8(kTcp, 0, tcp(1, 2, 0)))))),
            "bad_ipv6_extension");
  // One more than the cap.
  Buf chain = udp(1, 2);
  for (std::size_t i = 0; i <= kMaxIpv6ExtensionHeaders; ++i) {
    chain = ext8(i == 0 ? kUdp : 60, 0, chain);
  }
  EXPECT_EQ(refused_eth(eth(kEtherIpv6, ipv6(60, chain))), "too_many_ipv6_extensions");
  // Cut by the capture inside the routing header.
  Buf f = eth(kEtherIpv6, ipv6(43, ext8(kTcp, 2, tcp(1, 2, 0))));
  f.resize(14 + 40 + 20);
  EXPECT_EQ(refused_eth(f), "truncated_ip");
  f.resize(14 + 40 + 1);
  EXPECT_EQ(refused_eth(f), "truncated_ip");
  // The payload length ends before the extension header does.
  f = eth(kEtherIpv6, ipv6(43, ext8(kTcp, 2, tcp(1, 2, 0))));
  put16(f, 14 + 4, 16);
  EXPECT_EQ(refused_eth(f), "bad_ip_length");
}

TEST(Ipv6, JumbogramLengthFromHopByHop) {
  // RFC 2675: payload length 0, Jumbo Payload option (0xC2, 4 bytes) in hop-by-hop.
  Buf hbh = bytes({kUdp, 0, 0xc2, 4, 0, 0, 0, 0});
  put32(hbh, 4, 70000);
  Buf f = eth(kEtherIpv6, ipv6(0, cat(hbh, udp(9, 10, zeros(16)))));
  put16(f, 14 + 4, 0);
  const PacketView v = parsed_eth(f);
  EXPECT_FALSE(v.length_from_capture);
  EXPECT_EQ(v.ip_length, 70040u);
  EXPECT_TRUE(v.truncated);
  EXPECT_EQ(v.dst_port, 10);
  EXPECT_EQ(v.l4_payload_length, 70000u - 8u - 8u);
}

TEST(Ipv6, ZeroPayloadLengthWithoutJumboIsATsoCapture) {
  Buf f = eth(kEtherIpv6, ipv6(kTcp, tcp(1, 2, kAck, zeros(2000))));
  put16(f, 14 + 4, 0);
  const PacketView v = parsed_eth(f);
  EXPECT_TRUE(v.length_from_capture);
  EXPECT_EQ(v.ip_length, 2060u);
  EXPECT_EQ(v.l4_payload_length, 2000u);
}

// --- transport ---

TEST(Transport, TcpFields) {
  const Buf seg = tcp(443, 51000, kSyn | kAck | 0x100, zeros(7), 12, 0x01020304, 0xa0b0c0d0, 512);
  const PacketView v = parsed_eth(eth(kEtherIpv4, ipv4(kTcp, seg)));
  EXPECT_EQ(v.tcp_flags, 0x112);  // NS/AE kept: tcpControlBits is 16 bits (RFC 7125)
  EXPECT_EQ(v.tcp_seq, 0x01020304u);
  EXPECT_EQ(v.tcp_ack, 0xa0b0c0d0u);
  EXPECT_EQ(v.tcp_window, 512);
  EXPECT_EQ(v.tcp_header_length, 32);
  EXPECT_EQ(v.payload_offset, 14u + 20u + 32u);
  EXPECT_EQ(v.l4_payload_length, 7u);
}

TEST(Transport, TcpOptionsCutBySnapLengthAreFine) {
  Buf f = eth(kEtherIpv4, ipv4(kTcp, tcp(1, 2, kAck, {}, 20)));
  f.resize(14 + 20 + 24);
  const PacketView v = parsed_eth(f);
  EXPECT_TRUE(v.has_l4);
  EXPECT_EQ(v.tcp_header_length, 40);
  EXPECT_TRUE(v.truncated);
}

TEST(Transport, TcpMalformed) {
  Buf f = eth(kEtherIpv4, ipv4(kTcp, tcp(1, 2, kAck)));
  f[14 + 20 + 12] = std::byte{0x40};  // data offset 4 (RFC 9293: at least 5)
  EXPECT_EQ(refused_eth(f), "bad_tcp_header");
  f[14 + 20 + 12] = std::byte{0xf0};  // 60 bytes of header in a 20-byte IP payload
  EXPECT_EQ(refused_eth(f), "bad_tcp_header");
  f = eth(kEtherIpv4, ipv4(kTcp, tcp(1, 2, kAck)));
  f.resize(14 + 20 + 19);
  EXPECT_EQ(refused_eth(f), "truncated_l4");
  // Captured in full, but the IP length leaves only 10 bytes for TCP.
  f = eth(kEtherIpv4, ipv4(kTcp, tcp(1, 2, kAck)));
  put16(f, 16, 30);
  EXPECT_EQ(refused_eth(f), "truncated_l4");
}

TEST(Transport, UdpUdpLiteSctpIcmp) {
  PacketView v = parsed_eth(eth(kEtherIpv4, ipv4(kUdpLite, udp(7, 8, zeros(2)))));
  EXPECT_EQ(v.protocol, kUdpLite);
  EXPECT_EQ(v.src_port, 7);
  EXPECT_EQ(v.l4_payload_length, 2u);
  v = parsed_eth(eth(kEtherIpv4, ipv4(kSctp, sctp(2905, 2944, zeros(16)))));
  EXPECT_EQ(v.protocol, kSctp);
  EXPECT_EQ(v.src_port, 2905);
  EXPECT_EQ(v.dst_port, 2944);
  EXPECT_EQ(v.l4_payload_length, 16u);
  v = parsed_eth(eth(kEtherIpv4, ipv4(kIcmp, icmp(3, 13, zeros(28)))));
  EXPECT_EQ(v.icmp_type, 3);
  EXPECT_EQ(v.icmp_code, 13);
  EXPECT_EQ(v.src_port, 0);
  EXPECT_TRUE(v.has_l4);
  v = parsed_eth(eth(kEtherIpv6, ipv6(kIcmpv6, icmp(128, 0))));
  EXPECT_EQ(v.icmp_type, 128);
  EXPECT_EQ(v.l4_payload_length, 4u);                    // ICMPv6's fixed header is 4 bytes
  v = parsed_eth(eth(kEtherIpv4, ipv4(89, zeros(44))));  // OSPF: nothing we read
  EXPECT_EQ(v.protocol, 89);
  EXPECT_FALSE(v.has_l4);
  EXPECT_EQ(v.l4_payload_length, 44u);
}

TEST(Transport, ShortHeadersAreTruncated) {
  struct Case {
    std::uint8_t proto;
    std::size_t have;
  };
  for (const Case& c : {Case{kUdp, 7}, Case{kSctp, 11}, Case{kIcmp, 7}}) {
    SCOPED_TRACE(int{c.proto});
    EXPECT_EQ(refused_eth(eth(kEtherIpv4, ipv4(c.proto, zeros(c.have)))), "truncated_l4");
  }
  EXPECT_EQ(refused_eth(eth(kEtherIpv6, ipv6(kIcmpv6, zeros(3)))), "truncated_l4");
}

TEST(Malformed, EveryReasonHasItsOwnLabel) {
  std::set<std::string> labels;
  for (std::size_t i = 0; i < kMalformedCount; ++i) {
    const auto label = std::string(to_string(static_cast<Malformed>(i)));
    EXPECT_NE(label, "unknown");
    EXPECT_FALSE(label.empty());
    labels.insert(label);
  }
  EXPECT_EQ(labels.size(), kMalformedCount);
  EXPECT_EQ(to_string(PacketKind::not_ip), "not_ip");
  EXPECT_EQ(to_string(TunnelType::gtp_u), "gtp_u");
}

TEST(Malformed, PartialViewKeepsTheLayersBeforeTheFailure) {
  Buf f = eth(kEtherIpv4, ipv4(kTcp, tcp(1, 2, kAck)));
  f.resize(14 + 20 + 10);
  PacketView v;
  const auto err = parse_packet_into(link_type::kEthernet, span(f), kPlain, v);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(*err, Malformed::truncated_l4);
  EXPECT_TRUE(v.is_ip());
  EXPECT_EQ(v.src_ip().to_string(), "192.0.2.1");
  EXPECT_EQ(v.protocol, kTcp);
  EXPECT_FALSE(v.has_l4);
  // The same call on a good frame overwrites everything from the previous one.
  const Buf arp = eth(kEtherArp, zeros(28));
  EXPECT_FALSE(parse_packet_into(link_type::kEthernet, span(arp), kPlain, v).has_value());
  EXPECT_FALSE(v.is_ip());
  EXPECT_EQ(v.protocol, 0);
}

}  // namespace
}  // namespace flowsec::packet
