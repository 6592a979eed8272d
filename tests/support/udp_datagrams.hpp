#pragma once
// Test support: the UDP payloads of a capture file, for feeding exporter
// captures (tests/data/export/) to the decoders. Handles exactly what those
// captures use: Ethernet (with 802.1Q tags), Linux SLL, raw IP, IPv4 without
// fragmentation and IPv6 without extension headers. Throws std::runtime_error
// if the file cannot be read: a fixture that silently yields nothing would
// make tests pass vacuously. Header-only; link flowsec_capture.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "capture/pcap_file.hpp"
#include "common/bytes.hpp"
#include "common/ip_address.hpp"

namespace flowsec::test {

struct UdpDatagram {
  IpAddress src;
  IpAddress dst;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::vector<std::byte> payload;
};

inline std::vector<UdpDatagram> read_udp_datagrams(const std::string& path) {
  auto file = capture::PcapFile::open(path);
  if (!file) throw std::runtime_error(file.error());
  std::vector<UdpDatagram> out;
  while (auto pkt = file->next()) {
    Bytes b = pkt->data;
    std::size_t off = 0;
    std::uint16_t ethertype = 0;
    switch (pkt->link_type) {
      case 1:  // Ethernet
        if (b.size() < 14) continue;
        ethertype = load_be<std::uint16_t>(b.data() + 12);
        off = 14;
        while ((ethertype == 0x8100 || ethertype == 0x88a8) && b.size() >= off + 4) {
          ethertype = load_be<std::uint16_t>(b.data() + off + 2);
          off += 4;
        }
        break;
      case 113:  // Linux SLL
        if (b.size() < 16) continue;
        ethertype = load_be<std::uint16_t>(b.data() + 14);
        off = 16;
        break;
      case 101:  // raw IP
      case 12:
        if (b.empty()) continue;
        ethertype = (static_cast<std::uint8_t>(b[0]) >> 4) == 6 ? 0x86dd : 0x0800;
        break;
      default:
        continue;
    }
    UdpDatagram d;
    std::size_t l4 = 0;
    if (ethertype == 0x0800) {
      if (b.size() < off + 20) continue;
      const std::size_t ihl = (static_cast<std::uint8_t>(b[off]) & 0x0f) * 4u;
      if (static_cast<std::uint8_t>(b[off + 9]) != 17 || b.size() < off + ihl + 8) continue;
      d.src = IpAddress::v4(load_be<std::uint32_t>(b.data() + off + 12));
      d.dst = IpAddress::v4(load_be<std::uint32_t>(b.data() + off + 16));
      l4 = off + ihl;
    } else if (ethertype == 0x86dd) {
      if (b.size() < off + 48 || static_cast<std::uint8_t>(b[off + 6]) != 17) continue;
      d.src = IpAddress::v6(b.subspan(off + 8).first<16>());
      d.dst = IpAddress::v6(b.subspan(off + 24).first<16>());
      l4 = off + 40;
    } else {
      continue;
    }
    d.src_port = load_be<std::uint16_t>(b.data() + l4);
    d.dst_port = load_be<std::uint16_t>(b.data() + l4 + 2);
    const std::size_t udp_len = load_be<std::uint16_t>(b.data() + l4 + 4);
    if (udp_len < 8 || b.size() < l4 + udp_len) continue;  // truncated capture: skip
    auto payload = b.subspan(l4 + 8, udp_len - 8);
    d.payload.assign(payload.begin(), payload.end());
    out.push_back(std::move(d));
  }
  if (!file->error().empty()) throw std::runtime_error(path + ": " + file->error());
  return out;
}

}  // namespace flowsec::test
