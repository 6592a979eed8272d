#pragma once
// The synthetic traffic mix shared by bench_flow (in memory) and gen_trace (as a pcap for
// bench/probe_bench.sh), so both measure the same input:
//   40% HTTP over TCP (handshake, GET with a Host header, 4 response segments of 1400
//   bytes, FIN both ways: 13 packets), 40% DNS over UDP (query + response), 20% TCP on a
//   high port with random payload (12 packets). Ethernet/IPv4, cut at kSnap bytes with the
//   real IP lengths; every connection starts within 2 s of `base_ns`; seeded, so the same
//   `flows` always gives the same packets.
// synthetic_mix() calls emit(ts, packet) for each packet, per connection in order (not
// globally sorted: callers sort by ts); write_frame() lays one packet out as a frame.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

namespace flowsec::bench {

inline constexpr std::size_t kSnap = 128;

struct Endpoint {
  std::uint32_t ip;
  std::uint16_t port;
};

struct SyntheticPacket {
  Endpoint src, dst;
  bool is_tcp = false;
  std::uint8_t flags = 0;
  std::uint32_t seq = 0, ack = 0;
  std::string_view payload;       // bytes to copy (up to the snap length)
  std::uint32_t payload_len = 0;  // the packet's real payload length
  [[nodiscard]] std::size_t wire_length() const {
    return 14 + 20 + (is_tcp ? 20 : 8) + payload_len;
  }
  [[nodiscard]] std::size_t capture_length() const { return std::min(wire_length(), kSnap); }
};

namespace detail {
inline void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v & 0xff);
}
inline void put32(std::uint8_t* p, std::uint32_t v) {
  put16(p, static_cast<std::uint16_t>(v >> 16));
  put16(p + 2, static_cast<std::uint16_t>(v));
}
}  // namespace detail

// Writes p's frame (capture_length() bytes) to `out`, with IPv4 identification `ip_id`, DF
// and a valid header checksum.
inline void write_frame(const SyntheticPacket& p, std::uint16_t ip_id, std::uint8_t* out) {
  using detail::put16;
  using detail::put32;
  const std::size_t l4 = p.is_tcp ? 20 : 8;
  const std::uint8_t dmac[6] = {2, 0, 0, 0, 0, 2}, smac[6] = {2, 0, 0, 0, 0, 1};
  std::memcpy(out, dmac, 6);
  std::memcpy(out + 6, smac, 6);
  put16(out + 12, 0x0800);
  std::uint8_t* ip = out + 14;
  std::memset(ip, 0, 20);
  ip[0] = 0x45;
  put16(ip + 2, static_cast<std::uint16_t>(20 + l4 + p.payload_len));
  put16(ip + 4, ip_id);
  ip[6] = 0x40;  // DF
  ip[8] = 64;
  ip[9] = p.is_tcp ? 6 : 17;
  put32(ip + 12, p.src.ip);
  put32(ip + 16, p.dst.ip);
  std::uint32_t sum = 0;  // IPv4 header checksum (RFC 791)
  for (int i = 0; i < 20; i += 2) sum += static_cast<std::uint32_t>(ip[i] << 8 | ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(ip + 10, static_cast<std::uint16_t>(~sum));
  std::uint8_t* t = ip + 20;
  std::memset(t, 0, l4);
  put16(t, p.src.port);
  put16(t + 2, p.dst.port);
  if (p.is_tcp) {
    put32(t + 4, p.seq);
    put32(t + 8, p.ack);
    t[12] = 0x50;
    t[13] = p.flags;
    put16(t + 14, 64240);
  } else {
    put16(t + 4, static_cast<std::uint16_t>(8 + p.payload_len));
  }
  const std::size_t room = p.capture_length() - (14 + 20 + l4);
  std::memset(t + l4, 0, room);
  std::memcpy(t + l4, p.payload.data(), std::min(room, p.payload.size()));
}

template <class Emit>
void synthetic_mix(std::size_t flows, std::int64_t base_ns, Emit&& emit) {
  std::mt19937_64 rng(42);
  constexpr std::uint8_t kF = 0x01, kS = 0x02, kP = 0x08, kA = 0x10;
  const std::string_view get =
      "GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench\r\n"
      "Accept: */*\r\n\r\n";
  const std::string_view reply = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n";
  // DNS query for www.example.com, type A, and its answer.
  const char dns_q[] =
      "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07"
      "example\x03"
      "com\x00\x00\x01\x00\x01";
  const std::string_view query(dns_q, sizeof dns_q - 1);
  std::string answer(query);
  answer[2] = '\x81';
  answer[3] = '\x80';
  answer[7] = '\x01';
  answer += std::string("\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x5d\xb8\xd8\x22", 16);
  std::string noise(64, '\0');

  for (std::size_t i = 0; i < flows; ++i) {
    // Distinct 5-tuples: 60000 client addresses, ports by wrap-around.
    const Endpoint client{0x0a000000U | static_cast<std::uint32_t>(i % 60000 + 1),
                          static_cast<std::uint16_t>(1024 + (i / 60000) * 7000 + i % 7000)};
    std::int64_t ts = base_ns + static_cast<std::int64_t>(rng() % 2'000'000'000ULL);
    const auto add = [&](const Endpoint& s, const Endpoint& d, bool tcp, std::uint8_t fl,
                         std::uint32_t seq, std::uint32_t ack, std::string_view pl,
                         std::uint32_t len) {
      emit(ts, SyntheticPacket{s, d, tcp, fl, seq, ack, pl, len});
      ts += 100'000 + static_cast<std::int64_t>(rng() % 2'000'000);
    };
    const unsigned kind = static_cast<unsigned>(i % 5);
    if (kind < 2) {  // HTTP
      const Endpoint server{0xc0a80000U | static_cast<std::uint32_t>(i % 200), 80};
      std::uint32_t cs = static_cast<std::uint32_t>(rng()), ss = static_cast<std::uint32_t>(rng());
      add(client, server, true, kS, cs, 0, {}, 0);
      add(server, client, true, kS | kA, ss, cs + 1, {}, 0);
      ++cs;
      ++ss;
      add(client, server, true, kA, cs, ss, {}, 0);
      add(client, server, true, kP | kA, cs, ss, get, static_cast<std::uint32_t>(get.size()));
      cs += static_cast<std::uint32_t>(get.size());
      for (int k = 0; k < 4; ++k) {
        add(server, client, true, kA, ss, cs, k == 0 ? reply : std::string_view(noise), 1400);
        ss += 1400;
      }
      add(client, server, true, kA, cs, ss, {}, 0);
      add(client, server, true, kF | kA, cs, ss, {}, 0);
      add(server, client, true, kF | kA, ss, cs + 1, {}, 0);
      add(client, server, true, kA, cs + 1, ss + 1, {}, 0);
    } else if (kind < 4) {  // DNS
      const Endpoint server{0x08080808U + static_cast<std::uint32_t>(i % 4), 53};
      add(client, server, false, 0, 0, 0, query, static_cast<std::uint32_t>(query.size()));
      add(server, client, false, 0, 0, 0, answer, static_cast<std::uint32_t>(answer.size()));
    } else {  // opaque TCP
      const Endpoint server{0xac100000U | static_cast<std::uint32_t>(i % 1000), 40000};
      std::uint32_t cs = static_cast<std::uint32_t>(rng()), ss = static_cast<std::uint32_t>(rng());
      for (auto& ch : noise) ch = static_cast<char>(rng());
      for (int k = 0; k < 12; ++k) {
        if (k % 2 == 0) {
          add(client, server, true, kA | kP, cs, ss, noise, 300);
          cs += 300;
        } else {
          add(server, client, true, kA | kP, ss, cs, noise, 300);
          ss += 300;
        }
      }
    }
  }
}

}  // namespace flowsec::bench
