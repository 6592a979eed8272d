// decode_ipfix (RFC 7011): header, set, template and data-set rules, all-or-nothing
// commits, and real exporter output. Messages for the error cases are written byte by
// byte here (not with IpfixMessageBuilder) so the decoder is checked against the RFC
// layout, not against our own encoder.
#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ipfix/decode.hpp"
#include "ipfix/limits.hpp"
#include "ipfix/stream_framer.hpp"
#include "support/udp_datagrams.hpp"

namespace flowsec::ipfix {
namespace {

using Buf = std::vector<std::byte>;

struct Field {
  std::uint16_t id;
  std::uint16_t length;
  std::uint32_t pen = 0;
};

struct Set {
  std::uint16_t id;
  Buf body;
};

// RFC 7011 §3.4.1 template record.
Buf template_record(std::uint16_t id, std::initializer_list<Field> fields) {
  Buf b;
  ByteWriter w(b);
  w.u16(id);
  w.u16(static_cast<std::uint16_t>(fields.size()));
  for (const Field& f : fields) {
    w.u16(static_cast<std::uint16_t>(f.pen != 0 ? (f.id | 0x8000) : f.id));
    w.u16(f.length);
    if (f.pen != 0) w.u32(f.pen);
  }
  return b;
}

// RFC 7011 §3.4.2.2 options template record.
Buf options_record(std::uint16_t id, std::uint16_t scope, std::initializer_list<Field> fields) {
  Buf b;
  ByteWriter w(b);
  w.u16(id);
  w.u16(static_cast<std::uint16_t>(fields.size()));
  w.u16(scope);
  for (const Field& f : fields) {
    w.u16(f.id);
    w.u16(f.length);
  }
  return b;
}

Buf cat(std::initializer_list<Buf> parts) {
  Buf out;
  for (const Buf& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Buf bytes(std::initializer_list<int> v) {
  Buf b;
  for (int x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}

// RFC 7011 §3.1 header + sets with correct lengths.
Buf message(std::initializer_list<Set> sets, std::uint32_t domain = 7, std::uint32_t seq = 42) {
  Buf b;
  ByteWriter w(b);
  w.u16(10);
  w.u16(0);
  w.u32(1700000000);
  w.u32(seq);
  w.u32(domain);
  for (const Set& s : sets) {
    w.u16(s.id);
    w.u16(static_cast<std::uint16_t>(4 + s.body.size()));
    w.bytes(s.body);
  }
  w.patch_u16(2, static_cast<std::uint16_t>(b.size()));
  return b;
}

// Template 256: sourceIPv4Address(8)/4, destinationIPv4Address(12)/4, sourceTransportPort(7)/2.
Buf t256() {
  return template_record(256, {{8, 4}, {12, 4}, {7, 2}});
}
Buf rec256(std::uint8_t last, std::uint16_t port) {
  return bytes({10, 0, 0, last, 192, 0, 2, 1, port >> 8, port & 0xff});
}

struct Fixture {
  ManualClock clock;
  TemplateStore store;
  RecordBatch batch;
  explicit Fixture(TransportKind kind = TransportKind::stream) : store(kind, clock) {}
  Result<DecodeStats> decode(const Buf& m) { return decode_ipfix(Bytes(m), store, batch); }
};

void expect_error(const Result<DecodeStats>& r, Errc code, std::uint32_t offset) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, code) << describe(r.error().code);
  EXPECT_EQ(r.error().offset, offset);
}

// ---------------------------------------------------------------- header (RFC 7011 §3.1)

TEST(IpfixDecode, TruncatedHeader) {
  Fixture f;
  Buf m = message({});
  m.resize(15);
  expect_error(f.decode(m), Errc::truncated_header, 0);
  expect_error(f.decode(Buf{}), Errc::truncated_header, 0);
}

TEST(IpfixDecode, BadVersion) {
  Fixture f;
  Buf m = message({});
  m[1] = std::byte{9};
  expect_error(f.decode(m), Errc::bad_version, 0);
}

TEST(IpfixDecode, LengthLargerThanData) {
  Fixture f;
  Buf m = message({{256, rec256(1, 80)}});
  m.pop_back();  // header says 30, 29 arrived
  expect_error(f.decode(m), Errc::length_exceeds_data, 2);
}

TEST(IpfixDecode, LengthSmallerThanData) {
  Fixture f;
  Buf m = message({{256, rec256(1, 80)}});
  m.push_back(std::byte{0});  // one byte beyond the 30 the header announces
  expect_error(f.decode(m), Errc::length_below_data, 30);
}

TEST(IpfixDecode, LengthBelowHeaderSize) {
  Fixture f;
  Buf m = message({});
  ByteWriter(m).patch_u16(2, 15);
  expect_error(f.decode(m), Errc::length_too_small, 2);
}

TEST(IpfixDecode, EmptyMessageIsValid) {
  Fixture f;
  auto r = f.decode(message({}, 99, 5));
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->observation_domain, 99u);
  EXPECT_EQ(r->sequence, 5u);
  EXPECT_EQ(r->protocol, Protocol::ipfix);
  EXPECT_EQ(r->data_records, 0u);
  EXPECT_TRUE(f.batch.empty());
}

// ---------------------------------------------------------------- sets (RFC 7011 §3.3)

TEST(IpfixDecode, SetLengthUnderFour) {
  Fixture f;
  Buf m = message({{2, t256()}, {256, rec256(1, 80)}});
  // Second set starts at 16 + 4 + 16 = 36; give it length 3.
  ByteWriter(m).patch_u16(36 + 2, 3);
  expect_error(f.decode(m), Errc::set_too_short, 36);
  EXPECT_EQ(f.store.size(), 0u);
}

TEST(IpfixDecode, SetBeyondMessage) {
  Fixture f;
  Buf m = message({{256, rec256(1, 80)}});
  ByteWriter(m).patch_u16(16 + 2, 15);  // 14 bytes remain from the set start
  expect_error(f.decode(m), Errc::set_overruns_message, 16);
}

TEST(IpfixDecode, PartialSetHeaderAtEnd) {
  Fixture f;
  Buf m = message({{2, t256()}, {256, bytes({1, 2})}});
  m.resize(m.size() - 4);  // leave only 2 bytes of the second set header
  ByteWriter(m).patch_u16(2, static_cast<std::uint16_t>(m.size()));
  expect_error(f.decode(m), Errc::set_overruns_message, 36);
}

TEST(IpfixDecode, ReservedSetIdsAreSkipped) {
  Fixture f;
  auto r = f.decode(message({{0, bytes({1, 2, 3, 4})},
                             {1, {}},
                             {4, bytes({9})},
                             {255, bytes({1, 2, 3, 4, 5, 6, 7, 8})},
                             {2, t256()},
                             {256, rec256(1, 80)}}));
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->skipped_sets, 4u);
  EXPECT_EQ(r->data_records, 1u);
}

// ---------------------------------------------------------------- templates (RFC 7011 §3.4)

TEST(IpfixDecode, TemplateWithZeroFieldsIsRefusedByMake) {
  auto t = Template::make(300, {}, 0, 123);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::template_zero_fields);
  EXPECT_EQ(t.error().offset, 123u);
}

TEST(IpfixDecode, FieldCountBeyondCap) {
  Fixture f;
  Buf body;
  ByteWriter w(body);
  w.u16(256);
  w.u16(static_cast<std::uint16_t>(limits::kMaxFieldsPerTemplate + 1));
  for (std::size_t i = 0; i <= limits::kMaxFieldsPerTemplate; ++i) {
    w.u16(1);
    w.u16(4);
  }
  // Header 16, set header 4, template id 2: the field count is at 22.
  expect_error(f.decode(message({{2, body}})), Errc::template_too_many_fields, 22);
}

TEST(IpfixDecode, FieldCountAtCapIsAccepted) {
  Fixture f;
  Buf body;
  ByteWriter w(body);
  w.u16(256);
  w.u16(static_cast<std::uint16_t>(limits::kMaxFieldsPerTemplate));
  for (std::size_t i = 0; i < limits::kMaxFieldsPerTemplate; ++i) {
    w.u16(1);
    w.u16(1);
  }
  auto r = f.decode(message({{2, body}}));
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->templates, 1u);
}

TEST(IpfixDecode, TemplateIdBelow256) {
  Fixture f;
  expect_error(f.decode(message({{2, cat({t256(), template_record(255, {{1, 4}})})}})),
               Errc::template_id_reserved, 16 + 4 + 16);
  EXPECT_EQ(f.store.size(), 0u);  // the good template before it is not kept either
}

TEST(IpfixDecode, OptionsScopeCountAboveFieldCount) {
  Fixture f;
  // The scope count sits after id and field count: 16 + 4 + 4.
  expect_error(f.decode(message({{3, options_record(300, 3, {{143, 4}, {41, 8}})}})),
               Errc::template_scope_count, 24);
}

TEST(IpfixDecode, OptionsScopeCountZero) {
  Fixture f;
  expect_error(f.decode(message({{3, options_record(300, 0, {{143, 4}, {41, 8}})}})),
               Errc::template_scope_count, 24);
}

TEST(IpfixDecode, TemplateCutShort) {
  Fixture f;
  Buf rec = t256();
  rec.resize(rec.size() - 2);  // the last field specifier loses its length
  // Fields start at 24; the third specifier at 32 is only 2 bytes.
  expect_error(f.decode(message({{2, rec}})), Errc::template_truncated, 32);
}

TEST(IpfixDecode, EnterpriseSpecifierCutShort) {
  Fixture f;
  Buf rec = template_record(256, {{1, 4, kReversePen}});
  rec.resize(rec.size() - 1);  // 3 of the 4 enterprise-number bytes
  expect_error(f.decode(message({{2, rec}})), Errc::template_truncated, 28);
}

TEST(IpfixDecode, ZeroLengthFieldIsRefused) {
  Fixture f;
  expect_error(f.decode(message({{2, template_record(256, {{8, 4}, {12, 0}})}})),
               Errc::template_field_length, 20);
}

TEST(IpfixDecode, TemplateSetPaddingIsIgnored) {
  Fixture f;
  auto r = f.decode(message({{2, cat({t256(), bytes({0, 0, 0})})}, {256, rec256(1, 80)}}));
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->templates, 1u);
  EXPECT_EQ(r->data_records, 1u);
}

TEST(IpfixDecode, EnterpriseAndReverseElements) {
  Fixture f;
  auto r = f.decode(
      message({{2, template_record(400, {{1, 8}, {1, 8, kReversePen}, {204, 4, 26866}})}}));
  ASSERT_TRUE(r) << describe(r.error().code);
  TemplatePtr t = f.store.find(Protocol::ipfix, 7, 400);
  ASSERT_TRUE(t);
  ASSERT_EQ(t->fields().size(), 3u);
  EXPECT_EQ(t->fields()[0], (FieldSpec{0, 1, 8}));
  EXPECT_EQ(t->fields()[1], (FieldSpec{kReversePen, 1, 8}));
  EXPECT_EQ(t->fields()[2], (FieldSpec{26866, 204, 4}));
}

TEST(IpfixDecode, OptionsTemplateAndRecords) {
  Fixture f;
  auto r = f.decode(message({{3, options_record(300, 1, {{143, 4}, {305, 4}})},
                             {300, bytes({0, 0, 0x15, 0x05, 0, 0, 0, 1})}}));
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->templates, 1u);
  EXPECT_EQ(r->data_records, 1u);
  EXPECT_EQ(r->options_records, 1u);
  ASSERT_EQ(f.batch.size(), 1u);
  EXPECT_TRUE(f.batch[0].record_template().is_options());
  EXPECT_EQ(f.batch[0].record_template().scope_count(), 1u);
  EXPECT_EQ(f.batch[0].unsigned_field(0, 143), 5381u);
  EXPECT_EQ(f.batch[0].unsigned_field(0, 305), 1u);
}

TEST(IpfixDecode, RefreshKeepsTemplatePointer) {
  Fixture f;
  ASSERT_TRUE(f.decode(message({{2, t256()}})));
  TemplatePtr first = f.store.find(Protocol::ipfix, 7, 256);
  ASSERT_TRUE(f.decode(message({{2, t256()}, {256, rec256(1, 1)}})));
  EXPECT_EQ(f.store.find(Protocol::ipfix, 7, 256), first);
  EXPECT_EQ(f.store.counters().refreshed, 1u);
  ASSERT_EQ(f.batch.size(), 1u);
  EXPECT_EQ(&f.batch[0].record_template(), first.get());
}

TEST(IpfixDecode, RedefinitionReplaces) {
  Fixture f;
  ASSERT_TRUE(f.decode(message({{2, t256()}})));
  ASSERT_TRUE(f.decode(message({{2, template_record(256, {{8, 4}})}, {256, bytes({1, 2, 3, 4})}})));
  EXPECT_EQ(f.store.counters().redefined, 1u);
  ASSERT_EQ(f.batch.size(), 1u);
  EXPECT_EQ(f.batch[0].bytes().size(), 4u);
}

TEST(IpfixDecode, TemplatesAreKeptPerDomain) {
  Fixture f;
  ASSERT_TRUE(f.decode(message({{2, t256()}}, 1)));
  auto r = f.decode(message({{256, rec256(1, 80)}}, 2));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->unknown_template_sets, 1u);
}

TEST(IpfixDecode, TemplateCapRejectionsAreCounted) {
  Fixture f;
  for (std::size_t i = 0; i < limits::kMaxTemplatesPerSession; ++i) {
    auto t = Template::make(static_cast<std::uint16_t>(256 + i), {{0, 1, 4}});
    ASSERT_TRUE(t);
    ASSERT_NE(f.store.add(Protocol::ipfix, 1, *t), TemplateStore::AddResult::rejected);
  }
  auto r = f.decode(message({{2, template_record(60000, {{1, 4}})}}));
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->templates, 0u);
  EXPECT_EQ(r->templates_rejected, 1u);
  EXPECT_EQ(f.store.size(), limits::kMaxTemplatesPerSession);
}

// ---------------------------------------------------------------- withdrawals (RFC 7011 §8.1)

TEST(IpfixDecode, WithdrawalOverStream) {
  Fixture f(TransportKind::stream);
  ASSERT_TRUE(f.decode(message({{2, cat({t256(), template_record(257, {{1, 4}})})}})));
  ASSERT_EQ(f.store.size(), 2u);
  auto r = f.decode(message({{2, bytes({0x01, 0x00, 0, 0})}, {256, rec256(1, 80)}}));
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->withdrawals, 1u);
  // A data set after the withdrawal in the same message no longer sees the template.
  EXPECT_EQ(r->unknown_template_sets, 1u);
  EXPECT_EQ(f.store.size(), 1u);
  EXPECT_FALSE(f.store.find(Protocol::ipfix, 7, 256));
  EXPECT_TRUE(f.store.find(Protocol::ipfix, 7, 257));
}

TEST(IpfixDecode, WithdrawAllTemplatesAndOptionsTemplates) {
  Fixture f(TransportKind::file);
  ASSERT_TRUE(f.decode(message({{2, cat({t256(), template_record(257, {{1, 4}})})},
                                {3, options_record(300, 1, {{143, 4}, {41, 8}})}})));
  ASSERT_EQ(f.store.size(), 3u);
  // Options template set, template id 3: every options template of the domain.
  auto r = f.decode(message({{3, bytes({0, 3, 0, 0})}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(f.store.size(), 2u);
  EXPECT_FALSE(f.store.find(Protocol::ipfix, 7, 300));
  // Template set, template id 2: all data templates (RFC 7011 §8.1), then a new one.
  r = f.decode(message({{2, cat({bytes({0, 2, 0, 0}), template_record(258, {{1, 4}})})},
                        {257, bytes({0, 0, 0, 1})},
                        {258, bytes({0, 0, 0, 2})}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->unknown_template_sets, 1u);
  EXPECT_EQ(r->data_records, 1u);
  EXPECT_EQ(f.store.size(), 1u);
  EXPECT_TRUE(f.store.find(Protocol::ipfix, 7, 258));
}

TEST(IpfixDecode, WithdrawalsIgnoredOverDatagram) {
  Fixture f(TransportKind::datagram);
  ASSERT_TRUE(f.decode(message({{2, t256()}})));
  auto r = f.decode(message({{2, bytes({0x01, 0x00, 0, 0})}, {256, rec256(1, 80)}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->withdrawals, 1u);
  EXPECT_EQ(r->data_records, 1u);
  EXPECT_EQ(f.store.size(), 1u);
  EXPECT_EQ(f.store.counters().withdrawals_ignored, 1u);
}

TEST(IpfixDecode, WithdrawalOfReservedId) {
  Fixture f;
  expect_error(f.decode(message({{2, bytes({0, 5, 0, 0})}})), Errc::template_id_reserved, 20);
}

// ---------------------------------------------------------------- data sets

TEST(IpfixDecode, UnknownTemplateIsCountedNotAnError) {
  Fixture f;
  auto r = f.decode(message({{300, rec256(1, 80)}, {301, bytes({1, 2, 3})}}));
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->unknown_template_sets, 2u);
  EXPECT_EQ(r->unknown_template_bytes, 13u);  // set bodies: 10 + 3
  EXPECT_EQ(r->data_records, 0u);
  EXPECT_TRUE(f.batch.empty());
}

TEST(IpfixDecode, DataSetSeesTemplateFromSameMessage) {
  Fixture f;
  auto r = f.decode(message({{2, t256()}, {256, cat({rec256(1, 80), rec256(2, 443)})}}));
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->templates, 1u);
  EXPECT_EQ(r->data_records, 2u);
  ASSERT_EQ(f.batch.size(), 2u);
  EXPECT_EQ(f.batch[0].unsigned_field(0, 8), 0x0a000001u);
  EXPECT_EQ(f.batch[1].unsigned_field(0, 7), 443u);
  EXPECT_EQ(f.batch[1].message().sequence, 42u);
  EXPECT_EQ(f.batch[1].message().observation_domain, 7u);
  EXPECT_EQ(f.batch[1].message().export_time, 1700000000u);
  EXPECT_EQ(f.batch[1].message().protocol, Protocol::ipfix);
}

TEST(IpfixDecode, FixedRecordPadding) {
  Fixture f;
  // RFC 7011 §3.3.1: 10-byte records, 9 trailing bytes are padding.
  auto r = f.decode(message({{2, t256()}, {256, cat({rec256(1, 80), rec256(2, 81), Buf(9)})}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data_records, 2u);
}

// Template 500: one fixed u16, one variable-length string (RFC 7011 §7).
Buf t500() {
  return template_record(500, {{7, 2}, {82, 65535}});
}

TEST(IpfixDecode, VariableLengthRecords) {
  Fixture f;
  Buf long_value(300, std::byte{'x'});
  Buf body = cat({bytes({0, 1, 3, 'a', 'b', 'c'}),             // short form
                  bytes({0, 2, 255, 0x01, 0x2c}), long_value,  // 255 escape, 300 bytes
                  bytes({0, 3, 0}),                            // empty value
                  bytes({0})});                                // padding: below min length 3
  auto r = f.decode(message({{2, t500()}, {500, body}}));
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->data_records, 3u);
  ASSERT_EQ(f.batch.size(), 3u);
  EXPECT_EQ(f.batch[0].field(0, 82)->size(), 3u);
  EXPECT_EQ(f.batch[1].field(0, 82)->size(), 300u);
  EXPECT_EQ(f.batch[1].bytes().size(), 2u + 3u + 300u);
  EXPECT_EQ(f.batch[2].field(0, 82)->size(), 0u);
  EXPECT_EQ(f.batch[2].unsigned_field(0, 7), 3u);
}

TEST(IpfixDecode, VariableLengthEscapeWithTruncatedTwoByteLength) {
  Fixture f;
  // Record at 16+4+12+4 = 36: u16 then the 255 escape at 38, only one of two length bytes.
  auto r = f.decode(message({{2, t500()}, {500, bytes({0, 1, 255, 0x01})}}));
  expect_error(r, Errc::varlen_truncated, 38);
}

TEST(IpfixDecode, VariableLengthValueRunsPastSet) {
  Fixture f;
  // The 2-byte length says 300, 2 bytes follow; the value starts at 41.
  auto r = f.decode(message({{2, t500()}, {500, bytes({0, 1, 255, 0x01, 0x2c, 'a', 'b'})}}));
  expect_error(r, Errc::varlen_truncated, 41);
}

TEST(IpfixDecode, FixedFieldAfterVariableRunsPastSet) {
  Fixture f;
  // Template 501: variable string then a u32. Min length 5, the body is 6 bytes.
  auto r = f.decode(message(
      {{2, template_record(501, {{82, 65535}, {1, 4}})}, {501, bytes({2, 'a', 'b', 0, 0, 0})}}));
  expect_error(r, Errc::varlen_truncated, 16 + 4 + 12 + 4 + 3);
}

// ---------------------------------------------------------------- all or nothing

TEST(IpfixDecode, BadSetAfterGoodTemplateSetRollsEverythingBack) {
  Fixture f;
  // An earlier good message leaves template 256 and one record.
  ASSERT_TRUE(f.decode(message({{2, t256()}, {256, rec256(1, 80)}})));
  TemplatePtr before = f.store.find(Protocol::ipfix, 7, 256);
  const auto counters = f.store.counters();
  const RecordBatch::Mark mark = f.batch.mark();

  // Redefine 256, add 257, withdraw-all options, data for both, then a set of length 2.
  Buf m = message({{2, cat({template_record(256, {{8, 4}}), template_record(257, {{1, 4}})})},
                   {3, bytes({0, 3, 0, 0})},
                   {256, bytes({1, 2, 3, 4})},
                   {257, bytes({0, 0, 0, 9})},
                   {256, {}}});
  ByteWriter(m).patch_u16(m.size() - 2, 2);
  auto r = f.decode(m);
  expect_error(r, Errc::set_too_short, static_cast<std::uint32_t>(m.size() - 4));

  EXPECT_EQ(f.store.size(), 1u);
  EXPECT_EQ(f.store.find(Protocol::ipfix, 7, 256), before);
  EXPECT_FALSE(f.store.find(Protocol::ipfix, 7, 257));
  EXPECT_EQ(f.store.counters().added, counters.added);
  EXPECT_EQ(f.store.counters().redefined, counters.redefined);
  const RecordBatch::Mark after = f.batch.mark();
  EXPECT_EQ(after.data, mark.data);
  EXPECT_EQ(after.refs, mark.refs);
  EXPECT_EQ(after.templates, mark.templates);
  EXPECT_EQ(after.messages, mark.messages);
  ASSERT_EQ(f.batch.size(), 1u);
  EXPECT_EQ(f.batch[0].unsigned_field(0, 7), 80u);
}

TEST(IpfixDecode, WithdrawalIsRolledBackToo) {
  Fixture f;
  ASSERT_TRUE(f.decode(message({{2, t256()}})));
  Buf m = message({{2, bytes({1, 0, 0, 0})}, {2, template_record(12, {{1, 4}})}});
  expect_error(f.decode(m), Errc::template_id_reserved, 28);
  EXPECT_TRUE(f.store.find(Protocol::ipfix, 7, 256));
  EXPECT_EQ(f.store.counters().withdrawn, 0u);
}

// ---------------------------------------------------------------- real exporters

std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Buf out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

struct FileTotals {
  std::size_t messages = 0;
  std::size_t messages_with_sets = 0;
  std::uint64_t records = 0, options_records = 0, templates = 0, unknown_sets = 0;
  std::map<std::uint16_t, std::uint64_t> per_template;
  std::uint64_t octets = 0, packets = 0;
};

// An IPFIX file is an IPFIX byte stream (RFC 5655 §8): framed like TCP, templates never expire.
FileTotals decode_file(const std::string& path, std::size_t chunk, RecordBatch& batch) {
  const Buf data = read_file(path);
  ManualClock clock;
  TemplateStore store(TransportKind::file, clock);
  StreamFramer framer;
  FileTotals t;
  for (std::size_t at = 0; at < data.size(); at += chunk) {
    const Bytes piece = Bytes(data).subspan(at, std::min(chunk, data.size() - at));
    auto fed = framer.feed(piece, [&](Bytes msg) {
      ++t.messages;
      if (msg.size() > 16) ++t.messages_with_sets;
      auto r = decode_ipfix(msg, store, batch);
      ASSERT_TRUE(r) << describe(r.error().code) << " at " << r.error().offset;
      t.records += r->data_records;
      t.options_records += r->options_records;
      t.templates += r->templates;
      t.unknown_sets += r->unknown_template_sets;
    });
    EXPECT_TRUE(fed);
  }
  EXPECT_TRUE(framer.finish());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const RecordView v = batch[i];
    ++t.per_template[v.record_template().id()];
    t.octets += v.unsigned_field(0, 1).value_or(0);
    t.packets += v.unsigned_field(0, 2).value_or(0);
  }
  return t;
}

std::string data_path(const char* rel) {
  return std::string(FLOWSEC_TEST_DATA) + "/" + rel;
}

TEST(IpfixFiles, Ipfixcol2ExampleFlows) {
  for (std::size_t chunk : {std::size_t{1} << 20, std::size_t{4096}, std::size_t{1000}}) {
    RecordBatch batch;
    const FileTotals t =
        decode_file(data_path("ipfix/ipfixcol2_example_flows.ipfix"), chunk, batch);
    // `ipfixDump -i ipfixcol2_example_flows.ipfix -s`:
    //   67 Messages, 3979 Data Records, 8 Template Records; per template
    //   256: 1848, 257: 2051, 258: 16, 259: 57, 260: 3, 261: 4, 262: 0, 263: 0.
    // The file holds 68 messages: the second (offset 3472) is a bare 16-byte header
    // (`xxd -s 3472 -l 16`: 000a 0010 55bf 5a91 0000 003b 0000 0006), which ipfixDump
    // leaves out of its message count.
    EXPECT_EQ(t.messages, 68u);
    EXPECT_EQ(t.messages_with_sets, 67u);
    EXPECT_EQ(t.records, 3979u);
    ASSERT_EQ(batch.size(), 3979u);
    EXPECT_EQ(t.templates, 8u);
    EXPECT_EQ(t.options_records, 0u);
    EXPECT_EQ(t.unknown_sets, 0u);
    EXPECT_EQ(t.per_template,
              (std::map<std::uint16_t, std::uint64_t>{
                  {256, 1848}, {257, 2051}, {258, 16}, {259, 57}, {260, 3}, {261, 4}}));
    // `ipfixDump -i ... | awk '/octetDeltaCount :/{s+=$NF} /packetDeltaCount :/{p+=$NF}'`
    EXPECT_EQ(t.octets, 49001404u);
    EXPECT_EQ(t.packets, 56695u);
    // `ipfixDump -i ipfixcol2_example_flows.ipfix`, data record 1 and 3979, first header.
    const RecordView first = batch[0];
    EXPECT_EQ(first.message().observation_domain, 6u);
    EXPECT_EQ(first.message().sequence, 0u);
    EXPECT_EQ(first.record_template().id(), 256);
    EXPECT_EQ(first.unsigned_field(0, 1), 194u);
    EXPECT_EQ(first.unsigned_field(0, 8), (228u << 24) | (55u << 16) | (228u << 8) | 116u);
    EXPECT_EQ(first.unsigned_field(0, 192), 61u);
    EXPECT_EQ(first.unsigned_field(0, 7), 53u);
    EXPECT_EQ(first.unsigned_field(0, 11), 59765u);
    const RecordView last = batch[batch.size() - 1];
    EXPECT_EQ(last.record_template().id(), 259);
    EXPECT_EQ(last.unsigned_field(0, 1), 96u);
    EXPECT_EQ(last.unsigned_field(0, 8), (164u << 24) | (102u << 16) | (116u << 8) | 68u);
    EXPECT_EQ(last.unsigned_field(0, 32), 2816u);
  }
}

TEST(IpfixFiles, SoftflowdTcpStream) {
  for (std::size_t chunk : {std::size_t{1} << 20, std::size_t{1}, std::size_t{37}}) {
    RecordBatch batch;
    const FileTotals t = decode_file(data_path("ipfix/softflowd_1kxun_tcp.ipfix"), chunk, batch);
    // `ipfixDump -i softflowd_1kxun_tcp.ipfix -s`: 10 Messages, 298 Data Records,
    // 5 Template Records; 256 (options): 1, 1024: 272, 1025: 0, 2048: 25, 2049: 0.
    EXPECT_EQ(t.messages, 10u);
    EXPECT_EQ(t.messages_with_sets, 10u);
    EXPECT_EQ(t.records, 298u);
    ASSERT_EQ(batch.size(), 298u);
    EXPECT_EQ(t.options_records, 1u);
    EXPECT_EQ(t.templates, 5u);
    EXPECT_EQ(t.per_template,
              (std::map<std::uint16_t, std::uint64_t>{{256, 1}, {1024, 272}, {2048, 25}}));
    // `ipfixDump -i softflowd_1kxun_tcp.ipfix | awk ...` sums of octet/packetDeltaCount.
    EXPECT_EQ(t.octets, 2503652u);
    EXPECT_EQ(t.packets, 1723u);
    // `ipfixDump -i softflowd_1kxun_tcp.ipfix`: data record 1 is the options record
    // (meteringProcessId 5381, samplingPacketInterval 1, selectorAlgorithm 1); record 2 is
    // 192.168.5.16 -> 68.233.253.133, 98 octets, 2 packets, port 53605 -> 80, tcp flags 21.
    const RecordView opt = batch[0];
    EXPECT_TRUE(opt.record_template().is_options());
    EXPECT_EQ(opt.unsigned_field(0, 143), 5381u);
    EXPECT_EQ(opt.unsigned_field(0, 305), 1u);
    EXPECT_EQ(opt.unsigned_field(0, 304), 1u);
    const RecordView flow = batch[1];
    EXPECT_EQ(flow.record_template().id(), 1024);
    EXPECT_EQ(flow.unsigned_field(0, 8), (192u << 24) | (168u << 16) | (5u << 8) | 16u);
    EXPECT_EQ(flow.unsigned_field(0, 12), (68u << 24) | (233u << 16) | (253u << 8) | 133u);
    EXPECT_EQ(flow.unsigned_field(0, 1), 98u);
    EXPECT_EQ(flow.unsigned_field(0, 2), 2u);
    EXPECT_EQ(flow.unsigned_field(0, 7), 53605u);
    EXPECT_EQ(flow.unsigned_field(0, 11), 80u);
    EXPECT_EQ(flow.unsigned_field(0, 6), 21u);
  }
}

struct PcapTotals {
  std::size_t datagrams = 0;
  std::uint64_t records = 0, templates = 0, options_records = 0;
};

PcapTotals decode_pcap(const std::string& path, RecordBatch& batch, TemplateStore& store) {
  PcapTotals t;
  for (const auto& d : test::read_udp_datagrams(path)) {
    ++t.datagrams;
    auto r = decode_ipfix(Bytes(d.payload), store, batch);
    EXPECT_TRUE(r) << describe(r.error().code) << " at " << r.error().offset;
    if (!r) continue;
    t.records += r->data_records;
    t.templates += r->templates;
    t.options_records += r->options_records;
  }
  return t;
}

TEST(IpfixPcaps, IpfixprobeBiflowWithReverseElements) {
  ManualClock clock;
  TemplateStore store(TransportKind::datagram, clock);
  RecordBatch batch;
  const PcapTotals t = decode_pcap(
      data_path("export/akvorado-merged/netflow_ipfixprobe-template+data.pcap"), batch, store);
  // `tshark -r netflow_ipfixprobe-template+data.pcap -d udp.port==4739,cflow -V`:
  // frame 1 holds templates 259 and 258 (18 fields, BYTES/PKTS/TCP_FLAGS also with
  // PEN 29305), frame 2 a data set for 258 with 4 flows.
  EXPECT_EQ(t.datagrams, 2u);
  EXPECT_EQ(t.templates, 2u);
  EXPECT_EQ(t.records, 4u);
  ASSERT_EQ(batch.size(), 4u);
  TemplatePtr t258 = store.find(Protocol::ipfix, 1, 258);
  ASSERT_TRUE(t258);
  EXPECT_EQ(t258->fields().size(), 18u);
  EXPECT_EQ(t258->fields()[2], (FieldSpec{kReversePen, 1, 8}));
  // `tshark ... -T fields -e cflow.octets -e cflow.packets -e cflow.srcaddr -e cflow.dstaddr
  //  -e cflow.srcport -e cflow.dstport -e cflow.protocol` (forward and reverse interleaved):
  // octets 62,128,229,0,21673,1546,2304,0  packets 1,1,1,0,28,25,4,0
  // src 10.10.1.4,10.10.1.20,10.10.1.4,192.168.1.1  dst 10.10.1.1,10.10.1.255,74.53.140.153,
  // 10.10.1.4  sport 56166,138,1470,0  dport 53,138,25,0  proto 17,17,6,1
  const std::uint64_t octets[] = {62, 229, 21673, 2304}, rev_octets[] = {128, 0, 1546, 0};
  const std::uint64_t packets[] = {1, 1, 28, 4}, rev_packets[] = {1, 0, 25, 0};
  const std::uint64_t sport[] = {56166, 138, 1470, 0}, dport[] = {53, 138, 25, 0};
  const std::uint64_t proto[] = {17, 17, 6, 1};
  for (std::size_t i = 0; i < 4; ++i) {
    const RecordView v = batch[i];
    EXPECT_EQ(v.unsigned_field(0, 1), octets[i]) << i;
    EXPECT_EQ(v.unsigned_field(kReversePen, 1), rev_octets[i]) << i;
    EXPECT_EQ(v.unsigned_field(0, 2), packets[i]) << i;
    EXPECT_EQ(v.unsigned_field(kReversePen, 2), rev_packets[i]) << i;
    EXPECT_EQ(v.unsigned_field(0, 7), sport[i]) << i;
    EXPECT_EQ(v.unsigned_field(0, 11), dport[i]) << i;
    EXPECT_EQ(v.unsigned_field(0, 4), proto[i]) << i;
  }
  EXPECT_EQ(batch[2].unsigned_field(0, 12), (74u << 24) | (53u << 16) | (140u << 8) | 153u);
}

TEST(IpfixPcaps, PmacctCiscoTwoDomains) {
  ManualClock clock;
  TemplateStore store(TransportKind::datagram, clock);
  RecordBatch batch;
  const PcapTotals t =
      decode_pcap(data_path("export/pmacct/100-IPFIXv10-CISCO_traffic-00.pcap"), batch, store);
  // `tshark -r 100-IPFIXv10-CISCO_traffic-00.pcap -d udp.port==9991,cflow -T fields
  //  -e cflow.od_id -e cflow.flowset_id -e cflow.octets -e cflow.packets`:
  //   851968 2 | 917504 2 | 851968 260 220,330,110,110 2,3,1,1 | 917504 263 5512,8268 4,6 |
  //   851968 260 330,2756,6890,2756 3,2,5,2 | 917504 263 2756,4134 2,3
  // and -V: templates 260 and 263 have 33 fields each.
  EXPECT_EQ(t.datagrams, 6u);
  EXPECT_EQ(t.templates, 2u);
  EXPECT_EQ(t.records, 12u);
  ASSERT_EQ(batch.size(), 12u);
  const std::uint64_t octets[] = {220, 330,  110,  110,  5512, 8268,
                                  330, 2756, 6890, 2756, 2756, 4134};
  const std::uint64_t packets[] = {2, 3, 1, 1, 4, 6, 3, 2, 5, 2, 2, 3};
  const std::uint32_t domain[] = {851968, 851968, 851968, 851968, 917504, 917504,
                                  851968, 851968, 851968, 851968, 917504, 917504};
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(batch[i].unsigned_field(0, 1), octets[i]) << i;
    EXPECT_EQ(batch[i].unsigned_field(0, 2), packets[i]) << i;
    EXPECT_EQ(batch[i].message().observation_domain, domain[i]) << i;
  }
  ASSERT_TRUE(store.find(Protocol::ipfix, 851968, 260));
  EXPECT_EQ(store.find(Protocol::ipfix, 851968, 260)->fields().size(), 33u);
  EXPECT_EQ(store.find(Protocol::ipfix, 917504, 263)->fields().size(), 33u);
  // -V, frame 3 flow 1: SrcAddr 10.231.65.56, SrcPort 17000. Frame 4 flow 1: SrcAddr
  // 2001:1700:f101:2000::1.
  EXPECT_EQ(batch[0].unsigned_field(0, 8), (10u << 24) | (231u << 16) | (65u << 8) | 56u);
  EXPECT_EQ(batch[0].unsigned_field(0, 7), 17000u);
  const auto v6 = batch[4].field(0, 27);
  ASSERT_TRUE(v6);
  ASSERT_EQ(v6->size(), 16u);
  EXPECT_EQ(load_be<std::uint64_t>(v6->data()), 0x20011700f1012000u);
  EXPECT_EQ(load_be<std::uint64_t>(v6->data() + 8), 1u);
}

TEST(IpfixPcaps, FritzBoxEnterpriseVariableAndOptionsTemplates) {
  ManualClock clock;
  TemplateStore store(TransportKind::datagram, clock);
  RecordBatch batch;
  const PcapTotals t = decode_pcap(data_path("export/ndpi/netflow-fritz.pcap"), batch, store);
  // `tshark -r netflow-fritz.pcap -d udp.port==2055,cflow -V`: one message, domain 262400:
  // template 461 (22 fields; field 3 DnsQueryName: Gigamon PEN 26866, id 204, variable length;
  // field 22 HttpReqUrl: PEN 26866, id 1, variable), options templates 466 (7 fields, scope 1)
  // and 467 (2 fields, scope 1, IF_NAME variable); no data.
  EXPECT_EQ(t.datagrams, 1u);
  EXPECT_EQ(t.templates, 3u);
  EXPECT_EQ(t.records, 0u);
  TemplatePtr t461 = store.find(Protocol::ipfix, 262400, 461);
  ASSERT_TRUE(t461);
  EXPECT_EQ(t461->fields().size(), 22u);
  EXPECT_TRUE(t461->has_variable_length());
  EXPECT_EQ(t461->fields()[2], (FieldSpec{26866, 204, kVariableLength}));
  EXPECT_EQ(t461->fields()[21], (FieldSpec{26866, 1, kVariableLength}));
  TemplatePtr t466 = store.find(Protocol::ipfix, 262400, 466);
  ASSERT_TRUE(t466);
  EXPECT_EQ(t466->fields().size(), 7u);
  EXPECT_EQ(t466->scope_count(), 1u);
  EXPECT_EQ(t466->fields()[0], (FieldSpec{0, 143, 4}));
  TemplatePtr t467 = store.find(Protocol::ipfix, 262400, 467);
  ASSERT_TRUE(t467);
  EXPECT_EQ(t467->fields()[1], (FieldSpec{0, 82, kVariableLength}));
}

// ---------------------------------------------------------------- decode_any

TEST(DecodeAny, ShortInputIsATruncatedHeader) {
  Fixture f;
  for (std::size_t n = 0; n < 4; ++n) {
    expect_error(decode_any(Bytes(Buf(n)), f.store, f.batch), Errc::truncated_header, 0);
  }
}

TEST(DecodeAny, UnknownVersions) {
  Fixture f;
  // u16 7 (no such NetFlow), u16 0 followed by a u32 that is not 5 (sFlow v4 is 4), and 0xffff.
  for (const Buf& m :
       {bytes({0, 7, 0, 0}), bytes({0, 0, 0, 4, 0, 0, 0, 1}), bytes({255, 255, 0, 0})}) {
    expect_error(decode_any(Bytes(m), f.store, f.batch), Errc::unsupported_version, 0);
  }
}

TEST(DecodeAny, IpfixGoesToTheIpfixDecoder) {
  Fixture f;
  auto r = decode_any(Bytes(message({{2, t256()}, {256, rec256(1, 80)}})), f.store, f.batch);
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->protocol, Protocol::ipfix);
  EXPECT_EQ(r->data_records, 1u);
  // Its errors are the IPFIX decoder's: 4..15 bytes are a truncated IPFIX header.
  Buf m = message({});
  m.resize(8);
  expect_error(decode_any(Bytes(m), f.store, f.batch), Errc::truncated_header, 0);
}

// decode_any must give exactly what the named decoder gives.
void expect_same(const Result<DecodeStats>& a, const Result<DecodeStats>& b) {
  ASSERT_EQ(a.has_value(), b.has_value());
  if (!a) {
    EXPECT_EQ(a.error(), b.error());
    return;
  }
  EXPECT_EQ(a->protocol, b->protocol);
  EXPECT_EQ(a->data_records, b->data_records);
  EXPECT_EQ(a->templates, b->templates);
  EXPECT_EQ(a->sequence, b->sequence);
  EXPECT_EQ(a->observation_domain, b->observation_domain);
}

TEST(DecodeAny, NetflowV5) {
  const auto datagrams = test::read_udp_datagrams(data_path("export/akvorado/netflow_nfv5.pcap"));
  ASSERT_EQ(datagrams.size(), 1u);
  Fixture f(TransportKind::datagram), g(TransportKind::datagram);
  auto any = decode_any(Bytes(datagrams[0].payload), f.store, f.batch);
  ASSERT_TRUE(any) << describe(any.error().code);
  EXPECT_EQ(any->protocol, Protocol::netflow_v5);
  // `tshark -r netflow_nfv5.pcap -d udp.port==9990,cflow -T fields -e cflow.version
  //  -e cflow.count`: 5, 29.
  EXPECT_EQ(any->data_records, 29u);
  expect_same(any, decode_netflow_v5(Bytes(datagrams[0].payload), g.batch));
}

TEST(DecodeAny, NetflowV9) {
  const auto datagrams =
      test::read_udp_datagrams(data_path("export/akvorado-merged/netflow_template+data.pcap"));
  ASSERT_EQ(datagrams.size(), 2u);
  Fixture f(TransportKind::datagram), g(TransportKind::datagram);
  std::uint32_t records = 0;
  for (const auto& d : datagrams) {
    auto any = decode_any(Bytes(d.payload), f.store, f.batch);
    ASSERT_TRUE(any) << describe(any.error().code);
    EXPECT_EQ(any->protocol, Protocol::netflow_v9);
    records += any->data_records;
    expect_same(any, decode_netflow_v9(Bytes(d.payload), g.store, g.batch));
  }
  // `tshark -r netflow_template+data.pcap -d udp.port==2055,cflow -V`: a template
  // flowset, then "FlowSet 1 [id=260] (4 flows)".
  EXPECT_EQ(records, 4u);
}

TEST(DecodeAny, SflowV5) {
  const auto datagrams =
      test::read_udp_datagrams(data_path("export/akvorado/sflow_data-sflow-ipv4-data.pcap"));
  ASSERT_EQ(datagrams.size(), 1u);
  // sFlow's version is a 32-bit 5, so the first 16 bits are 0.
  ASSERT_EQ(load_be<std::uint32_t>(datagrams[0].payload.data()), 5u);
  Fixture f(TransportKind::datagram), g(TransportKind::datagram);
  auto any = decode_any(Bytes(datagrams[0].payload), f.store, f.batch);
  ASSERT_TRUE(any) << describe(any.error().code);
  EXPECT_EQ(any->protocol, Protocol::sflow_v5);
  // `tshark -r sflow_data-sflow-ipv4-data.pcap -d udp.port==6343,sflow -V`: Datagram
  // version 5, NumSamples 1, one expanded flow sample: one flow record.
  EXPECT_EQ(any->data_records, 1u);
  expect_same(any, decode_sflow_v5(Bytes(datagrams[0].payload), g.batch));
}

}  // namespace
}  // namespace flowsec::ipfix
