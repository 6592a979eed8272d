// gen_trace: writes the synthetic trace of bench_flow.cpp as a pcap file, for
// bench/probe_bench.sh (flowsec vs softflowd on the same input).
//
//   gen_trace OUT.pcap [CONNECTIONS]      (default 180000 connections: 1.44 M packets)
//
// Same mix as bench_flow's make_trace: 40% HTTP over TCP (handshake, GET with a Host
// header, 4 response segments of 1400 bytes, FIN both ways: 13 packets), 40% DNS over UDP
// (query + response), 20% TCP on a high port with random payload (12 packets). Ethernet/IPv4,
// microsecond pcap, captured up to 128 bytes with the real IP lengths, timestamps sorted,
// every connection starting within the first 2 s after 2023-11-14 22:13:20 UTC.
// Prints the packet and connection counts.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t kSnap = 128;
constexpr std::int64_t kBaseNs = 1'700'000'000LL * 1'000'000'000LL;

struct Endpoint {
  std::uint32_t ip;
  std::uint16_t port;
};

struct Frame {
  std::int64_t ts;
  std::uint32_t offset;
  std::uint16_t caplen;
  std::uint16_t wirelen;
};

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v & 0xff);
}
void put32(std::uint8_t* p, std::uint32_t v) {
  put16(p, static_cast<std::uint16_t>(v >> 16));
  put16(p + 2, static_cast<std::uint16_t>(v));
}

// IPv4 header checksum (softflowd and nDPI do not check it, but keep the trace valid).
void ip_checksum(std::uint8_t* ip) {
  std::uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += static_cast<std::uint32_t>(ip[i] << 8 | ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(ip + 10, static_cast<std::uint16_t>(~sum));
}

class Builder {
 public:
  std::vector<std::uint8_t> bytes;
  std::vector<Frame> frames;

  void add(std::int64_t ts, const Endpoint& s, const Endpoint& d, bool is_tcp, std::uint8_t flags,
           std::uint32_t seq, std::uint32_t ack, std::string_view payload,
           std::uint32_t payload_len) {
    const std::size_t l4 = is_tcp ? 20 : 8;
    const std::size_t full = 14 + 20 + l4 + payload_len;
    const std::size_t cap = std::min(full, kSnap);
    const std::size_t at = bytes.size();
    bytes.resize(at + cap);
    std::uint8_t* p = bytes.data() + at;
    const std::uint8_t dmac[6] = {2, 0, 0, 0, 0, 2}, smac[6] = {2, 0, 0, 0, 0, 1};
    std::memcpy(p, dmac, 6);
    std::memcpy(p + 6, smac, 6);
    put16(p + 12, 0x0800);
    std::uint8_t* ip = p + 14;
    ip[0] = 0x45;
    put16(ip + 2, static_cast<std::uint16_t>(20 + l4 + payload_len));
    put16(ip + 4, static_cast<std::uint16_t>(frames.size()));
    ip[6] = 0x40;  // DF
    ip[8] = 64;
    ip[9] = is_tcp ? 6 : 17;
    put32(ip + 12, s.ip);
    put32(ip + 16, d.ip);
    ip_checksum(ip);
    std::uint8_t* t = ip + 20;
    put16(t, s.port);
    put16(t + 2, d.port);
    if (is_tcp) {
      put32(t + 4, seq);
      put32(t + 8, ack);
      t[12] = 0x50;
      t[13] = flags;
      put16(t + 14, 64240);
    } else {
      put16(t + 4, static_cast<std::uint16_t>(8 + payload_len));
    }
    const std::size_t room = cap - (14 + 20 + l4);
    std::memcpy(t + l4, payload.data(), std::min(room, payload.size()));
    frames.push_back({ts, static_cast<std::uint32_t>(at), static_cast<std::uint16_t>(cap),
                      static_cast<std::uint16_t>(full)});
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: gen_trace OUT.pcap [CONNECTIONS]\n");
    return 2;
  }
  const std::size_t flows = argc == 3 ? std::strtoul(argv[2], nullptr, 10) : 180000;
  std::mt19937_64 rng(42);
  Builder b;
  b.frames.reserve(flows * 9);
  b.bytes.reserve(flows * 9 * 100);
  constexpr std::uint8_t kF = 0x01, kS = 0x02, kP = 0x08, kA = 0x10;
  const std::string_view get =
      "GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench\r\n"
      "Accept: */*\r\n\r\n";
  const std::string_view reply = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n";
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
    std::int64_t ts = kBaseNs + static_cast<std::int64_t>(rng() % 2'000'000'000ULL);
    const auto step = [&] { ts += 100'000 + static_cast<std::int64_t>(rng() % 2'000'000); };
    const auto add = [&](const Endpoint& s, const Endpoint& d, bool tcp, std::uint8_t fl,
                         std::uint32_t seq, std::uint32_t ack, std::string_view pl,
                         std::uint32_t len) {
      b.add(ts, s, d, tcp, fl, seq, ack, pl, len);
      step();
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
        add(server, client, true, kA, ss, cs, k == 0 ? reply : noise, 1400);
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
        const bool up = (k % 2) == 0;
        if (up) {
          add(client, server, true, kA | kP, cs, ss, noise, 300);
          cs += 300;
        } else {
          add(server, client, true, kA | kP, ss, cs, noise, 300);
          ss += 300;
        }
      }
    }
  }
  std::stable_sort(b.frames.begin(), b.frames.end(),
                   [](const Frame& x, const Frame& y) { return x.ts < y.ts; });

  std::FILE* f = std::fopen(argv[1], "wb");
  if (f == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  std::vector<std::uint8_t> out;
  out.reserve(b.bytes.size() + b.frames.size() * 16 + 24);
  const auto le32 = [&](std::uint32_t v) {
    for (int k = 0; k < 4; ++k) out.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
  };
  const auto le16 = [&](std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v));
    out.push_back(static_cast<std::uint8_t>(v >> 8));
  };
  le32(0xa1b2c3d4);  // microsecond pcap, little-endian
  le16(2);
  le16(4);
  le32(0);
  le32(0);
  le32(kSnap);
  le32(1);  // LINKTYPE_ETHERNET
  for (const Frame& fr : b.frames) {
    le32(static_cast<std::uint32_t>(fr.ts / 1'000'000'000));
    le32(static_cast<std::uint32_t>(fr.ts % 1'000'000'000 / 1000));
    le32(fr.caplen);
    le32(fr.wirelen);
    out.insert(out.end(), b.bytes.begin() + fr.offset, b.bytes.begin() + fr.offset + fr.caplen);
  }
  if (std::fwrite(out.data(), 1, out.size(), f) != out.size() || std::fclose(f) != 0) {
    std::perror(argv[1]);
    return 1;
  }
  std::printf("gen_trace packets=%zu connections=%zu bytes=%zu\n", b.frames.size(), flows,
              out.size());
  return 0;
}
