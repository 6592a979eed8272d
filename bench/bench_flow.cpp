// Probe flow path throughput (SPEC §8: parse + flow cache ≥ 5 M packets/s on one core
// without nDPI, ≥ 1 M with nDPI; ≤ 256 B per active flow).
//   cmake --preset release && cmake --build --preset release --target bench_flow
//   build/release/bench/bench_flow
// Packets/s is the "items_per_second" column; bytes_per_flow is the cache's memory per
// flow (entry + bucket share). Figures go to docs/benchmarks.md.
//
// The trace is generated (make_trace below): 150 000 flows, ~1.2 M Ethernet/IPv4 frames
// in timestamp order, captured up to 128 bytes (snap length) with real IP lengths:
//   40% HTTP over TCP (handshake, GET with a Host header, 4 response segments, FIN both ways),
//   40% DNS over UDP (query + response), 20% TCP on a high port with random payload.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include "flow/flow_cache.hpp"
#include "flow/l7_classifier.hpp"
#include "packet/parser.hpp"

namespace {

using namespace flowsec;

struct Frame {
  std::uint32_t offset = 0;
  std::uint16_t length = 0;
  std::int64_t ts = 0;
};

struct Trace {
  std::vector<std::byte> bytes;
  std::vector<Frame> frames;
  std::size_t flows = 0;
};

constexpr std::size_t kSnap = 128;

struct Endpoint {
  std::uint32_t ip;
  std::uint16_t port;
};

void put16(std::byte* p, std::uint16_t v) {
  p[0] = std::byte(v >> 8);
  p[1] = std::byte(v & 0xff);
}
void put32(std::byte* p, std::uint32_t v) {
  put16(p, static_cast<std::uint16_t>(v >> 16));
  put16(p + 2, static_cast<std::uint16_t>(v));
}

struct PendingFrame {
  std::int64_t ts;
  std::vector<std::byte> data;
};

// One Ethernet/IPv4/{TCP,UDP} frame, cut at kSnap bytes.
std::vector<std::byte> frame(const Endpoint& s, const Endpoint& d, bool is_tcp, std::uint8_t flags,
                             std::uint32_t seq, std::uint32_t ack, std::string_view payload,
                             std::uint32_t payload_len) {
  const std::size_t l4 = is_tcp ? 20 : 8;
  const std::size_t full = 14 + 20 + l4 + payload_len;
  std::vector<std::byte> f(std::min(full, kSnap));
  std::byte* p = f.data();
  const std::uint8_t dmac[6] = {2, 0, 0, 0, 0, 2}, smac[6] = {2, 0, 0, 0, 0, 1};
  std::memcpy(p, dmac, 6);
  std::memcpy(p + 6, smac, 6);
  put16(p + 12, 0x0800);
  std::byte* ip = p + 14;
  ip[0] = std::byte{0x45};
  put16(ip + 2, static_cast<std::uint16_t>(20 + l4 + payload_len));
  ip[8] = std::byte{64};
  ip[9] = std::byte{static_cast<std::uint8_t>(is_tcp ? 6 : 17)};
  put32(ip + 12, s.ip);
  put32(ip + 16, d.ip);
  std::byte* t = ip + 20;
  put16(t, s.port);
  put16(t + 2, d.port);
  if (is_tcp) {
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = std::byte{0x50};
    t[13] = std::byte{flags};
    put16(t + 14, 64240);
  } else {
    put16(t + 4, static_cast<std::uint16_t>(8 + payload_len));
  }
  const std::size_t room = f.size() - (14 + 20 + l4);
  std::memcpy(t + l4, payload.data(), std::min(room, payload.size()));
  return f;
}

Trace make_trace(std::size_t flows) {
  std::mt19937_64 rng(42);
  std::vector<PendingFrame> all;
  all.reserve(flows * 9);
  constexpr std::uint8_t kF = 0x01, kS = 0x02, kP = 0x08, kA = 0x10;
  const std::string_view get =
      "GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench\r\n"
      "Accept: */*\r\n\r\n";
  const std::string_view reply = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n";
  // DNS query for www.example.com, type A.
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
    const Endpoint client{0x0a000000U | static_cast<std::uint32_t>(i % 60000 + 1),
                          static_cast<std::uint16_t>(1024 + (i / 60000) * 7000 + i % 7000)};
    std::int64_t ts = static_cast<std::int64_t>(rng() % 2'000'000'000ULL);  // start in 2 s
    const auto step = [&] { ts += 100'000 + static_cast<std::int64_t>(rng() % 2'000'000); };
    const auto add = [&](std::vector<std::byte> f) {
      all.push_back({ts, std::move(f)});
      step();
    };
    const unsigned kind = static_cast<unsigned>(i % 5);
    if (kind < 2) {  // HTTP
      const Endpoint server{0xc0a80000U | static_cast<std::uint32_t>(i % 200), 80};
      std::uint32_t cs = static_cast<std::uint32_t>(rng()), ss = static_cast<std::uint32_t>(rng());
      add(frame(client, server, true, kS, cs, 0, {}, 0));
      add(frame(server, client, true, kS | kA, ss, cs + 1, {}, 0));
      ++cs;
      ++ss;
      add(frame(client, server, true, kA, cs, ss, {}, 0));
      add(frame(client, server, true, kP | kA, cs, ss, get,
                static_cast<std::uint32_t>(get.size())));
      cs += static_cast<std::uint32_t>(get.size());
      for (int k = 0; k < 4; ++k) {
        add(frame(server, client, true, kA, ss, cs, k == 0 ? reply : noise, 1400));
        ss += 1400;
      }
      add(frame(client, server, true, kA, cs, ss, {}, 0));
      add(frame(client, server, true, kF | kA, cs, ss, {}, 0));
      add(frame(server, client, true, kF | kA, ss, cs + 1, {}, 0));
      add(frame(client, server, true, kA, cs + 1, ss + 1, {}, 0));
    } else if (kind < 4) {  // DNS
      const Endpoint server{0x08080808U + static_cast<std::uint32_t>(i % 4), 53};
      add(frame(client, server, false, 0, 0, 0, query, static_cast<std::uint32_t>(query.size())));
      add(frame(server, client, false, 0, 0, 0, answer, static_cast<std::uint32_t>(answer.size())));
    } else {  // opaque TCP
      const Endpoint server{0xac100000U | static_cast<std::uint32_t>(i % 1000), 40000};
      std::uint32_t cs = static_cast<std::uint32_t>(rng()), ss = static_cast<std::uint32_t>(rng());
      for (auto& ch : noise) ch = static_cast<char>(rng());
      for (int k = 0; k < 12; ++k) {
        const bool up = (k % 2) == 0;
        add(up ? frame(client, server, true, kA | kP, cs, ss, noise, 300)
               : frame(server, client, true, kA | kP, ss, cs, noise, 300));
        (up ? cs : ss) += 300;
      }
    }
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const PendingFrame& a, const PendingFrame& b) { return a.ts < b.ts; });
  Trace t;
  t.flows = flows;
  std::size_t total = 0;
  for (const auto& f : all) total += f.data.size();
  t.bytes.reserve(total);
  t.frames.reserve(all.size());
  for (const auto& f : all) {
    t.frames.push_back({static_cast<std::uint32_t>(t.bytes.size()),
                        static_cast<std::uint16_t>(f.data.size()), f.ts});
    t.bytes.insert(t.bytes.end(), f.data.begin(), f.data.end());
  }
  return t;
}

const Trace& trace() {
  static const Trace t = make_trace(150'000);
  return t;
}

void run(benchmark::State& state, bool with_l7) {
  const Trace& t = trace();
  std::unique_ptr<flow::L7Classifier> l7;
  if (with_l7) {
    auto c = flow::L7Classifier::create();
    if (!c) {
      state.SkipWithError(c.error().c_str());
      return;
    }
    l7 = std::move(*c);
  }
  const packet::ParseOptions opts;
  std::uint64_t exported = 0, peak_active = 0;
  double bytes_per_flow = 0, bytes_in_use_per_active = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto cache = std::make_unique<flow::FlowCache>(
        flow::FlowCacheConfig{}, [&](const flow::FlowRecord&) { ++exported; }, l7.get());
    state.ResumeTiming();
    packet::PacketView view;
    std::int64_t next_expire = 0;
    for (const Frame& f : t.frames) {
      const std::span<const std::byte> data(t.bytes.data() + f.offset, f.length);
      if (packet::parse_packet_into(packet::link_type::kEthernet, data, opts, view)) continue;
      cache->add(view, data, f.ts);
      if (f.ts >= next_expire) {  // the probe expires once per second of packet time
        cache->expire(f.ts);
        next_expire = f.ts + 1'000'000'000;
      }
      peak_active = std::max<std::uint64_t>(peak_active, cache->active_flows());
    }
    state.PauseTiming();
    bytes_per_flow = static_cast<double>(cache->memory_per_flow());
    bytes_in_use_per_active = static_cast<double>(cache->bytes_in_use()) /
                              static_cast<double>(std::max<std::size_t>(cache->active_flows(), 1));
    cache->flush();
    cache.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * t.frames.size()));
  state.counters["packets"] = static_cast<double>(t.frames.size());
  state.counters["flows"] = static_cast<double>(t.flows);
  state.counters["peak_active"] = static_cast<double>(peak_active);
  state.counters["bytes_per_flow"] = bytes_per_flow;
  state.counters["bytes_in_use_per_active_flow"] = bytes_in_use_per_active;
  benchmark::DoNotOptimize(exported);
}

void BM_ParseOnly(benchmark::State& state) {
  const Trace& t = trace();
  packet::PacketView view;
  const packet::ParseOptions opts;
  for (auto _ : state) {
    for (const Frame& f : t.frames) {
      const std::span<const std::byte> data(t.bytes.data() + f.offset, f.length);
      benchmark::DoNotOptimize(
          packet::parse_packet_into(packet::link_type::kEthernet, data, opts, view));
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * t.frames.size()));
}

void BM_ParseAndFlowCache(benchmark::State& state) {
  run(state, false);
}
void BM_ParseAndFlowCacheWithNdpi(benchmark::State& state) {
  run(state, true);
}

BENCHMARK(BM_ParseOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParseAndFlowCache)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_ParseAndFlowCacheWithNdpi)->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
