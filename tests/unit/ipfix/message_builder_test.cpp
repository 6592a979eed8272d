// IpfixMessageBuilder: wire layout (RFC 7011 §3), set grouping, size bound, padding, and
// round trips through decode_ipfix back to the same bytes and fields.
#include "ipfix/message_builder.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ipfix/decode.hpp"
#include "unit/ipfix/fill_messages.hpp"

namespace flowsec::ipfix {
namespace {

using Buf = std::vector<std::byte>;

TemplatePtr make(std::uint16_t id, std::vector<FieldSpec> fields, std::uint16_t scope = 0) {
  auto t = Template::make(id, std::move(fields), scope);
  EXPECT_TRUE(t);
  return *t;
}

// A 10-field IPv4 flow template.
TemplatePtr ipv4_template(std::uint16_t id = 256) {
  return make(id, {{0, 8, 4},
                   {0, 12, 4},
                   {0, 7, 2},
                   {0, 11, 2},
                   {0, 4, 1},
                   {0, 6, 1},
                   {0, 1, 8},
                   {0, 2, 8},
                   {0, 152, 8},
                   {0, 153, 8}});
}

Buf ipv4_record(std::uint32_t src, std::uint64_t octets) {
  Buf b;
  ByteWriter w(b);
  w.u32(src);
  w.u32(0xc0000201);
  w.u16(12345);
  w.u16(443);
  w.u8(6);
  w.u8(0x1b);
  w.u64(octets);
  w.u64(octets / 100 + 1);
  w.u64(1700000000000);
  w.u64(1700000001000);
  return b;
}

// RFC 7011 §7 variable-length encoding: 1-byte length, or 255 and a 2-byte length.
void put_varlen(ByteWriter& w, const std::string& s) {
  if (s.size() < 255) {
    w.u8(static_cast<std::uint8_t>(s.size()));
  } else {
    w.u8(255);
    w.u16(static_cast<std::uint16_t>(s.size()));
  }
  w.bytes(as_bytes(s));
}

struct Decoded {
  ManualClock clock;
  TemplateStore store{TransportKind::stream, clock};
  RecordBatch batch;
  Result<DecodeStats> decode(const Buf& m) { return decode_ipfix(Bytes(m), store, batch); }
};

Buf copy(Bytes b) {
  return Buf(b.begin(), b.end());
}

TEST(IpfixMessageBuilder, HeaderAndEmptyMessage) {
  IpfixMessageBuilder b(0x01020304);
  b.begin(1700000000, 77);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 16u);
  const Buf m = b.finish();
  ASSERT_EQ(m.size(), 16u);
  // RFC 7011 §3.1: version 10, length 16, export time, sequence, domain.
  EXPECT_EQ(load_be<std::uint16_t>(m.data()), 10u);
  EXPECT_EQ(load_be<std::uint16_t>(m.data() + 2), 16u);
  EXPECT_EQ(load_be<std::uint32_t>(m.data() + 4), 1700000000u);
  EXPECT_EQ(load_be<std::uint32_t>(m.data() + 8), 77u);
  EXPECT_EQ(load_be<std::uint32_t>(m.data() + 12), 0x01020304u);
}

TEST(IpfixMessageBuilder, TemplateRecordLayoutWithEnterpriseBit) {
  TemplatePtr t = make(300, {{0, 1, 8}, {kReversePen, 1, 8}, {26866, 204, kVariableLength}});
  IpfixMessageBuilder b(1);
  b.begin(0, 0);
  ASSERT_TRUE(b.add_template(*t));
  const Buf m = b.finish();
  // Set header (2, 28), template header (300, 3), specifiers; RFC 7011 §3.2 enterprise bit.
  const Buf expected_sets = {
      std::byte{0},    std::byte{2},    std::byte{0},    std::byte{28},    // set
      std::byte{0x01}, std::byte{0x2c}, std::byte{0},    std::byte{3},     // id 300, 3 fields
      std::byte{0},    std::byte{1},    std::byte{0},    std::byte{8},     // octetDeltaCount/8
      std::byte{0x80}, std::byte{1},    std::byte{0},    std::byte{8},     // reverse, /8
      std::byte{0},    std::byte{0},    std::byte{0x72}, std::byte{0x79},  // PEN 29305
      std::byte{0x80}, std::byte{204},  std::byte{0xff}, std::byte{0xff},  // 204, variable
      std::byte{0},    std::byte{0},    std::byte{0x68}, std::byte{0xf2},  // PEN 26866
  };
  ASSERT_EQ(m.size(), 16u + 28u);
  EXPECT_EQ(Buf(m.begin() + 16, m.end()), expected_sets);
}

TEST(IpfixMessageBuilder, RoundTripTemplatesOptionsVariableLengthAndReverse) {
  TemplatePtr flows = ipv4_template(256);
  TemplatePtr opts = make(257, {{0, 143, 4}, {0, 305, 4}, {0, 82, kVariableLength}}, 1);
  TemplatePtr biflow = make(258, {{0, 1, 8},
                                  {kReversePen, 1, 8},
                                  {0, 2, 4},
                                  {kReversePen, 2, 4},
                                  {kNtopPen, 118, 2},
                                  {0, 94, kVariableLength},
                                  {26866, 204, kVariableLength}});

  std::vector<Buf> records;
  records.push_back(ipv4_record(0x0a000001, 1500));
  records.push_back(ipv4_record(0x0a000002, 64));
  Buf opt_rec;
  {
    ByteWriter w(opt_rec);
    w.u32(5381);
    w.u32(1);
    put_varlen(w, "eth0");
  }
  std::vector<Buf> bi;
  const std::string long_name(300, 'q');  // needs the 255 escape (RFC 7011 §7)
  const std::string names[] = {"", "short", std::string(254, 'a'), std::string(255, 'b'),
                               long_name};
  for (std::size_t i = 0; i < std::size(names); ++i) {
    Buf r;
    ByteWriter w(r);
    w.u64(1000 + i);
    w.u64(2000 + i);
    w.u32(static_cast<std::uint32_t>(10 + i));
    w.u32(static_cast<std::uint32_t>(20 + i));
    w.u16(static_cast<std::uint16_t>(7 + i));
    put_varlen(w, names[i]);
    put_varlen(w, "example.org");
    bi.push_back(std::move(r));
  }

  IpfixMessageBuilder b(42);
  b.begin(1700000000, 9);
  ASSERT_TRUE(b.add_template(*flows));
  ASSERT_TRUE(b.add_template(*biflow));
  ASSERT_TRUE(b.add_template(*opts));
  ASSERT_TRUE(b.add_record(*opts, opt_rec));
  for (const Buf& r : records) ASSERT_TRUE(b.add_record(*flows, r));
  for (const Buf& r : bi) ASSERT_TRUE(b.add_record(*biflow, r));
  EXPECT_EQ(b.data_records(), 8u);
  const std::size_t predicted = b.size();
  const Buf m = b.finish();
  EXPECT_EQ(m.size(), predicted);

  Decoded d;
  auto r = d.decode(m);
  ASSERT_TRUE(r) << describe(r.error().code) << " at " << r.error().offset;
  EXPECT_EQ(r->templates, 3u);
  EXPECT_EQ(r->data_records, 8u);
  EXPECT_EQ(r->options_records, 1u);
  EXPECT_EQ(r->observation_domain, 42u);
  EXPECT_EQ(r->sequence, 9u);

  // Same templates back.
  for (const TemplatePtr& t : {flows, opts, biflow}) {
    TemplatePtr got = d.store.find(Protocol::ipfix, 42, t->id());
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->same_layout(*t)) << t->id();
  }
  // Same record bytes back, in order.
  ASSERT_EQ(d.batch.size(), 8u);
  EXPECT_EQ(copy(d.batch[0].bytes()), opt_rec);
  EXPECT_EQ(copy(d.batch[1].bytes()), records[0]);
  EXPECT_EQ(copy(d.batch[2].bytes()), records[1]);
  for (std::size_t i = 0; i < bi.size(); ++i) {
    const RecordView v = d.batch[3 + i];
    EXPECT_EQ(copy(v.bytes()), bi[i]);
    EXPECT_EQ(v.unsigned_field(0, 1), 1000 + i);
    EXPECT_EQ(v.unsigned_field(kReversePen, 1), 2000 + i);
    EXPECT_EQ(v.unsigned_field(kReversePen, 2), 20 + i);
    EXPECT_EQ(v.unsigned_field(kNtopPen, 118), 7 + i);
    const auto name = v.field(0, 94);
    ASSERT_TRUE(name);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(name->data()), name->size()), names[i]);
    const auto host = v.field(26866, 204);
    ASSERT_TRUE(host);
    EXPECT_EQ(host->size(), 11u);
  }
  EXPECT_EQ(d.batch[1].unsigned_field(0, 1), 1500u);
  EXPECT_EQ(d.batch[0].unsigned_field(0, 143), 5381u);

  // Rebuilding from the decoded templates and records gives the very same message.
  IpfixMessageBuilder again(42);
  again.begin(1700000000, 9);
  ASSERT_TRUE(again.add_template(*d.store.find(Protocol::ipfix, 42, 256)));
  ASSERT_TRUE(again.add_template(*d.store.find(Protocol::ipfix, 42, 258)));
  ASSERT_TRUE(again.add_template(*d.store.find(Protocol::ipfix, 42, 257)));
  for (std::size_t i = 0; i < d.batch.size(); ++i) {
    ASSERT_TRUE(again.add_record(d.batch[i].record_template(), d.batch[i].bytes()));
  }
  EXPECT_EQ(again.finish(), m);
}

TEST(IpfixMessageBuilder, SetGrouping) {
  TemplatePtr a = make(300, {{0, 1, 4}});
  TemplatePtr c = make(301, {{0, 2, 4}});
  TemplatePtr o = make(302, {{0, 143, 4}, {0, 41, 8}}, 1);
  const Buf rec = {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}};
  IpfixMessageBuilder b(1);
  b.begin(0, 0);
  ASSERT_TRUE(b.add_template(*a));
  ASSERT_TRUE(b.add_template(*c));     // same template set
  ASSERT_TRUE(b.add_template(*o));     // options template set
  ASSERT_TRUE(b.add_record(*a, rec));  // data set 300
  ASSERT_TRUE(b.add_record(*a, rec));  // same set
  ASSERT_TRUE(b.add_record(*c, rec));  // data set 301
  ASSERT_TRUE(b.add_record(*a, rec));  // data set 300 again
  ASSERT_TRUE(b.add_withdrawal(300, false));
  ASSERT_TRUE(b.add_withdrawal(2, false));  // withdraw all: same template set
  ASSERT_TRUE(b.add_withdrawal(3, true));
  const Buf m = b.finish();

  std::vector<std::pair<std::uint16_t, std::uint16_t>> sets;  // (id, length)
  for (std::size_t at = 16; at < m.size();) {
    const auto id = load_be<std::uint16_t>(m.data() + at);
    const auto len = load_be<std::uint16_t>(m.data() + at + 2);
    sets.emplace_back(id, len);
    ASSERT_GE(len, 4u);
    at += len;
  }
  const std::vector<std::pair<std::uint16_t, std::uint16_t>> expected = {
      {2, 4 + 8 + 8}, {3, 4 + 14}, {300, 4 + 8}, {301, 4 + 4}, {300, 4 + 4}, {2, 4 + 8}, {3, 8}};
  EXPECT_EQ(sets, expected);

  Decoded d;
  auto r = d.decode(m);
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->data_records, 4u);
  EXPECT_EQ(r->withdrawals, 3u);
  EXPECT_EQ(d.store.size(), 0u);  // everything withdrawn at the end (stream transport)
}

TEST(IpfixMessageBuilder, WithdrawalRoundTrip) {
  Decoded d;
  TemplatePtr a = make(300, {{0, 1, 4}});
  TemplatePtr o = make(400, {{0, 143, 4}, {0, 41, 8}}, 1);
  IpfixMessageBuilder b(5);
  b.begin(0, 0);
  ASSERT_TRUE(b.add_template(*a));
  ASSERT_TRUE(b.add_template(*o));
  ASSERT_TRUE(d.decode(b.finish()));
  ASSERT_EQ(d.store.size(), 2u);

  b.begin(0, 1);
  ASSERT_TRUE(b.add_withdrawal(400, true));
  const Buf m = b.finish();
  // RFC 7011 §8.1: options template set, template id 400, field count 0.
  const Buf expected = {std::byte{0}, std::byte{3},    std::byte{0}, std::byte{8},
                        std::byte{1}, std::byte{0x90}, std::byte{0}, std::byte{0}};
  EXPECT_EQ(Buf(m.begin() + 16, m.end()), expected);
  auto r = d.decode(m);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->withdrawals, 1u);
  EXPECT_EQ(d.store.size(), 1u);
  EXPECT_TRUE(d.store.find(Protocol::ipfix, 5, 300));
}

TEST(IpfixMessageBuilder, MaxSizeBound) {
  TemplatePtr t = ipv4_template();
  for (std::size_t max : {std::size_t{100}, std::size_t{1400}, limits::kMaxMessageSize}) {
    for (bool pad : {false, true}) {
      IpfixMessageBuilder b(1, max);
      b.set_pad_sets(pad);
      b.begin(0, 0);
      ASSERT_TRUE(b.add_template(*t));
      std::uint32_t added = 0;
      const Buf rec = ipv4_record(0x0a000001, 100);
      while (b.add_record(*t, rec)) ++added;
      // A refused record changes nothing.
      const std::size_t size = b.size();
      EXPECT_FALSE(b.add_record(*t, rec));
      EXPECT_EQ(b.size(), size);
      EXPECT_EQ(b.data_records(), added);
      EXPECT_LE(size, max);
      EXPECT_GT(size + rec.size() + 3, max);  // it was full for real
      const Buf m = b.finish();
      EXPECT_EQ(m.size(), size);
      EXPECT_EQ(load_be<std::uint16_t>(m.data() + 2), m.size());

      Decoded d;
      auto r = d.decode(m);
      ASSERT_TRUE(r) << describe(r.error().code);
      EXPECT_EQ(r->data_records, added);
    }
  }
}

// add_records() puts as many records in each message as add_record() one at a time would,
// padding included: the exporter sends the probe's flows that way.
TEST(IpfixMessageBuilder, AddRecordsFillsMessagesAsOneAtATimeWould) {
  const TemplatePtr wide = ipv4_template();                      // 46-byte records
  const TemplatePtr narrow = make(257, {{0, 4, 1}, {0, 7, 2}});  // 3-byte records
  for (const TemplatePtr& t : {wide, narrow}) {
    const std::size_t len = t->min_record_length();
    Buf all;
    for (std::size_t i = 0; i < 1000 * len; ++i) all.push_back(static_cast<std::byte>(i * 7));
    for (std::size_t max : {std::size_t{99}, std::size_t{100}, std::size_t{1400}}) {
      for (bool pad : {false, true}) {
        auto messages = [&](bool bulk) {
          IpfixMessageBuilder b(1, max);
          b.set_pad_sets(pad);
          b.begin(0, 0);
          EXPECT_TRUE(b.add_template(*t));
          return testing::fill_messages(
              b, [] {}, *t, all, len, bulk);
        };
        const auto one_by_one = messages(false);
        EXPECT_GT(one_by_one.size(), 1u);
        EXPECT_EQ(messages(true), one_by_one) << "max " << max << " pad " << pad;
      }
    }
  }
}

TEST(IpfixMessageBuilder, RefusedSetSwitchChangesNothing) {
  TemplatePtr a = make(300, {{0, 1, 4}});
  TemplatePtr c = make(301, {{0, 1, 4}});
  const Buf rec(4);
  // Header 16 + set 4 + record 4 = 24; a second set needs 8 more.
  IpfixMessageBuilder b(1, 31);
  b.begin(0, 0);
  ASSERT_TRUE(b.add_record(*a, rec));
  EXPECT_FALSE(b.add_record(*c, rec));
  EXPECT_FALSE(b.add_withdrawal(300, false));
  EXPECT_TRUE(b.add_record(*a, rec));  // 28: still fits in the open set
  const Buf m = b.finish();
  EXPECT_EQ(m.size(), 28u);
  Decoded d;
  ASSERT_TRUE(d.store.add(Protocol::ipfix, 1, a) == TemplateStore::AddResult::added);
  auto r = d.decode(m);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data_records, 2u);
}

TEST(IpfixMessageBuilder, SetPaddingToFourBytes) {
  TemplatePtr seven = make(300, {{0, 1, 4}, {0, 4, 1}, {0, 7, 2}});  // 7-byte records
  TemplatePtr one = make(301, {{0, 4, 1}});                          // 1-byte records
  const Buf r7(7, std::byte{1});
  const Buf r1(1, std::byte{6});
  IpfixMessageBuilder b(1);
  b.set_pad_sets(true);
  b.begin(0, 0);
  ASSERT_TRUE(b.add_template(*seven));
  ASSERT_TRUE(b.add_template(*one));
  ASSERT_TRUE(b.add_record(*seven, r7));
  ASSERT_TRUE(b.add_record(*one, r1));
  ASSERT_TRUE(b.add_record(*one, r1));
  const Buf m = b.finish();

  std::vector<std::uint16_t> lengths;
  for (std::size_t at = 16; at < m.size();) {
    lengths.push_back(load_be<std::uint16_t>(m.data() + at + 2));
    at += lengths.back();
  }
  // Template set: 4 + 16 + 8 = 28. Data 300: 4 + 7 + 1 padding = 12. Data 301: 4 + 2 = 6,
  // left unpadded because 2 bytes of padding would read as two more 1-byte records
  // (RFC 7011 §3.3.1).
  EXPECT_EQ(lengths, (std::vector<std::uint16_t>{28, 12, 6}));
  Decoded d;
  auto r = d.decode(m);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data_records, 3u);
  ASSERT_EQ(d.batch.size(), 3u);
  EXPECT_EQ(copy(d.batch[0].bytes()), r7);
}

TEST(IpfixMessageBuilder, RefusesIdsBelow256) {
  TemplatePtr internal = make(5, {{0, 1, 4}});
  IpfixMessageBuilder b(1);
  b.begin(0, 0);
  EXPECT_FALSE(b.add_template(*internal));
  EXPECT_FALSE(b.add_record(*internal, Buf(4)));
  EXPECT_TRUE(b.empty());
}

TEST(IpfixMessageBuilder, ReuseAfterFinish) {
  TemplatePtr t = ipv4_template();
  IpfixMessageBuilder b(3);
  b.begin(10, 1);
  ASSERT_TRUE(b.add_template(*t));
  ASSERT_TRUE(b.add_record(*t, ipv4_record(1, 2)));
  const Buf first = b.finish();
  b.begin(11, 2);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.data_records(), 0u);
  ASSERT_TRUE(b.add_record(*t, ipv4_record(1, 2)));
  const Buf second = b.finish();
  EXPECT_EQ(second.size(), 16u + 4u + 46u);
  EXPECT_EQ(load_be<std::uint32_t>(second.data() + 8), 2u);

  Decoded d;
  ASSERT_TRUE(d.decode(first));
  auto r = d.decode(second);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data_records, 1u);
}

}  // namespace
}  // namespace flowsec::ipfix
