// Probe flow path throughput (SPEC §8: parse + flow cache ≥ 5 M packets/s on one core
// without nDPI, ≥ 1 M with nDPI; ≤ 256 B per active flow).
//   cmake --preset release && cmake --build --preset release --target bench_flow
//   build/release/bench/bench_flow
// Packets/s is the "items_per_second" column; bytes_per_flow is the cache's memory per
// flow (entry + bucket share). Figures go to docs/benchmarks.md.
//
// The trace is generated (make_trace below, the mix of synthetic_trace.hpp, which gen_trace
// writes as a pcap for probe_bench.sh): 150 000 flows, ~1.2 M Ethernet/IPv4 frames in
// timestamp order, captured up to 128 bytes (snap length) with real IP lengths.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

#include "exporter/flow_encoder.hpp"
#include "flow/flow_cache.hpp"
#include "flow/l7_classifier.hpp"
#include "packet/parser.hpp"
#include "synthetic_trace.hpp"

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

Trace make_trace(std::size_t flows) {
  struct Pending {
    std::int64_t ts;
    std::uint32_t offset;
    std::uint16_t length;
  };
  std::vector<std::uint8_t> bytes;
  std::vector<Pending> all;
  all.reserve(flows * 9);
  bench::synthetic_mix(flows, 0, [&](std::int64_t ts, const bench::SyntheticPacket& p) {
    const std::size_t at = bytes.size();
    bytes.resize(at + p.capture_length());
    bench::write_frame(p, static_cast<std::uint16_t>(all.size()), bytes.data() + at);
    all.push_back(
        {ts, static_cast<std::uint32_t>(at), static_cast<std::uint16_t>(p.capture_length())});
  });
  std::stable_sort(all.begin(), all.end(),
                   [](const Pending& a, const Pending& b) { return a.ts < b.ts; });
  Trace t;
  t.flows = flows;
  t.bytes.reserve(bytes.size());
  t.frames.reserve(all.size());
  for (const auto& f : all) {
    t.frames.push_back({static_cast<std::uint32_t>(t.bytes.size()), f.length, f.ts});
    const auto* from = reinterpret_cast<const std::byte*>(bytes.data()) + f.offset;
    t.bytes.insert(t.bytes.end(), from, from + f.length);
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
  constexpr std::size_t kCaptureBatch = 256;
  std::vector<packet::PacketView> views(kCaptureBatch);
  std::vector<flow::FlowCache::Packet> run;
  std::uint64_t exported = 0, peak_active = 0;
  double bytes_per_flow = 0, bytes_in_use_per_active = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto cache = std::make_unique<flow::FlowCache>(
        flow::FlowCacheConfig{}, [&](const flow::FlowRecord&) { ++exported; }, l7.get());
    state.ResumeTiming();
    // As the probe does: a capture batch is parsed, then accounted in one add_batch() run
    // (which prefetches), and the expiry scan runs once per second of packet time.
    std::int64_t next_expire = 0;
    for (std::size_t from = 0; from < t.frames.size(); from += kCaptureBatch) {
      const std::size_t n = std::min(kCaptureBatch, t.frames.size() - from);
      run.clear();
      for (std::size_t i = 0; i < n; ++i) {
        const Frame& f = t.frames[from + i];
        const std::span<const std::byte> data(t.bytes.data() + f.offset, f.length);
        if (packet::parse_packet_into(packet::link_type::kEthernet, data, opts, views[i])) continue;
        run.push_back({&views[i], data, f.ts});
      }
      if (!run.empty() && run.front().timestamp_ns >= next_expire) {
        cache->expire(run.front().timestamp_ns);
        next_expire = run.front().timestamp_ns + 1'000'000'000;
      }
      cache->add_batch(run);
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

// The probe's export encoding: the trace's flows (as the cache hands them over) into IPFIX
// records of nProbe's default template, 1024 per batch as the probe publishes them.
// Flows/s is "items_per_second".
void BM_FlowEncodeDefaultTemplate(benchmark::State& state) {
  const Trace& t = trace();
  std::vector<flow::FlowRecord> flows;
  {
    flow::FlowCache cache(flow::FlowCacheConfig{},
                          [&](const flow::FlowRecord& f) { flows.push_back(f); });
    packet::PacketView view;
    for (const Frame& f : t.frames) {
      const std::span<const std::byte> data(t.bytes.data() + f.offset, f.length);
      if (!packet::parse_packet_into(packet::link_type::kEthernet, data, {}, view)) {
        cache.add(view, data, f.ts);
      }
    }
    cache.flush();
  }
  exporter::FlowEncoderOptions o;
  o.start_time_ms = t.frames.front().ts / 1'000'000;
  auto encoder = exporter::FlowEncoder::create(std::move(o));
  if (!encoder) {
    state.SkipWithError(encoder.error().c_str());
    return;
  }
  constexpr std::size_t kBatch = 1024;
  ipfix::RecordBatch batch;
  std::size_t next = 0;
  std::int64_t encoded = 0;
  for (auto _ : state) {
    if (next + kBatch > flows.size()) next = 0;
    batch.clear();
    encoder->encode(std::span(flows).subspan(next, kBatch), batch);
    next += kBatch;
    encoded += static_cast<std::int64_t>(kBatch);
    benchmark::DoNotOptimize(batch.size());
  }
  state.SetItemsProcessed(encoded);
}
void BM_ParseAndFlowCacheWithNdpi(benchmark::State& state) {
  run(state, true);
}

BENCHMARK(BM_ParseOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParseAndFlowCache)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_ParseAndFlowCacheWithNdpi)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_FlowEncodeDefaultTemplate);

}  // namespace

BENCHMARK_MAIN();
