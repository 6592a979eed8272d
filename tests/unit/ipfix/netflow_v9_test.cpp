// NetFlow v9 decoder (RFC 3954): hand-written packets for every rule the decoder
// enforces, then real exporter captures with values taken from tshark.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "ipfix/decode.hpp"
#include "ipfix/limits.hpp"
#include "ipfix/netflow_v9_builder.hpp"
#include "support/udp_datagrams.hpp"

namespace flowsec::ipfix {
namespace {

// Writes v9 packets byte by byte, independent of the builder under test elsewhere.
class Packet {
 public:
  explicit Packet(std::uint16_t count, std::uint32_t sequence = 1, std::uint32_t source_id = 7) {
    ByteWriter w(buf_);
    w.u16(9);
    w.u16(count);
    w.u32(5000);        // sysUptime
    w.u32(1700000000);  // unix secs
    w.u32(sequence);
    w.u32(source_id);
  }
  // Flowset header with the length patched by end().
  Packet& begin(std::uint16_t id) {
    at_ = buf_.size();
    ByteWriter w(buf_);
    w.u16(id);
    w.u16(0);
    return *this;
  }
  Packet& end() {
    ByteWriter(buf_).patch_u16(at_ + 2, static_cast<std::uint16_t>(buf_.size() - at_));
    return *this;
  }
  Packet& u8(std::uint8_t v) {
    ByteWriter(buf_).u8(v);
    return *this;
  }
  Packet& u16(std::uint16_t v) {
    ByteWriter(buf_).u16(v);
    return *this;
  }
  Packet& u32(std::uint32_t v) {
    ByteWriter(buf_).u32(v);
    return *this;
  }
  Packet& zeros(std::size_t n) {
    ByteWriter(buf_).zeros(n);
    return *this;
  }
  // A template record: id, field count, (type, length)...
  Packet& tmpl(std::uint16_t id,
               std::initializer_list<std::pair<std::uint16_t, std::uint16_t>> fields) {
    u16(id).u16(static_cast<std::uint16_t>(fields.size()));
    for (auto [type, len] : fields) u16(type).u16(len);
    return *this;
  }
  // An options template record: id, scope length, option length (bytes), fields.
  Packet& options(std::uint16_t id,
                  std::initializer_list<std::pair<std::uint16_t, std::uint16_t>> scope,
                  std::initializer_list<std::pair<std::uint16_t, std::uint16_t>> opts) {
    u16(id).u16(static_cast<std::uint16_t>(4 * scope.size()));
    u16(static_cast<std::uint16_t>(4 * opts.size()));
    for (auto [type, len] : scope) u16(type).u16(len);
    for (auto [type, len] : opts) u16(type).u16(len);
    return *this;
  }
  Packet& count(std::uint16_t n) {
    ByteWriter(buf_).patch_u16(2, n);
    return *this;
  }
  [[nodiscard]] const std::vector<std::byte>& bytes() const { return buf_; }
  [[nodiscard]] std::vector<std::byte>& bytes() { return buf_; }

 private:
  std::vector<std::byte> buf_;
  std::size_t at_ = 0;
};

// Template 300: IPV4_SRC_ADDR/4, L4_DST_PORT/2, IN_BYTES/4, PROTOCOL/1 (11-byte records).
Packet& template_300(Packet& p) {
  return p.begin(0).tmpl(300, {{8, 4}, {11, 2}, {1, 4}, {4, 1}}).end();
}
// One data record of template 300.
Packet& record_300(Packet& p, std::uint32_t src, std::uint16_t port, std::uint32_t bytes) {
  return p.u32(src).u16(port).u32(bytes).u8(6);
}

struct Fixture : ::testing::Test {
  TemplateStore store{TransportKind::datagram};
  RecordBatch batch;
  Result<DecodeStats> decode(const Packet& p) { return decode_netflow_v9(p.bytes(), store, batch); }
};

using NetflowV9 = Fixture;

TEST_F(NetflowV9, TemplateAndDataInOnePacket) {
  Packet p(3, 77, 9);
  template_300(p).begin(300);
  record_300(p, 0xc0000201, 443, 1500);
  record_300(p, 0xc0000202, 53, 80);
  p.zeros(2).end();  // RFC 3954 §5.3 padding to 32 bits: 4 + 22 + 2
  auto stats = decode(p);
  ASSERT_TRUE(stats) << describe(stats.error().code) << " at " << stats.error().offset;
  EXPECT_EQ(stats->protocol, Protocol::netflow_v9);
  EXPECT_EQ(stats->observation_domain, 9u);
  EXPECT_EQ(stats->sequence, 77u);
  EXPECT_EQ(stats->templates, 1u);
  EXPECT_EQ(stats->data_records, 2u);
  EXPECT_EQ(stats->options_records, 0u);
  ASSERT_EQ(batch.size(), 2u);

  const RecordView r = batch[1];
  EXPECT_EQ(r.record_template().id(), 300u);
  EXPECT_EQ(r.bytes().size(), 11u);
  EXPECT_EQ(r.unsigned_field(0, 8), 0xc0000202u);  // sourceIPv4Address
  EXPECT_EQ(r.unsigned_field(0, 11), 53u);         // destinationTransportPort
  EXPECT_EQ(r.unsigned_field(0, 1), 80u);          // octetDeltaCount
  EXPECT_EQ(r.unsigned_field(0, 4), 6u);           // protocolIdentifier
  EXPECT_EQ(r.message().protocol, Protocol::netflow_v9);
  EXPECT_EQ(r.message().export_time, 1700000000u);
  EXPECT_EQ(r.message().sys_uptime_ms, 5000u);
  EXPECT_EQ(r.message().sequence, 77u);
  EXPECT_EQ(r.message().observation_domain, 9u);
  EXPECT_NE(store.find(Protocol::netflow_v9, 9, 300), nullptr);
  EXPECT_EQ(store.find(Protocol::ipfix, 9, 300), nullptr);
}

TEST_F(NetflowV9, CountClaimingMoreRecordsIsRejected) {
  Packet p(4);  // template + 2 records = 3
  template_300(p).begin(300);
  record_300(p, 1, 1, 1);
  record_300(p, 2, 2, 2);
  p.end();
  auto r = decode(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::count_mismatch, 2}));
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(store.size(), 0u);  // the template was not committed

  p.count(3);
  EXPECT_TRUE(decode(p));
  EXPECT_EQ(batch.size(), 2u);
}

TEST_F(NetflowV9, CountBelowTheRecordsIsAccepted) {
  // Every real capture matches exactly, but only an over-claim is rejected.
  Packet p(1);
  template_300(p).begin(300);
  record_300(p, 1, 1, 1);
  record_300(p, 2, 2, 2);
  p.end();
  auto r = decode(p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data_records, 2u);
}

TEST_F(NetflowV9, CountAboveTheCapOrBeyondUncountableBytes) {
  Packet cap(static_cast<std::uint16_t>(limits::kMaxV9RecordsPerPacket + 1));
  auto r = decode(cap);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::count_mismatch, 2}));

  // Data for an unknown template: 8 body bytes could hold at most 8 records.
  Packet unknown(8);
  unknown.begin(400).u32(1).u32(2).end();
  r = decode(unknown);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->unknown_template_sets, 1u);
  unknown.count(9);
  r = decode(unknown);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::count_mismatch);
}

TEST_F(NetflowV9, TemplateWithZeroFields) {
  Packet p(1);
  p.begin(0).u16(256).u16(0).end();
  auto r = decode(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::template_zero_fields, 24 + 2}));
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(NetflowV9, TemplateWhoseFieldsAllHaveLengthZero) {
  Packet p(1);
  p.begin(0).tmpl(256, {{8, 0}, {12, 0}}).end();
  auto r = decode(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::template_zero_fields);
}

TEST_F(NetflowV9, TemplateIdBelow256) {
  Packet p(1);
  p.begin(0).tmpl(255, {{8, 4}}).end();
  auto r = decode(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::template_id_reserved, 24}));

  Packet o(1);
  o.begin(1).options(10, {{1, 4}}, {{34, 4}}).zeros(2).end();
  r = decode(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::template_id_reserved, 24}));
}

TEST_F(NetflowV9, FieldCountBeyondTheCap) {
  const std::size_t n = limits::kMaxFieldsPerTemplate + 1;
  Packet p(1);
  p.begin(0).u16(256).u16(static_cast<std::uint16_t>(n));
  for (std::size_t i = 0; i < n; ++i) p.u16(8).u16(4);
  p.end();
  auto r = decode(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::template_too_many_fields, 24 + 2}));

  // The cap itself is allowed.
  Packet ok(1);
  ok.begin(0).u16(256).u16(static_cast<std::uint16_t>(n - 1));
  for (std::size_t i = 0; i + 1 < n; ++i) ok.u16(8).u16(4);
  ok.end();
  EXPECT_TRUE(decode(ok));
}

TEST_F(NetflowV9, OptionsTemplateScopeInvalid) {
  // Scope length 0: RFC 3954 §6.1 options need at least one scope field.
  Packet none(1);
  none.begin(1).options(260, {}, {{34, 4}}).zeros(2).end();
  auto r = decode(none);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::template_scope_count, 24 + 2}));

  // Scope length not a multiple of the 4-byte field specifier.
  Packet odd(1);
  odd.begin(1).u16(260).u16(6).u16(4).u16(1).u16(4).u16(0).u16(34).u16(4).end();
  r = decode(odd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::template_scope_count, 24 + 2}));

  // Option length not a multiple of 4.
  Packet odd_opt(1);
  odd_opt.begin(1).u16(260).u16(4).u16(3).u16(1).u16(4).u16(34).u8(0).zeros(1).end();
  r = decode(odd_opt);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::template_scope_count, 24 + 4}));

  // Scope and option lengths that run past the flowset.
  Packet overrun(1);
  overrun.begin(1).u16(260).u16(4).u16(40).u16(1).u16(4).u16(34).u16(4).end();
  r = decode(overrun);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::template_truncated);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(NetflowV9, TemplateTruncatedByItsFlowset) {
  Packet p(1);
  p.begin(0).u16(256).u16(3).u16(8).u16(4).u16(12).u16(4).end();  // 2 of 3 fields
  auto r = decode(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::template_truncated, 24 + 4}));
}

TEST_F(NetflowV9, FieldLengthThatWouldReadAsVariable) {
  Packet p(1);
  p.begin(0).tmpl(256, {{8, 4}, {82, 65535}}).end();
  auto r = decode(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::template_field_length, 24 + 4 + 4 + 2}));
}

TEST_F(NetflowV9, FlowsetLengthUnderFour) {
  Packet p(0);
  p.u16(300).u16(3).u16(0);
  auto r = decode(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::set_too_short, 20}));
}

TEST_F(NetflowV9, FlowsetBeyondThePacket) {
  Packet p(1);
  template_300(p).begin(300).u32(1).end();
  store_be<std::uint16_t>(p.bytes().data() + 20 + 24 + 2, 12);  // data flowset: 8 bytes there
  auto r = decode(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::set_overruns_message, 44}));
  EXPECT_EQ(store.size(), 0u);

  // Two stray bytes after the last flowset cannot even hold a flowset header.
  Packet tail(1);
  template_300(tail).zeros(2);
  r = decode(tail);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::set_overruns_message, 44}));
}

TEST_F(NetflowV9, BadVersionAndTruncatedHeader) {
  Packet p(0);
  auto r = decode_netflow_v9(Bytes(p.bytes()).first(19), store, batch);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::truncated_header, 0}));
  p.bytes()[1] = std::byte{10};
  r = decode(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::bad_version, 0}));
  // A bare header with count 0 is a valid, empty packet.
  Packet empty(0);
  EXPECT_TRUE(decode(empty));
}

TEST_F(NetflowV9, DataBeforeItsTemplateIsCountedThenDecoded) {
  Packet data(1, 1);
  data.begin(300);
  record_300(data, 0x0a000001, 80, 100);
  data.end();
  auto r = decode(data);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->unknown_template_sets, 1u);
  EXPECT_EQ(r->unknown_template_bytes, 11u);
  EXPECT_EQ(r->data_records, 0u);
  EXPECT_TRUE(batch.empty());

  Packet tmpl(1, 2);
  template_300(tmpl);
  r = decode(tmpl);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->templates, 1u);
  EXPECT_TRUE(batch.empty());  // template-only packets add nothing to the batch

  r = decode(data);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->unknown_template_sets, 0u);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].unsigned_field(0, 8), 0x0a000001u);
}

TEST_F(NetflowV9, DataBeforeItsTemplateInTheSamePacket) {
  // Data flowset first, template second, data again: only the second data decodes.
  Packet p(3);
  p.begin(300);
  record_300(p, 1, 1, 1);
  p.end();
  template_300(p).begin(300);
  record_300(p, 2, 2, 2);
  p.end();
  auto r = decode(p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->unknown_template_sets, 1u);
  EXPECT_EQ(r->data_records, 1u);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].unsigned_field(0, 8), 2u);
}

TEST_F(NetflowV9, RollbackOnError) {
  // Something already in the batch and the store.
  Packet first(2, 1);
  template_300(first).begin(300);
  record_300(first, 1, 1, 1);
  first.end();
  ASSERT_TRUE(decode(first));
  ASSERT_EQ(batch.size(), 1u);
  const auto mark = batch.mark();

  // A good template and data, then a flowset with length 2.
  Packet bad(3, 2);
  bad.begin(0).tmpl(301, {{8, 4}}).end().begin(300);
  record_300(bad, 2, 2, 2);
  bad.end().begin(301).u32(5).end();
  bad.u16(302).u16(2);
  auto r = decode(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::set_too_short);
  const auto after = batch.mark();
  EXPECT_EQ(after.data, mark.data);
  EXPECT_EQ(after.refs, mark.refs);
  EXPECT_EQ(after.templates, mark.templates);
  EXPECT_EQ(after.messages, mark.messages);
  EXPECT_EQ(store.find(Protocol::netflow_v9, 7, 301), nullptr);  // not committed
  EXPECT_EQ(store.size(), 1u);
}

TEST_F(NetflowV9, PaddingIsTolerated) {
  Packet p(3);
  // Template flowset padded with 4 zero bytes (an all-zero tail is never a template).
  p.begin(0).tmpl(300, {{8, 4}, {11, 2}, {1, 4}, {4, 1}}).zeros(4).end();
  // Options template: 6 + 8 bytes, padded with 2 zero bytes (RFC 3954 §6.1).
  p.begin(1).options(301, {{1, 4}}, {{34, 4}}).zeros(2).end();
  // Data: one 11-byte record + 1 byte of padding.
  p.begin(300);
  record_300(p, 1, 1, 1);
  p.zeros(1).end();
  auto r = decode(p);
  ASSERT_TRUE(r) << describe(r.error().code) << " at " << r.error().offset;
  EXPECT_EQ(r->templates, 2u);
  EXPECT_EQ(r->data_records, 1u);
}

TEST_F(NetflowV9, ReservedFlowsetIdsAreSkipped) {
  Packet p(1);
  p.begin(2).u32(0xdeadbeef).end().begin(255).end();
  template_300(p);
  auto r = decode(p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->skipped_sets, 2u);
  EXPECT_EQ(r->templates, 1u);
}

TEST_F(NetflowV9, OptionsTemplateScopeTypesMapToIpfixElements) {
  // RFC 3954 §6.1 scope types 1..5 collide with IANA ids 1..5: they become
  // exportingProcessId, ingressInterface, lineCardId, meteringProcessId, templateId.
  Packet p(2);
  p.begin(1).options(400, {{1, 4}, {2, 4}, {3, 4}, {4, 4}, {5, 2}}, {{34, 4}, {1, 4}}).zeros(2);
  p.end().begin(400).u32(0xac13c8e4).u32(12).u32(3).u32(4).u16(300).u32(100).u32(999).end();
  auto r = decode(p);
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->templates, 1u);
  EXPECT_EQ(r->data_records, 1u);
  EXPECT_EQ(r->options_records, 1u);
  ASSERT_EQ(batch.size(), 1u);
  const Template& t = batch[0].record_template();
  EXPECT_TRUE(t.is_options());
  EXPECT_EQ(t.scope_count(), 5u);
  const std::vector<FieldSpec> expected{{0, 144, 4}, {0, 10, 4}, {0, 141, 4}, {0, 143, 4},
                                        {0, 145, 2}, {0, 34, 4}, {0, 1, 4}};
  EXPECT_TRUE(std::equal(t.fields().begin(), t.fields().end(), expected.begin(), expected.end()));
  EXPECT_EQ(batch[0].unsigned_field(0, 144), 0xac13c8e4u);
  EXPECT_EQ(batch[0].unsigned_field(0, 145), 300u);
  EXPECT_EQ(batch[0].unsigned_field(0, 34), 100u);
  // Type 1 outside the scope is IANA octetDeltaCount.
  EXPECT_EQ(batch[0].unsigned_field(0, 1), 999u);
}

TEST_F(NetflowV9, ZeroLengthFieldsAreLeftOut) {
  // Juniper's options template: scope System with length 0 (see the real capture below).
  Packet p(2);
  p.begin(1).options(256, {{1, 0}}, {{35, 1}, {34, 4}}).zeros(2).end();
  p.begin(256).u8(2).u32(100).zeros(3).end();
  auto r = decode(p);
  ASSERT_TRUE(r) << describe(r.error().code);
  ASSERT_EQ(batch.size(), 1u);
  const Template& t = batch[0].record_template();
  EXPECT_EQ(t.fields().size(), 2u);
  EXPECT_FALSE(t.is_options());  // no scope left: a plain template of its option fields
  EXPECT_EQ(t.min_record_length(), 5u);
  EXPECT_EQ(batch[0].unsigned_field(0, 35), 2u);
  EXPECT_EQ(batch[0].unsigned_field(0, 34), 100u);
}

TEST_F(NetflowV9, NtopAndHighFieldTypes) {
  Packet p(2);
  p.begin(0).tmpl(500, {{57590, 2}, {40000, 4}, {8, 4}}).end();
  p.begin(500).u16(7).u32(0x01020304).u32(0x0a000001).end();
  auto r = decode(p);
  ASSERT_TRUE(r) << describe(r.error().code);
  ASSERT_EQ(batch.size(), 1u);
  const auto fields = batch[0].record_template().fields();
  EXPECT_EQ(fields[0], (FieldSpec{kNtopPen, 118, 2}));  // ntop L7_PROTO
  EXPECT_EQ(fields[1], (FieldSpec{kV9HighTypePen, 40000 - 32768, 4}));
  EXPECT_EQ(fields[2], (FieldSpec{0, 8, 4}));
  EXPECT_EQ(batch[0].unsigned_field(kNtopPen, 118), 7u);
  EXPECT_EQ(batch[0].unsigned_field(kV9HighTypePen, 40000 - 32768), 0x01020304u);
}

TEST_F(NetflowV9, RefreshKeepsTheTemplateAndSourceIdsAreSeparate) {
  Packet a(1, 1, 1);
  template_300(a);
  ASSERT_TRUE(decode(a));
  const TemplatePtr before = store.find(Protocol::netflow_v9, 1, 300);
  ASSERT_NE(before, nullptr);
  ASSERT_TRUE(decode(a));
  EXPECT_EQ(store.find(Protocol::netflow_v9, 1, 300), before);  // same pointer
  EXPECT_EQ(store.counters().refreshed, 1u);

  // Source id 2 has no template 300.
  Packet data(1, 1, 2);
  data.begin(300);
  record_300(data, 1, 1, 1);
  data.end();
  auto r = decode(data);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->unknown_template_sets, 1u);
  EXPECT_TRUE(batch.empty());
}

TEST_F(NetflowV9, RedefinitionInsideOnePacketUsesTheLatest) {
  Packet p(3);
  p.begin(0).tmpl(300, {{8, 4}}).tmpl(300, {{12, 4}, {7, 2}}).end();
  p.begin(300).u32(0x0a000002).u16(22).zeros(2).end();
  auto r = decode(p);
  ASSERT_TRUE(r);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].unsigned_field(0, 12), 0x0a000002u);
  EXPECT_EQ(batch[0].unsigned_field(0, 7), 22u);
  EXPECT_EQ(store.find(Protocol::netflow_v9, 7, 300)->fields().size(), 2u);
}

// ---- real captures ----

std::string data_path(const char* rel) {
  return std::string(FLOWSEC_TEST_DATA) + "/" + rel;
}

struct Totals {
  std::size_t packets = 0, v9_packets = 0, errors = 0;
  std::uint64_t data_records = 0, unknown_sets = 0, unknown_bytes = 0, templates = 0;
};

// Decodes every NetFlow v9 payload of a capture in one session; other versions skipped.
Totals decode_capture(const std::string& path, TemplateStore& store, RecordBatch& batch) {
  Totals t;
  for (const auto& d : test::read_udp_datagrams(path)) {
    ++t.packets;
    if (d.payload.size() < 2 || load_be<std::uint16_t>(d.payload.data()) != 9) continue;
    ++t.v9_packets;
    auto r = decode_netflow_v9(d.payload, store, batch);
    if (!r) {
      ++t.errors;
      ADD_FAILURE() << path << ": " << describe(r.error().code) << " at " << r.error().offset;
      continue;
    }
    t.data_records += r->data_records;
    t.unknown_sets += r->unknown_template_sets;
    t.unknown_bytes += r->unknown_template_bytes;
    t.templates += r->templates;
  }
  return t;
}

// pmacct test 101: a Cisco exporter, one template (313, 32 fields) then 39 data packets.
//   tshark -r 101-NFv9-CISCO-cust_primitives_traffic-00.pcap -d udp.port==9991,cflow
//          -T fields -e frame.number -e cflow.count -e cflow.sequence -e cflow.srcaddr
//          -e cflow.dstaddr -e cflow.srcport -e cflow.dstport -e cflow.octets -e cflow.packets
// gives 40 packets whose Count sums to 52 (1 template + 51 flows) and cflow.octets summing
// to 4500; frame 2 is 138.187.58.13:10000 -> 138.187.57.33:58779, 60 octets, 1 packet.
TEST(NetflowV9Capture, PmacctCisco101) {
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  const Totals t = decode_capture(
      data_path("export/pmacct/101-NFv9-CISCO-cust_primitives_traffic-00.pcap"), store, batch);
  EXPECT_EQ(t.v9_packets, 40u);
  EXPECT_EQ(t.errors, 0u);
  EXPECT_EQ(t.templates, 1u);
  EXPECT_EQ(t.data_records, 51u);
  EXPECT_EQ(t.unknown_sets, 0u);
  ASSERT_EQ(batch.size(), 51u);
  EXPECT_EQ(batch[0].record_template().fields().size(), 32u);
  EXPECT_EQ(batch[0].record_template().id(), 313u);
  EXPECT_EQ(batch[0].unsigned_field(0, 8), 0x8abb3a0du);   // 138.187.58.13
  EXPECT_EQ(batch[0].unsigned_field(0, 12), 0x8abb3921u);  // 138.187.57.33
  EXPECT_EQ(batch[0].unsigned_field(0, 7), 10000u);
  EXPECT_EQ(batch[0].unsigned_field(0, 11), 58779u);
  EXPECT_EQ(batch[0].unsigned_field(0, 1), 60u);
  EXPECT_EQ(batch[0].unsigned_field(0, 2), 1u);
  EXPECT_EQ(batch[0].message().sequence, 147674u);
  std::uint64_t octets = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) octets += *batch[i].unsigned_field(0, 1);
  EXPECT_EQ(octets, 4500u);
}

// Every NetFlow v9 packet of the real captures decodes: in particular the header
// count check accepts them all (each count equals its records, see the report).
TEST(NetflowV9Capture, AllRealV9CapturesDecode) {
  for (const char* f : {"export/pmacct/101-NFv9-CISCO-cust_primitives_traffic-00.pcap",
                        "export/pmacct/102-NFv9-CISCO-f2rd-pretag-sampling-reload_traffic-00.pcap",
                        "export/pmacct/110-IPFIXv10-NFv9-multiple-sources_traffic-01.pcap",
                        "export/pmacct/110-IPFIXv10-NFv9-multiple-sources_traffic-02.pcap",
                        "export/pmacct/111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources_traffic-00.pcap",
                        "export/akvorado/netflow_nat.pcap", "export/akvorado/netflow_data.pcap",
                        "export/ndpi/netflowv9.pcap"}) {
    TemplateStore store(TransportKind::datagram);
    RecordBatch batch;
    const Totals t = decode_capture(data_path(f), store, batch);
    EXPECT_GT(t.v9_packets, 0u) << f;
    EXPECT_EQ(t.errors, 0u) << f;
  }
}

// pmacct test 102: two Cisco source ids (2193, 2081) re-sending templates 313 and 260.
//   tshark -r 102-...pcap -d udp.port==9991,cflow -T fields -e cflow.count -e cflow.source_id
//   -e cflow.octets: 25 packets whose Count sums to the template and flow records.
TEST(NetflowV9Capture, PmacctCisco102CountsMatch) {
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  std::uint64_t header_counts = 0, records = 0;
  for (const auto& d : test::read_udp_datagrams(
           data_path("export/pmacct/102-NFv9-CISCO-f2rd-pretag-sampling-reload_traffic-00.pcap"))) {
    header_counts += load_be<std::uint16_t>(d.payload.data() + 2);
    auto r = decode_netflow_v9(d.payload, store, batch);
    ASSERT_TRUE(r) << describe(r.error().code);
    EXPECT_EQ(r->unknown_template_sets, 0u);
    records += r->templates + r->templates_rejected + r->data_records;
  }
  EXPECT_EQ(records, header_counts);
  EXPECT_GT(batch.size(), 0u);
}

// akvorado-merged/netflow_template+data.pcap (UDP 2055): template 260, then 4 flows.
//   tshark -r netflow_template+data.pcap -d udp.port==2055,cflow -T fields -e cflow.count
//          -e cflow.srcaddr -e cflow.dstaddr -e cflow.srcport -e cflow.dstport -e cflow.octets
//          -e cflow.packets -e cflow.inputint
//   2  4  198.38.121.178,198.38.121.219,173.194.190.106,74.125.100.234
//         91.170.143.87,88.122.57.97,37.165.129.20,88.120.219.117  443,443,443,443
//         19624,2444,53697,52300  1500,1500,1400,1448  1,1,1,1  335,335,461,461
TEST(NetflowV9Capture, AkvoradoTemplateThenData) {
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  const Totals t =
      decode_capture(data_path("export/akvorado-merged/netflow_template+data.pcap"), store, batch);
  EXPECT_EQ(t.v9_packets, 2u);
  ASSERT_EQ(batch.size(), 4u);
  const std::uint32_t src[] = {0xc62679b2, 0xc62679db, 0xadc2be6a, 0x4a7d64ea};
  const std::uint32_t dst[] = {0x5baa8f57, 0x587a3961, 0x25a58114, 0x5878db75};
  const std::uint16_t dport[] = {19624, 2444, 53697, 52300};
  const std::uint64_t octets[] = {1500, 1500, 1400, 1448};
  const std::uint64_t input[] = {335, 335, 461, 461};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(batch[i].unsigned_field(0, 8), src[i]) << i;
    EXPECT_EQ(batch[i].unsigned_field(0, 12), dst[i]) << i;
    EXPECT_EQ(batch[i].unsigned_field(0, 7), 443u) << i;
    EXPECT_EQ(batch[i].unsigned_field(0, 11), dport[i]) << i;
    EXPECT_EQ(batch[i].unsigned_field(0, 1), octets[i]) << i;
    EXPECT_EQ(batch[i].unsigned_field(0, 2), 1u) << i;
    EXPECT_EQ(batch[i].unsigned_field(0, 10), input[i]) << i;
  }
}

// akvorado-merged/netflow_icmp-template+data.pcap (UDP 2100): 4 templates + 2 IPv6 flows,
// then 2 IPv4 flows.
//   tshark -r netflow_icmp-template+data.pcap -d udp.port==2100,cflow -T fields -e cflow.count
//          -e cflow.srcaddr -e cflow.dstaddr -e cflow.srcaddrv6 -e cflow.dstaddrv6 -e cflow.octets
//   1  6  2001:db8::,2001:db8::1  2001:db8::1,2001:db8::  104,104
//   2  2  203.0.113.4,203.0.113.5  203.0.113.5,203.0.113.4  84,84
TEST(NetflowV9Capture, AkvoradoIcmpIpv6AndIpv4) {
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  const Totals t = decode_capture(
      data_path("export/akvorado-merged/netflow_icmp-template+data.pcap"), store, batch);
  EXPECT_EQ(t.templates, 4u);
  ASSERT_EQ(batch.size(), 4u);
  const auto src6 = batch[0].field(0, 27);
  ASSERT_TRUE(src6.has_value());
  ASSERT_EQ(src6->size(), 16u);
  EXPECT_EQ(load_be<std::uint16_t>(src6->data()), 0x2001u);
  EXPECT_EQ(load_be<std::uint16_t>(src6->data() + 2), 0x0db8u);
  EXPECT_EQ(load_be<std::uint64_t>(src6->data() + 8), 0u);                   // 2001:db8::
  EXPECT_EQ(load_be<std::uint64_t>(batch[0].field(0, 28)->data() + 8), 1u);  // 2001:db8::1
  EXPECT_EQ(batch[0].unsigned_field(0, 1), 104u);
  EXPECT_EQ(batch[2].unsigned_field(0, 8), 0xcb007104u);  // 203.0.113.4
  EXPECT_EQ(batch[2].unsigned_field(0, 12), 0xcb007105u);
  EXPECT_EQ(batch[3].unsigned_field(0, 8), 0xcb007105u);
  EXPECT_EQ(batch[3].unsigned_field(0, 1), 84u);
}

// akvorado-merged/netflow_options-template+data.pcap: options template 257 with scope
// System (4 bytes), then 4 options records.
//   tshark -r netflow_options-template+data.pcap -d udp.port==2055,cflow -T fields
//          -e cflow.count -e cflow.scope_system -e cflow.sampling_interval -e cflow.sampler_name
//          -e cflow.sampler_random_interval -e cflow.sampler_id -e cflow.sampler_mode
//   2  4  ac13c8e4,...  30000,...  sampler1,...  30000,...  1,...  2,...
TEST(NetflowV9Capture, AkvoradoOptionsTemplateAndData) {
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  std::uint64_t options_records = 0;
  for (const auto& d : test::read_udp_datagrams(
           data_path("export/akvorado-merged/netflow_options-template+data.pcap"))) {
    auto r = decode_netflow_v9(d.payload, store, batch);
    ASSERT_TRUE(r) << describe(r.error().code);
    options_records += r->options_records;
  }
  EXPECT_EQ(options_records, 4u);
  ASSERT_EQ(batch.size(), 4u);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const RecordView r = batch[i];
    EXPECT_TRUE(r.record_template().is_options());
    EXPECT_EQ(r.record_template().scope_count(), 1u);
    EXPECT_EQ(r.unsigned_field(0, 144), 0xac13c8e4u);  // System -> exportingProcessId
    EXPECT_EQ(r.unsigned_field(0, 34), 30000u);        // samplingInterval
    EXPECT_EQ(r.unsigned_field(0, 50), 30000u);        // samplerRandomInterval
    EXPECT_EQ(r.unsigned_field(0, 48), 1u);            // samplerId
    EXPECT_EQ(r.unsigned_field(0, 49), 2u);            // samplerMode
    const auto name = r.field(0, 84);                  // samplerName, 32 bytes
    ASSERT_TRUE(name.has_value());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(name->data()), 8), "sampler1");
  }
}

// akvorado-merged/netflow_samplingrate-template+data.pcap (UDP 8096) and
// netflow_multiplesamplingrates-template+data.pcap (UDP 2055).
//   tshark -r netflow_samplingrate-template+data.pcap -d udp.port==8096,cflow -T fields
//          -e cflow.count -e cflow.srcaddr -e cflow.octets
//   2  6  232.131.215.65,79.155.191.171,...  160,420,1163,187,1289,521
//   tshark -r netflow_multiplesamplingrates-template+data.pcap -d udp.port==2055,cflow ...
//   2  12  ffff::68,ffff::5a,...  1348,579,1280,1150,2560,2560,769,2556,564,100,1280,72
TEST(NetflowV9Capture, AkvoradoSamplingRateCaptures) {
  {
    TemplateStore store(TransportKind::datagram);
    RecordBatch batch;
    decode_capture(data_path("export/akvorado-merged/netflow_samplingrate-template+data.pcap"),
                   store, batch);
    ASSERT_EQ(batch.size(), 6u);
    EXPECT_EQ(batch[0].unsigned_field(0, 8), 0xe883d741u);  // 232.131.215.65
    const std::uint64_t octets[] = {160, 420, 1163, 187, 1289, 521};
    for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(batch[i].unsigned_field(0, 1), octets[i]);
  }
  {
    TemplateStore store(TransportKind::datagram);
    RecordBatch batch;
    decode_capture(
        data_path("export/akvorado-merged/netflow_multiplesamplingrates-template+data.pcap"), store,
        batch);
    ASSERT_EQ(batch.size(), 12u);
    const auto src = batch[0].field(0, 27);  // ffff::68
    ASSERT_TRUE(src.has_value());
    EXPECT_EQ(load_be<std::uint16_t>(src->data()), 0xffffu);
    EXPECT_EQ(load_be<std::uint16_t>(src->data() + 14), 0x68u);
    const std::uint64_t octets[] = {1348, 579,  1280, 1150, 2560, 2560,
                                    769,  2556, 564,  100,  1280, 72};
    for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(batch[i].unsigned_field(0, 1), octets[i]);
  }
}

// akvorado/netflow_data+templates.pcap: one Juniper packet, Count 24 =
//   data 257 before its template (660 bytes, 11 records of 60 bytes)
//   + options template 256 (scope System with length 0) + 1 options record
//   + template 257 + 10 records of 257.
//   tshark -r netflow_data+templates.pcap -d udp.port==2055,cflow -T fields -e cflow.count
//          -e cflow.source_id -e cflow.sampling_interval -e cflow.sampling_algorithm
//          -e cflow.srcaddr -e cflow.octets -e cflow.flowset_id -e cflow.flowset_length
//   24  17170432  100  2  120.120.180.202,...  436,21000,15000,40,13500,152,312,270,48,3834
//   257,1,256,0,257  664,24,12,92,604   ("Data (660 bytes), no template found")
// Decoding the same packet again, template 257 is known and the first flowset decodes too.
TEST(NetflowV9Capture, JuniperDataBeforeTemplateAndZeroLengthScope) {
  const auto datagrams =
      test::read_udp_datagrams(data_path("export/akvorado/netflow_data+templates.pcap"));
  ASSERT_EQ(datagrams.size(), 1u);
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  auto r = decode_netflow_v9(datagrams[0].payload, store, batch);
  ASSERT_TRUE(r) << describe(r.error().code);
  EXPECT_EQ(r->observation_domain, 17170432u);
  EXPECT_EQ(r->unknown_template_sets, 1u);
  EXPECT_EQ(r->unknown_template_bytes, 660u);
  EXPECT_EQ(r->templates, 2u);
  EXPECT_EQ(r->data_records, 11u);
  ASSERT_EQ(batch.size(), 11u);
  EXPECT_EQ(batch[0].unsigned_field(0, 34), 100u);        // sampling interval
  EXPECT_EQ(batch[0].unsigned_field(0, 35), 2u);          // sampling algorithm
  EXPECT_EQ(batch[1].unsigned_field(0, 8), 0x7878b4cau);  // 120.120.180.202
  EXPECT_EQ(batch[1].unsigned_field(0, 1), 436u);
  EXPECT_EQ(batch[10].unsigned_field(0, 1), 3834u);

  r = decode_netflow_v9(datagrams[0].payload, store, batch);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->unknown_template_sets, 0u);
  EXPECT_EQ(r->data_records, 22u);  // 11 + 1 + 10
}

// nDPI's netflowv9.pcap (UDP 2057): 10 packets of data whose templates were never captured.
//   tshark -r netflowv9.pcap -d udp.port==2057,cflow -T fields -e cflow.count
//          -e cflow.flowset_id -e cflow.flowset_length
// lists 23 data flowsets ("no template found") whose lengths minus their 4-byte headers
// add up to 13176 bytes.
TEST(NetflowV9Capture, NdpiDataWithoutTemplates) {
  TemplateStore store(TransportKind::datagram);
  RecordBatch batch;
  const Totals t = decode_capture(data_path("export/ndpi/netflowv9.pcap"), store, batch);
  EXPECT_EQ(t.v9_packets, 10u);
  EXPECT_EQ(t.errors, 0u);
  EXPECT_EQ(t.unknown_sets, 23u);
  EXPECT_EQ(t.unknown_bytes, 13176u);
  EXPECT_EQ(t.data_records, 0u);
  EXPECT_TRUE(batch.empty());
}

}  // namespace
}  // namespace flowsec::ipfix
