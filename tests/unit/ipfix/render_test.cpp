// Renderers (render.hpp): exact JSON lines, text and CSV for records built from
// values chosen here — nProbe key names, every value type, string escaping
// (RFC 8259 for JSON, RFC 4180 for CSV), exporter keys, paddingOctets left out,
// unknown elements as hex, and the NetFlow sysUptime → epoch conversion.
#include "ipfix/render.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ipfix/value.hpp"

namespace flowsec::ipfix {
namespace {

using namespace std::chrono_literals;
using Buf = std::vector<std::byte>;

IpAddress ip(std::string_view s) {
  return *IpAddress::parse(s);
}

Buf bytes(std::initializer_list<int> v) {
  Buf b;
  for (int x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}

TemplatePtr make(std::uint16_t id, std::vector<FieldSpec> fields) {
  auto t = Template::make(id, std::move(fields));
  EXPECT_TRUE(t);
  return *t;
}

// Appends one record, encoded by RecordWriter, with its own message metadata.
void add(RecordBatch& batch, const TemplatePtr& t, const std::vector<Value>& values,
         const MessageMeta& meta = {}, std::vector<DataType> types = {}) {
  const RecordWriter writer(t, std::move(types));
  Buf rec;
  auto r = writer.append(values, rec);
  ASSERT_TRUE(r) << "field " << r.error().field << ": " << describe(r.error().code);
  const auto ti = batch.use_template(t);
  const auto mi = batch.add_message(meta);
  const auto off = batch.store(rec);
  batch.add(off, static_cast<std::uint16_t>(rec.size()), ti, mi);
}

// Adds a record from raw bytes (for values RecordWriter would refuse).
void add_raw(RecordBatch& batch, const TemplatePtr& t, const Buf& rec,
             const MessageMeta& meta = {}) {
  const auto ti = batch.use_template(t);
  const auto mi = batch.add_message(meta);
  const auto off = batch.store(rec);
  batch.add(off, static_cast<std::uint16_t>(rec.size()), ti, mi);
}

// One record with a field of every kind the renderers distinguish.
RecordBatch every_kind_batch() {
  const TemplatePtr t = make(256, {{0, 8, 4},
                                   {0, 12, 4},
                                   {0, 1, 4},
                                   {0, 4, 1},
                                   {kNtopPen, 118, 2},
                                   {0, 56, 6},
                                   {0, 27, 16},
                                   {0, 210, 2},
                                   {kNtopPen, 361, kVariableLength},
                                   {0, 276, 1},
                                   {0, 152, 8},
                                   {0, 154, 8},
                                   {0, 156, 8},
                                   {0, 150, 4},
                                   {4242, 7, kVariableLength},
                                   {0, 70, 3},
                                   {0, 311, 8},
                                   {0, 434, 4}});
  const DateTimeSeconds t0{1700000000s};
  RecordBatch batch;
  batch.exporter.address = ip("192.0.2.254");
  batch.exporter.tls_identity = "CN=router1,O=Example \"A\"";
  add(batch, t,
      {Value{ip("192.0.2.1")}, Value{ip("198.51.100.7")}, Value{std::uint64_t{1500}},
       Value{std::uint64_t{6}}, Value{std::uint64_t{7}},
       Value{MacAddress{{0x00, 0x1b, 0x21, 0xab, 0xcd, 0xef}}}, Value{ip("2001:db8::1")},
       Value{bytes({0, 0})},
       // quote, backslash, newline, a control byte, UTF-8 é, and a byte that is not UTF-8
       Value{std::string("a\"b\\c\n\x01\xc3\xa9\xff")}, Value{true},
       Value{DateTimeMilliseconds{t0} + 123ms}, Value{DateTimeMicroseconds{t0} + 123456us},
       Value{DateTimeNanoseconds{t0} + 123456789ns}, Value{t0}, Value{bytes({0x0a, 0x0b})},
       Value{bytes({0x01, 0x23, 0x45})}, Value{0.25}, Value{std::int64_t{-5}}},
      MessageMeta{});
  return batch;
}

TEST(RenderTest, JsonLinesEveryKind) {
  std::string out;
  render_json_lines(every_kind_batch(), out);
  EXPECT_EQ(out, R"({"IPV4_SRC_ADDR":"192.0.2.1","IPV4_DST_ADDR":"198.51.100.7","IN_BYTES":1500,)"
                 R"("PROTOCOL":6,"L7_PROTO":7,"IN_SRC_MAC":"00:1b:21:ab:cd:ef",)"
                 R"("IPV6_SRC_ADDR":"2001:db8::1","HTTP_SITE":"a\"b\\c\n\u0001é\\xff",)"
                 R"("dataRecordsReliability":true,"FLOW_START_MILLISECONDS":1700000000123,)"
                 R"("FLOW_START_MICROSECONDS":1700000000123456,)"
                 R"("flowStartNanoseconds":1700000000123456789,"FLOW_START_SEC":1700000000,)"
                 R"("E4242_7":"0a0b","MPLS_LABEL_1":"012345","samplingProbability":0.25,)"
                 R"("mibObjectValueInteger":-5,"EXPORTER_IPV4_ADDRESS":"192.0.2.254",)"
                 R"("EXPORTER_TLS_IDENTITY":"CN=router1,O=Example \"A\""})"
                 "\n");
}

TEST(RenderTest, TextEveryKind) {
  std::string out;
  render_text(every_kind_batch(), out);
  EXPECT_EQ(
      out, R"(IPV4_SRC_ADDR=192.0.2.1 IPV4_DST_ADDR=198.51.100.7 IN_BYTES=1500 PROTOCOL=6 )"
           R"(L7_PROTO=7 IN_SRC_MAC=00:1b:21:ab:cd:ef IPV6_SRC_ADDR=2001:db8::1 )"
           R"(HTTP_SITE="a\"b\\c\n\x01é\xff" dataRecordsReliability=true )"
           R"(FLOW_START_MILLISECONDS=1700000000123 FLOW_START_MICROSECONDS=1700000000123456 )"
           R"(flowStartNanoseconds=1700000000123456789 FLOW_START_SEC=1700000000 E4242_7=0a0b )"
           R"(MPLS_LABEL_1=012345 samplingProbability=0.25 mibObjectValueInteger=-5 )"
           R"(EXPORTER_IPV4_ADDRESS=192.0.2.254 EXPORTER_TLS_IDENTITY="CN=router1,O=Example \"A\"")"
           "\n");
}

TEST(RenderTest, CsvQuotingAndHeaders) {
  const TemplatePtr a = make(256, {{0, 8, 4}, {0, 7, 2}, {kNtopPen, 361, kVariableLength}});
  const TemplatePtr b = make(257, {{0, 1, 4}});
  RecordBatch batch;
  batch.exporter.tls_identity = "CN=a,O=b";  // address left unspecified: no address column
  add(batch, a, {Value{ip("10.0.0.1")}, Value{std::uint64_t{80}}, Value{std::string("plain")}});
  add(batch, a,
      {Value{ip("10.0.0.2")}, Value{std::uint64_t{443}}, Value{std::string("x,\"y\"\r\nz")}});
  add(batch, b, {Value{std::uint64_t{42}}});
  add(batch, a, {Value{ip("10.0.0.3")}, Value{std::uint64_t{53}}, Value{std::string("t\x02")}});

  RecordRenderer csv(RenderFormat::csv);
  std::string out;
  csv.render(batch, out);
  EXPECT_EQ(out,
            "IPV4_SRC_ADDR,L4_SRC_PORT,HTTP_SITE,EXPORTER_TLS_IDENTITY\n"
            "10.0.0.1,80,plain,\"CN=a,O=b\"\n"
            "10.0.0.2,443,\"x,\"\"y\"\"\r\nz\",\"CN=a,O=b\"\n"
            "IN_BYTES,EXPORTER_TLS_IDENTITY\n"
            "42,\"CN=a,O=b\"\n"
            "IPV4_SRC_ADDR,L4_SRC_PORT,HTTP_SITE,EXPORTER_TLS_IDENTITY\n"
            "10.0.0.3,53,t\\x02,\"CN=a,O=b\"\n");

  // Same columns in the next batch: no new header. After reset() (a new file): a header.
  RecordBatch next;
  next.exporter.tls_identity = "CN=a,O=b";
  add(next, a, {Value{ip("10.0.0.4")}, Value{std::uint64_t{22}}, Value{std::string("s")}});
  out.clear();
  csv.render(next, out);
  EXPECT_EQ(out, "10.0.0.4,22,s,\"CN=a,O=b\"\n");
  csv.reset();
  out.clear();
  csv.render(next, out);
  EXPECT_EQ(out,
            "IPV4_SRC_ADDR,L4_SRC_PORT,HTTP_SITE,EXPORTER_TLS_IDENTITY\n"
            "10.0.0.4,22,s,\"CN=a,O=b\"\n");

  // The exporter columns are part of the column set.
  next.exporter.tls_identity.clear();
  out.clear();
  csv.render(next, out);
  EXPECT_EQ(out, "IPV4_SRC_ADDR,L4_SRC_PORT,HTTP_SITE\n10.0.0.4,22,s\n");

  // The free function keeps its state in CsvState between calls.
  CsvState state;
  out.clear();
  render_csv(next, out, state);
  render_csv(next, out, state);
  EXPECT_EQ(out, "IPV4_SRC_ADDR,L4_SRC_PORT,HTTP_SITE\n10.0.0.4,22,s\n10.0.0.4,22,s\n");
}

TEST(RenderTest, ExporterKeys) {
  const TemplatePtr t = make(256, {{0, 4, 1}});
  RecordBatch batch;
  batch.exporter.address = ip("2001:db8::7");
  add(batch, t, {Value{std::uint64_t{17}}});
  std::string out;
  render_json_lines(batch, out);
  EXPECT_EQ(out, R"({"PROTOCOL":17,"EXPORTER_IPV6_ADDRESS":"2001:db8::7"})"
                 "\n");

  out.clear();
  batch.exporter.address = IpAddress();  // unspecified: left out
  render_json_lines(batch, out);
  EXPECT_EQ(out, R"({"PROTOCOL":17})"
                 "\n");

  out.clear();
  batch.exporter.address = ip("0.0.0.0");
  render_text(batch, out);
  EXPECT_EQ(out, "PROTOCOL=17\n");

  // A record carrying exporterIPv4Address itself (a proxying nProbe): its value wins.
  const TemplatePtr own = make(257, {{0, 130, 4}, {0, 4, 1}});
  RecordBatch proxied;
  proxied.exporter.address = ip("192.0.2.10");
  add(proxied, own, {Value{ip("10.9.9.9")}, Value{std::uint64_t{6}}});
  out.clear();
  render_json_lines(proxied, out);
  EXPECT_EQ(out, R"({"EXPORTER_IPV4_ADDRESS":"10.9.9.9","PROTOCOL":6})"
                 "\n");
}

TEST(RenderTest, SysUptimeBecomesEpochSeconds) {
  // FIRST_SWITCHED (22) and LAST_SWITCHED (21), NetFlow v9 style.
  const TemplatePtr t = make(256, {{0, 22, 4}, {0, 21, 4}});
  MessageMeta v9;
  v9.protocol = Protocol::netflow_v9;
  v9.export_time = 1700000000;
  v9.sys_uptime_ms = 100000;
  RecordBatch batch;
  // The whole second of export_time * 1000 - (sys_uptime_ms - value) milliseconds:
  // 99500 is half a second before the export, so in the second before it.
  add(batch, t, {Value{std::uint64_t{40000}}, Value{std::uint64_t{99500}}}, v9);
  // A LAST_SWITCHED slightly ahead of the header's uptime.
  add(batch, t, {Value{std::uint64_t{99000}}, Value{std::uint64_t{101500}}}, v9);
  // The uptime wrapped (49.7 days) between the flow's start and the export.
  MessageMeta wrapped = v9;
  wrapped.sys_uptime_ms = 5000;
  add(batch, t, {Value{std::uint64_t{0xfffff000}}, Value{std::uint64_t{4000}}}, wrapped);
  // v5's residual nanoseconds count: 500 ms before an export at .400 is in the second
  // before it, 250 ms before it in that second.
  MessageMeta v5 = v9;
  v5.protocol = Protocol::netflow_v5;
  v5.export_time_nsec = 400'000'000;
  add(batch, t, {Value{std::uint64_t{99500}}, Value{std::uint64_t{99750}}}, v5);
  // IPFIX header: no uptime, so the raw value.
  MessageMeta ipfix;
  ipfix.export_time = 1700000000;
  add(batch, t, {Value{std::uint64_t{40000}}, Value{std::uint64_t{99500}}}, ipfix);
  std::string out;
  render_json_lines(batch, out);
  EXPECT_EQ(out, R"({"FIRST_SWITCHED":1699999940,"LAST_SWITCHED":1699999999})"
                 "\n"
                 R"({"FIRST_SWITCHED":1699999999,"LAST_SWITCHED":1700000001})"
                 "\n"
                 R"({"FIRST_SWITCHED":1699999990,"LAST_SWITCHED":1699999999})"
                 "\n"
                 R"({"FIRST_SWITCHED":1699999999,"LAST_SWITCHED":1700000000})"
                 "\n"
                 R"({"FIRST_SWITCHED":40000,"LAST_SWITCHED":99500})"
                 "\n");

  // With systemInitTimeMilliseconds (160) in the record: (init + value) / 1000.
  const TemplatePtr with_init = make(257, {{0, 160, 8}, {0, 22, 4}, {0, 21, 4}});
  RecordBatch b2;
  add(b2, with_init,
      {Value{DateTimeMilliseconds{1699999000000ms}}, Value{std::uint64_t{1500}},
       Value{std::uint64_t{2999}}},
      ipfix);
  out.clear();
  render_text(b2, out);
  EXPECT_EQ(out,
            "systemInitTimeMilliseconds=1699999000000 FIRST_SWITCHED=1699999001 "
            "LAST_SWITCHED=1699999002\n");
}

TEST(RenderTest, ValuesOfImpossibleLengthAreHex) {
  // boolean 3 (RFC 7011 §6.1.5 allows 1 and 2), an IPv4 address in 2 bytes,
  // a 3-byte float.
  const TemplatePtr t = make(256, {{0, 276, 1}, {0, 8, 2}, {0, 311, 3}});
  RecordBatch batch;
  add_raw(batch, t, bytes({3, 10, 1, 0x3f, 0x80, 0x00}));
  std::string out;
  render_json_lines(batch, out);
  EXPECT_EQ(
      out,
      R"({"dataRecordsReliability":"03","IPV4_SRC_ADDR":"0a01","samplingProbability":"3f8000"})"
      "\n");
  out.clear();
  render_text(batch, out);
  EXPECT_EQ(out, "dataRecordsReliability=03 IPV4_SRC_ADDR=0a01 samplingProbability=3f8000\n");
}

TEST(RenderTest, FloatsAndSpecialValues) {
  const TemplatePtr t = make(256, {{0, 311, 8}, {0, 320, 4}, {0, 321, 8}});
  RecordBatch batch;
  add(batch, t,
      {Value{std::numeric_limits<double>::quiet_NaN()}, Value{0.1},
       Value{-std::numeric_limits<double>::infinity()}});
  std::string out;
  render_json_lines(batch, out);
  // 0.1 sent as float32 prints as the float it is, not 0.10000000149011612.
  EXPECT_EQ(out, R"({"samplingProbability":null,"absoluteError":0.1,"relativeError":null})"
                 "\n");
  out.clear();
  render_text(batch, out);
  EXPECT_EQ(out, "samplingProbability=nan absoluteError=0.1 relativeError=-inf\n");
}

TEST(RenderTest, DuplicateNamesAndEmptyStrings) {
  const TemplatePtr t = make(256, {{0, 1, 4}, {0, 1, 8}, {kNtopPen, 361, kVariableLength}});
  RecordBatch batch;
  add(batch, t, {Value{std::uint64_t{1}}, Value{std::uint64_t{2}}, Value{std::string()}});
  std::string out;
  render_text(batch, out);
  EXPECT_EQ(out, "IN_BYTES=1 IN_BYTES_2=2 HTTP_SITE=\"\"\n");
  out.clear();
  render_json_lines(batch, out);
  EXPECT_EQ(out, R"({"IN_BYTES":1,"IN_BYTES_2":2,"HTTP_SITE":""})"
                 "\n");
}

TEST(RenderTest, FixedLengthStringsLoseTheirPadding) {
  const TemplatePtr t = make(256, {{0, 82, 8}});  // interfaceName, nProbe length 8
  RecordBatch batch;
  add(batch, t, {Value{std::string("eth0")}});
  std::string out;
  render_json_lines(batch, out);
  EXPECT_EQ(out, R"({"INTERFACE_NAME":"eth0"})"
                 "\n");
}

TEST(RenderTest, RendererReusedAcrossBatchesAndTemplates) {
  RecordRenderer json(RenderFormat::json_lines);
  std::string out;
  for (int i = 0; i < 3; ++i) {
    // A fresh template object per batch (as after a redefinition) with the same id.
    const TemplatePtr t = make(256, {{0, 7, 2}});
    RecordBatch batch;
    add(batch, t, {Value{std::uint64_t{static_cast<std::uint64_t>(1000 + i)}}});
    json.render(batch, out);
  }
  EXPECT_EQ(out, R"({"L4_SRC_PORT":1000})"
                 "\n"
                 R"({"L4_SRC_PORT":1001})"
                 "\n"
                 R"({"L4_SRC_PORT":1002})"
                 "\n");
}

}  // namespace
}  // namespace flowsec::ipfix
