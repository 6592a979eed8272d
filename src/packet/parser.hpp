#pragma once
// L2–L4 parser for one captured frame (SPEC §5 "Decoding"): span in, PacketView out.
//
// Contract:
//  - Pure and allocation-free: no I/O, no shared state, no virtual calls; safe to
//    call from any number of threads. Cost is linear in the headers, never the payload.
//  - Input is untrusted. Every read is bounds-checked; a frame that cannot be parsed
//    yields a Malformed reason (count it by reason, SPEC §7), never a crash. Loops are
//    bounded by fixed caps (VLAN tags, MPLS labels, IPv6 extension headers, tunnels).
//  - A frame whose payload is cut by the snap length is fine as long as the headers
//    are whole; PacketView::truncated tells. Non-IP frames (ARP, LLDP, ...) are not an
//    error: they return PacketKind::not_ip.
//  - With strip_tunnels (SPEC `--tunnel`), GRE, IP-in-IP, VXLAN and GTP-U headers are
//    removed and the inner packet is reported; fragments of a tunnel packet are
//    reported as the outer packet, since only the first could be looked into.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/result.hpp"
#include "packet/packet_view.hpp"

namespace flowsec::packet {

// Link types accepted by parse_packet: the DLT_* values libpcap's pcap_datalink()
// returns, plus the LINKTYPE_* file values where they differ.
namespace link_type {
inline constexpr int kNull = 0;  // BSD loopback: 4-byte address family, host order
inline constexpr int kEthernet = 1;
inline constexpr int kRawDlt12 = 12;    // DLT_RAW on most platforms
inline constexpr int kRawDlt14 = 14;    // DLT_RAW on OpenBSD
inline constexpr int kRaw = 101;        // LINKTYPE_RAW: IPv4 or IPv6 by version nibble
inline constexpr int kLoop = 108;       // OpenBSD loopback: address family, network order
inline constexpr int kLinuxSll = 113;   // Linux cooked capture v1 (16-byte header)
inline constexpr int kIpv4 = 228;       // LINKTYPE_IPV4: raw IPv4 only
inline constexpr int kIpv6 = 229;       // LINKTYPE_IPV6: raw IPv6 only
inline constexpr int kLinuxSll2 = 276;  // Linux cooked capture v2 (20-byte header)
}  // namespace link_type

// Hard caps on the work one frame can cause (SPEC §9).
inline constexpr std::size_t kMaxVlanTags = 2;    // outer + inner (QinQ)
inline constexpr std::size_t kMaxMplsLabels = 8;  // label stack entries
inline constexpr std::size_t kMaxIpv6ExtensionHeaders = 8;
inline constexpr std::uint8_t kDefaultMaxTunnelDepth = 3;
inline constexpr std::uint8_t kMaxTunnelDepth = 8;

struct ParseOptions {
  bool strip_tunnels = false;  // SPEC `--tunnel`
  // Tunnels that may be stripped from one packet (clamped to kMaxTunnelDepth); one
  // more is Malformed::tunnel_too_deep.
  std::uint8_t max_tunnel_depth = kDefaultMaxTunnelDepth;
};

enum class Malformed : std::uint8_t {
  unknown_link_type,         // link type not in link_type::
  truncated_l2,              // link header, VLAN tag, MPLS entry or PPPoE header cut short
  too_many_vlans,            // more than kMaxVlanTags tags
  too_many_mpls_labels,      // more than kMaxMplsLabels entries before bottom-of-stack
  bad_ip_version,            // version nibble disagrees with the EtherType / link type
  truncated_ip,              // IP header (with options / extension headers) not captured
  bad_ihl,                   // IPv4 IHL below 5 (RFC 791 §3.1)
  bad_ip_length,             // IP length shorter than its own headers
  bad_ipv6_extension,        // hop-by-hop header not first (RFC 8200 §4.1)
  too_many_ipv6_extensions,  // more than kMaxIpv6ExtensionHeaders
  truncated_l4,              // transport header beyond the capture or the IP payload
  bad_tcp_header,            // TCP data offset below 5 or beyond the IP payload
  bad_tunnel_header,         // GRE / VXLAN / GTP-U header cut short or inconsistent
  tunnel_too_deep,           // more nested tunnels than ParseOptions::max_tunnel_depth
};
inline constexpr std::size_t kMalformedCount =
    static_cast<std::size_t>(Malformed::tunnel_too_deep) + 1;

// Stable label, also used as the metrics label.
[[nodiscard]] std::string_view to_string(Malformed m);

using ParseResult = Expected<PacketView, Malformed>;

[[nodiscard]] ParseResult parse_packet(int link_type, std::span<const std::byte> frame,
                                       const ParseOptions& opts);

// The same parse into caller storage (no copy of the view). Returns nullopt on success.
// On failure `out` keeps what the layers before the failing one established — e.g. the
// addresses of an IPv4 packet whose TCP header is cut — which the sFlow decoder uses for
// sampled headers; when an inner (tunnelled) packet fails, `out` describes the outer one.
[[nodiscard]] std::optional<Malformed> parse_packet_into(int link_type,
                                                         std::span<const std::byte> frame,
                                                         const ParseOptions& opts, PacketView& out);

}  // namespace flowsec::packet
