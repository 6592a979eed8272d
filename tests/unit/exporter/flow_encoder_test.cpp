// FlowEncoder: FlowRecord → records laid out by the -T fields; every supported field is
// read back from the batch; the two-records rule (SPEC §4); IPv4/IPv6 templates; and the
// encoder's batches through the Exporter as v9 and decoded again.
#include <gtest/gtest.h>

#include "exporter/flow_encoder.hpp"
#include "ipfix/render.hpp"
#include "ipfix/template_string.hpp"
#include "unit/exporter/test_support.hpp"

namespace flowsec::exporter::test {
namespace {

constexpr std::int64_t kStartMs = 1'700'000'000'000;

flow::FlowRecord tcp_flow() {
  flow::FlowRecord f;
  f.key.ip_version = 4;
  f.key.protocol = 6;
  f.key.src_addr = {10, 0, 0, 1};
  f.key.dst_addr = {192, 168, 1, 2};
  f.key.src_port = 40000;
  f.key.dst_port = 443;
  f.key.vlan = 12;
  f.first_ns = (kStartMs + 2500) * 1'000'000 + 123'456;
  f.last_ns = (kStartMs + 7750) * 1'000'000 + 999'999;
  f.in = {10, 1500, 2, 300, 1, 3, 0x01b, 64000, 0x20};
  f.out = {8, 9000, 1, 1448, 4, 5, 0x012, 65000, 0x28};
  f.client_mac = {0x02, 0, 0, 0, 0, 0x01};
  f.server_mac = {0x02, 0, 0, 0, 0, 0x02};
  f.min_ttl = 60;
  f.max_ttl = 64;
  f.end_reason = flow::EndReason::end_of_flow;
  f.client_latency_us = 1500;
  f.server_latency_us = 25'000;
  f.l7_master = 91;  // TLS
  f.l7_app = 126;    // Google
  f.l7_confidence = 4;
  f.tunnel_id = 77;
  return f;
}

std::vector<FieldSpec> parse(std::string_view text) {
  auto p = ipfix::parse_template_string(text);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error());
  return p ? p->fields : std::vector<FieldSpec>{};
}

FlowEncoder encoder(std::string_view text) {
  FlowEncoderOptions o;
  o.fields = parse(text);
  o.start_time_ms = kStartMs;
  o.l7_name = [](std::uint16_t master, std::uint16_t app) {
    return master == 91 && app == 126 ? std::string("TLS.Google") : std::string("Unknown");
  };
  auto e = FlowEncoder::create(std::move(o));
  EXPECT_TRUE(e.has_value());
  return std::move(*e);
}

std::uint64_t un(const ipfix::RecordView& r, std::uint32_t pen, std::uint16_t id) {
  auto v = r.unsigned_field(pen, id);
  EXPECT_TRUE(v.has_value()) << pen << "/" << id;
  return v.value_or(~std::uint64_t{0});
}
std::string str(const ipfix::RecordView& r, std::uint32_t pen, std::uint16_t id) {
  auto v = r.field(pen, id);
  if (!v) return "<absent>";
  std::string s(reinterpret_cast<const char*>(v->data()), v->size());
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

// Every field the encoder computes, read back. With %L7_PROTO_NAME (variable-length in
// IPFIX) the record is built field after field; without it every field has a fixed offset
// and the encoder writes them in place: both ways must give the same values.
void expect_every_supported_field(bool with_l7_name) {
  const std::string fields =
      "%IPV4_SRC_ADDR %IPV4_DST_ADDR %L4_SRC_PORT %L4_DST_PORT %PROTOCOL %IN_BYTES %IN_PKTS "
      "%OUT_BYTES %OUT_PKTS %FIRST_SWITCHED %LAST_SWITCHED %FLOW_START_MILLISECONDS "
      "%FLOW_END_MILLISECONDS %FLOW_START_SEC %FLOW_END_SEC %TCP_FLAGS %CLIENT_TCP_FLAGS "
      "%SERVER_TCP_FLAGS %SRC_TOS %DST_TOS %IN_SRC_MAC %IN_DST_MAC %OUT_SRC_MAC %OUT_DST_MAC "
      "%SRC_VLAN %DST_VLAN %IP_PROTOCOL_VERSION %FLOW_END_REASON %CLIENT_NW_LATENCY_MS "
      "%SERVER_NW_LATENCY_MS %RETRANSMITTED_IN_PKTS %RETRANSMITTED_OUT_PKTS "
      "%RETRANSMITTED_IN_BYTES %RETRANSMITTED_OUT_BYTES %OOORDER_IN_PKTS %OOORDER_OUT_PKTS "
      "%SRC_FRAGMENTS %DST_FRAGMENTS %TCP_WIN_MAX_IN %TCP_WIN_MAX_OUT %L7_PROTO " +
      std::string(with_l7_name ? "%L7_PROTO_NAME " : "") +
      "%L7_CONFIDENCE %FLOW_SOURCE %INPUT_SNMP %OUTPUT_SNMP %SRC_AS %DST_AS %MIN_TTL %MAX_TTL "
      "%FLOW_DURATION_MILLISECONDS %UPSTREAM_TUNNEL_ID %ICMP_TYPE";
  auto e = encoder(fields);
  EXPECT_EQ(e.v4_template()->has_variable_length(), with_l7_name);
  EXPECT_TRUE(e.unsupported_fields().empty());
  EXPECT_FALSE(e.splits_directions());
  ipfix::RecordBatch b;
  e.encode(tcp_flow(), b);
  ASSERT_EQ(b.size(), 1u);
  auto r = b[0];
  using ipfix::kNtopPen;
  EXPECT_EQ(un(r, 0, 8), 0x0a000001u);
  EXPECT_EQ(un(r, 0, 12), 0xc0a80102u);
  EXPECT_EQ(un(r, 0, 7), 40000u);
  EXPECT_EQ(un(r, 0, 11), 443u);
  EXPECT_EQ(un(r, 0, 4), 6u);
  EXPECT_EQ(un(r, 0, 1), 1500u);
  EXPECT_EQ(un(r, 0, 2), 10u);
  EXPECT_EQ(un(r, 0, 23), 9000u);
  EXPECT_EQ(un(r, 0, 24), 8u);
  EXPECT_EQ(un(r, 0, 22), 2500u);  // sysUpTime ms since the exporter's start
  EXPECT_EQ(un(r, 0, 21), 7750u);
  EXPECT_EQ(un(r, 0, 152), static_cast<std::uint64_t>(kStartMs + 2500));
  EXPECT_EQ(un(r, 0, 153), static_cast<std::uint64_t>(kStartMs + 7750));
  EXPECT_EQ(un(r, 0, 150), static_cast<std::uint64_t>((kStartMs + 2500) / 1000));
  EXPECT_EQ(un(r, 0, 151), static_cast<std::uint64_t>((kStartMs + 7750) / 1000));
  EXPECT_EQ(un(r, 0, 6), 0x1bu | 0x12u);
  EXPECT_EQ(un(r, kNtopPen, 78), 0x1bu);
  EXPECT_EQ(un(r, kNtopPen, 79), 0x12u);
  EXPECT_EQ(un(r, 0, 5), 0x20u);
  EXPECT_EQ(un(r, 0, 55), 0x28u);
  EXPECT_EQ(r.field(0, 56)->size(), 6u);
  EXPECT_EQ(static_cast<int>((*r.field(0, 56))[5]), 1);  // IN_SRC_MAC = client
  EXPECT_EQ(static_cast<int>((*r.field(0, 80))[5]), 2);  // IN_DST_MAC = server
  EXPECT_EQ(static_cast<int>((*r.field(0, 81))[5]), 2);  // OUT_SRC_MAC = server
  EXPECT_EQ(static_cast<int>((*r.field(0, 57))[5]), 1);  // OUT_DST_MAC = client
  EXPECT_EQ(un(r, 0, 58), 12u);
  EXPECT_EQ(un(r, 0, 59), 12u);
  EXPECT_EQ(un(r, 0, 60), 4u);
  EXPECT_EQ(un(r, 0, 136), 3u);
  EXPECT_EQ(un(r, kNtopPen, 123), 1u);  // 1500 us → 1 ms
  EXPECT_EQ(un(r, kNtopPen, 124), 25u);
  EXPECT_EQ(un(r, kNtopPen, 109), 2u);
  EXPECT_EQ(un(r, kNtopPen, 110), 1u);
  EXPECT_EQ(un(r, kNtopPen, 127), 300u);
  EXPECT_EQ(un(r, kNtopPen, 128), 1448u);
  EXPECT_EQ(un(r, kNtopPen, 111), 1u);
  EXPECT_EQ(un(r, kNtopPen, 112), 4u);
  EXPECT_EQ(un(r, kNtopPen, 80), 3u);
  EXPECT_EQ(un(r, kNtopPen, 81), 5u);
  EXPECT_EQ(un(r, kNtopPen, 416), 64000u);
  EXPECT_EQ(un(r, kNtopPen, 420), 65000u);
  EXPECT_EQ(un(r, kNtopPen, 118), 126u);  // the application id
  EXPECT_EQ(str(r, kNtopPen, 119), with_l7_name ? "TLS.Google" : "<absent>");
  EXPECT_EQ(un(r, kNtopPen, 560), 4u);
  EXPECT_EQ(un(r, kNtopPen, 579), 0u);
  EXPECT_EQ(un(r, 0, 10), 0u);
  EXPECT_EQ(un(r, 0, 14), 0u);
  EXPECT_EQ(un(r, 0, 16), 0u);
  EXPECT_EQ(un(r, 0, 17), 0u);
  EXPECT_EQ(un(r, 0, 52), 60u);
  EXPECT_EQ(un(r, 0, 53), 64u);
  EXPECT_EQ(un(r, 0, 161), 5250u);
  EXPECT_EQ(un(r, kNtopPen, 106), 77u);
  EXPECT_EQ(un(r, 0, 32), 0u);
}

TEST(FlowEncoder, EverySupportedFieldFromTheFlow) {
  expect_every_supported_field(true);
}

TEST(FlowEncoder, EverySupportedFieldInPlaceWhenTheLayoutIsFixed) {
  expect_every_supported_field(false);
}

TEST(FlowEncoder, L7ProtoIsMasterWhenAppUnknownAndIcmpTypeCode) {
  auto e = encoder("%IPV4_SRC_ADDR %L7_PROTO %ICMP_TYPE %OUT_BYTES");
  auto f = tcp_flow();
  f.l7_app = 0;
  f.key.protocol = 1;
  f.icmp_type = 8;
  f.icmp_code = 3;
  ipfix::RecordBatch b;
  e.encode(f, b);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(un(b[0], ipfix::kNtopPen, 118), 91u);
  EXPECT_EQ(un(b[0], 0, 32), 8u * 256 + 3);
}

TEST(FlowEncoder, NoOutFieldsMeansTwoRecordsPerFlow) {
  FlowEncoderOptions o;  // nProbe's default template: no OUT_ fields
  o.start_time_ms = kStartMs;
  auto e = FlowEncoder::create(o);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->splits_directions());
  EXPECT_TRUE(e->unsupported_fields().empty());
  ipfix::RecordBatch b;
  auto f = tcp_flow();
  e->encode(f, b);
  ASSERT_EQ(b.size(), 2u);
  auto fwd = b[0];
  auto rev = b[1];
  EXPECT_EQ(un(fwd, 0, 8), 0x0a000001u);
  EXPECT_EQ(un(fwd, 0, 7), 40000u);
  EXPECT_EQ(un(fwd, 0, 1), 1500u);
  EXPECT_EQ(un(fwd, 0, 2), 10u);
  EXPECT_EQ(un(fwd, 0, 6), 0x1bu);
  EXPECT_EQ(un(rev, 0, 8), 0xc0a80102u);  // key reversed
  EXPECT_EQ(un(rev, 0, 12), 0x0a000001u);
  EXPECT_EQ(un(rev, 0, 7), 443u);
  EXPECT_EQ(un(rev, 0, 11), 40000u);
  EXPECT_EQ(un(rev, 0, 1), 9000u);  // the out counters
  EXPECT_EQ(un(rev, 0, 2), 8u);
  EXPECT_EQ(un(rev, 0, 6), 0x12u);
  EXPECT_EQ(un(rev, 0, 5), 0x28u);
  EXPECT_EQ(un(rev, 0, 22), 2500u);
  // A flow with no server → client packet stays one record.
  f.out = {};
  ipfix::RecordBatch b2;
  e->encode(f, b2);
  EXPECT_EQ(b2.size(), 1u);
}

// The server's record is the whole flow seen from the server: MACs, latencies, TCP flags
// and direction swap with the key and counters, whether the record is written in place
// (fixed lengths) or field after field (%L7_PROTO_NAME makes the IPFIX layout variable).
TEST(FlowEncoder, TheServersRecordSwapsEveryDirectionalField) {
  for (const bool variable : {false, true}) {
    SCOPED_TRACE(variable ? "variable-length layout" : "fixed layout");
    std::string list =
        "%IPV4_SRC_ADDR %IPV4_DST_ADDR %L4_SRC_PORT %L4_DST_PORT %IN_BYTES %IN_PKTS %IN_SRC_MAC "
        "%IN_DST_MAC %CLIENT_NW_LATENCY_MS %SERVER_NW_LATENCY_MS %TCP_FLAGS %BIFLOW_DIRECTION "
        "%RETRANSMITTED_IN_PKTS";
    if (variable) list += " %L7_PROTO_NAME";
    auto e = encoder(list);
    ASSERT_TRUE(e.splits_directions());
    ipfix::RecordBatch b;
    e.encode(tcp_flow(), b);
    ASSERT_EQ(b.size(), 2u);
    const auto fwd = b[0];
    const auto rev = b[1];
    EXPECT_EQ(un(fwd, 0, 56), 0x020000000001u);  // IN_SRC_MAC: the client's
    EXPECT_EQ(un(fwd, 0, 80), 0x020000000002u);
    EXPECT_EQ(un(rev, 0, 56), 0x020000000002u);  // the server's, in its own record
    EXPECT_EQ(un(rev, 0, 80), 0x020000000001u);
    EXPECT_EQ(un(fwd, ipfix::kNtopPen, 123), 1u);   // 1500 µs
    EXPECT_EQ(un(fwd, ipfix::kNtopPen, 124), 25u);  // 25 000 µs
    EXPECT_EQ(un(rev, ipfix::kNtopPen, 123), 25u);
    EXPECT_EQ(un(rev, ipfix::kNtopPen, 124), 1u);
    EXPECT_EQ(un(fwd, 0, 239), 1u);  // BIFLOW_DIRECTION initiator
    EXPECT_EQ(un(rev, 0, 239), 2u);  // reverseInitiator
    EXPECT_EQ(un(rev, 0, 6), 0x12u);
    EXPECT_EQ(un(rev, 0, 7), 443u);
    EXPECT_EQ(un(rev, 0, 12), 0x0a000001u);
    EXPECT_EQ(un(fwd, ipfix::kNtopPen, 109), 2u);  // retransmitted packets, per direction
    EXPECT_EQ(un(rev, ipfix::kNtopPen, 109), 1u);
    if (variable) {
      EXPECT_EQ(str(rev, ipfix::kNtopPen, 119), "TLS.Google");
    }
  }
}

TEST(FlowEncoder, Ipv6FlowsUseTheTwinTemplate) {
  auto e = encoder("%IPV4_SRC_ADDR %IPV4_DST_ADDR %IN_BYTES %OUT_BYTES");
  EXPECT_NE(e.v4_template(), e.v6_template());
  auto f = tcp_flow();
  f.key.ip_version = 6;
  f.key.src_addr = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  f.key.dst_addr = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  ipfix::RecordBatch b;
  e.encode(f, b);
  e.encode(tcp_flow(), b);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].record_template().index_of(0, 27), 0);
  EXPECT_EQ(b[0].field(0, 27)->size(), 16u);
  EXPECT_EQ(static_cast<int>((*b[0].field(0, 28))[15]), 2);
  EXPECT_EQ(un(b[1], 0, 8), 0x0a000001u);
  // Both families listed: one template, the other family zero.
  auto both = encoder("%IPV4_SRC_ADDR %IPV6_SRC_ADDR %IN_BYTES %OUT_BYTES");
  EXPECT_EQ(both.v4_template(), both.v6_template());
  ipfix::RecordBatch b2;
  both.encode(f, b2);
  EXPECT_EQ(un(b2[0], 0, 8), 0u);
}

// A flow exported within the first second after the start gets a message uptime of 0,
// which is an uptime like any other: its FIRST/LAST_SWITCHED render as absolute times, as
// every later flow's do (they rendered as raw uptimes, ms since the start, before).
TEST(FlowEncoder, FlowsOfTheFirstSecondRenderAsAbsoluteTimes) {
  FlowEncoder e = encoder("%IPV4_SRC_ADDR %FIRST_SWITCHED %LAST_SWITCHED");
  flow::FlowRecord early = tcp_flow();
  early.first_ns = (kStartMs + 87) * 1'000'000;
  early.last_ns = (kStartMs + 990) * 1'000'000;
  auto render = [&](const flow::FlowRecord& f) {
    ipfix::RecordBatch batch;
    e.encode(f, batch);
    EXPECT_TRUE(batch.messages_from(0)[0].ipfix_uptime);
    std::string json;
    ipfix::RecordRenderer(ipfix::RenderFormat::json_lines).render(batch, json);
    return json;
  };
  // Both in the start's second, kStartMs / 1000 s.
  const std::string first = render(early);
  EXPECT_NE(first.find("\"FIRST_SWITCHED\":1700000000,\"LAST_SWITCHED\":1700000000"),
            std::string::npos)
      << first;
  // A later flow (2.5 s to 7.75 s after the start) renders as absolute seconds too.
  const std::string later = render(tcp_flow());
  EXPECT_NE(later.find("\"FIRST_SWITCHED\":170000000"), std::string::npos) << later;
  EXPECT_NE(later.find("\"LAST_SWITCHED\":1700000007"), std::string::npos) << later;
}

TEST(FlowEncoder, UnsupportedFieldsListedAndZero) {
  auto e = encoder("%IPV4_SRC_ADDR %IPV4_NEXT_HOP %HTTP_URL %OUT_BYTES");
  auto names = e.unsupported_fields();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], "IPV4_NEXT_HOP");
  EXPECT_EQ(names[1], "HTTP_URL");
  ipfix::RecordBatch b;
  e.encode(tcp_flow(), b);
  EXPECT_EQ(un(b[0], 0, 15), 0u);
  EXPECT_EQ(str(b[0], ipfix::kNtopPen, 180), "");
}

TEST(FlowEncoder, ThroughTheExporterAsV9AndIpfix) {
  for (int version : {9, 10}) {
    auto e = encoder(
        "%IPV4_SRC_ADDR %IPV4_DST_ADDR %IN_BYTES %IN_PKTS %FIRST_SWITCHED "
        "%LAST_SWITCHED %L7_PROTO %L7_PROTO_NAME");
    ExporterOptions o;
    o.version = version;
    o.start_time_ms = kStartMs;
    Harness h(o, {udp()});
    ipfix::RecordBatch b;
    std::vector<flow::FlowRecord> flows(3, tcp_flow());
    e.encode(flows, b);
    ASSERT_EQ(b.size(), 6u);  // no OUT_ fields: two records each
    h.export_batch(b);
    auto d = decode_all(h.states[0]->sent, version);
    auto recs = flow_records(d);
    ASSERT_EQ(recs.size(), 6u) << "v" << version;
    EXPECT_EQ(d.batch.size(), version == 10 ? 7u : 6u);  // + IE 160 options record
    EXPECT_EQ(un(recs[0], 0, 1), 1500u);
    EXPECT_EQ(un(recs[1], 0, 1), 9000u);
    EXPECT_EQ(un(recs[0], 0, 22), 2500u);
    EXPECT_EQ(str(recs[0], ipfix::kNtopPen, 119), "TLS.Google");
  }
}

}  // namespace
}  // namespace flowsec::exporter::test
