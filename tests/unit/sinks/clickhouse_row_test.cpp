// ClickHouse rows (clickhouse_row.hpp): which IPFIX element fills which column, and the
// TabSeparated escaping. Records are built by hand; expected values follow from the IANA
// element definitions (shared/data/iana-ipfix-elements.csv: units, NTP time formats,
// delta/duration semantics), RFC 5103 (reverse counters) and ClickHouse's TabSeparated
// rules (docs "Formats: TabSeparated"; \xHH and the named escapes were checked against
// clickhouse-server 18.16 by inserting and reading back). No server, no sockets.
#include "sinks/clickhouse_row.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "sinks/uptime_converter.hpp"
#include "unit/sinks/sink_test_support.hpp"

namespace flowsec::sinks {
namespace {

using ipfix::FieldSpec;
using ipfix::MessageMeta;
using ipfix::Value;
using test::add_record;
using test::make_template;

Value u(std::uint64_t v) {
  return Value{v};
}

// The row's TSV line as column name → text.
std::map<std::string, std::string> columns_of(const ClickHouseRow& row,
                                              const ClickHouseExporterColumns& e = {}) {
  std::string line;
  append_tsv(row, e, line);
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  for (const auto& c : clickhouse_columns()) {
    const auto end = line.find_first_of("\t\n", pos);
    out[std::string(c.name)] = line.substr(pos, end - pos);
    pos = end + 1;
  }
  EXPECT_EQ(pos, line.size()) << "more fields than columns: " << line;
  return out;
}

std::string escaped(std::string_view s) {
  std::string out;
  append_tsv_escaped(s, out);
  return out;
}

TEST(ClickHouseRowTest, ColumnsHaveTheRequiredNamesAndTypesOnce) {
  const std::map<std::string, std::string> required = {
      {"EXPORTER_ADDRESS", "String"},
      {"EXPORTER_TLS_IDENTITY", "String"},
      {"FIRST_SWITCHED", "DateTime"},
      {"LAST_SWITCHED", "DateTime"},
      {"FLOW_START_MILLISECONDS", "UInt64"},
      {"FLOW_END_MILLISECONDS", "UInt64"},
      {"IP_PROTOCOL_VERSION", "UInt8"},
      {"IPV4_SRC_ADDR", "UInt32"},
      {"IPV4_DST_ADDR", "UInt32"},
      {"IPV6_SRC_ADDR", "FixedString(16)"},
      {"IPV6_DST_ADDR", "FixedString(16)"},
      {"L4_SRC_PORT", "UInt16"},
      {"L4_DST_PORT", "UInt16"},
      {"PROTOCOL", "UInt8"},
      {"SRC_TOS", "UInt8"},
      {"TCP_FLAGS", "UInt8"},
      {"IN_BYTES", "UInt64"},
      {"IN_PKTS", "UInt64"},
      {"OUT_BYTES", "UInt64"},
      {"OUT_PKTS", "UInt64"},
      {"INPUT_SNMP", "UInt32"},
      {"OUTPUT_SNMP", "UInt32"},
      {"SRC_AS", "UInt32"},
      {"DST_AS", "UInt32"},
      {"SRC_VLAN", "UInt16"},
      {"L7_PROTO", "UInt16"},
      {"L7_PROTO_NAME", "String"},
      {"FLOW_END_REASON", "UInt8"},
  };
  std::set<std::string> seen;
  for (const auto& c : clickhouse_columns()) {
    EXPECT_TRUE(seen.insert(std::string(c.name)).second) << c.name << " twice";
    if (auto it = required.find(std::string(c.name)); it != required.end()) {
      EXPECT_EQ(c.type, it->second) << c.name;
    }
  }
  for (const auto& [name, type] : required) EXPECT_TRUE(seen.contains(name)) << name;
  EXPECT_EQ(clickhouse_column_names().substr(0, 35), "EXPORTER_ADDRESS, EXPORTER_TLS_IDEN");
  EXPECT_NE(clickhouse_column_definitions().find("IPV6_SRC_ADDR FixedString(16), "),
            std::string::npos);
}

TEST(ClickHouseRowTest, TsvEscapesWhatTabSeparatedNeeds) {
  EXPECT_EQ(escaped("plain text"), "plain text");
  EXPECT_EQ(escaped("a\tb\\c\nd\re"), "a\\tb\\\\c\\nd\\re");
  EXPECT_EQ(escaped(std::string_view("\0\b\f", 3)), "\\0\\b\\f");
  // Other control bytes as \xHH: a bare "\1" would be read back as the character '1'.
  EXPECT_EQ(escaped("\x01\x1f\x7f"), "\\x01\\x1f\\x7f");
  // Bytes above 0x7f (UTF-8 or not) are kept; quotes need nothing in TSV.
  EXPECT_EQ(escaped("caf\xc3\xa9 \xff'\""), "caf\xc3\xa9 \xff'\"");
}

TEST(ClickHouseRowTest, Ipv4FlowFillsEveryColumnFromItsElement) {
  // IANA ids: 8/12 addresses, 7/11 ports, 4 protocol, 5 ToS, 6 TCP flags, 1/2 delta
  // counters, 23/24 post counters (nProbe OUT_BYTES/OUT_PKTS), 10/14 interfaces, 16/17
  // AS, 58 VLAN, 136 end reason, 152/153 epoch ms, 60 ip version; ntop 118/119.
  const auto t = make_template(256, {{0, 8, 4},       {0, 12, 4},
                                     {0, 7, 2},       {0, 11, 2},
                                     {0, 4, 1},       {0, 5, 1},
                                     {0, 6, 2},       {0, 1, 8},
                                     {0, 2, 4},       {0, 23, 8},
                                     {0, 24, 4},      {0, 10, 4},
                                     {0, 14, 2},      {0, 16, 4},
                                     {0, 17, 4},      {0, 58, 2},
                                     {0, 136, 1},     {0, 152, 8},
                                     {0, 153, 8},     {0, 60, 1},
                                     {35632, 118, 2}, {35632, 119, ipfix::kVariableLength}});
  ipfix::RecordBatch b;
  b.exporter.address = *IpAddress::parse("192.0.2.1");
  b.exporter.tls_identity = "CN=router\t1";
  add_record(b, t,
             {Value{*IpAddress::parse("10.1.2.3")},
              Value{*IpAddress::parse("198.51.100.7")},
              u(51000),
              u(443),
              u(6),
              u(0x28),
              u(0x11b),
              u(123456789012),
              u(90),
              u(5000),
              u(7),
              u(3),
              u(4),
              u(64512),
              u(15169),
              u(100),
              u(3),
              Value{ipfix::DateTimeMilliseconds(std::chrono::milliseconds(1700000000123))},
              Value{ipfix::DateTimeMilliseconds(std::chrono::milliseconds(1700000004999))},
              u(4),
              u(91),
              Value{std::string("TLS.Google")}});
  ASSERT_TRUE(is_flow_record(b[0]));
  const auto c = columns_of(clickhouse_row(b[0]), clickhouse_exporter_columns(b.exporter));
  EXPECT_EQ(c.at("EXPORTER_ADDRESS"), "192.0.2.1");
  EXPECT_EQ(c.at("EXPORTER_TLS_IDENTITY"), "CN=router\\t1");
  EXPECT_EQ(c.at("FIRST_SWITCHED"), "1700000000");
  EXPECT_EQ(c.at("LAST_SWITCHED"), "1700000004");
  EXPECT_EQ(c.at("FLOW_START_MILLISECONDS"), "1700000000123");
  EXPECT_EQ(c.at("FLOW_END_MILLISECONDS"), "1700000004999");
  EXPECT_EQ(c.at("IP_PROTOCOL_VERSION"), "4");
  EXPECT_EQ(c.at("IPV4_SRC_ADDR"), std::to_string((10u << 24) | (1u << 16) | (2u << 8) | 3u));
  EXPECT_EQ(c.at("IPV4_DST_ADDR"), std::to_string((198u << 24) | (51u << 16) | (100u << 8) | 7u));
  std::string zeros;
  for (int i = 0; i < 16; ++i) zeros += "\\0";
  EXPECT_EQ(c.at("IPV6_SRC_ADDR"), zeros);  // FixedString(16) of NULs for an IPv4 flow
  EXPECT_EQ(c.at("L4_SRC_PORT"), "51000");
  EXPECT_EQ(c.at("L4_DST_PORT"), "443");
  EXPECT_EQ(c.at("PROTOCOL"), "6");
  EXPECT_EQ(c.at("SRC_TOS"), "40");
  EXPECT_EQ(c.at("TCP_FLAGS"), "27");  // 0x11b: the low 8 bits (RFC 7125 adds NS above)
  EXPECT_EQ(c.at("IN_BYTES"), "123456789012");
  EXPECT_EQ(c.at("IN_PKTS"), "90");
  EXPECT_EQ(c.at("OUT_BYTES"), "5000");
  EXPECT_EQ(c.at("OUT_PKTS"), "7");
  EXPECT_EQ(c.at("INPUT_SNMP"), "3");
  EXPECT_EQ(c.at("OUTPUT_SNMP"), "4");
  EXPECT_EQ(c.at("SRC_AS"), "64512");
  EXPECT_EQ(c.at("DST_AS"), "15169");
  EXPECT_EQ(c.at("SRC_VLAN"), "100");
  EXPECT_EQ(c.at("L7_PROTO"), "91");
  EXPECT_EQ(c.at("L7_PROTO_NAME"), "TLS.Google");
  EXPECT_EQ(c.at("FLOW_END_REASON"), "3");
  EXPECT_EQ(c.at("ICMP_TYPE"), "0");
}

TEST(ClickHouseRowTest, Ipv6AddressesAreRawNetworkOrderBytes) {
  const auto t = make_template(257, {{0, 27, 16}, {0, 28, 16}, {0, 4, 1}, {0, 139, 2}});
  ipfix::RecordBatch b;
  MessageMeta meta;
  meta.export_time = 1700000100;
  add_record(b, t,
             {Value{*IpAddress::parse("2001:db8::1")}, Value{*IpAddress::parse("fe80::a:9")}, u(58),
              u(0x8000)},
             meta);
  const ClickHouseRow r = clickhouse_row(b[0]);
  const std::array<std::uint8_t, 16> src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                            0,    0,    0,    0,    0, 0, 0, 1};
  EXPECT_EQ(r.ipv6_src, src);
  EXPECT_EQ(r.ipv6_dst[0], 0xfe);
  EXPECT_EQ(r.ipv6_dst[15], 0x09);
  const auto c = columns_of(r);
  EXPECT_EQ(c.at("IPV6_SRC_ADDR"), " \\x01\\r\xb8\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\x01");
  EXPECT_EQ(c.at("IP_PROTOCOL_VERSION"), "6");  // no ipVersion: from the addresses
  EXPECT_EQ(c.at("IPV4_SRC_ADDR"), "0");
  EXPECT_EQ(c.at("ICMP_TYPE"), "32768");  // icmpTypeCodeIPv6: type 128 (echo request) · 256
  EXPECT_EQ(c.at("EXPORTER_ADDRESS"), "");
  // No time element at all: the message's export time, not 1970.
  EXPECT_EQ(c.at("FLOW_START_MILLISECONDS"), "1700000100000");
  EXPECT_EQ(c.at("LAST_SWITCHED"), "1700000100");
}

TEST(ClickHouseRowTest, FallbackElementsFillTheSameColumns) {
  // octetTotalCount 85 / packetTotalCount 86 for IN_, RFC 5103 reverseOctetDeltaCount /
  // reversePacketDeltaCount (29305/1, 29305/2) for OUT_, flowStartSeconds 150 and
  // flowEndSeconds 151, udp ports 180/181, icmpTypeIPv4 176 / icmpCodeIPv4 177,
  // dot1qVlanId 243.
  const auto t = make_template(258, {{0, 85, 8},
                                     {0, 86, 8},
                                     {29305, 1, 8},
                                     {29305, 2, 8},
                                     {0, 150, 4},
                                     {0, 151, 4},
                                     {0, 180, 2},
                                     {0, 181, 2},
                                     {0, 176, 1},
                                     {0, 177, 1},
                                     {0, 243, 2}});
  ipfix::RecordBatch b;
  add_record(b, t,
             {u(1000), u(10), u(2000), u(20),
              Value{ipfix::DateTimeSeconds(std::chrono::seconds(1600000000))},
              Value{ipfix::DateTimeSeconds(std::chrono::seconds(1600000060))}, u(5353), u(53), u(3),
              u(1), u(42)});
  const auto c = columns_of(clickhouse_row(b[0]));
  EXPECT_EQ(c.at("IN_BYTES"), "1000");
  EXPECT_EQ(c.at("IN_PKTS"), "10");
  EXPECT_EQ(c.at("OUT_BYTES"), "2000");
  EXPECT_EQ(c.at("OUT_PKTS"), "20");
  EXPECT_EQ(c.at("FLOW_START_MILLISECONDS"), "1600000000000");
  EXPECT_EQ(c.at("FLOW_END_MILLISECONDS"), "1600000060000");
  EXPECT_EQ(c.at("L4_SRC_PORT"), "5353");
  EXPECT_EQ(c.at("L4_DST_PORT"), "53");
  EXPECT_EQ(c.at("ICMP_TYPE"), std::to_string(3 * 256 + 1));
  EXPECT_EQ(c.at("SRC_VLAN"), "42");
  EXPECT_EQ(c.at("IP_PROTOCOL_VERSION"), "0");  // neither ipVersion nor addresses
}

TEST(ClickHouseRowTest, PreferredElementWinsWhicheverComesFirst) {
  // octetTotalCount before octetDeltaCount in the template: the delta count still wins.
  const auto t = make_template(259, {{0, 85, 8}, {0, 1, 8}, {29305, 1, 8}, {0, 23, 8}});
  ipfix::RecordBatch b;
  add_record(b, t, {u(999), u(100), u(888), u(200)});
  const ClickHouseRow r = clickhouse_row(b[0]);
  EXPECT_EQ(r.in_bytes, 100u);
  EXPECT_EQ(r.out_bytes, 200u);
}

TEST(ClickHouseRowTest, NtpAndDeltaAndDurationTimes) {
  // flowStartMicroseconds 154 (NTP, RFC 7011 §6.1.9) + flowDurationMilliseconds 161.
  const auto t1 = make_template(260, {{0, 154, 8}, {0, 161, 4}});
  // flowStartDeltaMicroseconds 158 / flowEndDeltaMicroseconds 159: µs before export time.
  const auto t2 = make_template(261, {{0, 158, 4}, {0, 159, 4}});
  // flowEndNanoseconds 157 (NTP, §6.1.10) alone: the start takes the end.
  const auto t3 = make_template(262, {{0, 157, 8}});
  ipfix::RecordBatch b;
  MessageMeta meta;
  meta.export_time = 1700000000;
  add_record(
      b, t1,
      {Value{ipfix::DateTimeMicroseconds(std::chrono::microseconds(1650000000250000))}, u(1500)},
      meta);
  add_record(b, t2, {u(3000000), u(1000)}, meta);
  add_record(b, t3,
             {Value{ipfix::DateTimeNanoseconds(std::chrono::nanoseconds(1650000001999000000))}},
             meta);
  const ClickHouseRow r1 = clickhouse_row(b[0]);
  EXPECT_EQ(r1.flow_start_ms, 1650000000250u);
  EXPECT_EQ(r1.flow_end_ms, 1650000001750u);
  const ClickHouseRow r2 = clickhouse_row(b[1]);
  EXPECT_EQ(r2.flow_start_ms, 1699999997000u);
  EXPECT_EQ(r2.flow_end_ms, 1699999999999u);
  const ClickHouseRow r3 = clickhouse_row(b[2]);
  EXPECT_EQ(r3.flow_end_ms, 1650000001999u);
  EXPECT_EQ(r3.flow_start_ms, 1650000001999u);
}

TEST(ClickHouseRowTest, NetflowUptimesAfterUptimeConverter) {
  // v9: FIRST_SWITCHED/LAST_SWITCHED (22/21) count from the header's sysUpTime; the sink
  // runs UptimeConverter first, so the row sees flowStart/EndMilliseconds.
  const auto t = make_template(263, {{0, 22, 4}, {0, 21, 4}, {0, 1, 4}});
  ipfix::RecordBatch in;
  MessageMeta meta;
  meta.protocol = ipfix::Protocol::netflow_v9;
  meta.export_time = 1700000000;
  meta.sys_uptime_ms = 100000;
  add_record(in, t, {u(40000), u(99500), u(1234)}, meta);
  UptimeConverter conv;
  const ipfix::RecordBatch& out = conv.convert(in);
  ASSERT_EQ(out.size(), 1u);
  const ClickHouseRow r = clickhouse_row(out[0]);
  EXPECT_EQ(r.flow_start_ms, 1700000000000u - 60000);
  EXPECT_EQ(r.flow_end_ms, 1700000000000u - 500);
  EXPECT_EQ(r.in_bytes, 1234u);
}

TEST(ClickHouseRowTest, WideValuesSaturateAndOptionsRecordsAreNotFlows) {
  const auto t = make_template(264, {{0, 10, 8}, {0, 7, 4}, {0, 4, 2}});
  ipfix::RecordBatch b;
  add_record(b, t, {u(std::uint64_t{1} << 40), u(70000), u(300)});
  const ClickHouseRow r = clickhouse_row(b[0]);
  EXPECT_EQ(r.input_snmp, 4294967295u);
  EXPECT_EQ(r.src_port, 65535u);
  EXPECT_EQ(r.protocol, 255u);

  // An options record (scope: observationDomainId 149) with systemInitTimeMilliseconds.
  auto opt = ipfix::Template::make(265, {{0, 149, 4}, {0, 160, 8}}, 1);
  ASSERT_TRUE(opt);
  add_record(b, *opt,
             {u(1), Value{ipfix::DateTimeMilliseconds(std::chrono::milliseconds(1700000000000))}});
  EXPECT_TRUE(is_flow_record(b[0]));
  EXPECT_FALSE(is_flow_record(b[1]));
}

}  // namespace
}  // namespace flowsec::sinks
