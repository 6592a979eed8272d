// UptimeConverter (uptime_converter.hpp): flowStart/EndSysUpTime (22/21) become
// flowStart/EndMilliseconds (152/153) from the header uptime or
// systemInitTimeMilliseconds (160); records without a reference, and templates
// without those fields, pass through untouched.
#include "sinks/uptime_converter.hpp"

#include <gtest/gtest.h>

#include "unit/sinks/sink_test_support.hpp"

namespace flowsec::sinks {
namespace {

using ipfix::MessageMeta;
using ipfix::Value;
using test::add_record;
using test::make_template;

MessageMeta v9(std::uint32_t export_time, std::uint32_t uptime_ms) {
  MessageMeta m;
  m.protocol = ipfix::Protocol::netflow_v9;
  m.export_time = export_time;
  m.sys_uptime_ms = uptime_ms;
  return m;
}

TEST(UptimeConverterTest, BatchWithoutUptimeFieldsIsNotCopied) {
  const auto b = test::small_batch(3);
  UptimeConverter c;
  EXPECT_EQ(&c.convert(*b), b.get());
  EXPECT_EQ(c.records_converted(), 0u);
}

TEST(UptimeConverterTest, HeaderUptimeGivesEpochMilliseconds) {
  // protocol, FIRST_SWITCHED, LAST_SWITCHED, bytes
  const auto t = make_template(256, {{0, 4, 1}, {0, 22, 4}, {0, 21, 4}, {0, 1, 4}});
  ipfix::RecordBatch in;
  in.exporter.tls_identity = "CN=router";
  add_record(in, t,
             {Value{std::uint64_t{6}}, Value{std::uint64_t{40000}}, Value{std::uint64_t{99500}},
              Value{std::uint64_t{1234}}},
             v9(1700000000, 100000));
  // LAST_SWITCHED slightly ahead of the header uptime; and the uptime wrapped in between.
  add_record(in, t,
             {Value{std::uint64_t{17}}, Value{std::uint64_t{99000}}, Value{std::uint64_t{101500}},
              Value{std::uint64_t{1}}},
             v9(1700000000, 100000));
  add_record(in, t,
             {Value{std::uint64_t{1}}, Value{std::uint64_t{0xfffff000}}, Value{std::uint64_t{4000}},
              Value{std::uint64_t{2}}},
             v9(1700000000, 5000));
  UptimeConverter c;
  const ipfix::RecordBatch& out = c.convert(in);
  ASSERT_NE(&out, &in);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out.exporter.tls_identity, "CN=router");
  const auto& ot = out[0].record_template();
  ASSERT_EQ(ot.fields().size(), 4u);
  EXPECT_EQ(ot.fields()[1], (ipfix::FieldSpec{0, 152, 8}));
  EXPECT_EQ(ot.fields()[2], (ipfix::FieldSpec{0, 153, 8}));
  EXPECT_EQ(out[0].unsigned_field(0, 152), 1700000000000ull - 60000);
  EXPECT_EQ(out[0].unsigned_field(0, 153), 1700000000000ull - 500);
  EXPECT_EQ(out[0].unsigned_field(0, 4), 6u);
  EXPECT_EQ(out[0].unsigned_field(0, 1), 1234u);
  EXPECT_EQ(out[1].unsigned_field(0, 152), 1700000000000ull - 1000);
  EXPECT_EQ(out[1].unsigned_field(0, 153), 1700000000000ull + 1500);
  // 0xfffff000 is 4096 ms before the wrap; the header uptime is 5000 ms after it.
  EXPECT_EQ(out[2].unsigned_field(0, 152), 1700000000000ull - 5000 - 4096);
  EXPECT_EQ(out[2].unsigned_field(0, 153), 1700000000000ull - 1000);
  EXPECT_EQ(out[2].message().sys_uptime_ms, 5000u);
  EXPECT_EQ(c.records_converted(), 3u);
  // The derived template is made once per input template.
  ipfix::RecordBatch again;
  add_record(again, t,
             {Value{std::uint64_t{6}}, Value{std::uint64_t{1}}, Value{std::uint64_t{2}},
              Value{std::uint64_t{3}}},
             v9(1700000000, 100000));
  const auto* first = &out[0].record_template();
  EXPECT_EQ(&c.convert(again)[0].record_template(), first);
}

TEST(UptimeConverterTest, V5ResidualNanosecondsAreKept) {
  const auto t = make_template(2, {{0, 22, 4}, {0, 21, 4}});
  MessageMeta m = v9(1700000000, 100000);
  m.protocol = ipfix::Protocol::netflow_v5;
  m.export_time_nsec = 250000000;
  ipfix::RecordBatch in;
  add_record(in, t, {Value{std::uint64_t{90000}}, Value{std::uint64_t{100000}}}, m);
  UptimeConverter c;
  const auto& out = c.convert(in);
  EXPECT_EQ(out[0].unsigned_field(0, 152), 1700000000250ull - 10000);
  EXPECT_EQ(out[0].unsigned_field(0, 153), 1700000000250ull);
}

TEST(UptimeConverterTest, SystemInitTimeWinsOverTheHeader) {
  const auto t = make_template(300, {{0, 160, 8}, {0, 22, 4}, {0, 21, 4}});
  ipfix::RecordBatch in;
  add_record(in, t,
             {Value{ipfix::DateTimeMilliseconds(std::chrono::milliseconds(1600000000000))},
              Value{std::uint64_t{1000}}, Value{std::uint64_t{2500}}},
             MessageMeta{});  // IPFIX header: no uptime
  UptimeConverter c;
  const auto& out = c.convert(in);
  EXPECT_EQ(out[0].unsigned_field(0, 160), 1600000000000ull);
  EXPECT_EQ(out[0].unsigned_field(0, 152), 1600000001000ull);
  EXPECT_EQ(out[0].unsigned_field(0, 153), 1600000002500ull);
}

TEST(UptimeConverterTest, NoReferenceLeavesTheRecordAsItIs) {
  const auto t = make_template(300, {{0, 22, 4}, {0, 21, 4}});
  ipfix::RecordBatch in;
  MessageMeta ipfix_header;
  ipfix_header.export_time = 1700000000;
  add_record(in, t, {Value{std::uint64_t{40000}}, Value{std::uint64_t{99500}}}, ipfix_header);
  add_record(in, t, {Value{std::uint64_t{40000}}, Value{std::uint64_t{99500}}},
             v9(1700000000, 100000));
  UptimeConverter c;
  const auto& out = c.convert(in);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(&out[0].record_template(), t.get());
  EXPECT_EQ(out[0].unsigned_field(0, 22), 40000u);
  EXPECT_EQ(out[1].unsigned_field(0, 152), 1700000000000ull - 60000);
  EXPECT_EQ(c.records_converted(), 1u);
}

TEST(UptimeConverterTest, VariableLengthFieldsKeepTheirPrefixes) {
  // interfaceName (82) variable, FIRST_SWITCHED, applicationName (96) variable.
  const auto t = make_template(
      400, {{0, 82, ipfix::kVariableLength}, {0, 22, 4}, {0, 96, ipfix::kVariableLength}});
  ipfix::RecordBatch in;
  const std::string long_name(300, 'a');  // needs the 3-byte prefix
  add_record(in, t, {Value{std::string("eth0")}, Value{std::uint64_t{99000}}, Value{long_name}},
             v9(1700000000, 100000));
  UptimeConverter c;
  const auto& out = c.convert(in);
  ASSERT_EQ(out.size(), 1u);
  std::vector<std::string> values;
  out[0].for_each_field([&](const ipfix::FieldValue& v) {
    values.emplace_back(reinterpret_cast<const char*>(v.value.data()), v.value.size());
  });
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0], "eth0");
  EXPECT_EQ(values[2], long_name);
  EXPECT_EQ(out[0].unsigned_field(0, 152), 1700000000000ull - 1000);
  EXPECT_EQ(out[0].bytes().size(), 1u + 4 + 8 + 3 + 300);
}

}  // namespace
}  // namespace flowsec::sinks
