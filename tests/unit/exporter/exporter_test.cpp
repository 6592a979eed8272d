// Exporter: records → v10/v9/v5 messages → fake senders, read back with the
// repository's own decoders (ipfix/decode.hpp). No sockets: FakeSender records what it
// is given; the io_context is drained with poll(); time is a ManualClock.
#include <gtest/gtest.h>

#include "ipfix/ie_registry.hpp"
#include "ipfix/netflow_v5.hpp"
#include "unit/exporter/test_support.hpp"

namespace flowsec::exporter::test {
namespace {

using ipfix::kNtopPen;
using ipfix::kVariableLength;

// sourceIPv4Address, destinationIPv4Address, ports, protocol, octets (8), packets (4),
// flowStartMilliseconds, flowEndMilliseconds, L7_PROTO_NAME (variable).
std::vector<FieldSpec> flow_fields() {
  return {{0, 8, 4}, {0, 12, 4}, {0, 7, 2},   {0, 11, 2},  {0, 4, 1},
          {0, 1, 8}, {0, 2, 4},  {0, 152, 8}, {0, 153, 8}, {kNtopPen, 119, kVariableLength}};
}

constexpr std::int64_t kStart = 1'700'000'000'000;  // Harness start_time_ms

std::vector<Value> flow_values(std::uint32_t i) {
  return {ip4(0x0a000000u + i),
          ip4(0xc0a80101u),
          u(40000 + i),
          u(443),
          u(6),
          u(1000 + i),
          u(10 + i),
          Value{ipfix::DateTimeMilliseconds(std::chrono::milliseconds(kStart + 5000 + i))},
          Value{ipfix::DateTimeMilliseconds(std::chrono::milliseconds(kStart + 9000 + i))},
          Value{std::string("TLS.Google")}};
}

ipfix::RecordBatch flow_batch(std::uint32_t n, std::uint32_t first = 0) {
  ipfix::RecordBatch b;
  auto t = make_template(300, flow_fields());
  for (std::uint32_t i = first; i < first + n; ++i) add_record(b, t, flow_values(i));
  return b;
}

TEST(ExporterIpfix, ReExportsTheFieldsReceivedAndDecodesBack) {
  ExporterOptions o;
  o.version = 10;
  o.engine = {1, 77};
  Harness h(o, {udp()});
  h.export_batch(flow_batch(5));
  ASSERT_EQ(h.states[0]->sent.size(), 1u);
  const auto& m = h.states[0]->sent[0];
  EXPECT_EQ(header_u32(m, 12), 77u);  // RFC 7011 §3.1 observation domain = -E id
  EXPECT_TRUE(starts_with_templates(m));
  auto d = decode_all(h.states[0]->sent, 10);
  ASSERT_EQ(d.batch.size(), 5u);
  for (std::uint32_t i = 0; i < 5; ++i) {
    auto r = d.batch[i];
    EXPECT_EQ(r.record_template().id(), kDefaultFirstTemplateId);
    EXPECT_EQ(r.unsigned_field(0, 1), 1000 + i);
    EXPECT_EQ(r.unsigned_field(0, 2), 10 + i);
    EXPECT_EQ(r.unsigned_field(0, 7), 40000 + i);
    EXPECT_EQ(r.unsigned_field(0, 152), static_cast<std::uint64_t>(kStart + 5000 + i));
    auto name = r.field(kNtopPen, 119);
    ASSERT_TRUE(name);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(name->data()), name->size()), "TLS.Google");
  }
  auto s = h.exporter->stats();
  EXPECT_EQ(s.records_exported, 5u);
  EXPECT_EQ(s.collectors[0].records, 5u);
  EXPECT_EQ(s.collectors[0].messages, 1u);
}

TEST(ExporterIpfix, TemplateIdsNumberedFromFirstPerLayout) {
  ExporterOptions o;
  o.first_template_id = 1000;
  Harness h(o, {udp()});
  ipfix::RecordBatch b;
  auto t1 = make_template(300, {{0, 8, 4}, {0, 1, 4}});
  auto t2 = make_template(301, {{0, 12, 4}, {0, 2, 4}});
  auto t3 = make_template(999, {{0, 8, 4}, {0, 1, 4}});  // same layout as t1
  add_record(b, t1, {ip4(1), u(1)});
  add_record(b, t2, {ip4(2), u(2)});
  add_record(b, t3, {ip4(3), u(3)});
  h.export_batch(b);
  auto d = decode_all(h.states[0]->sent, 10);
  ASSERT_EQ(d.batch.size(), 3u);
  EXPECT_EQ(d.batch[0].record_template().id(), 1000);
  EXPECT_EQ(d.batch[1].record_template().id(), 1001);
  EXPECT_EQ(d.batch[2].record_template().id(), 1000);
}

TEST(ExporterIpfix, SequenceNumberCountsDataRecords) {
  // RFC 7011 §3.1: the sequence number is the count of data records sent before.
  ExporterOptions o;
  o.max_message_size = 200;
  Harness h(o, {udp()});
  h.export_batch(flow_batch(20));
  h.export_batch(flow_batch(3));
  const auto& sent = h.states[0]->sent;
  ASSERT_GT(sent.size(), 3u);
  std::uint32_t expected = 0;
  ipfix::TemplateStore store(ipfix::TransportKind::datagram);
  for (const auto& m : sent) {
    EXPECT_LE(m.size(), 200u);
    EXPECT_EQ(header_u32(m, 8), expected);
    ipfix::RecordBatch b;
    auto r = ipfix::decode_ipfix(Bytes(m), store, b);
    ASSERT_TRUE(r);
    expected += r->data_records;
  }
  EXPECT_EQ(expected, 23u);
}

TEST(ExporterIpfix, TemplateRefreshEveryNMessagesOverDatagram) {
  ExporterOptions o;
  o.template_refresh_messages = 3;
  o.template_refresh_interval = std::chrono::hours(1);
  Harness h(o, {udp()});
  for (std::uint32_t i = 0; i < 7; ++i) h.export_batch(flow_batch(1, i));  // one message each
  const auto& sent = h.states[0]->sent;
  ASSERT_EQ(sent.size(), 7u);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(starts_with_templates(sent[i]), i % 3 == 0) << "message " << i;
  }
}

TEST(ExporterIpfix, TemplateRefreshAfterIntervalOverDatagram) {
  ExporterOptions o;
  o.template_refresh_messages = 1000;
  o.template_refresh_interval = std::chrono::seconds(60);
  Harness h(o, {udp()});
  h.export_batch(flow_batch(1));
  h.clock.advance(std::chrono::seconds(30));
  h.export_batch(flow_batch(1));
  h.clock.advance(std::chrono::seconds(31));
  h.export_batch(flow_batch(1));
  h.export_batch(flow_batch(1));
  const auto& sent = h.states[0]->sent;
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_TRUE(starts_with_templates(sent[0]));
  EXPECT_FALSE(starts_with_templates(sent[1]));
  EXPECT_TRUE(starts_with_templates(sent[2]));
  EXPECT_FALSE(starts_with_templates(sent[3]));
}

TEST(ExporterIpfix, StreamSendsTemplatesOnceThenFirstAfterEveryReconnect) {
  ExporterOptions o;
  o.template_refresh_messages = 2;
  Harness h(o, {tcp()});
  auto& st = *h.states[0];
  st.reconnect();  // nothing known yet: the hook has nothing to send
  EXPECT_TRUE(st.sent.empty());
  h.exporter->poll_status();
  h.drain();
  for (std::uint32_t i = 0; i < 4; ++i) h.export_batch(flow_batch(1, i));
  ASSERT_EQ(st.sent.size(), 4u);
  EXPECT_TRUE(starts_with_templates(st.sent[0]));
  for (std::size_t i = 1; i < 4; ++i) EXPECT_FALSE(starts_with_templates(st.sent[i])) << i;
  // A new layout appears, then the connection breaks and comes back (RFC 7011 §8).
  ipfix::RecordBatch b;
  add_record(b, make_template(400, {{0, 8, 4}, {0, 2, 4}}), {ip4(9), u(9)});
  h.export_batch(b);
  st.sent.clear();
  st.connected = false;
  st.reconnect();
  ASSERT_EQ(st.sent.size(), 1u);
  const auto& hook_msg = st.sent[0];
  ipfix::TemplateStore store(ipfix::TransportKind::stream);
  ipfix::RecordBatch out;
  auto r = ipfix::decode_ipfix(Bytes(hook_msg), store, out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->templates, 2u);  // every current template
  EXPECT_EQ(r->data_records, 0u);
  EXPECT_EQ(header_u32(hook_msg, 8), 5u);  // sequence: 5 data records sent before
  // Data after the reconnect decodes with only the hook's templates.
  h.export_batch(flow_batch(2));
  ASSERT_EQ(st.sent.size(), 2u);
  EXPECT_FALSE(starts_with_templates(st.sent[1]));
  r = ipfix::decode_ipfix(Bytes(st.sent[1]), store, out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data_records, 2u);
  EXPECT_EQ(h.exporter->stats().template_messages_on_connect, 1u);
}

TEST(ExporterRouting, RoundRobinByMessageWithOwnSequenceAndTemplates) {
  ExporterOptions o;
  Harness h(o, {udp(1), udp(2), udp(3)});
  for (std::uint32_t i = 0; i < 6; ++i) h.export_batch(flow_batch(i + 1));
  for (std::size_t c = 0; c < 3; ++c) {
    const auto& sent = h.states[c]->sent;
    ASSERT_EQ(sent.size(), 2u) << "collector " << c;
    EXPECT_TRUE(starts_with_templates(sent[0]));
    EXPECT_EQ(header_u32(sent[0], 8), 0u);
    EXPECT_EQ(header_u32(sent[1], 8), c + 1);  // this collector's own record count
    auto d = decode_all(sent, 10);
    EXPECT_EQ(d.batch.size(), (c + 1) + (c + 4));
  }
}

TEST(ExporterRouting, AllCollectorsGetEveryMessage) {
  ExporterOptions o;
  o.all_collectors = true;
  Harness h(o, {udp(1), udp(2)});
  for (std::uint32_t i = 0; i < 3; ++i) h.export_batch(flow_batch(2, i));
  ASSERT_EQ(h.states[0]->sent.size(), 3u);
  EXPECT_EQ(h.states[0]->sent, h.states[1]->sent);
  auto s = h.exporter->stats();
  EXPECT_EQ(s.collectors[0].records, 6u);
  EXPECT_EQ(s.collectors[1].records, 6u);
  EXPECT_EQ(s.messages, 3u);
}

TEST(ExporterRouting, SkipsDisconnectedCollectorAndQueuesOnOneWhenAllAreDown) {
  ExporterOptions o;
  Harness h(o, {tcp(1), tcp(2)});
  auto& a = *h.states[0];
  auto& b = *h.states[1];
  a.connected = true;
  b.connected = false;
  h.exporter->poll_status();
  h.drain();
  for (std::uint32_t i = 0; i < 4; ++i) h.export_batch(flow_batch(1, i));
  EXPECT_EQ(a.sent.size(), 4u);
  EXPECT_EQ(b.sent.size(), 0u);
  // All down: nothing is lost, the messages queue on one sender.
  a.connected = false;
  h.exporter->poll_status();
  h.drain();
  for (std::uint32_t i = 0; i < 4; ++i) h.export_batch(flow_batch(1, i));
  EXPECT_EQ(a.sent.size() + b.sent.size(), 8u);
  EXPECT_TRUE(a.sent.size() == 8u || b.sent.size() == 4u);
  // B comes back: round-robin resumes between the live ones.
  const std::size_t a_before = a.sent.size(), b_before = b.sent.size();
  b.reconnect();
  a.connected = true;
  h.exporter->poll_status();
  h.drain();
  for (std::uint32_t i = 0; i < 4; ++i) h.export_batch(flow_batch(1, i));
  EXPECT_EQ(a.sent.size() - a_before, 2u);
  EXPECT_GE(b.sent.size() - b_before, 2u);  // + the hook's template message
}

TEST(ExporterMapping, RecordsMappedOntoTemplateFieldsByElement) {
  ExporterOptions o;
  o.version = 10;
  // IPV4_SRC_ADDR IN_BYTES(4) FIRST_SWITCHED LAST_SWITCHED L4_SRC_PORT SRC_VLAN L7_PROTO_NAME
  o.fields = std::vector<FieldSpec>{{0, 8, 4},
                                    {0, 1, 4},
                                    {0, 22, 4},
                                    {0, 21, 4},
                                    {0, 7, 2},
                                    {0, 58, 2},
                                    {kNtopPen, 119, kVariableLength}};
  Harness h(o, {udp()});
  ipfix::RecordBatch b;
  auto t = make_template(300, {{0, 1, 8}, {0, 8, 4}, {0, 152, 8}, {0, 153, 8}, {0, 7, 2}});
  add_record(b, t,
             {u(5'000'000'000), ip4(0x01020304),
              Value{ipfix::DateTimeMilliseconds(std::chrono::milliseconds(kStart + 1234))},
              Value{ipfix::DateTimeMilliseconds(std::chrono::milliseconds(kStart + 5678))}, u(80)});
  h.export_batch(b);
  auto d = decode_all(h.states[0]->sent, 10);
  // IPFIX has no sysUpTime header: the options record with systemInitTimeMilliseconds
  // (IE 160) = our start comes first, so a collector can resolve 22/21.
  ASSERT_EQ(d.batch.size(), 2u);
  EXPECT_TRUE(d.batch[0].record_template().is_options());
  EXPECT_EQ(d.batch[0].unsigned_field(0, 160), static_cast<std::uint64_t>(kStart));
  auto r = d.batch[1];
  ASSERT_EQ(r.record_template().fields().size(), 7u);
  EXPECT_EQ(r.unsigned_field(0, 8), 0x01020304u);
  EXPECT_EQ(r.unsigned_field(0, 1), 0xffffffffu);  // saturated into 4 bytes
  EXPECT_EQ(r.unsigned_field(0, 22), 1234u);       // ms since the exporter's start
  EXPECT_EQ(r.unsigned_field(0, 21), 5678u);
  EXPECT_EQ(r.unsigned_field(0, 7), 80u);
  EXPECT_EQ(r.unsigned_field(0, 58), 0u);  // missing: zero
  auto name = r.field(kNtopPen, 119);
  ASSERT_TRUE(name);
  EXPECT_TRUE(name->empty());  // missing: empty
}

TEST(ExporterMapping, OptionsRecordsAreNotMappedOntoTemplateFields) {
  ExporterOptions o;
  o.fields = std::vector<FieldSpec>{{0, 8, 4}};
  Harness h(o, {udp()});
  ipfix::RecordBatch b;
  add_record(b, make_template(300, {{0, 149, 4}, {0, 41, 8}}, 1), {u(1), u(2)});
  h.export_batch(b);
  EXPECT_EQ(h.exporter->stats().records_not_exportable, 1u);
  EXPECT_TRUE(h.states[0]->sent.empty());
}

TEST(ExporterV9, ReExportDecodesBackWithPacketSequence) {
  ExporterOptions o;
  o.version = 9;
  o.engine = {0, 4242};
  o.max_message_size = 300;
  Harness h(o, {udp()});
  h.export_batch(flow_batch(12));
  const auto& sent = h.states[0]->sent;
  ASSERT_GT(sent.size(), 1u);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(header_u32(sent[i], 12), i);        // RFC 3954 §5.1: packet count
    EXPECT_EQ(header_u32(sent[i], 16), 4242u);    // source id
    EXPECT_EQ(header_u32(sent[i], 4), 100'000u);  // sysUpTime: now - start
  }
  auto d = decode_all(sent, 9);
  ASSERT_EQ(d.batch.size(), 12u);
  for (std::uint32_t i = 0; i < 12; ++i) {
    auto r = d.batch[i];
    EXPECT_EQ(r.unsigned_field(0, 8), 0x0a000000u + i);
    EXPECT_EQ(r.unsigned_field(0, 1), 1000 + i);
    auto name = r.field(kNtopPen, 119);
    ASSERT_TRUE(name);
    ASSERT_EQ(name->size(), 16u);  // v9: fixed length (nProbe's 16)
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(name->data())), "TLS.Google");
  }
}

TEST(ExporterV9, ElementsV9CannotCarryAreDroppedFromReExport) {
  ExporterOptions o;
  o.version = 9;
  Harness h(o, {udp()});
  ipfix::RecordBatch b;
  // reverseOctetDeltaCount (RFC 5103, enterprise 29305) has no v9 field type.
  add_record(b, make_template(300, {{0, 8, 4}, {ipfix::kReversePen, 1, 8}, {0, 1, 8}}),
             {ip4(7), u(99), u(100)});
  h.export_batch(b);
  auto d = decode_all(h.states[0]->sent, 9);
  ASSERT_EQ(d.batch.size(), 1u);
  EXPECT_EQ(d.batch[0].record_template().fields().size(), 2u);
  EXPECT_EQ(d.batch[0].unsigned_field(0, 1), 100u);
}

TEST(ExporterV9, RebasesSysUpTimeOfReceivedV9Records) {
  ExporterOptions o;
  o.version = 9;
  Harness h(o, {udp()});
  ipfix::RecordBatch b;
  ipfix::MessageMeta meta;
  meta.protocol = ipfix::Protocol::netflow_v9;
  meta.export_time = static_cast<std::uint32_t>(kStart / 1000) + 50;  // their clock
  meta.sys_uptime_ms = 10'000'000;  // their boot: kStart + 50 s - 10000 s
  add_record(b, make_template(300, {{0, 8, 4}, {0, 22, 4}, {0, 21, 4}}),
             {ip4(1), u(9'960'000), u(9'990'000)}, meta);
  h.export_batch(b);
  auto d = decode_all(h.states[0]->sent, 9);
  ASSERT_EQ(d.batch.size(), 1u);
  // Absolute: kStart + 10 s and kStart + 40 s → relative to our start.
  EXPECT_EQ(d.batch[0].unsigned_field(0, 22), 10'000u);
  EXPECT_EQ(d.batch[0].unsigned_field(0, 21), 40'000u);
}

TEST(ExporterV5, FromIpfixInputDecodesBack) {
  ExporterOptions o;
  o.version = 5;
  o.engine = {3, 9};
  Harness h(o, {udp()});
  ipfix::RecordBatch b = flow_batch(40);
  // An IPv6 record cannot be v5.
  add_record(b, make_template(301, {{0, 27, 16}, {0, 1, 8}}),
             {Value{*IpAddress::parse("2001:db8::1")}, u(1)});
  h.export_batch(b);
  const auto& sent = h.states[0]->sent;
  ASSERT_EQ(sent.size(), 2u);  // 1400 bytes hold 28 v5 records
  EXPECT_EQ(load_be<std::uint16_t>(sent[0].data() + 2), 28u);
  EXPECT_EQ(header_u32(sent[1], 16), 28u);  // flow sequence
  EXPECT_EQ(static_cast<std::uint8_t>(sent[0][20]), 3u);
  EXPECT_EQ(static_cast<std::uint8_t>(sent[0][21]), 9u);
  auto d = decode_all(sent, 5);
  ASSERT_EQ(d.batch.size(), 40u);
  for (std::uint32_t i = 0; i < 40; ++i) {
    auto r = d.batch[i];
    EXPECT_EQ(r.unsigned_field(0, 8), 0x0a000000u + i);
    EXPECT_EQ(r.unsigned_field(0, 12), 0xc0a80101u);
    EXPECT_EQ(r.unsigned_field(0, 7), 40000 + i);
    EXPECT_EQ(r.unsigned_field(0, 11), 443u);
    EXPECT_EQ(r.unsigned_field(0, 4), 6u);
    EXPECT_EQ(r.unsigned_field(0, 1), 1000 + i);
    EXPECT_EQ(r.unsigned_field(0, 2), 10 + i);
    EXPECT_EQ(r.unsigned_field(0, 22), 5000 + i);  // absolute ms → our sysUpTime
    EXPECT_EQ(r.unsigned_field(0, 21), 9000 + i);
  }
  EXPECT_EQ(h.exporter->stats().records_not_exportable, 1u);
}

TEST(ExporterPace, AProducerAheadOfTheIoThreadWaitsThenLosesNothing) {
  // Small messages: a 300-record batch is 300 messages, past the 256 the io thread may
  // be handed at once. With the io thread not running, the next batch waits (the pace
  // bound, at most a second) instead of piling up buffers; nothing is lost either way.
  ExporterOptions o;
  o.max_message_size = 100;
  Harness h(o, {udp()});
  h.exporter->export_batch(flow_batch(300));  // not drained: 300 messages wait on the io thread
  const auto before = std::chrono::steady_clock::now();
  h.exporter->export_batch(flow_batch(10, 300));
  const auto waited = std::chrono::steady_clock::now() - before;
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  EXPECT_LT(waited, std::chrono::seconds(10));
  h.drain();
  auto d = decode_all(h.states[0]->sent, 10);
  ASSERT_EQ(d.batch.size(), 310u);
  EXPECT_EQ(d.batch[309].unsigned_field(0, 7), 40000u + 309);
  // With the io thread keeping up, there is no wait.
  const auto again = std::chrono::steady_clock::now();
  h.export_batch(flow_batch(10, 310));
  EXPECT_LT(std::chrono::steady_clock::now() - again, std::chrono::milliseconds(900));
}

TEST(ExporterShutdown, FlushesThenShutsEverySenderDown) {
  ExporterOptions o;
  o.flush_each_batch = false;
  Harness h(o, {udp(1)});
  h.export_batch(flow_batch(2));
  EXPECT_TRUE(h.states[0]->sent.empty());
  int verdict = -1;
  h.exporter->shutdown(std::chrono::seconds(1), [&](bool ok) { verdict = ok ? 1 : 0; });
  h.drain();
  EXPECT_EQ(h.states[0]->sent.size(), 1u);
  EXPECT_TRUE(h.states[0]->shut_down);
  EXPECT_EQ(verdict, 1);
  h.export_batch(flow_batch(1));
  EXPECT_EQ(h.exporter->stats().records_not_exportable, 1u);
}

TEST(ExporterConfig, Validation) {
  auto ep = [](const char* s) { return *transport::parse_export_endpoint(s); };
  ExporterOptions o;
  std::vector<transport::Endpoint> tls{ep("tls://c.example:2055")};
  std::vector<transport::Endpoint> udps{ep("127.0.0.1:2055")};
  o.version = 9;
  auto r = validate_export_config(o, tls);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("-V 10"), std::string::npos) << r.error();
  o.version = 5;
  EXPECT_FALSE(validate_export_config(o, tls));
  EXPECT_TRUE(validate_export_config(o, udps));
  o.version = 10;
  EXPECT_TRUE(validate_export_config(o, tls));
  o.version = 9;
  o.fields = std::vector<FieldSpec>{{0, 8, 4}, {kNtopPen, 118, 2}};  // ntop: v9 57590
  EXPECT_TRUE(validate_export_config(o, udps));
  o.fields->push_back({ipfix::kReversePen, 1, 8});
  r = validate_export_config(o, udps);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("reverseOctetDeltaCount"), std::string::npos) << r.error();
  o.fields.reset();
  o.version = 7;
  EXPECT_FALSE(validate_export_config(o, udps));
  o.version = 10;
  o.first_template_id = 255;
  EXPECT_FALSE(validate_export_config(o, udps));
  EXPECT_EQ(default_version(tls), 10);
  EXPECT_EQ(default_version(udps), 9);
}

TEST(ExporterConfig, ParseEngineId) {
  auto e = parse_engine_id("2:300");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, 2);
  EXPECT_EQ(e->id, 300u);
  EXPECT_FALSE(parse_engine_id("256:1"));
  EXPECT_FALSE(parse_engine_id("a:b"));
  EXPECT_FALSE(parse_engine_id("1:"));
  EXPECT_TRUE(parse_engine_id("7"));
}

}  // namespace
}  // namespace flowsec::exporter::test
