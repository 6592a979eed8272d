#pragma once
// PacketView: what parse_packet() (parser.hpp) learned about one captured frame,
// from the link layer to the transport header. A plain value type: no pointers
// into the frame, no allocation, trivially copyable, so the probe can keep one per
// thread and overwrite it for every packet. Offsets refer to the frame that was
// parsed. Field groups are valid as their flags say: MACs when has_*_mac, network
// fields when kind == PacketKind::ip, ports/flags/ICMP when has_l4.
//
// Link-layer fields (MACs, VLANs, MPLS, PPPoE) always describe the frame as captured.
// With ParseOptions::strip_tunnels the network and transport fields describe the
// innermost packet of the tunnels that were removed (tunnel_depth > 0).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/ip_address.hpp"

namespace flowsec::packet {

enum class PacketKind : std::uint8_t {
  not_ip,  // a valid frame that carries no IP packet (ARP, LLDP, STP, PPP control, ...)
  ip,
};

// The tunnel that was removed last (the innermost one) when tunnel_depth > 0.
enum class TunnelType : std::uint8_t { none, gre, ip_in_ip, vxlan, gtp_u };

[[nodiscard]] std::string_view to_string(PacketKind k);
[[nodiscard]] std::string_view to_string(TunnelType t);

struct PacketView {
  // --- link layer (outer frame as captured) ---
  std::array<std::uint8_t, 6> dst_mac{};
  std::array<std::uint8_t, 6> src_mac{};
  bool has_dst_mac = false;  // Ethernet; Linux cooked captures carry only the source
  bool has_src_mac = false;
  std::uint16_t ethertype = 0;   // EtherType of the payload the network fields describe
  std::uint8_t vlan_count = 0;   // 802.1Q / 802.1ad tags: 0, 1 or 2
  std::uint16_t vlan_outer = 0;  // VLAN ids (12 bits) of the first and second tag
  std::uint16_t vlan_inner = 0;
  std::uint8_t mpls_depth = 0;       // MPLS label stack entries
  std::uint32_t mpls_top_label = 0;  // 20-bit label of the first (top) entry
  bool has_pppoe = false;
  std::uint16_t pppoe_session = 0;

  // --- network layer ---
  PacketKind kind = PacketKind::not_ip;
  std::uint8_t ip_version = 0;  // 4 or 6 when kind == ip
  // Network byte order. IPv4 uses the first 4 bytes; the rest stay zero, so a
  // flow key can hash or compare all 16 bytes plus ip_version.
  std::array<std::uint8_t, 16> src_addr{};
  std::array<std::uint8_t, 16> dst_addr{};
  std::uint8_t tos = 0;          // IPv4 TOS byte / IPv6 traffic class (DSCP + ECN)
  std::uint8_t ttl = 0;          // IPv4 TTL / IPv6 hop limit
  std::uint32_t flow_label = 0;  // IPv6 only
  // IP packet length from its header: IPv4 total length, IPv6 40 + payload length (or
  // 40 + the RFC 2675 jumbo payload length). Counts bytes the capture may not hold.
  std::uint32_t ip_length = 0;
  // The header said 0 (TSO/GSO or BIG TCP capture on the sending host) and ip_length
  // was taken from the captured bytes instead.
  bool length_from_capture = false;
  // The capture ends before ip_length (snaplen): the payload is cut, headers are whole.
  bool truncated = false;
  std::uint16_t ip_header_length = 0;  // IPv4 IHL * 4; IPv6 40 + extension headers parsed
  bool is_fragment = false;            // more-fragments set or a non-zero offset
  bool more_fragments = false;
  std::uint16_t fragment_offset = 0;  // in 8-octet units, as on the wire
  std::uint32_t fragment_id = 0;      // IPv4 identification (16 bits) / IPv6 fragment id

  // --- transport layer ---
  std::uint8_t protocol = 0;   // IPv4 protocol / last IPv6 next header (after extensions)
  bool has_l4 = false;         // the fields below were read (not for non-first fragments)
  std::uint16_t src_port = 0;  // TCP, UDP, UDP-Lite, SCTP
  std::uint16_t dst_port = 0;
  std::uint16_t tcp_flags = 0;  // the 12 bits after the data offset (NS/AE..FIN), RFC 7125
  std::uint32_t tcp_seq = 0;
  std::uint32_t tcp_ack = 0;
  std::uint16_t tcp_window = 0;
  std::uint8_t tcp_header_length = 0;  // data offset * 4
  std::uint8_t icmp_type = 0;          // ICMP (protocol 1) and ICMPv6 (58)
  std::uint8_t icmp_code = 0;
  // Transport payload bytes according to the IP header (not the capture).
  std::uint32_t l4_payload_length = 0;

  // --- where things are in the frame ---
  std::uint32_t l3_offset = 0;  // start of the (innermost) IP header
  std::uint32_t l4_offset = 0;  // start of the transport header
  // Start of the transport payload; beyond the captured bytes when the snap length cut
  // into the transport header's options (then `truncated` is set).
  std::uint32_t payload_offset = 0;

  // --- tunnels removed (ParseOptions::strip_tunnels) ---
  std::uint8_t tunnel_depth = 0;
  TunnelType tunnel_type = TunnelType::none;
  std::uint32_t tunnel_id = 0;  // GRE key / PPTP call id, VXLAN VNI, GTP-U TEID; 0 if none

  [[nodiscard]] bool is_ip() const { return kind == PacketKind::ip; }
  [[nodiscard]] bool first_fragment() const { return is_fragment && fragment_offset == 0; }
  [[nodiscard]] IpAddress src_ip() const { return to_ip(src_addr); }
  [[nodiscard]] IpAddress dst_ip() const { return to_ip(dst_addr); }

 private:
  [[nodiscard]] IpAddress to_ip(const std::array<std::uint8_t, 16>& a) const {
    const auto b = std::as_bytes(std::span<const std::uint8_t, 16>(a));
    if (ip_version == 6) return IpAddress::v6(b);
    return IpAddress::v4(b.first<4>());
  }
};

}  // namespace flowsec::packet
