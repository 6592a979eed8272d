// Packet parser, link layer: every link type, 802.1Q/QinQ, MPLS, PPPoE and
// non-IP frames, on frames built byte by byte (frame_builder.hpp).
#include <gtest/gtest.h>

#include "frame_builder.hpp"
#include "packet/parser.hpp"

namespace flowsec::packet {
namespace {

using namespace flowsec::packet::test;

Buf tcp_v4() {
  return ipv4(kTcp, tcp(40000, 443, kSyn));
}
Buf udp_v6() {
  return ipv6(kUdp, udp(5353, 53, zeros(4)));
}

TEST(LinkLayer, EthernetIpv4Tcp) {
  const Buf f = eth(kEtherIpv4, ipv4(kTcp, tcp(40000, 443, kSyn, zeros(10)), V4{.tos = 0xb8}));
  const PacketView v = parsed_eth(f);
  EXPECT_TRUE(v.has_dst_mac);
  EXPECT_TRUE(v.has_src_mac);
  EXPECT_EQ(v.dst_mac, kDstMac);
  EXPECT_EQ(v.src_mac, kSrcMac);
  EXPECT_EQ(v.ethertype, kEtherIpv4);
  EXPECT_EQ(v.vlan_count, 0);
  EXPECT_EQ(v.mpls_depth, 0);
  EXPECT_FALSE(v.has_pppoe);
  EXPECT_TRUE(v.is_ip());
  EXPECT_EQ(v.ip_version, 4);
  EXPECT_EQ(v.src_ip().to_string(), "192.0.2.1");
  EXPECT_EQ(v.dst_ip().to_string(), "198.51.100.2");
  EXPECT_EQ(v.tos, 0xb8);
  EXPECT_EQ(v.protocol, kTcp);
  EXPECT_TRUE(v.has_l4);
  EXPECT_EQ(v.src_port, 40000);
  EXPECT_EQ(v.dst_port, 443);
  EXPECT_EQ(v.l3_offset, 14u);
  EXPECT_EQ(v.l4_offset, 34u);
  EXPECT_EQ(v.payload_offset, 54u);
  EXPECT_EQ(v.ip_length, 50u);
  EXPECT_EQ(v.l4_payload_length, 10u);
  EXPECT_EQ(v.tunnel_depth, 0);
}

TEST(LinkLayer, EthernetTooShortAndNonIp) {
  Buf f = eth(kEtherArp, zeros(28));
  const PacketView arp = parsed_eth(f);
  EXPECT_EQ(arp.kind, PacketKind::not_ip);
  EXPECT_EQ(arp.ethertype, kEtherArp);
  EXPECT_TRUE(arp.has_src_mac);
  EXPECT_EQ(arp.src_mac, kSrcMac);
  // IEEE 802.3 length field (below 0x0600) followed by LLC: valid, not IP.
  EXPECT_EQ(parsed_eth(eth(0x0026, zeros(38))).kind, PacketKind::not_ip);
  f.resize(13);
  EXPECT_EQ(refused_eth(f), "truncated_l2");
  EXPECT_EQ(refused_eth({}), "truncated_l2");
}

TEST(LinkLayer, LinuxCookedV1) {
  // Packet type 0 (to us), ARPHRD_ETHER, address length 6, address + 2 pad bytes, protocol.
  Buf sll = cat(bytes({0, 0, 0, 1, 0, 6, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0, 0}), u16(0x0800));
  PacketView v = parsed(link_type::kLinuxSll, cat(sll, tcp_v4()));
  EXPECT_TRUE(v.has_src_mac);
  EXPECT_FALSE(v.has_dst_mac);
  EXPECT_EQ(v.src_mac, (std::array<std::uint8_t, 6>{0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}));
  EXPECT_EQ(v.l3_offset, 16u);
  EXPECT_EQ(v.dst_port, 443);
  // ARPHRD_PPP with no address, as tcpdump's tcp-handshake-nano.pcap has.
  Buf ppp = cat(bytes({0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), u16(0x86dd));
  v = parsed(link_type::kLinuxSll, cat(ppp, udp_v6()));
  EXPECT_FALSE(v.has_src_mac);
  EXPECT_EQ(v.ip_version, 6);
  EXPECT_EQ(v.src_port, 5353);
  // The kernel may leave the 802.1Q tag in place: protocol 0x8100, then the tag.
  Buf tagged = cat(bytes({0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0}), u16(kEtherVlan));
  v = parsed(link_type::kLinuxSll, cat(tagged, tag(42, kEtherIpv4, tcp_v4())));
  EXPECT_EQ(v.vlan_count, 1);
  EXPECT_EQ(v.vlan_outer, 42);
  EXPECT_EQ(v.src_port, 40000);
  EXPECT_EQ(refused(link_type::kLinuxSll, Buf(15)), "truncated_l2");
}

TEST(LinkLayer, LinuxCookedV2) {
  // Protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length 6, address.
  Buf sll2 = cat(cat(u16(0x86dd), bytes({0, 0, 0, 0, 0, 3, 0, 1, 4, 6})),
                 bytes({0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0, 0}));
  ASSERT_EQ(sll2.size(), 20u);
  const PacketView v = parsed(link_type::kLinuxSll2, cat(sll2, udp_v6()));
  EXPECT_TRUE(v.has_src_mac);
  EXPECT_EQ(v.src_mac, (std::array<std::uint8_t, 6>{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5}));
  EXPECT_EQ(v.l3_offset, 20u);
  EXPECT_EQ(v.ip_version, 6);
  EXPECT_EQ(v.dst_port, 53);
  EXPECT_EQ(refused(link_type::kLinuxSll2, Buf(19)), "truncated_l2");
}

TEST(LinkLayer, RawIpByVersionNibble) {
  for (int link : {link_type::kRaw, link_type::kRawDlt12, link_type::kRawDlt14}) {
    SCOPED_TRACE(link);
    PacketView v = parsed(link, tcp_v4());
    EXPECT_EQ(v.ip_version, 4);
    EXPECT_EQ(v.l3_offset, 0u);
    EXPECT_FALSE(v.has_src_mac);
    v = parsed(link, udp_v6());
    EXPECT_EQ(v.ip_version, 6);
    EXPECT_EQ(v.ethertype, kEtherIpv6);
    Buf bad = tcp_v4();
    bad[0] = std::byte{0x55};
    EXPECT_EQ(refused(link, bad), "bad_ip_version");
    EXPECT_EQ(refused(link, {}), "truncated_ip");
  }
}

TEST(LinkLayer, RawIpv4AndIpv6OnlyLinkTypes) {
  EXPECT_EQ(parsed(link_type::kIpv4, tcp_v4()).ip_version, 4);
  EXPECT_EQ(parsed(link_type::kIpv6, udp_v6()).ip_version, 6);
  EXPECT_EQ(refused(link_type::kIpv4, udp_v6()), "bad_ip_version");
  EXPECT_EQ(refused(link_type::kIpv6, tcp_v4()), "bad_ip_version");
}

TEST(LinkLayer, BsdNullAndLoopInEitherByteOrder) {
  // DLT_NULL: the family in the capturing host's byte order; DLT_LOOP: network order.
  const Buf le_inet = bytes({2, 0, 0, 0});
  const Buf be_inet = bytes({0, 0, 0, 2});
  EXPECT_EQ(parsed(link_type::kNull, cat(le_inet, tcp_v4())).ip_version, 4);
  EXPECT_EQ(parsed(link_type::kNull, cat(be_inet, tcp_v4())).ip_version, 4);
  EXPECT_EQ(parsed(link_type::kLoop, cat(be_inet, tcp_v4())).ip_version, 4);
  for (int family : {10, 24, 28, 30}) {  // AF_INET6 of Linux, *BSD, FreeBSD, Darwin
    SCOPED_TRACE(family);
    const PacketView v = parsed(link_type::kNull, cat(bytes({family, 0, 0, 0}), udp_v6()));
    EXPECT_EQ(v.ip_version, 6);
    EXPECT_EQ(v.l3_offset, 4u);
  }
  EXPECT_EQ(parsed(link_type::kNull, cat(bytes({7, 0, 0, 0}), zeros(20))).kind, PacketKind::not_ip);
  EXPECT_EQ(refused(link_type::kNull, bytes({2, 0, 0})), "truncated_l2");
  // The family promises IPv4; an IPv6 packet behind it is a lie.
  EXPECT_EQ(refused(link_type::kNull, cat(le_inet, udp_v6())), "bad_ip_version");
}

TEST(LinkLayer, UnknownLinkType) {
  EXPECT_EQ(refused(105, tcp_v4()), "unknown_link_type");  // IEEE 802.11
  EXPECT_EQ(refused(9, tcp_v4()), "unknown_link_type");    // PPP
  EXPECT_EQ(refused(-1, tcp_v4()), "unknown_link_type");
}

TEST(LinkLayer, VlanTagsAndQinQ) {
  PacketView v = parsed_eth(eth(kEtherVlan, tag(100, kEtherIpv4, tcp_v4(), 5)));
  EXPECT_EQ(v.vlan_count, 1);
  EXPECT_EQ(v.vlan_outer, 100);  // PCP bits are not part of the id
  EXPECT_EQ(v.vlan_inner, 0);
  EXPECT_EQ(v.l3_offset, 18u);
  EXPECT_EQ(v.dst_port, 443);
  for (std::uint16_t outer_tpid : {kEtherQinQ, kEtherQinQLegacy, kEtherVlan}) {
    SCOPED_TRACE(outer_tpid);
    v = parsed_eth(eth(outer_tpid, tag(200, kEtherVlan, tag(4094, kEtherIpv6, udp_v6()))));
    EXPECT_EQ(v.vlan_count, 2);
    EXPECT_EQ(v.vlan_outer, 200);
    EXPECT_EQ(v.vlan_inner, 4094);
    EXPECT_EQ(v.l3_offset, 22u);
    EXPECT_EQ(v.ip_version, 6);
  }
  // Tags on a non-IP frame are still reported.
  v = parsed_eth(eth(kEtherQinQ, tag(7, kEtherVlan, tag(8, kEtherArp, zeros(28)))));
  EXPECT_EQ(v.kind, PacketKind::not_ip);
  EXPECT_EQ(v.vlan_outer, 7);
  EXPECT_EQ(v.vlan_inner, 8);
  EXPECT_EQ(v.ethertype, kEtherArp);
}

TEST(LinkLayer, VlanLimitsAndTruncation) {
  const Buf three =
      eth(kEtherQinQ, tag(1, kEtherVlan, tag(2, kEtherVlan, tag(3, kEtherIpv4, tcp_v4()))));
  EXPECT_EQ(refused_eth(three), "too_many_vlans");
  Buf cut = eth(kEtherVlan, tag(100, kEtherIpv4, {}));
  cut.resize(17);
  EXPECT_EQ(refused_eth(cut), "truncated_l2");
}

TEST(LinkLayer, MplsLabelStack) {
  // One label, IPv4 below (guessed from the version nibble).
  PacketView v = parsed_eth(eth(kEtherMpls, mpls(16, true, tcp_v4())));
  EXPECT_EQ(v.mpls_depth, 1);
  EXPECT_EQ(v.mpls_top_label, 16u);
  EXPECT_EQ(v.ip_version, 4);
  EXPECT_EQ(v.ethertype, kEtherIpv4);
  EXPECT_EQ(v.l3_offset, 18u);
  EXPECT_EQ(v.dst_port, 443);
  // Multicast EtherType, three labels, IPv6 below; the top label is the first one.
  v = parsed_eth(
      eth(kEtherMplsMulticast, mpls(0xfffff, false, mpls(3000, false, mpls(17, true, udp_v6())))));
  EXPECT_EQ(v.mpls_depth, 3);
  EXPECT_EQ(v.mpls_top_label, 0xfffffu);
  EXPECT_EQ(v.ip_version, 6);
  EXPECT_EQ(v.src_port, 5353);
  // Under a VLAN tag.
  v = parsed_eth(eth(kEtherVlan, tag(5, kEtherMpls, mpls(99, true, tcp_v4()))));
  EXPECT_EQ(v.vlan_outer, 5);
  EXPECT_EQ(v.mpls_top_label, 99u);
  EXPECT_EQ(v.ip_version, 4);
  // A pseudowire control word (first nibble 0, RFC 4385) with Ethernet behind: not IP.
  v = parsed_eth(eth(kEtherMpls, mpls(20, true, cat(u32(0), eth(kEtherIpv4, tcp_v4())))));
  EXPECT_EQ(v.kind, PacketKind::not_ip);
  EXPECT_EQ(v.mpls_depth, 1);
}

TEST(LinkLayer, MplsLimitsAndTruncation) {
  auto stack = [](std::size_t n) {
    Buf b = tcp_v4();
    for (std::size_t i = n; i-- > 0;) b = mpls(static_cast<std::uint32_t>(100 + i), i + 1 == n, b);
    return eth(kEtherMpls, b);
  };
  EXPECT_EQ(parsed_eth(stack(kMaxMplsLabels)).mpls_depth, kMaxMplsLabels);
  EXPECT_EQ(refused_eth(stack(kMaxMplsLabels + 1)), "too_many_mpls_labels");
  // No bottom-of-stack bit before the frame ends.
  EXPECT_EQ(refused_eth(eth(kEtherMpls, mpls(1, false, mpls(2, false, {})))), "truncated_l2");
  // Bottom of stack, then nothing.
  EXPECT_EQ(refused_eth(eth(kEtherMpls, mpls(1, true, {}))), "truncated_l2");
  Buf cut = eth(kEtherMpls, mpls(1, true, {}));
  cut.resize(16);
  EXPECT_EQ(refused_eth(cut), "truncated_l2");
}

TEST(LinkLayer, PppoeSession) {
  PacketView v = parsed_eth(eth(kEtherPppoe, pppoe(0x556a, 0x0021, tcp_v4())));
  EXPECT_TRUE(v.has_pppoe);
  EXPECT_EQ(v.pppoe_session, 0x556a);
  EXPECT_EQ(v.ip_version, 4);
  EXPECT_EQ(v.l3_offset, 22u);
  EXPECT_EQ(v.dst_port, 443);
  v = parsed_eth(eth(kEtherVlan, tag(9, kEtherPppoe, pppoe(1, 0x0057, udp_v6()))));
  EXPECT_EQ(v.vlan_outer, 9);
  EXPECT_EQ(v.pppoe_session, 1);
  EXPECT_EQ(v.ip_version, 6);
  EXPECT_EQ(v.dst_port, 53);
  // PPP control (LCP 0xc021) is not IP, but the session is still known.
  v = parsed_eth(eth(kEtherPppoe, pppoe(77, 0xc021, zeros(10))));
  EXPECT_EQ(v.kind, PacketKind::not_ip);
  EXPECT_TRUE(v.has_pppoe);
  EXPECT_EQ(v.pppoe_session, 77);
  // Discovery stage (0x8863) is a different EtherType: not IP, no session.
  v = parsed_eth(eth(0x8863, zeros(20)));
  EXPECT_EQ(v.kind, PacketKind::not_ip);
  EXPECT_FALSE(v.has_pppoe);
  // Version/type other than 1/1 (RFC 2516 §4): not a session frame we read.
  Buf odd = eth(kEtherPppoe, pppoe(5, 0x0021, tcp_v4()));
  odd[14] = std::byte{0x21};
  EXPECT_EQ(parsed_eth(odd).kind, PacketKind::not_ip);
}

TEST(LinkLayer, PppoeLengthBoundsThePacket) {
  // The PPPoE length ends the PPP payload: trailing Ethernet padding is not IP data.
  Buf f = eth(kEtherPppoe, pppoe(3, 0x0021, ipv4(kUdp, udp(1, 2))));
  f = cat(f, zeros(12));
  PacketView v = parsed_eth(f);
  EXPECT_EQ(v.ip_length, 28u);
  EXPECT_FALSE(v.truncated);
  // A PPPoE length that cuts the IPv4 header short.
  put16(f, 18, 12);
  EXPECT_EQ(refused_eth(f), "truncated_ip");
  put16(f, 18, 1);  // below the 2-byte PPP protocol field
  EXPECT_EQ(refused_eth(f), "truncated_l2");
  Buf cut = eth(kEtherPppoe, pppoe(3, 0x0021, {}));
  cut.resize(21);
  EXPECT_EQ(refused_eth(cut), "truncated_l2");
}

}  // namespace
}  // namespace flowsec::packet
