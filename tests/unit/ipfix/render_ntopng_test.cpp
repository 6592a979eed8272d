// ntopng JSON rendering (render.hpp RenderFormat::ntopng_json) and record-by-record
// rendering (RecordRenderer::render_each). Expected keys come from nProbe's field table
// (shared/data/nprobe-template-fields.csv, column nfv9_id: IPV4_SRC_ADDR 8, IN_BYTES 1,
// L7_PROTO 57590, HTTP_SITE 57833, ...) and the IANA registry (ids < 32768 are their own
// v9 types, RFC 3954 §8); values must equal the JSON lines renderer's for the same record.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ipfix/render.hpp"
#include "ipfix/value.hpp"

namespace flowsec::ipfix {
namespace {

using namespace std::chrono_literals;
using Buf = std::vector<std::byte>;

IpAddress ip(std::string_view s) {
  return *IpAddress::parse(s);
}

TemplatePtr make(std::uint16_t id, std::vector<FieldSpec> fields) {
  auto t = Template::make(id, std::move(fields));
  EXPECT_TRUE(t);
  return *t;
}

void add(RecordBatch& batch, const TemplatePtr& t, const std::vector<Value>& values) {
  const RecordWriter writer(t, {});
  Buf rec;
  auto r = writer.append(values, rec);
  ASSERT_TRUE(r) << "field " << r.error().field << ": " << describe(r.error().code);
  const auto ti = batch.use_template(t);
  const auto mi = batch.add_message(MessageMeta{});
  const auto off = batch.store(rec);
  batch.add(off, static_cast<std::uint16_t>(rec.size()), ti, mi);
}

std::string render_ntopng(const RecordBatch& batch) {
  std::string out;
  RecordRenderer(RenderFormat::ntopng_json).render(batch, out);
  return out;
}

// IANA, ntop and unknown elements, strings with escapes, a reverse element, the exporter.
RecordBatch mixed_batch() {
  const TemplatePtr t = make(256, {{0, 8, 4},
                                   {0, 12, 4},
                                   {0, 1, 4},
                                   {0, 4, 1},
                                   {kNtopPen, 118, 2},
                                   {0, 56, 6},
                                   {0, 27, 16},
                                   {kNtopPen, 361, kVariableLength},
                                   {0, 152, 8},
                                   {0, 150, 4},
                                   {kReversePen, 1, 8},
                                   {4242, 7, kVariableLength},
                                   {0, 311, 8}});
  const DateTimeSeconds t0{1700000000s};
  RecordBatch batch;
  batch.exporter.address = ip("192.0.2.254");
  batch.exporter.tls_identity = "CN=router1";
  add(batch, t,
      {Value{ip("192.0.2.1")}, Value{ip("198.51.100.7")}, Value{std::uint64_t{1500}},
       Value{std::uint64_t{6}}, Value{std::uint64_t{7}},
       Value{MacAddress{{0x00, 0x1b, 0x21, 0xab, 0xcd, 0xef}}}, Value{ip("2001:db8::1")},
       Value{std::string("a\"b\xc3\xa9\xff")}, Value{DateTimeMilliseconds{t0} + 123ms}, Value{t0},
       Value{std::uint64_t{99}}, Value{Buf{std::byte{0x0a}, std::byte{0x0b}}}, Value{0.25}});
  return batch;
}

TEST(RenderNtopngTest, KeysAreNetflowV9Types) {
  // IPV4_SRC_ADDR 8, IPV4_DST_ADDR 12, IN_BYTES 1, PROTOCOL 4, L7_PROTO 57590 (35632/118),
  // IN_SRC_MAC 56, IPV6_SRC_ADDR 27, HTTP_SITE 57833 (35632/361), FLOW_START_MILLISECONDS
  // 152, FLOW_START_SEC 150, samplingProbability 311; reverseOctetDeltaCount (RFC 5103)
  // and enterprise 4242 have no v9 type and keep their names; exporter 130, TLS by name.
  EXPECT_EQ(render_ntopng(mixed_batch()),
            R"({"8":"192.0.2.1","12":"198.51.100.7","1":1500,"4":6,"57590":7,)"
            R"("56":"00:1b:21:ab:cd:ef","27":"2001:db8::1","57833":"a\"bé\\xff",)"
            R"("152":1700000000123,"150":1700000000,"reverseOctetDeltaCount":99,)"
            R"("E4242_7":"0a0b","311":0.25,"130":"192.0.2.254",)"
            R"("EXPORTER_TLS_IDENTITY":"CN=router1"})"
            "\n");
}

TEST(RenderNtopngTest, ValuesEqualJsonLines) {
  const RecordBatch batch = mixed_batch();
  std::string lines;
  render_json_lines(batch, lines);
  const auto a = nlohmann::ordered_json::parse(render_ntopng(batch));
  const auto b = nlohmann::ordered_json::parse(lines);
  ASSERT_EQ(a.size(), b.size());
  auto ia = a.begin();
  auto ib = b.begin();
  for (; ia != a.end(); ++ia, ++ib) EXPECT_EQ(*ia, *ib) << ia.key() << " vs " << ib.key();
}

TEST(RenderNtopngTest, ExporterAddressKeys) {
  const TemplatePtr t = make(256, {{0, 4, 1}});
  RecordBatch batch;
  batch.exporter.address = ip("2001:db8::7");
  add(batch, t, {Value{std::uint64_t{17}}});
  EXPECT_EQ(render_ntopng(batch), "{\"4\":17,\"131\":\"2001:db8::7\"}\n");

  batch.exporter.address = IpAddress();  // unspecified: left out
  EXPECT_EQ(render_ntopng(batch), "{\"4\":17}\n");

  // The record's own exporterIPv4Address (130) wins over the batch's.
  const TemplatePtr own = make(257, {{0, 130, 4}, {0, 4, 1}});
  RecordBatch proxied;
  proxied.exporter.address = ip("192.0.2.10");
  add(proxied, own, {Value{ip("10.9.9.9")}, Value{std::uint64_t{6}}});
  EXPECT_EQ(render_ntopng(proxied), "{\"130\":\"10.9.9.9\",\"4\":6}\n");
}

TEST(RenderNtopngTest, UnknownAndRepeatedElements) {
  // An IANA id missing from the registry is still its own v9 type (RFC 3954 §8); an
  // unknown ntop element is 57472 + id; a repeated element gets "_2".
  const TemplatePtr t = make(256, {{0, 32000, 2}, {kNtopPen, 8000, 2}, {0, 7, 2}, {0, 7, 2}});
  RecordBatch batch;
  add(batch, t,
      {Value{Buf{std::byte{1}, std::byte{2}}}, Value{Buf{std::byte{3}, std::byte{4}}},
       Value{std::uint64_t{80}}, Value{std::uint64_t{443}}});
  EXPECT_EQ(render_ntopng(batch), R"({"32000":"0102","65472":"0304","7":80,"7_2":443})"
                                  "\n");
}

TEST(RenderNtopngTest, RenderEachGivesRecordBoundaries) {
  const TemplatePtr a = make(256, {{0, 8, 4}, {0, 7, 2}});
  const TemplatePtr b = make(257, {{0, 1, 4}});
  RecordBatch batch;
  add(batch, a, {Value{ip("10.0.0.1")}, Value{std::uint64_t{80}}});
  add(batch, b, {Value{std::uint64_t{42}}});
  add(batch, a, {Value{ip("10.0.0.2")}, Value{std::uint64_t{443}}});

  std::vector<std::string> records;
  RecordRenderer ntop(RenderFormat::ntopng_json);
  ntop.render_each(batch, [&](std::string_view r) { records.emplace_back(r); });
  EXPECT_EQ(records, (std::vector<std::string>{R"({"8":"10.0.0.1","7":80})", R"({"1":42})",
                                               R"({"8":"10.0.0.2","7":443})"}));

  // Every format: the records joined with "\n" are exactly what render() writes
  // (CSV header lines included, before the record they precede).
  for (const RenderFormat f : {RenderFormat::text, RenderFormat::json_lines, RenderFormat::csv,
                               RenderFormat::ntopng_json}) {
    std::string whole;
    RecordRenderer(f).render(batch, whole);
    std::string joined;
    std::size_t calls = 0;
    RecordRenderer(f).render_each(batch, [&](std::string_view r) {
      joined.append(r);
      joined.push_back('\n');
      ++calls;
    });
    EXPECT_EQ(joined, whole) << static_cast<int>(f);
    EXPECT_EQ(calls, batch.size());
  }
}

}  // namespace
}  // namespace flowsec::ipfix
