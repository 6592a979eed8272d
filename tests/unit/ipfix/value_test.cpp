// Typed values (value.hpp): every RFC 7011 §6.1 abstract data type written by
// RecordWriter, carried in a message built by IpfixMessageBuilder, decoded by
// decode_ipfix and read back with decode_value; reduced-size encodings (§6.2),
// the variable-length 255 escape (§7), NTP timestamps (§6.1.9/§6.1.10), and
// the errors for values that do not fit or bytes that are not a valid value.
#include "ipfix/value.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/clock.hpp"
#include "ipfix/decode.hpp"
#include "ipfix/message_builder.hpp"

namespace flowsec::ipfix {
namespace {

using namespace std::chrono_literals;
using Buf = std::vector<std::byte>;

constexpr std::uint32_t kTestPen = 4242;  // not in the registry: types come from the test

Buf bytes(std::initializer_list<int> v) {
  Buf b;
  for (int x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}

Buf filled(std::size_t n, int seed) {
  Buf b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 7 + seed) & 0xff);
  return b;
}

IpAddress ip(std::string_view s) {
  return *IpAddress::parse(s);
}

struct Case {
  const char* what;
  DataType type;
  std::uint16_t length;
  Value value;
};

std::vector<Case> every_type() {
  const DateTimeSeconds t0{1700000000s};
  return {
      {"unsigned8", DataType::unsigned8, 1, Value{std::uint64_t{0xfe}}},
      {"unsigned16", DataType::unsigned16, 2, Value{std::uint64_t{65535}}},
      {"unsigned32", DataType::unsigned32, 4, Value{std::uint64_t{0xdeadbeef}}},
      {"unsigned64", DataType::unsigned64, 8, Value{std::numeric_limits<std::uint64_t>::max()}},
      {"unsigned64 reduced to 4", DataType::unsigned64, 4, Value{std::uint64_t{4000000000}}},
      {"unsigned64 reduced to 3", DataType::unsigned64, 3, Value{std::uint64_t{0xabcdef}}},
      {"unsigned64 reduced to 1", DataType::unsigned64, 1, Value{std::uint64_t{200}}},
      {"unsigned32 reduced to 2", DataType::unsigned32, 2, Value{std::uint64_t{443}}},
      {"signed8", DataType::signed8, 1, Value{std::int64_t{-128}}},
      {"signed16", DataType::signed16, 2, Value{std::int64_t{-2}}},
      {"signed32", DataType::signed32, 4,
       Value{std::int64_t{std::numeric_limits<std::int32_t>::min()}}},
      {"signed64", DataType::signed64, 8, Value{std::numeric_limits<std::int64_t>::min()}},
      {"signed64 reduced to 2", DataType::signed64, 2, Value{std::int64_t{-300}}},
      {"signed64 reduced to 3", DataType::signed64, 3, Value{std::int64_t{8388607}}},
      {"float32", DataType::float32, 4, Value{1.5}},
      {"float64", DataType::float64, 8, Value{3.141592653589793}},
      {"float64 reduced to 4", DataType::float64, 4, Value{-0.25}},
      {"boolean true", DataType::boolean, 1, Value{true}},
      {"boolean false", DataType::boolean, 1, Value{false}},
      {"macAddress", DataType::macAddress, 6,
       Value{MacAddress{{0x00, 0x1b, 0x21, 0xab, 0xcd, 0xef}}}},
      {"ipv4Address", DataType::ipv4Address, 4, Value{ip("192.0.2.33")}},
      {"ipv6Address", DataType::ipv6Address, 16, Value{ip("2001:db8::8:800:200c:417a")}},
      {"string varlen", DataType::string, kVariableLength, Value{std::string("h\xc3\xa9llo")}},
      {"string varlen empty", DataType::string, kVariableLength, Value{std::string()}},
      {"string varlen 254", DataType::string, kVariableLength, Value{std::string(254, 'a')}},
      {"string varlen 255 (escape)", DataType::string, kVariableLength,
       Value{std::string(255, 'b')}},
      {"string varlen 300 (escape)", DataType::string, kVariableLength,
       Value{std::string(300, 'c')}},
      {"string fixed, NUL padded", DataType::string, 8, Value{std::string("abc")}},
      {"octetArray varlen", DataType::octetArray, kVariableLength, Value{filled(17, 1)}},
      {"octetArray varlen 1000 (escape)", DataType::octetArray, kVariableLength,
       Value{filled(1000, 2)}},
      {"octetArray fixed", DataType::octetArray, 3, Value{bytes({0x01, 0x02, 0x03})}},
      {"dateTimeSeconds", DataType::dateTimeSeconds, 4, Value{t0}},
      {"dateTimeMilliseconds", DataType::dateTimeMilliseconds, 8,
       Value{DateTimeMilliseconds{t0} + 123ms}},
      {"dateTimeMicroseconds", DataType::dateTimeMicroseconds, 8,
       Value{DateTimeMicroseconds{t0} + 123456us}},
      {"dateTimeNanoseconds", DataType::dateTimeNanoseconds, 8,
       Value{DateTimeNanoseconds{t0} + 123456789ns}},
      {"dateTimeNanoseconds era 1 (after 2036)", DataType::dateTimeNanoseconds, 8,
       Value{DateTimeNanoseconds{std::chrono::seconds{4000000000}} + 999999999ns}},
      {"dateTimeMicroseconds before 1970", DataType::dateTimeMicroseconds, 8,
       Value{DateTimeMicroseconds{-86400s} + 1us}},
      // RFC 6313 lists are carried as bytes (a basicList header and two u16 elements here).
      {"basicList", DataType::basicList, kVariableLength,
       Value{bytes({0xff, 0x00, 0x07, 0x00, 0x02, 0x00, 0x50, 0x01, 0xbb})}},
      {"subTemplateList", DataType::subTemplateList, kVariableLength,
       Value{bytes({0x03, 0x01, 0x00, 0x0a, 0x0b})}},
      {"subTemplateMultiList", DataType::subTemplateMultiList, kVariableLength,
       Value{bytes({0x03, 0x01, 0x00, 0x00, 0x05, 0x0a})}},
  };
}

TEST(ValueTest, EveryTypeRoundTripsThroughAMessage) {
  const std::vector<Case> cases = every_type();
  std::vector<FieldSpec> fields;
  std::vector<DataType> types;
  std::vector<Value> values;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    fields.push_back({kTestPen, static_cast<std::uint16_t>(i + 1), cases[i].length});
    types.push_back(cases[i].type);
    values.push_back(cases[i].value);
  }
  auto t = Template::make(300, fields);
  ASSERT_TRUE(t);
  const RecordWriter writer(*t, types);
  Buf record;
  ASSERT_TRUE(writer.append(values, record));

  IpfixMessageBuilder builder(7);
  builder.begin(1700000000, 0);
  ASSERT_TRUE(builder.add_template(**t));
  ASSERT_TRUE(builder.add_record(**t, record));
  const Buf message = builder.finish();

  ManualClock clock;
  TemplateStore store(TransportKind::stream, clock);
  RecordBatch batch;
  auto stats = decode_ipfix(message, store, batch);
  ASSERT_TRUE(stats) << describe(stats.error().code);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].bytes().size(), record.size());

  std::size_t i = 0;
  batch[0].for_each_field([&](const FieldValue& f) {
    ASSERT_LT(i, cases.size());
    SCOPED_TRACE(cases[i].what);
    auto v = decode_value(cases[i].type, f.value);
    ASSERT_TRUE(v) << describe(v.error());
    EXPECT_TRUE(*v == cases[i].value);
    ++i;
  });
  EXPECT_EQ(i, cases.size());
}

TEST(ValueTest, RegistryTypesAreUsedByDefault) {
  // IN_BYTES (unsigned64, sent reduced to 4 bytes as nProbe does), IPV4_SRC_ADDR, IN_SRC_MAC.
  auto t = Template::make(256, {{0, 1, 4}, {0, 8, 4}, {0, 56, 6}});
  ASSERT_TRUE(t);
  const RecordWriter writer(*t);
  Buf out;
  const std::vector<Value> values{Value{std::uint64_t{1234}}, Value{ip("10.1.2.3")},
                                  Value{MacAddress{{1, 2, 3, 4, 5, 6}}}};
  ASSERT_TRUE(writer.append(values, out));
  EXPECT_EQ(out, bytes({0, 0, 0x04, 0xd2, 10, 1, 2, 3, 1, 2, 3, 4, 5, 6}));
}

TEST(ValueTest, VariableLengthPrefixes) {
  // RFC 7011 §7: below 255 one length byte; from 255 on, 255 then a 2-byte length.
  Buf out;
  ASSERT_TRUE(encode_value(DataType::string, kVariableLength, Value{std::string(254, 'x')}, out));
  ASSERT_EQ(out.size(), 255u);
  EXPECT_EQ(out[0], std::byte{254});

  out.clear();
  ASSERT_TRUE(encode_value(DataType::string, kVariableLength, Value{std::string(255, 'x')}, out));
  ASSERT_EQ(out.size(), 258u);
  EXPECT_EQ(out[0], std::byte{255});
  EXPECT_EQ(out[1], std::byte{0x00});
  EXPECT_EQ(out[2], std::byte{0xff});

  out.clear();
  ASSERT_TRUE(encode_value(DataType::octetArray, kVariableLength, Value{filled(300, 0)}, out));
  ASSERT_EQ(out.size(), 303u);
  EXPECT_EQ(Buf(out.begin(), out.begin() + 3), bytes({255, 0x01, 0x2c}));

  // A numeric type in a variable-length field takes its natural size.
  out.clear();
  ASSERT_TRUE(encode_value(DataType::unsigned16, kVariableLength, Value{std::uint64_t{80}}, out));
  EXPECT_EQ(out, bytes({2, 0x00, 0x50}));
}

TEST(ValueTest, ReducedSizeEncodingOnTheWire) {
  Buf out;
  ASSERT_TRUE(encode_value(DataType::unsigned64, 3, Value{std::uint64_t{0x010203}}, out));
  EXPECT_EQ(out, bytes({1, 2, 3}));
  out.clear();
  ASSERT_TRUE(encode_value(DataType::signed64, 2, Value{std::int64_t{-2}}, out));
  EXPECT_EQ(out, bytes({0xff, 0xfe}));
  // RFC 7011 §6.2: float64 reduced to float32.
  out.clear();
  ASSERT_TRUE(encode_value(DataType::float64, 4, Value{1.0}, out));
  EXPECT_EQ(out, bytes({0x3f, 0x80, 0x00, 0x00}));

  // Sign extension from any length.
  EXPECT_EQ(std::get<std::int64_t>(*decode_value(DataType::signed32, bytes({0x80}))), -128);
  EXPECT_EQ(std::get<std::int64_t>(*decode_value(DataType::signed32, bytes({0x7f, 0xff}))), 32767);
  EXPECT_EQ(std::get<std::uint64_t>(*decode_value(DataType::unsigned8, bytes({0, 0, 0, 9}))), 9u)
      << "a length above the natural size is read, not refused";
}

TEST(ValueTest, NtpTimestamps) {
  // RFC 7011 §6.1.10: 1970-01-01T00:00:00.5Z is NTP second 2208988800, fraction 2^31.
  Buf out;
  ASSERT_TRUE(
      encode_value(DataType::dateTimeNanoseconds, 8, Value{DateTimeNanoseconds{500000000ns}}, out));
  EXPECT_EQ(out, bytes({0x83, 0xaa, 0x7e, 0x80, 0x80, 0x00, 0x00, 0x00}));
  out.clear();
  ASSERT_TRUE(
      encode_value(DataType::dateTimeMicroseconds, 8, Value{DateTimeMicroseconds{500000us}}, out));
  EXPECT_EQ(out, bytes({0x83, 0xaa, 0x7e, 0x80, 0x80, 0x00, 0x00, 0x00}));

  // §6.1.9: the low 11 bits of a microsecond fraction are ignored when read...
  auto v = decode_value(DataType::dateTimeMicroseconds,
                        bytes({0x83, 0xaa, 0x7e, 0x80, 0x80, 0x00, 0x07, 0xff}));
  ASSERT_TRUE(v);
  EXPECT_EQ(std::get<DateTimeMicroseconds>(*v), DateTimeMicroseconds{500000us});
  // ...and written as zero.
  out.clear();
  ASSERT_TRUE(
      encode_value(DataType::dateTimeMicroseconds, 8, Value{DateTimeMicroseconds{1us}}, out));
  EXPECT_EQ(load_be<std::uint32_t>(out.data() + 4) & 0x7ffu, 0u);

  // NTP seconds with the top bit clear are era 1: NTP second 0 is 2036-02-07T06:28:16Z.
  v = decode_value(DataType::dateTimeNanoseconds, bytes({0, 0, 0, 0, 0, 0, 0, 0}));
  ASSERT_TRUE(v);
  EXPECT_EQ(std::get<DateTimeNanoseconds>(*v), DateTimeNanoseconds{2085978496s});

  // Out of the representable range (before 1968-01-20).
  out.clear();
  EXPECT_EQ(encode_value(DataType::dateTimeNanoseconds, 8,
                         Value{DateTimeNanoseconds{std::chrono::seconds{-70000000}}}, out)
                .error(),
            ValueErrc::out_of_range);
  EXPECT_TRUE(out.empty());
}

TEST(ValueTest, OtherDateTimeEncodings) {
  Buf out;
  ASSERT_TRUE(encode_value(DataType::dateTimeSeconds, 4, Value{DateTimeSeconds{1700000000s}}, out));
  EXPECT_EQ(out, bytes({0x65, 0x53, 0xf1, 0x00}));
  out.clear();
  ASSERT_TRUE(encode_value(DataType::dateTimeMilliseconds, 8,
                           Value{DateTimeMilliseconds{1700000000123ms}}, out));
  EXPECT_EQ(load_be<std::uint64_t>(out.data()), 1700000000123u);
  // A coarser time converts exactly; a finer one that would lose precision does not.
  out.clear();
  ASSERT_TRUE(encode_value(DataType::dateTimeMilliseconds, 8, Value{DateTimeSeconds{2s}}, out));
  EXPECT_EQ(load_be<std::uint64_t>(out.data()), 2000u);
  out.clear();
  EXPECT_EQ(
      encode_value(DataType::dateTimeSeconds, 4, Value{DateTimeMilliseconds{2500ms}}, out).error(),
      ValueErrc::type_mismatch);
  ASSERT_TRUE(encode_value(DataType::dateTimeSeconds, 4, Value{DateTimeMilliseconds{3000ms}}, out));
  EXPECT_EQ(out, bytes({0, 0, 0, 3}));
}

TEST(ValueTest, InvalidBoolean) {
  // RFC 7011 §6.1.5: only 1 (true) and 2 (false).
  EXPECT_EQ(std::get<bool>(*decode_value(DataType::boolean, bytes({1}))), true);
  EXPECT_EQ(std::get<bool>(*decode_value(DataType::boolean, bytes({2}))), false);
  EXPECT_EQ(decode_value(DataType::boolean, bytes({0})).error(), ValueErrc::bad_boolean);
  EXPECT_EQ(decode_value(DataType::boolean, bytes({3})).error(), ValueErrc::bad_boolean);
  EXPECT_EQ(decode_value(DataType::boolean, bytes({0xff})).error(), ValueErrc::bad_boolean);
  EXPECT_EQ(decode_value(DataType::boolean, bytes({1, 1})).error(), ValueErrc::bad_length);

  // The same through a decoded record: the message decodes, the value does not.
  auto t = Template::make(256, {{0, 276, 1}});  // dataRecordsReliability (boolean)
  ASSERT_TRUE(t);
  IpfixMessageBuilder builder(1);
  builder.begin(1, 0);
  ASSERT_TRUE(builder.add_template(**t));
  ASSERT_TRUE(builder.add_record(**t, bytes({0})));
  ManualClock clock;
  TemplateStore store(TransportKind::stream, clock);
  RecordBatch batch;
  ASSERT_TRUE(decode_ipfix(builder.finish(), store, batch));
  ASSERT_EQ(batch.size(), 1u);
  auto f = batch[0].field(0, 276);
  ASSERT_TRUE(f);
  EXPECT_EQ(decode_value(element_type(0, 276), *f).error(), ValueErrc::bad_boolean);
}

TEST(ValueTest, ImpossibleLengthsAreErrors) {
  EXPECT_EQ(decode_value(DataType::unsigned64, Buf(9)).error(), ValueErrc::bad_length);
  EXPECT_EQ(decode_value(DataType::unsigned8, Buf()).error(), ValueErrc::bad_length);
  EXPECT_EQ(decode_value(DataType::signed16, Buf(9)).error(), ValueErrc::bad_length);
  EXPECT_EQ(decode_value(DataType::float32, Buf(8)).error(), ValueErrc::bad_length);
  EXPECT_EQ(decode_value(DataType::float64, Buf(2)).error(), ValueErrc::bad_length);
  EXPECT_EQ(decode_value(DataType::ipv4Address, Buf(3)).error(), ValueErrc::bad_length);
  EXPECT_EQ(decode_value(DataType::ipv6Address, Buf(4)).error(), ValueErrc::bad_length);
  EXPECT_EQ(decode_value(DataType::macAddress, Buf(8)).error(), ValueErrc::bad_length);
  EXPECT_EQ(decode_value(DataType::dateTimeSeconds, Buf(8)).error(), ValueErrc::bad_length);
  EXPECT_EQ(decode_value(DataType::dateTimeMilliseconds, Buf(4)).error(), ValueErrc::bad_length);
  EXPECT_EQ(decode_value(DataType::dateTimeNanoseconds, Buf(4)).error(), ValueErrc::bad_length);
  EXPECT_EQ(
      decode_value(DataType::dateTimeMilliseconds, bytes({0x80, 0, 0, 0, 0, 0, 0, 0})).error(),
      ValueErrc::out_of_range);
}

TEST(ValueTest, StringsKeepTheirBytes) {
  // Not UTF-8: kept as is (the renderers escape it), never a failure.
  auto v = decode_value(DataType::string, bytes({'a', 0xff, 0xc3, 'b'}));
  ASSERT_TRUE(v);
  EXPECT_EQ(std::get<std::string>(*v), std::string("a\xff\xc3"
                                                   "b"));
  // NUL padding of a fixed-length field is dropped.
  v = decode_value(DataType::string, bytes({'h', 't', 't', 'p', 0, 0, 0, 0}));
  ASSERT_TRUE(v);
  EXPECT_EQ(std::get<std::string>(*v), "http");
  // Unknown elements and lists are octet arrays.
  EXPECT_EQ(element_type(kTestPen, 1), DataType::octetArray);
  v = decode_value(DataType::subTemplateList, bytes({3, 1, 0}));
  ASSERT_TRUE(v);
  EXPECT_EQ(std::get<OctetArray>(*v), bytes({3, 1, 0}));
}

TEST(ValueTest, WriterRefusesValuesThatDoNotFit) {
  auto t = Template::make(256, {{0, 7, 2},         // sourceTransportPort, unsigned16
                                {kTestPen, 1, 1},  // signed8 (given below)
                                {0, 8, 4},         // sourceIPv4Address
                                {kTestPen, 2, 4},  // string, fixed 4
                                {kTestPen, 3, 3},  // octetArray, fixed 3
                                {0, 1, 4}});       // octetDeltaCount reduced to 4
  ASSERT_TRUE(t);
  const RecordWriter writer(*t, {DataType::unsigned16, DataType::signed8, DataType::ipv4Address,
                                 DataType::string, DataType::octetArray, DataType::unsigned64});
  const std::vector<Value> good{Value{std::uint64_t{80}}, Value{std::int64_t{-5}},
                                Value{ip("10.0.0.1")},    Value{std::string("abcd")},
                                Value{bytes({1, 2, 3})},  Value{std::uint64_t{0xffffffff}}};
  Buf out = bytes({0xaa});
  ASSERT_TRUE(writer.append(good, out));
  EXPECT_EQ(out.size(), 1u + 2 + 1 + 4 + 4 + 3 + 4);

  auto expect_error = [&](std::size_t field, Value v, ValueErrc code) {
    std::vector<Value> values = good;
    values[field] = std::move(v);
    Buf buf = bytes({0xaa});
    auto r = writer.append(values, buf);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), (WriteError{field, code}));
    EXPECT_EQ(buf, bytes({0xaa})) << "nothing appended on error";
  };
  expect_error(0, Value{std::uint64_t{65536}}, ValueErrc::out_of_range);
  expect_error(0, Value{std::int64_t{-1}}, ValueErrc::out_of_range);
  expect_error(0, Value{std::string("80")}, ValueErrc::type_mismatch);
  expect_error(1, Value{std::int64_t{128}}, ValueErrc::out_of_range);
  expect_error(1, Value{std::int64_t{-129}}, ValueErrc::out_of_range);
  expect_error(2, Value{ip("2001:db8::1")}, ValueErrc::type_mismatch);
  expect_error(3, Value{std::string("abcde")}, ValueErrc::out_of_range);
  expect_error(4, Value{bytes({1, 2})}, ValueErrc::bad_length);
  expect_error(5, Value{std::uint64_t{0x100000000}}, ValueErrc::out_of_range);

  Buf buf;
  auto r = writer.append(std::span<const Value>(good).first(5), buf);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ValueErrc::field_count);
  EXPECT_TRUE(buf.empty());
}

TEST(ValueTest, FloatsThatDoNotFitFourBytes) {
  Buf out;
  EXPECT_EQ(encode_value(DataType::float64, 4, Value{1e300}, out).error(), ValueErrc::out_of_range);
  EXPECT_EQ(encode_value(DataType::float32, 8, Value{1.0}, out).error(), ValueErrc::bad_length);
  EXPECT_TRUE(out.empty());
  // Infinity and NaN are floats too.
  ASSERT_TRUE(
      encode_value(DataType::float32, 4, Value{std::numeric_limits<double>::infinity()}, out));
  auto v = decode_value(DataType::float32, out);
  ASSERT_TRUE(v);
  EXPECT_TRUE(std::isinf(std::get<double>(*v)));
}

TEST(ValueTest, RecordTooLongForAMessage) {
  auto t = Template::make(256, {{0, 82, kVariableLength}, {0, 83, kVariableLength}});
  ASSERT_TRUE(t);
  const RecordWriter writer(*t);
  Buf out;
  const std::vector<Value> values{Value{std::string(40000, 'a')}, Value{std::string(30000, 'b')}};
  auto r = writer.append(values, out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ValueErrc::record_too_long);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace flowsec::ipfix
