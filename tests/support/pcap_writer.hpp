#pragma once
// Test support: writes UDP datagrams into a classic pcap file (Ethernet,
// IPv4, UDP) so that peers such as tshark can dissect what our encoders built.
// Throws std::runtime_error when the file cannot be written. Header-only.
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/bytes.hpp"

namespace flowsec::test {

class PcapWriter {
 public:
  explicit PcapWriter(const std::string& path) : out_(path, std::ios::binary) {
    if (!out_) throw std::runtime_error("cannot write " + path);
    std::vector<std::byte> h;
    ByteWriter w(h);
    // Little-endian classic pcap header: magic, v2.4, zone, sigfigs, snaplen, Ethernet.
    for (std::uint32_t v : {0xa1b2c3d4u}) put_le(h, v);
    put_le16(h, 2);
    put_le16(h, 4);
    put_le(h, 0);
    put_le(h, 0);
    put_le(h, 65535);
    put_le(h, 1);
    out_.write(reinterpret_cast<const char*>(h.data()), static_cast<std::streamsize>(h.size()));
  }

  void write_udp(Bytes payload, std::uint16_t dst_port, std::uint32_t ts_sec = 1700000000) {
    write_udp_at(payload, dst_port, ts_sec, usec_++);
  }
  // The same at an exact time: ts_sec seconds and ts_usec microseconds (< 1000000).
  void write_udp_at(Bytes payload, std::uint16_t dst_port, std::uint32_t ts_sec,
                    std::uint32_t ts_usec) {
    std::vector<std::byte> f;
    ByteWriter w(f);
    w.u32(0x02000000);  // dst MAC 02:00:00:00:00:01
    w.u16(0x0001);
    w.u32(0x02000000);  // src MAC 02:00:00:00:00:02
    w.u16(0x0002);
    w.u16(0x0800);
    const auto ip_len = static_cast<std::uint16_t>(20 + 8 + payload.size());
    w.u8(0x45);
    w.u8(0);
    w.u16(ip_len);
    w.u16(id_++);
    w.u16(0x4000);
    w.u8(64);
    w.u8(17);
    w.u16(0);  // checksum patched below
    w.u32(0x7f000001);
    w.u32(0x7f000001);
    std::uint32_t sum = 0;
    for (std::size_t i = 14; i < 34; i += 2) sum += load_be<std::uint16_t>(f.data() + i);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    w.patch_u16(24, static_cast<std::uint16_t>(~sum));
    w.u16(40000);
    w.u16(dst_port);
    w.u16(static_cast<std::uint16_t>(8 + payload.size()));
    w.u16(0);  // no UDP checksum (allowed over IPv4)
    w.bytes(payload);
    std::vector<std::byte> rec;
    put_le(rec, ts_sec);
    put_le(rec, ts_usec);
    put_le(rec, static_cast<std::uint32_t>(f.size()));
    put_le(rec, static_cast<std::uint32_t>(f.size()));
    out_.write(reinterpret_cast<const char*>(rec.data()), static_cast<std::streamsize>(rec.size()));
    out_.write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
    if (!out_) throw std::runtime_error("pcap write failed");
  }

 private:
  static void put_le(std::vector<std::byte>& v, std::uint32_t x) {
    for (int i = 0; i < 4; ++i) v.push_back(static_cast<std::byte>((x >> (8 * i)) & 0xff));
  }
  static void put_le16(std::vector<std::byte>& v, std::uint16_t x) {
    v.push_back(static_cast<std::byte>(x & 0xff));
    v.push_back(static_cast<std::byte>(x >> 8));
  }
  std::ofstream out_;
  std::uint16_t id_ = 1;
  std::uint32_t usec_ = 0;
};

}  // namespace flowsec::test
