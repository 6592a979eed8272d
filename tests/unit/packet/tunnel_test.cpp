// Packet parser, tunnels (ParseOptions::strip_tunnels, SPEC `--tunnel`): VXLAN,
// GRE (RFC 2784/2890 and PPTP's enhanced GRE), IP-in-IP, GTP-U; nesting limits;
// and what the view holds when the inner packet is bad.
#include <gtest/gtest.h>

#include "frame_builder.hpp"
#include "packet/parser.hpp"

namespace flowsec::packet {
namespace {

using namespace flowsec::packet::test;

const V4 kInner{.src = {10, 0, 0, 1}, .dst = {10, 0, 0, 2}, .ttl = 9};
const V6 kInner6{.src = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
                 .dst = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}};

Buf inner_tcp() {
  return ipv4(kTcp, tcp(33000, 80, kSyn, zeros(5)), kInner);
}
Buf inner_udp6() {
  return ipv6(kUdp, udp(1111, 2222), kInner6);
}
// An outer IPv4/UDP packet to `port` with `payload`, in an Ethernet frame with one VLAN tag.
Buf outer_udp(std::uint16_t port, const Buf& payload) {
  return eth(kEtherVlan, tag(300, kEtherIpv4, ipv4(kUdp, udp(49152, port, payload))));
}

void expect_inner_tcp(const PacketView& v) {
  EXPECT_EQ(v.src_ip().to_string(), "10.0.0.1");
  EXPECT_EQ(v.dst_ip().to_string(), "10.0.0.2");
  EXPECT_EQ(v.ttl, 9);
  EXPECT_EQ(v.protocol, kTcp);
  EXPECT_EQ(v.src_port, 33000);
  EXPECT_EQ(v.dst_port, 80);
  EXPECT_EQ(v.tcp_flags, kSyn);
  EXPECT_EQ(v.l4_payload_length, 5u);
}

TEST(Tunnels, LeftInPlaceUnlessAsked) {
  const Buf f = outer_udp(4789, vxlan(100, eth(kEtherIpv4, inner_tcp())));
  const PacketView v = parsed_eth(f);
  EXPECT_EQ(v.tunnel_depth, 0);
  EXPECT_EQ(v.tunnel_type, TunnelType::none);
  EXPECT_EQ(v.src_ip().to_string(), "192.0.2.1");
  EXPECT_EQ(v.dst_port, 4789);
  const PacketView g = parsed_eth(eth(kEtherIpv4, ipv4(kGre, gre(kEtherIpv4, inner_tcp()))));
  EXPECT_EQ(g.protocol, kGre);
  EXPECT_FALSE(g.has_l4);
}

TEST(Tunnels, Vxlan) {
  const Buf f = outer_udp(4789, vxlan(0xabcdef, eth(kEtherIpv4, inner_tcp())));
  const PacketView v = parsed_eth(f, kStrip);
  expect_inner_tcp(v);
  EXPECT_EQ(v.tunnel_depth, 1);
  EXPECT_EQ(v.tunnel_type, TunnelType::vxlan);
  EXPECT_EQ(v.tunnel_id, 0xabcdefu);
  // Link-layer facts stay those of the captured frame.
  EXPECT_EQ(v.vlan_count, 1);
  EXPECT_EQ(v.vlan_outer, 300);
  EXPECT_EQ(v.src_mac, kSrcMac);
  // Offsets point into the frame at the inner headers: 18 + 20 + 8 + 8 + 14.
  EXPECT_EQ(v.l3_offset, 68u);
  EXPECT_EQ(v.l4_offset, 88u);
}

TEST(Tunnels, VxlanVariants) {
  // Inner VLAN tags are skipped, not reported.
  PacketView v = parsed_eth(
      outer_udp(4789, vxlan(1, eth(kEtherVlan, tag(55, kEtherIpv6, inner_udp6())))), kStrip);
  EXPECT_EQ(v.vlan_count, 1);
  EXPECT_EQ(v.vlan_outer, 300);
  EXPECT_EQ(v.ip_version, 6);
  EXPECT_EQ(v.dst_port, 2222);
  // I flag clear (RFC 7348 §5): no valid VNI, the UDP packet is the flow.
  v = parsed_eth(outer_udp(4789, vxlan(1, eth(kEtherIpv4, inner_tcp()), 0x00)), kStrip);
  EXPECT_EQ(v.tunnel_depth, 0);
  EXPECT_EQ(v.dst_port, 4789);
  // Inner ARP: the tunnel is removed and what it carries is not IP.
  v = parsed_eth(outer_udp(4789, vxlan(7, eth(kEtherArp, zeros(28)))), kStrip);
  EXPECT_EQ(v.kind, PacketKind::not_ip);
  EXPECT_EQ(v.tunnel_depth, 1);
  EXPECT_EQ(v.ethertype, kEtherArp);
  // Seven bytes where the 8-byte VXLAN header should be.
  EXPECT_EQ(refused_eth(outer_udp(4789, zeros(7)), kStrip), "bad_tunnel_header");
}

TEST(Tunnels, GrePlainAndWithOptionalFields) {
  PacketView v = parsed_eth(eth(kEtherIpv4, ipv4(kGre, gre(kEtherIpv4, inner_tcp()))), kStrip);
  expect_inner_tcp(v);
  EXPECT_EQ(v.tunnel_type, TunnelType::gre);
  EXPECT_EQ(v.tunnel_id, 0u);
  EXPECT_EQ(v.l3_offset, 14u + 20u + 4u);
  // Checksum, key and sequence (RFC 2784 §2.1, RFC 2890 §2): 16 bytes of GRE.
  v = parsed_eth(eth(kEtherIpv4, ipv4(kGre, gre(kEtherIpv4, inner_tcp(), true, 0x11223344, 99))),
                 kStrip);
  expect_inner_tcp(v);
  EXPECT_EQ(v.tunnel_id, 0x11223344u);
  EXPECT_EQ(v.l3_offset, 14u + 20u + 16u);
  v = parsed_eth(eth(kEtherIpv6, ipv6(kGre, gre(kEtherIpv6, inner_udp6(), false, 5))), kStrip);
  EXPECT_EQ(v.dst_ip().to_string(), "fd00::2");
  EXPECT_EQ(v.dst_port, 2222);
  EXPECT_EQ(v.tunnel_id, 5u);
}

TEST(Tunnels, GreCarryingEthernetAndMpls) {
  PacketView v = parsed_eth(
      eth(kEtherIpv4, ipv4(kGre, gre(kEtherTeb, eth(kEtherIpv4, inner_tcp()), false, 42))), kStrip);
  expect_inner_tcp(v);
  EXPECT_EQ(v.tunnel_id, 42u);
  EXPECT_EQ(v.mpls_depth, 0);
  v = parsed_eth(eth(kEtherIpv4, ipv4(kGre, gre(kEtherMpls, mpls(1000, true, inner_tcp())))),
                 kStrip);
  expect_inner_tcp(v);
  EXPECT_EQ(v.mpls_depth, 0);  // the inner label stack is not the captured frame's
}

TEST(Tunnels, GreThatIsNotATunnelWeRead) {
  // Keepalive (protocol 0), routing present (RFC 1701) and version 2: the GRE packet stays.
  for (const Buf& g : {gre(0x0000, zeros(8)), cat(bytes({0x40, 0, 0x08, 0}), inner_tcp()),
                       cat(bytes({0x00, 0x02, 0x08, 0}), inner_tcp()), gre(0x88be, zeros(30))}) {
    const PacketView v = parsed_eth(eth(kEtherIpv4, ipv4(kGre, g)), kStrip);
    EXPECT_EQ(v.tunnel_depth, 0);
    EXPECT_EQ(v.protocol, kGre);
    EXPECT_EQ(v.src_ip().to_string(), "192.0.2.1");
  }
  EXPECT_EQ(refused_eth(eth(kEtherIpv4, ipv4(kGre, zeros(3))), kStrip), "bad_tunnel_header");
  // K flag set, the key cut off.
  EXPECT_EQ(refused_eth(eth(kEtherIpv4, ipv4(kGre, bytes({0x20, 0, 0x08, 0, 1, 2}))), kStrip),
            "bad_tunnel_header");
}

// PPTP enhanced GRE (RFC 2637 §4.1): flags K+S(+A), version 1, protocol 0x880B.
Buf pptp(std::uint16_t flags, const Buf& ppp) {
  Buf b = cat(cat(u16(flags), u16(0x880b)), u16(static_cast<std::uint16_t>(ppp.size())));
  b = cat(b, u16(38992));  // call id
  if (flags & 0x1000) b = cat(b, u32(7));
  if (flags & 0x0080) b = cat(b, u32(6));
  return cat(b, ppp);
}

TEST(Tunnels, PptpEnhancedGre) {
  PacketView v = parsed_eth(
      eth(kEtherIpv4, ipv4(kGre, pptp(0x3081, cat(bytes({0xff, 0x03, 0x00, 0x21}), inner_tcp())))),
      kStrip);
  expect_inner_tcp(v);
  EXPECT_EQ(v.tunnel_type, TunnelType::gre);
  EXPECT_EQ(v.tunnel_id, 38992u);
  // Address/control omitted and the protocol compressed to one byte (RFC 1661 §6.5-6.6).
  v = parsed_eth(eth(kEtherIpv4, ipv4(kGre, pptp(0x3001, cat(bytes({0x21}), inner_tcp())))),
                 kStrip);
  expect_inner_tcp(v);
  v = parsed_eth(eth(kEtherIpv4, ipv4(kGre, pptp(0x2001, cat(bytes({0x57}), inner_udp6())))),
                 kStrip);
  EXPECT_EQ(v.ip_version, 6);
  // LCP and a bare acknowledgement: nothing to strip.
  v = parsed_eth(
      eth(kEtherIpv4, ipv4(kGre, pptp(0x3001, cat(bytes({0xff, 0x03, 0xc0, 0x21}), zeros(8))))),
      kStrip);
  EXPECT_EQ(v.tunnel_depth, 0);
  v = parsed_eth(eth(kEtherIpv4, ipv4(kGre, pptp(0x2081, {}))), kStrip);
  EXPECT_EQ(v.tunnel_depth, 0);
  EXPECT_EQ(refused_eth(eth(kEtherIpv4, ipv4(kGre, bytes({0x30, 0x01, 0x88, 0x0b, 0, 0}))), kStrip),
            "bad_tunnel_header");
}

TEST(Tunnels, IpInIp) {
  PacketView v = parsed_eth(eth(kEtherIpv4, ipv4(kIpIp, inner_tcp())), kStrip);
  expect_inner_tcp(v);
  EXPECT_EQ(v.tunnel_type, TunnelType::ip_in_ip);
  EXPECT_EQ(v.l3_offset, 34u);
  v = parsed_eth(eth(kEtherIpv4, ipv4(kIpv6InIp, inner_udp6())), kStrip);  // 6in4
  EXPECT_EQ(v.ip_version, 6);
  EXPECT_EQ(v.dst_port, 2222);
  v = parsed_eth(eth(kEtherIpv6, ipv6(kIpIp, inner_tcp())), kStrip);  // 4in6 (RFC 2473)
  expect_inner_tcp(v);
  v = parsed_eth(eth(kEtherIpv6, ipv6(kIpv6InIp, inner_udp6())), kStrip);  // 6in6
  EXPECT_EQ(v.src_ip().to_string(), "fd00::1");
  // Protocol 4 must carry IPv4.
  EXPECT_EQ(refused_eth(eth(kEtherIpv4, ipv4(kIpIp, inner_udp6())), kStrip), "bad_ip_version");
}

TEST(Tunnels, FragmentsOfATunnelAreTheOuterPacket) {
  const PacketView v =
      parsed_eth(eth(kEtherIpv4, ipv4(kIpIp, inner_tcp(), V4{.flags_frag = 0x2000})), kStrip);
  EXPECT_EQ(v.tunnel_depth, 0);
  EXPECT_EQ(v.protocol, kIpIp);
  EXPECT_TRUE(v.is_fragment);
}

TEST(Tunnels, GtpU) {
  PacketView v = parsed_eth(outer_udp(2152, gtpu(0x12808fb8, inner_tcp())), kStrip);
  expect_inner_tcp(v);
  EXPECT_EQ(v.tunnel_type, TunnelType::gtp_u);
  EXPECT_EQ(v.tunnel_id, 0x12808fb8u);
  // With a PDU Session Container extension (type 0x85, 4 bytes) and then a second
  // (UDP port, 0x40) — 3GPP TS 29.281 §5.2.
  const Buf ext = bytes({1, 0x10, 0x05, 0x40, 1, 0x08, 0x68, 0x00});
  v = parsed_eth(outer_udp(2152, gtpu(9, inner_udp6(), 0x85, ext)), kStrip);
  EXPECT_EQ(v.ip_version, 6);
  EXPECT_EQ(v.dst_port, 2222);
  EXPECT_EQ(v.tunnel_id, 9u);
  // Echo request (type 1): signalling on the user-plane port, nothing to strip.
  v = parsed_eth(outer_udp(2152, gtpu(9, zeros(4), 0, {}, 1)), kStrip);
  EXPECT_EQ(v.tunnel_depth, 0);
  // GTP' (PT = 0).
  Buf prime = gtpu(9, inner_tcp());
  prime[0] = std::byte{0x20};
  v = parsed_eth(outer_udp(2152, prime), kStrip);
  EXPECT_EQ(v.tunnel_depth, 0);
}

TEST(Tunnels, GtpUMalformed) {
  EXPECT_EQ(refused_eth(outer_udp(2152, zeros(7)), kStrip), "bad_tunnel_header");
  // Extension header of length 0 would never advance.
  EXPECT_EQ(refused_eth(outer_udp(2152, gtpu(1, inner_tcp(), 0x85, bytes({0, 0, 0, 0}))), kStrip),
            "bad_tunnel_header");
  // Extension header longer than the message.
  EXPECT_EQ(refused_eth(outer_udp(2152, gtpu(1, {}, 0x85, bytes({9, 0, 0, 0}))), kStrip),
            "bad_tunnel_header");
  // E flag set, optional fields missing.
  Buf f = outer_udp(2152, bytes({0x34, 0xff, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(refused_eth(f, kStrip), "bad_tunnel_header");
}

TEST(Tunnels, NestingIsBounded) {
  // IP-in-IP n times around an inner TCP packet.
  auto nest = [](std::size_t n) {
    Buf b = inner_tcp();
    for (std::size_t i = 0; i < n; ++i) b = ipv4(kIpIp, b);
    return eth(kEtherIpv4, b);
  };
  EXPECT_EQ(parsed_eth(nest(kDefaultMaxTunnelDepth), kStrip).tunnel_depth, kDefaultMaxTunnelDepth);
  EXPECT_EQ(refused_eth(nest(kDefaultMaxTunnelDepth + 1), kStrip), "tunnel_too_deep");
  ParseOptions one{.strip_tunnels = true, .max_tunnel_depth = 1};
  EXPECT_EQ(parsed_eth(nest(1), one).tunnel_depth, 1);
  EXPECT_EQ(refused_eth(nest(2), one), "tunnel_too_deep");
  ParseOptions many{.strip_tunnels = true, .max_tunnel_depth = 200};  // clamped
  EXPECT_EQ(parsed_eth(nest(kMaxTunnelDepth), many).tunnel_depth, kMaxTunnelDepth);
  EXPECT_EQ(refused_eth(nest(kMaxTunnelDepth + 1), many), "tunnel_too_deep");
  // Mixed: VXLAN inside GRE inside IP-in-IP.
  const Buf mixed =
      eth(kEtherIpv4,
          ipv4(kIpIp,
               ipv4(kGre, gre(kEtherIpv4,
                              ipv4(kUdp, udp(1, 4789, vxlan(3, eth(kEtherIpv4, inner_tcp()))))))));
  const PacketView v = parsed_eth(mixed, kStrip);
  EXPECT_EQ(v.tunnel_depth, 3);
  EXPECT_EQ(v.tunnel_type, TunnelType::vxlan);
  expect_inner_tcp(v);
}

TEST(Tunnels, BadInnerPacketReportsTheOuterOne) {
  Buf inner = inner_tcp();
  inner[0] = std::byte{0x43};  // IHL 3
  const Buf f = outer_udp(4789, vxlan(5, eth(kEtherIpv4, inner)));
  PacketView v;
  const auto err = parse_packet_into(link_type::kEthernet, span(f), kStrip, v);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(*err, Malformed::bad_ihl);
  EXPECT_EQ(v.tunnel_depth, 0);
  EXPECT_EQ(v.src_ip().to_string(), "192.0.2.1");
  EXPECT_EQ(v.dst_port, 4789);
  EXPECT_TRUE(v.has_l4);
  // Too deep: the outermost packet, whole.
  Buf deep = inner_tcp();
  for (int i = 0; i < 4; ++i) deep = ipv4(kIpIp, deep);
  const Buf g = eth(kEtherIpv4, deep);
  EXPECT_EQ(parse_packet_into(link_type::kEthernet, span(g), kStrip, v),
            Malformed::tunnel_too_deep);
  EXPECT_EQ(v.tunnel_depth, 0);
  EXPECT_EQ(v.protocol, kIpIp);
  EXPECT_EQ(v.src_ip().to_string(), "192.0.2.1");
}

}  // namespace
}  // namespace flowsec::packet
