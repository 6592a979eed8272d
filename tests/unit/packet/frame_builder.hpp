#pragma once
// Test support for the packet parser: frames written byte by byte, inside out —
// each function takes its payload and returns header + payload with the length
// fields computed — so a test reads like the stack it builds:
//   eth(kIpv4, ipv4(kTcp, tcp(1234, 80, kSyn)))
// and malformed variants patch single bytes of the result. Independent of the
// parser under test; header layouts are the ones the RFCs draw.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "capture/pcap_file.hpp"
#include "common/bytes.hpp"
#include "packet/parser.hpp"

namespace flowsec::packet::test {

using Buf = std::vector<std::byte>;

inline constexpr std::uint16_t kEtherIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherIpv6 = 0x86dd;
inline constexpr std::uint16_t kEtherArp = 0x0806;
inline constexpr std::uint16_t kEtherVlan = 0x8100;
inline constexpr std::uint16_t kEtherQinQ = 0x88a8;
inline constexpr std::uint16_t kEtherQinQLegacy = 0x9100;
inline constexpr std::uint16_t kEtherMpls = 0x8847;
inline constexpr std::uint16_t kEtherMplsMulticast = 0x8848;
inline constexpr std::uint16_t kEtherPppoe = 0x8864;
inline constexpr std::uint16_t kEtherTeb = 0x6558;

inline constexpr std::uint8_t kTcp = 6, kUdp = 17, kIcmp = 1, kIcmpv6 = 58, kSctp = 132;
inline constexpr std::uint8_t kGre = 47, kIpIp = 4, kIpv6InIp = 41, kEsp = 50, kAh = 51;
inline constexpr std::uint8_t kUdpLite = 136;

inline Buf bytes(std::initializer_list<int> v) {
  Buf b;
  for (int x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}
inline Buf cat(Buf a, const Buf& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
inline Buf zeros(std::size_t n) {
  return Buf(n);
}
inline void put16(Buf& b, std::size_t at, std::uint16_t v) {
  store_be(b.data() + at, v);
}
inline void put32(Buf& b, std::size_t at, std::uint32_t v) {
  store_be(b.data() + at, v);
}

inline Buf u16(std::uint16_t v) {
  Buf b(2);
  put16(b, 0, v);
  return b;
}
inline Buf u32(std::uint32_t v) {
  Buf b(4);
  put32(b, 0, v);
  return b;
}

inline const std::array<std::uint8_t, 6> kDstMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
inline const std::array<std::uint8_t, 6> kSrcMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

// Ethernet II: dst, src, EtherType (IEEE 802.3 §3.1.1).
inline Buf eth(std::uint16_t type, const Buf& payload) {
  Buf b;
  for (auto x : kDstMac) b.push_back(static_cast<std::byte>(x));
  for (auto x : kSrcMac) b.push_back(static_cast<std::byte>(x));
  return cat(cat(b, u16(type)), payload);
}
// One 802.1Q tag body (the TPID is the EtherType before it): TCI, next EtherType.
inline Buf tag(std::uint16_t vid, std::uint16_t next, const Buf& payload, std::uint8_t pcp = 0) {
  return cat(cat(u16(static_cast<std::uint16_t>(pcp << 13 | vid)), u16(next)), payload);
}
// One MPLS label stack entry (RFC 3032 §2.1).
inline Buf mpls(std::uint32_t label, bool bottom, const Buf& payload, std::uint8_t ttl = 64) {
  return cat(u32(label << 12 | (bottom ? 0x100u : 0u) | ttl), payload);
}
// PPPoE session header + PPP protocol (RFC 2516 §4).
inline Buf pppoe(std::uint16_t session, std::uint16_t ppp_proto, const Buf& payload) {
  Buf b = bytes({0x11, 0x00});
  b = cat(b, u16(session));
  b = cat(b, u16(static_cast<std::uint16_t>(payload.size() + 2)));
  return cat(cat(b, u16(ppp_proto)), payload);
}

struct V4 {
  std::array<std::uint8_t, 4> src{192, 0, 2, 1};
  std::array<std::uint8_t, 4> dst{198, 51, 100, 2};
  std::uint8_t tos = 0;
  std::uint8_t ttl = 64;
  std::uint16_t id = 0x1234;
  std::uint16_t flags_frag = 0x4000;  // DF
  std::size_t option_bytes = 0;       // multiple of 4; zero-filled (end of options)
};
// IPv4 header (RFC 791 §3.1) with the total length of header + payload.
inline Buf ipv4(std::uint8_t proto, const Buf& payload, const V4& o = {}) {
  const std::size_t hl = 20 + o.option_bytes;
  Buf b(hl);
  b[0] = static_cast<std::byte>(0x40 | (hl / 4));
  b[1] = static_cast<std::byte>(o.tos);
  put16(b, 2, static_cast<std::uint16_t>(hl + payload.size()));
  put16(b, 4, o.id);
  put16(b, 6, o.flags_frag);
  b[8] = static_cast<std::byte>(o.ttl);
  b[9] = static_cast<std::byte>(proto);
  for (int i = 0; i < 4; ++i) {
    b[12 + i] = static_cast<std::byte>(o.src[i]);
    b[16 + i] = static_cast<std::byte>(o.dst[i]);
  }
  return cat(b, payload);
}

struct V6 {
  std::array<std::uint8_t, 16> src{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  std::array<std::uint8_t, 16> dst{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  std::uint8_t traffic_class = 0;
  std::uint32_t flow_label = 0;
  std::uint8_t hop_limit = 64;
};
// IPv6 header (RFC 8200 §3) with the payload length of `payload`.
inline Buf ipv6(std::uint8_t next, const Buf& payload, const V6& o = {}) {
  Buf b(40);
  put32(b, 0, 6u << 28 | std::uint32_t{o.traffic_class} << 20 | (o.flow_label & 0xfffff));
  put16(b, 4, static_cast<std::uint16_t>(payload.size()));
  b[6] = static_cast<std::byte>(next);
  b[7] = static_cast<std::byte>(o.hop_limit);
  for (int i = 0; i < 16; ++i) {
    b[8 + i] = static_cast<std::byte>(o.src[i]);
    b[24 + i] = static_cast<std::byte>(o.dst[i]);
  }
  return cat(b, payload);
}
// Generic IPv6 extension header in 8-octet units (RFC 8200 §4.3): next, hdr ext len, data.
inline Buf ext8(std::uint8_t next, std::size_t units, const Buf& payload) {
  Buf b(8 * (units + 1));
  b[0] = static_cast<std::byte>(next);
  b[1] = static_cast<std::byte>(units);
  if (units == 0) {  // PadN(4) fills the 6 option bytes (RFC 8200 §4.2)
    b[2] = std::byte{1};
    b[3] = std::byte{4};
  }
  return cat(b, payload);
}
// IPv6 Fragment header (RFC 8200 §4.5).
inline Buf frag6(std::uint8_t next, std::uint16_t offset_units, bool more, std::uint32_t id,
                 const Buf& payload) {
  Buf b(8);
  b[0] = static_cast<std::byte>(next);
  put16(b, 2, static_cast<std::uint16_t>(offset_units << 3 | (more ? 1 : 0)));
  put32(b, 4, id);
  return cat(b, payload);
}
// AH (RFC 4302 §2): next, payload len (4-octet units - 2), reserved, SPI, sequence, ICV.
inline Buf ah(std::uint8_t next, const Buf& payload) {
  Buf b(24);  // 12 fixed + 12-byte ICV: length field (24/4) - 2 = 4
  b[0] = static_cast<std::byte>(next);
  b[1] = std::byte{4};
  put32(b, 4, 0x1000);
  put32(b, 8, 1);
  return cat(b, payload);
}

inline constexpr std::uint16_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

// TCP header (RFC 9293 §3.1) with `option_bytes` of NOP options.
inline Buf tcp(std::uint16_t sport, std::uint16_t dport, std::uint16_t flags,
               const Buf& payload = {}, std::size_t option_bytes = 0, std::uint32_t seq = 1000,
               std::uint32_t ack = 2000, std::uint16_t window = 4096) {
  const std::size_t hl = 20 + option_bytes;
  Buf b(hl, std::byte{1});  // NOP padding for the options
  put16(b, 0, sport);
  put16(b, 2, dport);
  put32(b, 4, seq);
  put32(b, 8, ack);
  put16(b, 12, static_cast<std::uint16_t>((hl / 4) << 12 | flags));
  put16(b, 14, window);
  put32(b, 16, 0);  // checksum, urgent pointer
  return cat(b, payload);
}
// UDP header (RFC 768).
inline Buf udp(std::uint16_t sport, std::uint16_t dport, const Buf& payload = {}) {
  Buf b(8);
  put16(b, 0, sport);
  put16(b, 2, dport);
  put16(b, 4, static_cast<std::uint16_t>(8 + payload.size()));
  return cat(b, payload);
}
// SCTP common header (RFC 9260 §3.1): ports, verification tag, checksum.
inline Buf sctp(std::uint16_t sport, std::uint16_t dport, const Buf& payload = {}) {
  Buf b(12);
  put16(b, 0, sport);
  put16(b, 2, dport);
  put32(b, 4, 0xdeadbeef);
  return cat(b, payload);
}
// ICMP (RFC 792) / ICMPv6 (RFC 4443): type, code, checksum, 4 more bytes.
inline Buf icmp(std::uint8_t type, std::uint8_t code, const Buf& payload = {}) {
  Buf b(8);
  b[0] = static_cast<std::byte>(type);
  b[1] = static_cast<std::byte>(code);
  return cat(b, payload);
}
// VXLAN (RFC 7348 §5).
inline Buf vxlan(std::uint32_t vni, const Buf& inner, std::uint8_t flags = 0x08) {
  Buf b(8);
  b[0] = static_cast<std::byte>(flags);
  put32(b, 4, vni << 8);
  return cat(b, inner);
}
// GRE (RFC 2784 / RFC 2890) with optional checksum, key and sequence.
inline Buf gre(std::uint16_t proto, const Buf& inner, bool checksum = false,
               std::optional<std::uint32_t> key = std::nullopt,
               std::optional<std::uint32_t> seq = std::nullopt) {
  std::uint16_t flags = 0;
  Buf opt;
  if (checksum) {
    flags |= 0x8000;
    opt = cat(opt, u32(0));
  }
  if (key) {
    flags |= 0x2000;
    opt = cat(opt, u32(*key));
  }
  if (seq) {
    flags |= 0x1000;
    opt = cat(opt, u32(*seq));
  }
  return cat(cat(cat(u16(flags), u16(proto)), opt), inner);
}
// GTP-U G-PDU (3GPP TS 29.281 §5.1); `ext` holds extension headers already encoded,
// the first one's type in `first_ext`.
inline Buf gtpu(std::uint32_t teid, const Buf& inner, std::uint8_t first_ext = 0,
                const Buf& ext = {}, std::uint8_t type = 0xff) {
  const bool opt = first_ext != 0;
  Buf b(8);
  b[0] = static_cast<std::byte>(0x30 | (opt ? 0x04 : 0));
  b[1] = static_cast<std::byte>(type);
  put32(b, 4, teid);
  Buf rest;
  if (opt) rest = cat(bytes({0, 0, 0, first_ext}), ext);
  rest = cat(rest, inner);
  put16(b, 2, static_cast<std::uint16_t>(rest.size()));
  return cat(b, rest);
}

inline std::span<const std::byte> span(const Buf& b) {
  return {b.data(), b.size()};
}

// Every frame of a fixture capture, copied out of the reader.
struct CapturedFrame {
  int link_type = 0;
  Buf data;
};
inline std::vector<CapturedFrame> read_frames(const std::string& name) {
  const std::string path = std::string(FLOWSEC_TEST_DATA) + "/packets/" + name;
  auto file = capture::PcapFile::open(path);
  if (!file) throw std::runtime_error(file.error());
  std::vector<CapturedFrame> out;
  while (auto p = file->next()) out.push_back({p->link_type, Buf(p->data.begin(), p->data.end())});
  if (!file->error().empty() || out.empty()) throw std::runtime_error(path + ": no frames");
  return out;
}

inline const ParseOptions kPlain{};
inline const ParseOptions kStrip{.strip_tunnels = true};

// The view of a frame that must parse; a failure names the reason.
inline PacketView parsed(int link, const Buf& frame, const ParseOptions& opts = kPlain) {
  auto r = parse_packet(link, span(frame), opts);
  EXPECT_TRUE(r.has_value()) << "malformed: " << (r ? "" : to_string(r.error()));
  return r ? *r : PacketView{};
}
inline PacketView parsed_eth(const Buf& frame, const ParseOptions& opts = kPlain) {
  return parsed(link_type::kEthernet, frame, opts);
}
// The reason a frame that must not parse is refused, as its label.
inline std::string refused(int link, const Buf& frame, const ParseOptions& opts = kPlain) {
  auto r = parse_packet(link, span(frame), opts);
  EXPECT_FALSE(r.has_value()) << "parsed, expected an error";
  return r ? std::string("parsed") : std::string(to_string(r.error()));
}
inline std::string refused_eth(const Buf& frame, const ParseOptions& opts = kPlain) {
  return refused(link_type::kEthernet, frame, opts);
}

}  // namespace flowsec::packet::test
