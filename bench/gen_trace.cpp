// gen_trace: writes the synthetic trace of bench_flow.cpp as a pcap file, for
// bench/probe_bench.sh (flowsec vs softflowd on the same input).
//
//   gen_trace OUT.pcap [CONNECTIONS]      (default 180000 connections: 1.44 M packets)
//
// The mix of synthetic_trace.hpp (the same as bench_flow's), as a microsecond pcap,
// timestamps sorted, every connection starting within the first 2 s after
// 2023-11-14 22:13:20 UTC.
// Prints the packet and connection counts.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "synthetic_trace.hpp"

namespace {

using namespace flowsec::bench;

constexpr std::int64_t kBaseNs = 1'700'000'000LL * 1'000'000'000LL;

struct Frame {
  std::int64_t ts;
  std::uint32_t offset;
  std::uint16_t caplen;
  std::uint16_t wirelen;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: gen_trace OUT.pcap [CONNECTIONS]\n");
    return 2;
  }
  const std::size_t flows = argc == 3 ? std::strtoul(argv[2], nullptr, 10) : 180000;
  struct {
    std::vector<std::uint8_t> bytes;
    std::vector<Frame> frames;
  } b;
  b.frames.reserve(flows * 9);
  b.bytes.reserve(flows * 9 * 100);
  synthetic_mix(flows, kBaseNs, [&](std::int64_t ts, const SyntheticPacket& p) {
    const std::size_t at = b.bytes.size();
    b.bytes.resize(at + p.capture_length());
    write_frame(p, static_cast<std::uint16_t>(b.frames.size()), b.bytes.data() + at);
    b.frames.push_back({ts, static_cast<std::uint32_t>(at),
                        static_cast<std::uint16_t>(p.capture_length()),
                        static_cast<std::uint16_t>(p.wire_length())});
  });
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
