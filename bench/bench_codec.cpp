// Codec throughput (SPEC §8: IPFIX decode of a typical 10-field IPv4 template
// into internal records, target >= 10 M records/s on one core).
//   cmake --preset release && cmake --build --preset release --target bench_codec
//   build/release/bench/bench_codec
// Records/s is the "items_per_second" column. Figures go to docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <vector>

#include "common/bytes.hpp"
#include "ipfix/decode.hpp"
#include "ipfix/message_builder.hpp"
#include "ipfix/netflow_v9_builder.hpp"

namespace {

using namespace flowsec;
using namespace flowsec::ipfix;

// A typical 5-tuple + counters + times IPv4 flow template: 10 fields, 47 bytes per record.
TemplatePtr ten_field_template() {
  return *Template::make(256, {{0, 8, 4},
                               {0, 12, 4},
                               {0, 7, 2},
                               {0, 11, 2},
                               {0, 4, 1},
                               {0, 6, 2},
                               {0, 1, 8},
                               {0, 2, 8},
                               {0, 152, 8},
                               {0, 153, 8}});
}

std::vector<std::byte> record_bytes(std::uint32_t i) {
  std::vector<std::byte> r;
  ByteWriter w(r);
  w.u32(0x0a000000 | i);
  w.u32(0xc0a80001);
  w.u16(static_cast<std::uint16_t>(1024 + i));
  w.u16(443);
  w.u8(6);
  w.u16(0x1b);
  w.u64(1500ull * i);
  w.u64(i);
  w.u64(1700000000000ull + i);
  w.u64(1700000001000ull + i);
  return r;
}

// Messages as a UDP exporter would send them: at most 1400 bytes, template first.
std::vector<std::vector<std::byte>> ipfix_messages(const TemplatePtr& t, std::size_t count) {
  std::vector<std::vector<std::byte>> out;
  IpfixMessageBuilder b(1, 1400);
  std::uint32_t seq = 0;
  b.begin(1700000000, seq);
  (void)b.add_template(*t);
  for (std::uint32_t i = 0; out.size() < count; ++i) {
    auto r = record_bytes(i);
    if (!b.add_record(*t, r)) {
      seq += b.data_records();
      out.push_back(b.finish());
      b.begin(1700000000, seq);
      (void)b.add_record(*t, r);
    }
  }
  return out;
}

void BM_IpfixDecode10Fields(benchmark::State& state) {
  auto t = ten_field_template();
  auto msgs = ipfix_messages(t, 64);
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  batch.reserve(1 << 20, 1 << 15);
  std::int64_t records = 0;
  for (auto _ : state) {
    for (const auto& m : msgs) {
      auto r = decode_ipfix(m, store, batch);
      records += r->data_records;
    }
    batch.clear();
  }
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 64 * 1400);
}
BENCHMARK(BM_IpfixDecode10Fields);

void BM_NetflowV9Decode10Fields(benchmark::State& state) {
  auto t = ten_field_template();
  std::vector<std::vector<std::byte>> msgs;
  NetflowV9MessageBuilder b(1, 1400);
  std::uint32_t seq = 0;
  b.begin(100000, 1700000000, seq);
  (void)b.add_template(*t);
  for (std::uint32_t i = 0; msgs.size() < 64; ++i) {
    auto r = record_bytes(i);
    if (!b.add_record(*t, r)) {
      msgs.push_back(b.finish());
      b.begin(100000, 1700000000, ++seq);
      (void)b.add_record(*t, r);
    }
  }
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  batch.reserve(1 << 20, 1 << 15);
  std::int64_t records = 0;
  for (auto _ : state) {
    for (const auto& m : msgs) {
      auto r = decode_netflow_v9(m, store, batch);
      records += r->data_records;
    }
    batch.clear();
  }
  state.SetItemsProcessed(records);
}
BENCHMARK(BM_NetflowV9Decode10Fields);

void BM_IpfixEncode10Fields(benchmark::State& state) {
  auto t = ten_field_template();
  std::vector<std::vector<std::byte>> recs;
  for (std::uint32_t i = 0; i < 1024; ++i) recs.push_back(record_bytes(i));
  IpfixMessageBuilder b(1, 1400);
  std::uint32_t seq = 0;
  std::int64_t records = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    b.begin(1700000000, seq);
    for (const auto& r : recs) {
      if (!b.add_record(*t, r)) {
        seq += b.data_records();
        bytes += b.finish().size();
        b.begin(1700000000, seq);
        (void)b.add_record(*t, r);
      }
    }
    seq += b.data_records();
    bytes += b.finish().size();
    records += static_cast<std::int64_t>(recs.size());
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(records);
}
BENCHMARK(BM_IpfixEncode10Fields);

}  // namespace

BENCHMARK_MAIN();
