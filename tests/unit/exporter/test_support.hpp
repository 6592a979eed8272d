#pragma once
// Helpers for the exporter unit tests: batches built with ipfix::RecordWriter from
// values, an Exporter over FakeSenders with an io_context drained by poll(), and the
// repository's own decoders to read the messages back.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "exporter/exporter.hpp"
#include "ipfix/decode.hpp"
#include "ipfix/template_store.hpp"
#include "ipfix/value.hpp"
#include "unit/exporter/fake_sender.hpp"

namespace flowsec::exporter::test {

using ipfix::FieldSpec;
using ipfix::Value;

inline ipfix::TemplatePtr make_template(std::uint16_t id, std::vector<FieldSpec> fields,
                                        std::uint16_t scope = 0) {
  auto t = ipfix::Template::make(id, std::move(fields), scope);
  EXPECT_TRUE(t.has_value());
  return *t;
}

// Appends one record of `t` with `values` to `batch` (in a message with `meta`).
inline void add_record(ipfix::RecordBatch& batch, const ipfix::TemplatePtr& t,
                       const std::vector<Value>& values, ipfix::MessageMeta meta = {}) {
  const std::uint32_t m = batch.add_message(meta);
  const std::uint16_t ti = batch.use_template(t);
  ipfix::RecordWriter w(t);
  std::vector<std::byte> bytes;
  auto ok = w.append(values, bytes);
  ASSERT_TRUE(ok.has_value()) << "field " << ok.error().field;
  const std::uint32_t off = batch.store(bytes);
  batch.add(off, static_cast<std::uint16_t>(bytes.size()), ti, m);
}

inline Value u(std::uint64_t v) {
  return Value{v};
}
inline Value ip4(std::uint32_t v) {
  return Value{IpAddress::v4(v)};
}

struct Harness {
  asio::io_context io;
  ManualClock clock;
  std::vector<std::shared_ptr<FakeSenderState>> states;
  std::unique_ptr<Exporter> exporter;

  Harness(ExporterOptions options, std::vector<std::shared_ptr<FakeSenderState>> s)
      : states(std::move(s)) {
    std::vector<std::unique_ptr<transport::Sender>> senders;
    for (auto& st : states) senders.push_back(std::make_unique<FakeSender>(st));
    if (options.start_time_ms == 0) options.start_time_ms = 1'700'000'000'000;
    if (!options.wall_clock_ms)
      options.wall_clock_ms = [] { return std::int64_t{1'700'000'100'000}; };
    exporter = std::make_unique<Exporter>(io, std::move(senders), std::move(options), clock);
    drain();
  }
  void drain() {
    io.restart();
    io.poll();
  }
  void export_batch(const ipfix::RecordBatch& b) {
    exporter->export_batch(b);
    drain();
  }
};

inline std::shared_ptr<FakeSenderState> udp(std::uint16_t port = 2055) {
  return fake_state(transport::Scheme::udp, port);
}
inline std::shared_ptr<FakeSenderState> tcp(std::uint16_t port = 2055) {
  return fake_state(transport::Scheme::tcp, port);
}

// Decodes every message of one collector in order with one template store.
struct Decoded {
  ipfix::RecordBatch batch;
  std::vector<ipfix::DecodeStats> stats;
  bool ok = true;
};
inline Decoded decode_all(const std::vector<transport::Message>& msgs, int version) {
  Decoded d;
  ipfix::TemplateStore store(ipfix::TransportKind::datagram);
  for (const auto& m : msgs) {
    auto r = version == 10  ? ipfix::decode_ipfix(Bytes(m), store, d.batch)
             : version == 9 ? ipfix::decode_netflow_v9(Bytes(m), store, d.batch)
                            : ipfix::decode_netflow_v5(Bytes(m), d.batch);
    if (!r) {
      ADD_FAILURE() << "decode failed: " << ipfix::describe(r.error().code) << " at "
                    << r.error().offset;
      d.ok = false;
      continue;
    }
    d.stats.push_back(*r);
  }
  return d;
}

// The records that are not options records (IPFIX output adds one for IE 160).
inline std::vector<ipfix::RecordView> flow_records(const Decoded& d) {
  std::vector<ipfix::RecordView> out;
  for (std::size_t i = 0; i < d.batch.size(); ++i) {
    if (!d.batch[i].record_template().is_options()) out.push_back(d.batch[i]);
  }
  return out;
}

// IPFIX: whether the message's first set is a template set (RFC 7011 §3.3.2, set id 2).
inline bool starts_with_templates(const transport::Message& m) {
  return m.size() > 18 && load_be<std::uint16_t>(m.data() + 16) == 2;
}
inline std::uint32_t header_u32(const transport::Message& m, std::size_t at) {
  return load_be<std::uint32_t>(m.data() + at);
}

}  // namespace flowsec::exporter::test
