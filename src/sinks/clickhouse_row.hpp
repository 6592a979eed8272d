#pragma once
// The ClickHouse output's table layout and its rows (SPEC §6 "--clickhouse"): which
// column takes which IPFIX element, and how a row is written in ClickHouse's
// TabSeparated format. Pure (no I/O, no state): the sink (clickhouse_sink.hpp) and the
// unit tests use it alike.
//
// Column types are those ClickHouse understands since 18.16 (Debian 12's): no IPv4/IPv6
// types. IPv4 addresses are UInt32 (IPv4NumToString to read), IPv6 addresses
// FixedString(16) in network order (IPv6NumToString), times DateTime (seconds) plus the
// UInt64 epoch milliseconds. A column the record has no element for holds 0 / empty.
//
// Which element fills a column (first one present wins; ids are IANA's unless noted):
//  - FLOW_START_MILLISECONDS: flowStartMilliseconds 152, flowStartSeconds 150,
//    flowStartMicroseconds 154, flowStartNanoseconds 156 (NTP, RFC 7011 §6.1.9/10),
//    flowStartDeltaMicroseconds 158 (µs before the message's export time, IANA).
//    FLOW_END_MILLISECONDS likewise with 153, 151, 155, 157, 159, else start +
//    flowDurationMilliseconds 161 / flowDurationMicroseconds 162. A missing start takes
//    the end, a missing end the start; with neither, the message's export time (so a
//    row never lands in a 1970 partition). flowStart/EndSysUpTime (22/21) are NOT read
//    here: the sink first runs UptimeConverter (uptime_converter.hpp), which turns them
//    into 152/153 where a reference exists. FIRST_SWITCHED/LAST_SWITCHED are those ms
//    / 1000 (DateTime is 32-bit: clamped to 0 .. 2^32-1).
//  - IPV4_SRC/DST_ADDR 8/12; IPV6_SRC/DST_ADDR 27/28; IP_PROTOCOL_VERSION ipVersion 60,
//    else 4 or 6 from which addresses the record has.
//  - L4_SRC/DST_PORT 7/11, else udp 180/181, tcp 182/183. ICMP_TYPE 32 or 139
//    (type·256 + code, as nProbe), else icmpTypeIPv4/6 176/178 · 256 + code 177/179.
//  - PROTOCOL 4, SRC_TOS 5, TCP_FLAGS 6 (low 8 bits), FLOW_END_REASON 136.
//  - IN_BYTES/IN_PKTS octetDeltaCount 1 / packetDeltaCount 2, else octetTotalCount 85 /
//    packetTotalCount 86. OUT_BYTES/OUT_PKTS postOctetDeltaCount 23 /
//    postPacketDeltaCount 24 (nProbe's OUT_ fields, as exporter/flow_encoder.cpp maps
//    them), else the RFC 5103 reverse counters (29305/1, 29305/2).
//  - INPUT_SNMP 10, OUTPUT_SNMP 14, SRC_AS 16, DST_AS 17, SRC_VLAN vlanId 58 else
//    dot1qVlanId 243 (12 bits).
//  - L7_PROTO / L7_PROTO_NAME: ntop's 35632/118 and 35632/119.
//  - EXPORTER_ADDRESS: the batch's exporter (text, empty when unknown);
//    EXPORTER_TLS_IDENTITY: its authenticated certificate subject (empty over UDP/TCP).
// Unsigned values wider than their column saturate (a 64-bit interface index becomes
// 4294967295) rather than wrap.
//
// Options records (template with scope fields, RFC 7011 §3.4.2.2) describe the exporter,
// not flows: is_flow_record() says so and the sink does not insert them.
//
// TabSeparated (ClickHouse "Formats: TabSeparated"): one line per row, columns in
// clickhouse_columns() order, numbers in decimal, DateTime as a Unix timestamp (so the
// server's time zone plays no part). String/FixedString bytes: \\ \t \n \r \0 \b \f
// are backslash-escaped, every other byte below 0x20 and 0x7f as \xHH, bytes 0x80..0xff
// as they are (a String is bytes; ClickHouse keeps them). ClickHouse reads an unknown
// escape "\1" as the character "1", so raw bytes must never be written as "\<digit>".
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "ipfix/record.hpp"

namespace flowsec::sinks {

struct ClickHouseColumn {
  std::string_view name;  // nProbe field name
  std::string_view type;  // ClickHouse type
};
// The table's columns, in order (also the order of append_tsv()).
[[nodiscard]] std::span<const ClickHouseColumn> clickhouse_columns();
// "NAME Type, NAME Type, ..." for CREATE TABLE, and "NAME, NAME, ..." for INSERT.
[[nodiscard]] std::string clickhouse_column_definitions();
[[nodiscard]] std::string clickhouse_column_names();

// Per-batch columns (the exporter), rendered once per batch.
struct ClickHouseExporterColumns {
  std::string address;       // as IpAddress::to_string(), empty when unspecified
  std::string tls_identity;  // empty unless TLS/DTLS with a client certificate
};
[[nodiscard]] ClickHouseExporterColumns clickhouse_exporter_columns(const ipfix::Exporter& e);

// One row's per-record values. l7_proto_name views into the record's batch.
struct ClickHouseRow {
  std::uint64_t flow_start_ms = 0, flow_end_ms = 0;
  std::uint8_t ip_version = 0;
  std::uint32_t ipv4_src = 0, ipv4_dst = 0;  // host order
  std::array<std::uint8_t, 16> ipv6_src{}, ipv6_dst{};
  std::uint16_t src_port = 0, dst_port = 0, icmp_type = 0;
  std::uint8_t protocol = 0, src_tos = 0, tcp_flags = 0, end_reason = 0;
  std::uint64_t in_bytes = 0, in_pkts = 0, out_bytes = 0, out_pkts = 0;
  std::uint32_t input_snmp = 0, output_snmp = 0, src_as = 0, dst_as = 0;
  std::uint16_t src_vlan = 0, l7_proto = 0;
  Bytes l7_proto_name;
};

[[nodiscard]] bool is_flow_record(const ipfix::RecordView& rec);
// The row for one record (one pass over its fields). Never fails.
[[nodiscard]] ClickHouseRow clickhouse_row(const ipfix::RecordView& rec);
// Appends the row as one TabSeparated line (with its "\n").
void append_tsv(const ClickHouseRow& row, const ClickHouseExporterColumns& exporter,
                std::string& out);
// Appends `bytes` escaped for a TabSeparated String/FixedString field.
void append_tsv_escaped(std::string_view bytes, std::string& out);

}  // namespace flowsec::sinks
