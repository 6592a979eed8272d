// NetFlow v9 builder: wire layout (RFC 3954 §5, §6.1), size bound, what v9
// cannot express, and the round trip through decode_netflow_v9.
#include <gtest/gtest.h>

#include <vector>

#include "ipfix/decode.hpp"
#include "ipfix/netflow_v9_builder.hpp"
#include "unit/ipfix/fill_messages.hpp"

namespace flowsec::ipfix {
namespace {

std::vector<std::byte> record_bytes(std::initializer_list<std::uint64_t> values,
                                    std::initializer_list<std::size_t> lengths) {
  std::vector<std::byte> out;
  ByteWriter w(out);
  auto len = lengths.begin();
  for (std::uint64_t v : values) w.uint_n(v, *len++);
  return out;
}

TEST(NetflowV9Mapping, FieldTypesAndElements) {
  EXPECT_EQ(element_for_v9_field(1, false), (ElementId{0, 1}));
  EXPECT_EQ(element_for_v9_field(1, true), (ElementId{0, 144}));  // System
  EXPECT_EQ(element_for_v9_field(2, true), (ElementId{0, 10}));   // Interface
  EXPECT_EQ(element_for_v9_field(3, true), (ElementId{0, 141}));  // Line Card
  EXPECT_EQ(element_for_v9_field(4, true), (ElementId{0, 143}));  // Cache
  EXPECT_EQ(element_for_v9_field(5, true), (ElementId{0, 145}));  // Template
  EXPECT_EQ(element_for_v9_field(8, true), (ElementId{0, 8}));
  EXPECT_EQ(element_for_v9_field(57590, false), (ElementId{kNtopPen, 118}));
  EXPECT_EQ(element_for_v9_field(40000, false), (ElementId{kV9HighTypePen, 40000 - 32768}));

  EXPECT_EQ(v9_type_for_element(0, 8, false), 8);
  EXPECT_EQ(v9_type_for_element(0, 144, true), 1);
  EXPECT_EQ(v9_type_for_element(0, 144, false), 144);
  EXPECT_EQ(v9_type_for_element(0, 145, true), 5);
  EXPECT_EQ(v9_type_for_element(kNtopPen, 118, false), 57590);
  EXPECT_EQ(v9_type_for_element(kV9HighTypePen, 40000 - 32768, false), 40000);
  // Not expressible: another enterprise, IANA id 1 as a scope field (reads as System),
  // an IANA id with the top bit set, type 0.
  EXPECT_FALSE(v9_type_for_element(9, 1, false));
  EXPECT_FALSE(v9_type_for_element(kReversePen, 1, false));
  EXPECT_FALSE(v9_type_for_element(0, 1, true));
  EXPECT_FALSE(v9_type_for_element(0, 0x8001, false));
  EXPECT_FALSE(v9_type_for_element(0, 0, false));
  // Every element we map reads back as itself.
  for (const ElementInfo& e : all_elements()) {
    for (bool scope : {false, true}) {
      if (auto type = v9_type_for_element(e.enterprise, e.id, scope)) {
        EXPECT_EQ(element_for_v9_field(*type, scope), (ElementId{e.enterprise, e.id}))
            << e.name << " scope=" << scope;
      }
    }
  }
}

TEST(NetflowV9Builder, RoundTripWithOptionsTemplateAndNtopElement) {
  // Data template: sourceIPv4Address, destinationTransportPort, octetDeltaCount (8 bytes),
  // ntop L7_PROTO (enterprise 35632, id 118 <-> v9 type 57590).
  auto data_t = *Template::make(300, {{0, 8, 4}, {0, 11, 2}, {0, 1, 8}, {kNtopPen, 118, 2}});
  // Options template: scope exportingProcessId (System) and ingressInterface (Interface),
  // options samplingInterval and samplingAlgorithm.
  auto opts_t = *Template::make(301, {{0, 144, 4}, {0, 10, 4}, {0, 34, 4}, {0, 35, 1}}, 2);

  NetflowV9MessageBuilder b(42, 1400);
  b.begin(123456, 1700000000, 9);
  EXPECT_TRUE(b.empty());
  ASSERT_TRUE(b.add_template(*data_t));
  ASSERT_TRUE(b.add_template(*opts_t));  // passed on to add_options_template
  const auto r1 = record_bytes({0xc0000201, 443, 123456789012, 7}, {4, 2, 8, 2});
  const auto r2 = record_bytes({0xc0000202, 53, 99, 5}, {4, 2, 8, 2});
  const auto o1 = record_bytes({0x0a000001, 3, 1000, 2}, {4, 4, 4, 1});
  ASSERT_TRUE(b.add_record(*data_t, r1));
  ASSERT_TRUE(b.add_record(*data_t, r2));
  ASSERT_TRUE(b.add_record(*opts_t, o1));
  EXPECT_FALSE(b.empty());
  EXPECT_EQ(b.records(), 5u);
  EXPECT_EQ(b.data_records(), 3u);
  const std::size_t predicted = b.size();
  const auto wire = b.finish();
  EXPECT_EQ(wire.size(), predicted);
  EXPECT_TRUE(b.empty());

  // Header (RFC 3954 §5.1).
  ASSERT_GE(wire.size(), 20u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data()), 9u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + 2), 5u);  // 2 templates + 3 records
  EXPECT_EQ(load_be<std::uint32_t>(wire.data() + 4), 123456u);
  EXPECT_EQ(load_be<std::uint32_t>(wire.data() + 8), 1700000000u);
  EXPECT_EQ(load_be<std::uint32_t>(wire.data() + 12), 9u);
  EXPECT_EQ(load_be<std::uint32_t>(wire.data() + 16), 42u);

  // Walk the flowsets: every length a multiple of 4, ids 0, 1, 300, 301.
  std::vector<std::uint16_t> ids;
  std::size_t at = 20;
  while (at + 4 <= wire.size()) {
    const auto len = load_be<std::uint16_t>(wire.data() + at + 2);
    ids.push_back(load_be<std::uint16_t>(wire.data() + at));
    EXPECT_EQ(len % 4, 0u) << "flowset " << ids.back();
    ASSERT_GE(len, 4u);
    at += len;
  }
  EXPECT_EQ(at, wire.size());
  EXPECT_EQ(ids, (std::vector<std::uint16_t>{0, 1, 300, 301}));
  // Template flowset: id 300, 4 fields, the ntop element as type 57590.
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + 24), 300u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + 26), 4u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + 28 + 12), 57590u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + 28 + 14), 2u);
  // Options template flowset (RFC 3954 §6.1): scope length 8, option length 8, scope
  // types System (1) and Interface (2), padded from 26 to 28 bytes.
  const std::size_t opts_at = 20 + 4 + 4 + 16;
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + opts_at + 2), 28u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + opts_at + 4), 301u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + opts_at + 6), 8u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + opts_at + 8), 8u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + opts_at + 10), 1u);
  EXPECT_EQ(load_be<std::uint16_t>(wire.data() + opts_at + 14), 2u);

  // Decode it back.
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  auto stats = decode_netflow_v9(wire, store, batch);
  ASSERT_TRUE(stats) << describe(stats.error().code) << " at " << stats.error().offset;
  EXPECT_EQ(stats->templates, 2u);
  EXPECT_EQ(stats->data_records, 3u);
  EXPECT_EQ(stats->options_records, 1u);
  EXPECT_EQ(stats->observation_domain, 42u);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_TRUE(batch[0].record_template().same_layout(*data_t));
  EXPECT_TRUE(batch[2].record_template().same_layout(*opts_t));
  EXPECT_TRUE(std::equal(batch[0].bytes().begin(), batch[0].bytes().end(), r1.begin(), r1.end()));
  EXPECT_EQ(batch[0].unsigned_field(0, 1), 123456789012u);
  EXPECT_EQ(batch[0].unsigned_field(kNtopPen, 118), 7u);
  EXPECT_EQ(batch[1].unsigned_field(0, 11), 53u);
  EXPECT_EQ(batch[2].unsigned_field(0, 144), 0x0a000001u);
  EXPECT_EQ(batch[2].unsigned_field(0, 10), 3u);
  EXPECT_EQ(batch[2].unsigned_field(0, 34), 1000u);
  EXPECT_EQ(batch[0].message().sys_uptime_ms, 123456u);
  EXPECT_EQ(batch[0].message().sequence, 9u);
}

TEST(NetflowV9Builder, RefusesWhatV9CannotExpress) {
  NetflowV9MessageBuilder b(1);
  b.begin(0, 0, 0);
  auto low_id = *Template::make(255, {{0, 8, 4}});
  auto other_pen = *Template::make(300, {{0, 8, 4}, {9, 1, 4}});
  auto reverse = *Template::make(300, {{kReversePen, 1, 8}});
  auto variable = *Template::make(300, {{0, 82, kVariableLength}});
  auto bad_scope = *Template::make(300, {{0, 1, 8}, {0, 34, 4}}, 1);  // octetDeltaCount scope
  auto plain = *Template::make(300, {{0, 8, 4}});
  EXPECT_FALSE(b.add_template(*low_id));
  EXPECT_FALSE(b.add_template(*other_pen));
  EXPECT_FALSE(b.add_template(*reverse));
  EXPECT_FALSE(b.add_template(*variable));
  EXPECT_FALSE(b.add_template(*bad_scope));
  EXPECT_FALSE(b.add_options_template(*plain));
  const std::byte rec[4]{};
  EXPECT_FALSE(b.add_record(*low_id, rec));
  EXPECT_FALSE(b.add_record(*plain, {}));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.records(), 0u);
  EXPECT_EQ(b.finish().size(), 20u);
}

TEST(NetflowV9Builder, StaysWithinTheSizeBound) {
  auto t = *Template::make(300, {{0, 8, 4}, {0, 1, 4}, {0, 4, 1}});  // 9-byte records
  const auto rec = record_bytes({1, 2, 3}, {4, 4, 1});
  // Header 20 + template flowset 4+16 = 40; data flowset header 4 leaves room for
  // 2 records (18 bytes, padded to 20) within 64.
  NetflowV9MessageBuilder b(1, 64);
  b.begin(0, 0, 100);
  ASSERT_TRUE(b.add_template(*t));
  EXPECT_TRUE(b.add_record(*t, rec));
  EXPECT_TRUE(b.add_record(*t, rec));
  EXPECT_FALSE(b.add_record(*t, rec));  // 3 records would need 4 + 27 + 1 bytes
  EXPECT_EQ(b.size(), 64u);
  const auto first = b.finish();
  EXPECT_EQ(first.size(), 64u);
  EXPECT_EQ(load_be<std::uint16_t>(first.data() + 2), 3u);

  // The next packet starts empty, with the same header; the caller bumps the sequence.
  b.begin(0, 0, 101);
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(b.add_record(*t, rec));
  const auto second = b.finish();
  EXPECT_EQ(load_be<std::uint16_t>(second.data() + 2), 1u);
  EXPECT_EQ(load_be<std::uint32_t>(second.data() + 12), 101u);

  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  ASSERT_TRUE(decode_netflow_v9(first, store, batch));
  ASSERT_TRUE(decode_netflow_v9(second, store, batch));
  EXPECT_EQ(batch.size(), 3u);
}

// add_records() puts as many records in each packet as add_record() one at a time would,
// padding included: the exporter sends the probe's flows that way.
TEST(NetflowV9Builder, AddRecordsFillsPacketsAsOneAtATimeWould) {
  for (auto t : {*Template::make(300, {{0, 8, 4}, {0, 1, 4}, {0, 4, 1}}),  // 9-byte records
                 *Template::make(301, {{0, 4, 1}, {0, 7, 2}})}) {          // 3-byte records
    const std::size_t len = t->min_record_length();
    std::vector<std::byte> all;
    for (std::size_t i = 0; i < 1000 * len; ++i) all.push_back(static_cast<std::byte>(i * 5));
    for (std::size_t max : {std::size_t{63}, std::size_t{64}, std::size_t{1400}}) {
      auto packets = [&](bool bulk) {
        NetflowV9MessageBuilder b(1, max);
        b.begin(0, 0, 0);
        EXPECT_TRUE(b.add_template(*t));
        return testing::fill_messages(
            b, [&] { b.begin(0, 0, 0); }, *t, all, len, bulk);
      };
      const auto one_by_one = packets(false);
      EXPECT_GT(one_by_one.size(), 1u);
      EXPECT_EQ(packets(true), one_by_one) << "max " << max;
    }
  }
}

TEST(NetflowV9Builder, ShortRecordsAreNotPaddedIntoExtraRecords) {
  // 1-byte records: padding 3 bytes would read as 3 more records, so none is added.
  auto t = *Template::make(300, {{0, 4, 1}});
  NetflowV9MessageBuilder b(1);
  b.begin(0, 0, 0);
  ASSERT_TRUE(b.add_template(*t));
  const std::byte one[1]{std::byte{17}};
  ASSERT_TRUE(b.add_record(*t, one));
  const auto wire = b.finish();
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  auto r = decode_netflow_v9(wire, store, batch);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data_records, 1u);
}

}  // namespace
}  // namespace flowsec::ipfix
