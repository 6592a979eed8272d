// L2–L4 frame parser (parser.hpp). One small recursive-descent walk over the
// headers with explicit offsets: `off` is where the current header starts and
// `end` where the bytes it may use stop (the capture, or the IP length when that
// is shorter, so Ethernet padding is never read as payload). Every read checks
// `end - off` first; offsets only grow, so `off <= end` holds throughout.
#include "packet/parser.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "common/bytes.hpp"

namespace flowsec::packet {
namespace {

using Status = std::optional<Malformed>;
constexpr Status kOk = std::nullopt;

// EtherTypes (IEEE Std 802 numbers registry).
constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;
constexpr std::uint16_t kEtherCTag = 0x8100;         // IEEE 802.1Q customer VLAN tag
constexpr std::uint16_t kEtherSTag = 0x88a8;         // IEEE 802.1ad service tag (QinQ)
constexpr std::uint16_t kEtherQinQLegacy = 0x9100;   // pre-802.1ad QinQ, still in the field
constexpr std::uint16_t kEtherMplsUnicast = 0x8847;  // RFC 3032, RFC 5332
constexpr std::uint16_t kEtherMplsMulticast = 0x8848;
constexpr std::uint16_t kEtherPppoeSession = 0x8864;       // RFC 2516 §4
constexpr std::uint16_t kEtherTransparentBridge = 0x6558;  // Ethernet over GRE (RFC 1701)
constexpr std::uint16_t kEtherPpp = 0x880b;                // PPTP enhanced GRE (RFC 2637)

// PPP protocol numbers (RFC 1332, RFC 5072).
constexpr std::uint16_t kPppIpv4 = 0x0021;
constexpr std::uint16_t kPppIpv6 = 0x0057;

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
constexpr std::uint8_t kProtoHopByHop = 0;
constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoIpInIp = 4;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kProtoIpv6 = 41;
constexpr std::uint8_t kProtoRouting = 43;
constexpr std::uint8_t kProtoFragment = 44;
constexpr std::uint8_t kProtoGre = 47;
constexpr std::uint8_t kProtoAh = 51;
constexpr std::uint8_t kProtoIcmpv6 = 58;
constexpr std::uint8_t kProtoDestOptions = 60;
constexpr std::uint8_t kProtoSctp = 132;
constexpr std::uint8_t kProtoMobility = 135;
constexpr std::uint8_t kProtoUdpLite = 136;
constexpr std::uint8_t kProtoHip = 139;
constexpr std::uint8_t kProtoShim6 = 140;

constexpr std::uint16_t kVxlanPort = 4789;  // RFC 7348 §5
constexpr std::uint16_t kGtpUPort = 2152;   // 3GPP TS 29.281, registered UDP port

// BSD loopback address families: AF_INET everywhere, AF_INET6 per OS (Linux,
// NetBSD/OpenBSD, FreeBSD, Darwin), as libpcap's LINKTYPE_NULL documentation lists.
constexpr std::uint32_t kAfInet = 2;

inline std::uint8_t rd8(const std::byte* p) {
  return static_cast<std::uint8_t>(*p);
}
inline std::uint16_t rd16(const std::byte* p) {
  return load_be<std::uint16_t>(p);
}
inline std::uint32_t rd32(const std::byte* p) {
  return load_be<std::uint32_t>(p);
}

inline std::uint32_t u32_sat(std::size_t v) {
  return static_cast<std::uint32_t>(
      std::min<std::size_t>(v, std::numeric_limits<std::uint32_t>::max()));
}

// Views start as a copy of this one rather than as `PacketView{}`: GCC (12, -O2) zeroes a
// value-initialised view with `rep stosq`, whose start-up cost was most of
// parse_packet_into's own time per packet; a copy of an object it cannot see the value of
// is eight vector moves. Never written: not const only so that GCC does not see it is zero.
PacketView g_empty_view;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

// Keeps the link-layer facts of the captured frame and forgets everything above,
// before the inner packet of a tunnel is parsed into the same view.
void clear_network_layers(PacketView& v) {
  PacketView fresh = g_empty_view;
  fresh.dst_mac = v.dst_mac;
  fresh.src_mac = v.src_mac;
  fresh.has_dst_mac = v.has_dst_mac;
  fresh.has_src_mac = v.has_src_mac;
  fresh.vlan_count = v.vlan_count;
  fresh.vlan_outer = v.vlan_outer;
  fresh.vlan_inner = v.vlan_inner;
  fresh.mpls_depth = v.mpls_depth;
  fresh.mpls_top_label = v.mpls_top_label;
  fresh.has_pppoe = v.has_pppoe;
  fresh.pppoe_session = v.pppoe_session;
  fresh.tunnel_depth = v.tunnel_depth;
  v = fresh;
}

class Parser {
 public:
  Parser(std::span<const std::byte> frame, const ParseOptions& opts, PacketView& view)
      : p_(frame.data()),
        size_(frame.size()),
        v_(view),
        strip_(opts.strip_tunnels),
        max_depth_(std::min(opts.max_tunnel_depth, kMaxTunnelDepth)) {}

  Status link(int type);

 private:
  // The hot steps (ethernet, ethertype, ipv4, transport) work on local copies of v_ and
  // p_: a store to one of the view's one-byte fields may alias any object (it is an
  // unsigned char), so through the members the compiler reloaded both after each one.
  // `outer`: this header belongs to the captured frame (record L2 facts), not to a
  // frame carried inside a tunnel. ethernet(), ethertype() and transport() are inlined
  // into their callers: the calls between the layers were a tenth of the parser's
  // instructions on an Ethernet/IPv4/TCP packet (docs/benchmarks.md).
  [[gnu::always_inline]] inline Status ethernet(std::size_t off, std::size_t end, bool outer);
  [[gnu::always_inline]] inline Status ethertype(std::uint16_t type, std::size_t off,
                                                 std::size_t end, bool outer);
  Status mpls(std::size_t off, std::size_t end, bool outer);
  Status pppoe(std::size_t off, std::size_t end, bool outer);
  Status ip_by_version(std::size_t off, std::size_t end);
  Status ipv4(std::size_t off, std::size_t end);
  Status ipv6(std::size_t off, std::size_t end);
  [[gnu::always_inline]] inline Status transport(std::uint8_t proto, std::size_t off,
                                                 std::size_t end, std::size_t ip_payload);
  // Records a transport header of `header` bytes read at `off`.
  static void transport_read(PacketView& v, std::size_t off, std::size_t header,
                             std::size_t ip_payload) {
    v.has_l4 = true;
    v.payload_offset = static_cast<std::uint32_t>(off + header);
    v.l4_payload_length = u32_sat(ip_payload - header);
  }
  Status gre(std::size_t off, std::size_t end);
  Status pptp_gre(std::uint16_t flags, std::size_t off, std::size_t end);
  Status vxlan(std::size_t off, std::size_t end);
  Status gtp_u(std::size_t off, std::size_t end);
  template <class Inner>
  Status descend(TunnelType type, std::uint32_t id, Inner&& inner);

  const std::byte* at(std::size_t off) const { return p_ + off; }

  const std::byte* p_;
  std::size_t size_;
  PacketView& v_;
  bool strip_;
  std::uint8_t max_depth_;
};

Status Parser::link(int type) {
  if (type == link_type::kEthernet) [[likely]]  // before the switch: most captures are
    return ethernet(0, size_, true);
  switch (type) {
    case link_type::kLinuxSll: {
      // LINKTYPE_LINUX_SLL: packet type, ARPHRD type, address length, 8 address
      // bytes, protocol (an EtherType for every ARPHRD we can see IP on).
      if (size_ < 16) return Malformed::truncated_l2;
      if (rd16(at(4)) == 6) {
        std::memcpy(v_.src_mac.data(), at(6), 6);
        v_.has_src_mac = true;
      }
      return ethertype(rd16(at(14)), 16, size_, true);
    }
    case link_type::kLinuxSll2: {
      // LINKTYPE_LINUX_SLL2: protocol, reserved, ifindex, ARPHRD type, packet type,
      // address length, 8 address bytes.
      if (size_ < 20) return Malformed::truncated_l2;
      if (rd8(at(11)) == 6) {
        std::memcpy(v_.src_mac.data(), at(12), 6);
        v_.has_src_mac = true;
      }
      return ethertype(rd16(at(0)), 20, size_, true);
    }
    case link_type::kRawDlt12:
    case link_type::kRawDlt14:
    case link_type::kRaw:
      return ip_by_version(0, size_);
    case link_type::kIpv4:
      return ipv4(0, size_);
    case link_type::kIpv6:
      return ipv6(0, size_);
    case link_type::kNull:
    case link_type::kLoop: {
      // A 4-byte address family in the byte order of the capturing host (DLT_NULL)
      // or network order (DLT_LOOP). Families fit in 16 bits, so a value with high
      // bits set was written little-endian.
      if (size_ < 4) return Malformed::truncated_l2;
      std::uint32_t family = rd32(at(0));
      if (family > 0xffff) family = byteswap(family);
      switch (family) {
        case kAfInet:
          return ipv4(4, size_);
        case 10:  // Linux
        case 24:  // NetBSD, OpenBSD, BSD/OS
        case 28:  // FreeBSD, DragonFly
        case 30:  // Darwin
          return ipv6(4, size_);
        default:
          return kOk;  // another protocol family: not IP
      }
    }
    default:
      return Malformed::unknown_link_type;
  }
}

Status Parser::ethernet(std::size_t off, std::size_t end, bool outer) {
  PacketView& v = v_;  // locals: see the class
  const std::byte* const p = p_;
  if (end - off < 14) return Malformed::truncated_l2;
  if (outer) {
    std::memcpy(v.dst_mac.data(), p + off, 6);
    std::memcpy(v.src_mac.data(), p + off + 6, 6);
    v.has_dst_mac = true;
    v.has_src_mac = true;
  }
  // Values below 0x0600 are an IEEE 802.3 length (LLC follows): not IP, handled below.
  return ethertype(rd16(p + off + 12), off + 14, end, outer);
}

Status Parser::ethertype(std::uint16_t type, std::size_t off, std::size_t end, bool outer) {
  PacketView& v = v_;  // locals: see the class
  const std::byte* const p = p_;
  if (type == kEtherIpv4) [[likely]] {  // untagged IPv4: no tag loop, no switch
    v.ethertype = type;
    return ipv4(off, end);
  }
  std::size_t tags = 0;
  while (type == kEtherCTag || type == kEtherSTag || type == kEtherQinQLegacy) {
    if (tags == kMaxVlanTags) return Malformed::too_many_vlans;
    if (end - off < 4) return Malformed::truncated_l2;
    // IEEE 802.1Q §9.6: TCI = PCP(3) DEI(1) VID(12), then the next EtherType.
    const auto vid = static_cast<std::uint16_t>(rd16(p + off) & 0x0fff);
    if (outer) {
      (tags == 0 ? v.vlan_outer : v.vlan_inner) = vid;
      v.vlan_count = static_cast<std::uint8_t>(tags + 1);
    }
    ++tags;
    type = rd16(p + off + 2);
    off += 4;
  }
  v.ethertype = type;
  switch (type) {
    case kEtherIpv4:
      return ipv4(off, end);
    case kEtherIpv6:
      return ipv6(off, end);
    case kEtherMplsUnicast:
    case kEtherMplsMulticast:
      return mpls(off, end, outer);
    case kEtherPppoeSession:
      return pppoe(off, end, outer);
    default:
      return kOk;  // ARP, LLDP, PPPoE discovery, ...: not IP
  }
}

Status Parser::mpls(std::size_t off, std::size_t end, bool outer) {
  // RFC 3032 §2.1: label(20) TC(3) S(1) TTL(8); S marks the bottom of the stack.
  std::size_t depth = 0;
  for (;;) {
    if (depth == kMaxMplsLabels) return Malformed::too_many_mpls_labels;
    if (end - off < 4) return Malformed::truncated_l2;
    const std::uint32_t entry = rd32(at(off));
    off += 4;
    ++depth;
    if (outer) {
      if (depth == 1) v_.mpls_top_label = entry >> 12;
      v_.mpls_depth = static_cast<std::uint8_t>(depth);
    }
    if ((entry & 0x100) != 0) break;
  }
  if (off == end) return Malformed::truncated_l2;
  // MPLS does not say what it carries; like LSRs hashing for ECMP (RFC 7325) we look
  // at the first nibble. A pseudowire control word starts with 0 (RFC 4385).
  switch (rd8(at(off)) >> 4) {
    case 4:
      return ipv4(off, end);
    case 6:
      return ipv6(off, end);
    default:
      return kOk;
  }
}

Status Parser::pppoe(std::size_t off, std::size_t end, bool outer) {
  // RFC 2516 §4: VER(4)=1 TYPE(4)=1 CODE(8)=0 SESSION_ID(16) LENGTH(16), then the PPP
  // protocol field (RFC 1661) and the PPP payload.
  if (end - off < 8) return Malformed::truncated_l2;
  if (outer) {
    v_.has_pppoe = true;
    v_.pppoe_session = rd16(at(off + 2));
  }
  if (rd8(at(off)) != 0x11 || rd8(at(off + 1)) != 0) return kOk;  // not session data
  const std::size_t length = rd16(at(off + 4));                   // PPP protocol + payload
  if (length < 2) return Malformed::truncated_l2;
  end = std::min(end, off + 6 + length);  // drops Ethernet padding
  switch (rd16(at(off + 6))) {
    case kPppIpv4:
      return ipv4(off + 8, end);
    case kPppIpv6:
      return ipv6(off + 8, end);
    default:
      return kOk;  // LCP, IPCP, ...: PPP control, not IP
  }
}

Status Parser::ip_by_version(std::size_t off, std::size_t end) {
  if (off == end) return Malformed::truncated_ip;
  switch (rd8(at(off)) >> 4) {
    case 4:
      return ipv4(off, end);
    case 6:
      return ipv6(off, end);
    default:
      return Malformed::bad_ip_version;
  }
}

Status Parser::ipv4(std::size_t off, std::size_t end) {
  PacketView& v = v_;  // locals: see the class
  const std::byte* const p = p_;
  // RFC 791 §3.1.
  v.ethertype = kEtherIpv4;
  if (end - off < 20) return Malformed::truncated_ip;
  const std::byte* h = p + off;
  if ((rd8(h) >> 4) != 4) return Malformed::bad_ip_version;
  const std::size_t ihl = std::size_t{rd8(h) & 0x0fu} * 4;
  if (ihl < 20) return Malformed::bad_ihl;
  const std::size_t captured = end - off;
  if (ihl > captured) return Malformed::truncated_ip;
  std::size_t total = rd16(h + 2);
  if (total == 0) {
    // A sender-side capture of a TSO/GSO super-packet (or IPv4 BIG TCP) carries 0;
    // Wireshark's "TSO support" reads it the same way.
    total = captured;
    v.length_from_capture = true;
  } else if (total < ihl) {
    return Malformed::bad_ip_length;
  }
  const std::uint16_t frag = rd16(h + 6);
  v.kind = PacketKind::ip;
  v.ip_version = 4;
  v.tos = rd8(h + 1);
  v.ttl = rd8(h + 8);
  v.protocol = rd8(h + 9);
  std::memcpy(v.src_addr.data(), h + 12, 4);
  std::memcpy(v.dst_addr.data(), h + 16, 4);
  v.ip_length = u32_sat(total);
  v.truncated = total > captured;
  v.ip_header_length = static_cast<std::uint16_t>(ihl);
  v.l3_offset = static_cast<std::uint32_t>(off);
  v.fragment_id = rd16(h + 4);
  v.more_fragments = (frag & 0x2000) != 0;
  v.fragment_offset = static_cast<std::uint16_t>(frag & 0x1fff);
  v.is_fragment = v.more_fragments || v.fragment_offset != 0;
  v.l4_offset = static_cast<std::uint32_t>(off + ihl);
  v.payload_offset = v.l4_offset;
  v.l4_payload_length = u32_sat(total - ihl);
  // Only the first fragment carries the transport header (RFC 791 §3.2).
  if (v.fragment_offset != 0) return kOk;
  return transport(v.protocol, off + ihl, off + std::min(total, captured), total - ihl);
}

Status Parser::ipv6(std::size_t off, std::size_t end) {
  // RFC 8200 §3.
  v_.ethertype = kEtherIpv6;
  if (end - off < 40) return Malformed::truncated_ip;
  const std::byte* h = at(off);
  const std::uint32_t word0 = rd32(h);
  if ((word0 >> 28) != 6) return Malformed::bad_ip_version;
  const std::size_t captured = end - off;
  std::size_t payload = rd16(h + 4);
  bool from_capture = false;
  if (payload == 0) {
    // A jumbogram (RFC 2675, its real length follows in hop-by-hop) or a sender-side
    // GSO/BIG TCP capture: until told otherwise, the payload is what was captured.
    payload = captured - 40;
    from_capture = true;
  }
  v_.kind = PacketKind::ip;
  v_.ip_version = 6;
  v_.tos = static_cast<std::uint8_t>((word0 >> 20) & 0xff);
  v_.flow_label = word0 & 0xfffff;
  v_.ttl = rd8(h + 7);
  std::memcpy(v_.src_addr.data(), h + 8, 16);
  std::memcpy(v_.dst_addr.data(), h + 24, 16);
  v_.l3_offset = static_cast<std::uint32_t>(off);

  // Extension headers (RFC 8200 §4): walk them until an upper-layer header, ESP
  // (50, encrypted), No Next Header (59) or a non-first fragment.
  std::uint8_t next = rd8(h + 6);
  std::size_t pos = off + 40;
  std::size_t count = 0;
  bool non_first_fragment = false;
  for (bool extension = true; extension && !non_first_fragment;) {
    std::size_t len = 0;
    switch (next) {
      case kProtoHopByHop:
        // RFC 8200 §4.1: hop-by-hop options only ever follow the IPv6 header.
        if (count != 0) return Malformed::bad_ipv6_extension;
        [[fallthrough]];
      case kProtoRouting:
      case kProtoDestOptions:
      case kProtoMobility:  // RFC 6275 §6.1.1
      case kProtoHip:       // RFC 7401 §5.1
      case kProtoShim6:     // RFC 5533 §5.1
        // Length in 8-octet units, not counting the first 8 octets (RFC 8200 §4.3).
        if (end - pos < 2) return Malformed::truncated_ip;
        len = (std::size_t{rd8(at(pos + 1))} + 1) * 8;
        break;
      case kProtoAh:
        // RFC 4302 §2.2: length in 4-octet units, minus 2.
        if (end - pos < 2) return Malformed::truncated_ip;
        len = (std::size_t{rd8(at(pos + 1))} + 2) * 4;
        break;
      case kProtoFragment:
        len = 8;  // RFC 8200 §4.5
        break;
      default:
        extension = false;
        continue;
    }
    if (++count > kMaxIpv6ExtensionHeaders) return Malformed::too_many_ipv6_extensions;
    if (len > end - pos) return Malformed::truncated_ip;
    if (next == kProtoHopByHop && from_capture) {
      // RFC 2675 §2: Jumbo Payload option, type 0xC2, 4 data bytes.
      for (std::size_t o = pos + 2; o < pos + len;) {
        const std::uint8_t type = rd8(at(o));
        if (type == 0) {  // Pad1
          ++o;
          continue;
        }
        if (pos + len - o < 2) break;
        const std::size_t opt_len = rd8(at(o + 1));
        if (type == 0xc2 && opt_len == 4 && pos + len - o >= 6) {
          payload = rd32(at(o + 2));
          from_capture = false;
          break;
        }
        o += 2 + opt_len;
      }
    }
    if (pos + len > off + 40 + payload) return Malformed::bad_ip_length;
    if (next == kProtoFragment) {
      const std::uint16_t frag = rd16(at(pos + 2));
      v_.fragment_offset = static_cast<std::uint16_t>(frag >> 3);
      v_.more_fragments = (frag & 1) != 0;
      v_.fragment_id = rd32(at(pos + 4));
      v_.is_fragment = v_.more_fragments || v_.fragment_offset != 0;
      // RFC 8200 §4.5: later fragments hold no upper-layer header.
      non_first_fragment = v_.fragment_offset != 0;
    }
    next = rd8(at(pos));
    pos += len;
  }
  const std::size_t total = 40 + payload;
  v_.protocol = next;
  v_.ip_length = u32_sat(total);
  v_.length_from_capture = from_capture;
  v_.truncated = total > captured;
  v_.ip_header_length = static_cast<std::uint16_t>(pos - off);
  v_.l4_offset = static_cast<std::uint32_t>(pos);
  v_.payload_offset = v_.l4_offset;
  const std::size_t ip_payload = total - (pos - off);
  v_.l4_payload_length = u32_sat(ip_payload);
  if (non_first_fragment) return kOk;
  return transport(next, pos, off + std::min(total, captured), ip_payload);
}

Status Parser::transport(std::uint8_t proto, std::size_t off, std::size_t end,
                         std::size_t ip_payload) {
  PacketView& v = v_;  // locals: see the class
  const std::byte* const p = p_;
  const std::size_t avail = std::min(end - off, ip_payload);
  const std::byte* h = p + off;
  std::size_t header = 0;
  if (proto == kProtoTcp) [[likely]] {
    // RFC 9293 §3.1. Options may be cut by the snap length: only the fixed part is
    // needed for what we report. Tested before the switch: most packets are TCP.
    if (avail < 20) return Malformed::truncated_l4;
    header = (std::size_t{rd8(h + 12)} >> 4) * 4;
    if (header < 20 || header > ip_payload) return Malformed::bad_tcp_header;
    v.src_port = rd16(h);
    v.dst_port = rd16(h + 2);
    v.tcp_seq = rd32(h + 4);
    v.tcp_ack = rd32(h + 8);
    v.tcp_flags = static_cast<std::uint16_t>(rd16(h + 12) & 0x0fff);
    v.tcp_window = rd16(h + 14);
    v.tcp_header_length = static_cast<std::uint8_t>(header);
    transport_read(v, off, header, ip_payload);
    return kOk;
  }
  switch (proto) {
    case kProtoUdp:
    case kProtoUdpLite:                               // RFC 3828 §3: same ports layout as UDP
      if (avail < 8) return Malformed::truncated_l4;  // RFC 768
      header = 8;
      v.src_port = rd16(h);
      v.dst_port = rd16(h + 2);
      break;
    case kProtoSctp:
      if (avail < 12) return Malformed::truncated_l4;  // RFC 9260 §3.1 common header
      header = 12;
      v.src_port = rd16(h);
      v.dst_port = rd16(h + 2);
      break;
    case kProtoIcmp:
      if (avail < 8) return Malformed::truncated_l4;  // RFC 792: 8-byte header
      header = 8;
      v.icmp_type = rd8(h);
      v.icmp_code = rd8(h + 1);
      break;
    case kProtoIcmpv6:
      if (avail < 4) return Malformed::truncated_l4;  // RFC 4443 §2.1
      header = 4;
      v.icmp_type = rd8(h);
      v.icmp_code = rd8(h + 1);
      break;
    case kProtoGre:
      return strip_ && !v.is_fragment ? gre(off, end) : kOk;
    case kProtoIpInIp:  // RFC 2003
      if (!strip_ || v.is_fragment) return kOk;
      return descend(TunnelType::ip_in_ip, 0, [&] { return ipv4(off, end); });
    case kProtoIpv6:  // RFC 4213 (IPv6 in IPv4), RFC 2473 (IPv6 in IPv6)
      if (!strip_ || v.is_fragment) return kOk;
      return descend(TunnelType::ip_in_ip, 0, [&] { return ipv6(off, end); });
    default:
      return kOk;  // ESP, OSPF, ...: no transport header we read
  }
  transport_read(v, off, header, ip_payload);
  if (strip_ && proto == kProtoUdp && !v.is_fragment) {
    if (v.dst_port == kVxlanPort) return vxlan(off + 8, end);
    if (v.dst_port == kGtpUPort) return gtp_u(off + 8, end);
  }
  return kOk;
}

template <class Inner>
Status Parser::descend(TunnelType type, std::uint32_t id, Inner&& inner) {
  if (v_.tunnel_depth >= max_depth_) return Malformed::tunnel_too_deep;
  const PacketView outer = v_;
  clear_network_layers(v_);
  v_.tunnel_depth = static_cast<std::uint8_t>(outer.tunnel_depth + 1);
  v_.tunnel_type = type;
  v_.tunnel_id = id;
  if (Status s = inner()) {
    v_ = outer;  // report the outer packet, whole, with the inner packet's error
    return s;
  }
  return kOk;
}

Status Parser::gre(std::size_t off, std::size_t end) {
  // RFC 2784 §2.1 with the key and sequence fields of RFC 2890 §2:
  // C(1) R(1) K(1) S(1) reserved0(9) version(3), protocol type(16),
  // [checksum(16) reserved1(16)], [key(32)], [sequence(32)].
  if (end - off < 4) return Malformed::bad_tunnel_header;
  const std::uint16_t flags = rd16(at(off));
  const std::uint16_t proto = rd16(at(off + 2));
  const unsigned version = flags & 0x7u;
  if (version == 1) return pptp_gre(flags, off, end);
  // RFC 2784 §2.3: bits 1-5 set other than K and S mean RFC 1701 source routing or
  // recursion control, which we do not decode; then the GRE packet is the flow.
  if (version != 0 || (flags & 0x4c00) != 0) return kOk;
  std::size_t header = 4;
  std::uint32_t key = 0;
  if ((flags & 0x8000) != 0) header += 4;
  if ((flags & 0x2000) != 0) {
    if (end - off < header + 4) return Malformed::bad_tunnel_header;
    key = rd32(at(off + header));
    header += 4;
  }
  if ((flags & 0x1000) != 0) header += 4;
  if (end - off < header) return Malformed::bad_tunnel_header;
  const std::size_t inner = off + header;
  switch (proto) {
    case kEtherIpv4:
      return descend(TunnelType::gre, key, [&] { return ipv4(inner, end); });
    case kEtherIpv6:
      return descend(TunnelType::gre, key, [&] { return ipv6(inner, end); });
    case kEtherMplsUnicast:  // RFC 4023
    case kEtherMplsMulticast:
      return descend(TunnelType::gre, key, [&] { return mpls(inner, end, false); });
    case kEtherTransparentBridge:
      return descend(TunnelType::gre, key, [&] { return ethernet(inner, end, false); });
    default:
      return kOk;  // keepalive, ERSPAN, WCCP, ...: not a tunnelled packet we read
  }
}

Status Parser::pptp_gre(std::uint16_t flags, std::size_t off, std::size_t end) {
  // RFC 2637 §4.1 enhanced GRE: C R K S s Recur(3) A(1) flags(4) version(3)=1,
  // protocol 0x880B, payload length(16), call id(16), [sequence(32)], [ack(32)].
  if (rd16(at(off + 2)) != kEtherPpp || (flags & 0x2000) == 0) return kOk;
  const std::size_t header =
      8 + ((flags & 0x1000) != 0 ? 4u : 0u) + ((flags & 0x0080) != 0 ? 4u : 0u);
  if (end - off < header) return Malformed::bad_tunnel_header;
  const std::uint16_t call_id = rd16(at(off + 6));
  std::size_t pos = off + header;
  const std::size_t ppp_end = std::min(end, pos + rd16(at(off + 4)));
  // PPP in HDLC-like framing (RFC 1662 §3.1), whose address and control bytes may
  // be omitted (RFC 1661 §6.6) and whose protocol may be one byte (RFC 1661 §6.5:
  // an odd first byte is the whole, compressed, protocol).
  if (ppp_end - pos >= 2 && rd8(at(pos)) == 0xff && rd8(at(pos + 1)) == 0x03) pos += 2;
  if (pos == ppp_end) return kOk;  // acknowledgement without payload
  std::uint16_t ppp_proto = rd8(at(pos));
  if ((ppp_proto & 1) != 0) {
    pos += 1;
  } else {
    if (ppp_end - pos < 2) return Malformed::bad_tunnel_header;
    ppp_proto = rd16(at(pos));
    pos += 2;
  }
  switch (ppp_proto) {
    case kPppIpv4:
      return descend(TunnelType::gre, call_id, [&] { return ipv4(pos, ppp_end); });
    case kPppIpv6:
      return descend(TunnelType::gre, call_id, [&] { return ipv6(pos, ppp_end); });
    default:
      return kOk;  // LCP, CCP, compressed data: the GRE packet is the flow
  }
}

Status Parser::vxlan(std::size_t off, std::size_t end) {
  // RFC 7348 §5: flags(8, I = 0x08) reserved(24) VNI(24) reserved(8), then Ethernet.
  if (end - off < 8) return Malformed::bad_tunnel_header;
  if ((rd8(at(off)) & 0x08) == 0) return kOk;  // no valid VNI: leave it as UDP
  const std::uint32_t vni = rd32(at(off + 4)) >> 8;
  return descend(TunnelType::vxlan, vni, [&] { return ethernet(off + 8, end, false); });
}

Status Parser::gtp_u(std::size_t off, std::size_t end) {
  // 3GPP TS 29.281 §5.1: version(3)=1 PT(1)=1 spare E S PN, message type, length
  // (bytes after the first 8), TEID; if any of E/S/PN, sequence(16) N-PDU(8) next
  // extension type(8). §5.2: extension headers of 4*n bytes, the last byte of each
  // naming the next one. Only a G-PDU (type 255, §6.1) carries a user packet.
  if (end - off < 8) return Malformed::bad_tunnel_header;
  const std::uint8_t flags = rd8(at(off));
  if ((flags >> 5) != 1 || (flags & 0x10) == 0 || rd8(at(off + 1)) != 0xff) return kOk;
  const std::uint32_t teid = rd32(at(off + 4));
  const std::size_t msg_end = std::min(end, off + 8 + rd16(at(off + 2)));
  std::size_t pos = off + 8;
  if ((flags & 0x07) != 0) {
    if (msg_end - pos < 4) return Malformed::bad_tunnel_header;
    std::uint8_t next = (flags & 0x04) != 0 ? rd8(at(pos + 3)) : 0;
    pos += 4;
    while (next != 0) {
      if (msg_end == pos) return Malformed::bad_tunnel_header;
      const std::size_t len = std::size_t{rd8(at(pos))} * 4;
      if (len == 0 || len > msg_end - pos) return Malformed::bad_tunnel_header;
      next = rd8(at(pos + len - 1));
      pos += len;
    }
  }
  if (pos == msg_end) return kOk;  // empty T-PDU
  switch (rd8(at(pos)) >> 4) {
    case 4:
      return descend(TunnelType::gtp_u, teid, [&] { return ipv4(pos, msg_end); });
    case 6:
      return descend(TunnelType::gtp_u, teid, [&] { return ipv6(pos, msg_end); });
    default:
      return kOk;  // Ethernet or unstructured PDU sessions: not IP
  }
}

}  // namespace

std::string_view to_string(PacketKind k) {
  switch (k) {
    case PacketKind::not_ip:
      return "not_ip";
    case PacketKind::ip:
      return "ip";
  }
  return "unknown";
}

std::string_view to_string(TunnelType t) {
  switch (t) {
    case TunnelType::none:
      return "none";
    case TunnelType::gre:
      return "gre";
    case TunnelType::ip_in_ip:
      return "ip_in_ip";
    case TunnelType::vxlan:
      return "vxlan";
    case TunnelType::gtp_u:
      return "gtp_u";
  }
  return "unknown";
}

std::string_view to_string(Malformed m) {
  switch (m) {
    case Malformed::unknown_link_type:
      return "unknown_link_type";
    case Malformed::truncated_l2:
      return "truncated_l2";
    case Malformed::too_many_vlans:
      return "too_many_vlans";
    case Malformed::too_many_mpls_labels:
      return "too_many_mpls_labels";
    case Malformed::bad_ip_version:
      return "bad_ip_version";
    case Malformed::truncated_ip:
      return "truncated_ip";
    case Malformed::bad_ihl:
      return "bad_ihl";
    case Malformed::bad_ip_length:
      return "bad_ip_length";
    case Malformed::bad_ipv6_extension:
      return "bad_ipv6_extension";
    case Malformed::too_many_ipv6_extensions:
      return "too_many_ipv6_extensions";
    case Malformed::truncated_l4:
      return "truncated_l4";
    case Malformed::bad_tcp_header:
      return "bad_tcp_header";
    case Malformed::bad_tunnel_header:
      return "bad_tunnel_header";
    case Malformed::tunnel_too_deep:
      return "tunnel_too_deep";
  }
  return "unknown";
}

std::optional<Malformed> parse_packet_into(int link_type, std::span<const std::byte> frame,
                                           const ParseOptions& opts, PacketView& out) {
  out = g_empty_view;
  // Offsets in the view are 32-bit; no capture format produces a larger frame.
  if (frame.size() > std::numeric_limits<std::uint32_t>::max()) {
    frame = frame.first(std::numeric_limits<std::uint32_t>::max());
  }
  return Parser(frame, opts, out).link(link_type);
}

ParseResult parse_packet(int link_type, std::span<const std::byte> frame,
                         const ParseOptions& opts) {
  PacketView view;
  if (auto err = parse_packet_into(link_type, frame, opts, view)) return unexpected(*err);
  return view;
}

}  // namespace flowsec::packet
