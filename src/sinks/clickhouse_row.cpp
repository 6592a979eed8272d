#include "sinks/clickhouse_row.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <iterator>
#include <limits>

#include "ipfix/ie_registry.hpp"
#include "ipfix/value.hpp"

namespace flowsec::sinks {

namespace {

void put_uint(std::uint64_t v, std::string& out) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void put_bytes(Bytes b, std::string& out) {
  append_tsv_escaped(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), out);
}

// DateTime is a UInt32 of seconds since 1970.
std::uint64_t date_time(std::uint64_t ms) {
  return std::min<std::uint64_t>(ms / 1000, std::numeric_limits<std::uint32_t>::max());
}

using Put = void (*)(const ClickHouseRow&, const ClickHouseExporterColumns&, std::string&);
struct ColumnDef {
  ClickHouseColumn column;
  Put put;
};

// The one list of columns: name, type and how the value is written, in table order.
constexpr ColumnDef kDefs[] = {
    {{"EXPORTER_ADDRESS", "String"},
     [](const ClickHouseRow&, const ClickHouseExporterColumns& e, std::string& o) {
       append_tsv_escaped(e.address, o);
     }},
    {{"EXPORTER_TLS_IDENTITY", "String"},
     [](const ClickHouseRow&, const ClickHouseExporterColumns& e, std::string& o) {
       append_tsv_escaped(e.tls_identity, o);
     }},
    {{"FIRST_SWITCHED", "DateTime"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(date_time(r.flow_start_ms), o);
     }},
    {{"LAST_SWITCHED", "DateTime"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(date_time(r.flow_end_ms), o);
     }},
    {{"FLOW_START_MILLISECONDS", "UInt64"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.flow_start_ms, o);
     }},
    {{"FLOW_END_MILLISECONDS", "UInt64"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.flow_end_ms, o);
     }},
    {{"IP_PROTOCOL_VERSION", "UInt8"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.ip_version, o);
     }},
    {{"IPV4_SRC_ADDR", "UInt32"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.ipv4_src, o);
     }},
    {{"IPV4_DST_ADDR", "UInt32"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.ipv4_dst, o);
     }},
    {{"IPV6_SRC_ADDR", "FixedString(16)"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_bytes(std::as_bytes(std::span(r.ipv6_src)), o);
     }},
    {{"IPV6_DST_ADDR", "FixedString(16)"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_bytes(std::as_bytes(std::span(r.ipv6_dst)), o);
     }},
    {{"L4_SRC_PORT", "UInt16"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.src_port, o);
     }},
    {{"L4_DST_PORT", "UInt16"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.dst_port, o);
     }},
    {{"ICMP_TYPE", "UInt16"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.icmp_type, o);
     }},
    {{"PROTOCOL", "UInt8"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.protocol, o);
     }},
    {{"SRC_TOS", "UInt8"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.src_tos, o);
     }},
    {{"TCP_FLAGS", "UInt8"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.tcp_flags, o);
     }},
    {{"IN_BYTES", "UInt64"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.in_bytes, o);
     }},
    {{"IN_PKTS", "UInt64"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.in_pkts, o);
     }},
    {{"OUT_BYTES", "UInt64"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.out_bytes, o);
     }},
    {{"OUT_PKTS", "UInt64"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.out_pkts, o);
     }},
    {{"INPUT_SNMP", "UInt32"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.input_snmp, o);
     }},
    {{"OUTPUT_SNMP", "UInt32"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.output_snmp, o);
     }},
    {{"SRC_AS", "UInt32"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.src_as, o);
     }},
    {{"DST_AS", "UInt32"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.dst_as, o);
     }},
    {{"SRC_VLAN", "UInt16"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.src_vlan, o);
     }},
    {{"L7_PROTO", "UInt16"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.l7_proto, o);
     }},
    {{"L7_PROTO_NAME", "String"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_bytes(r.l7_proto_name, o);
     }},
    {{"FLOW_END_REASON", "UInt8"},
     [](const ClickHouseRow& r, const ClickHouseExporterColumns&, std::string& o) {
       put_uint(r.end_reason, o);
     }},
};

constexpr auto kColumns = [] {
  std::array<ClickHouseColumn, std::size(kDefs)> a{};
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = kDefs[i].column;
  return a;
}();

// The first element present in order of preference: offer(rank, v) keeps the value of
// the lowest rank, and of the first field among equal ranks.
struct Pick {
  std::uint64_t value = 0;
  std::uint8_t rank = 255;
  void offer(std::uint8_t r, std::uint64_t v) {
    if (r < rank) {
      rank = r;
      value = v;
    }
  }
  [[nodiscard]] bool has() const { return rank != 255; }
};

template <class T>
T saturate(std::uint64_t v) {
  return static_cast<T>(std::min<std::uint64_t>(v, std::numeric_limits<T>::max()));
}

std::uint64_t non_negative(std::int64_t v) {
  return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}

}  // namespace

std::span<const ClickHouseColumn> clickhouse_columns() {
  return kColumns;
}

std::string clickhouse_column_definitions() {
  std::string s;
  for (const auto& c : kColumns) {
    if (!s.empty()) s += ", ";
    s.append(c.name).append(" ").append(c.type);
  }
  return s;
}

std::string clickhouse_column_names() {
  std::string s;
  for (const auto& c : kColumns) {
    if (!s.empty()) s += ", ";
    s.append(c.name);
  }
  return s;
}

ClickHouseExporterColumns clickhouse_exporter_columns(const ipfix::Exporter& e) {
  ClickHouseExporterColumns c;
  if (!e.address.is_unspecified()) c.address = e.address.to_string();
  c.tls_identity = e.tls_identity;
  return c;
}

bool is_flow_record(const ipfix::RecordView& rec) {
  return !rec.record_template().is_options();
}

ClickHouseRow clickhouse_row(const ipfix::RecordView& rec) {
  ClickHouseRow r;
  Pick start, end, dur_ms, version, sport, dport, icmp, icmp_type, icmp_code, in_bytes, in_pkts,
      out_bytes, out_pkts, vlan;
  bool v4_src = false, v4_dst = false, v6_src = false, v6_dst = false;
  const std::uint64_t export_ms = std::uint64_t{rec.message().export_time} * 1000;

  rec.for_each_field([&](const ipfix::FieldValue& fv) {
    const ipfix::FieldSpec& f = *fv.spec;
    const Bytes v = fv.value;
    if (f.enterprise == ipfix::kNtopPen) {
      if (f.id == 118 && v.size() <= 8) r.l7_proto = saturate<std::uint16_t>(load_be_var(v));
      if (f.id == 119 && r.l7_proto_name.empty()) {
        // Strings: trailing NUL padding of a fixed-length field is not part of the value.
        std::size_t n = v.size();
        while (n > 0 && v[n - 1] == std::byte{0}) --n;
        r.l7_proto_name = v.first(n);
      }
      return;
    }
    if (f.enterprise == ipfix::kReversePen) {  // RFC 5103 §6 reverse counters
      if (v.size() > 8 || v.empty()) return;
      if (f.id == 1) out_bytes.offer(1, load_be_var(v));
      if (f.id == 2) out_pkts.offer(1, load_be_var(v));
      return;
    }
    if (f.enterprise != ipfix::kIanaPen) return;
    // Addresses first: their lengths are not 1..8.
    if ((f.id == 27 || f.id == 28) && v.size() == 16) {
      bool& seen = f.id == 27 ? v6_src : v6_dst;
      if (!seen) std::memcpy((f.id == 27 ? r.ipv6_src : r.ipv6_dst).data(), v.data(), 16);
      seen = true;
      return;
    }
    if (v.empty() || v.size() > 8) return;
    const std::uint64_t u = load_be_var(v);
    switch (f.id) {
      case 1:
        in_bytes.offer(0, u);
        break;
      case 85:
        in_bytes.offer(1, u);
        break;
      case 2:
        in_pkts.offer(0, u);
        break;
      case 86:
        in_pkts.offer(1, u);
        break;
      case 23:
        out_bytes.offer(0, u);
        break;
      case 24:
        out_pkts.offer(0, u);
        break;
      case 4:
        r.protocol = saturate<std::uint8_t>(u);
        break;
      case 5:
        r.src_tos = saturate<std::uint8_t>(u);
        break;
      case 6:  // tcpControlBits: 16 bits since RFC 7125; the row keeps the classic 8
        r.tcp_flags = static_cast<std::uint8_t>(u & 0xff);
        break;
      case 7:
        sport.offer(0, u);
        break;
      case 180:
      case 182:
        sport.offer(1, u);
        break;
      case 11:
        dport.offer(0, u);
        break;
      case 181:
      case 183:
        dport.offer(1, u);
        break;
      case 8:
        if (v.size() == 4 && !v4_src) r.ipv4_src = static_cast<std::uint32_t>(u);
        v4_src = true;
        break;
      case 12:
        if (v.size() == 4 && !v4_dst) r.ipv4_dst = static_cast<std::uint32_t>(u);
        v4_dst = true;
        break;
      case 32:
      case 139:
        icmp.offer(0, u);
        break;
      case 176:
      case 178:
        icmp_type.offer(0, u);
        break;
      case 177:
      case 179:
        icmp_code.offer(0, u);
        break;
      case 60:
        version.offer(0, u);
        break;
      case 10:
        r.input_snmp = saturate<std::uint32_t>(u);
        break;
      case 14:
        r.output_snmp = saturate<std::uint32_t>(u);
        break;
      case 16:
        r.src_as = saturate<std::uint32_t>(u);
        break;
      case 17:
        r.dst_as = saturate<std::uint32_t>(u);
        break;
      case 58:
        vlan.offer(0, u);
        break;
      case 243:
        vlan.offer(1, u & 0x0fff);
        break;
      case 136:
        r.end_reason = saturate<std::uint8_t>(u);
        break;
      // Times, RFC 7011 §6.1.7..§6.1.10 and the IANA definitions of 158/159/161/162.
      case 152:
        start.offer(0, u);
        break;
      case 153:
        end.offer(0, u);
        break;
      case 150:
        start.offer(1, u * 1000);
        break;
      case 151:
        end.offer(1, u * 1000);
        break;
      case 154:
        if (v.size() == 8) start.offer(2, non_negative(ipfix::wire::ntp_to_unix_us(u)) / 1000);
        break;
      case 155:
        if (v.size() == 8) end.offer(2, non_negative(ipfix::wire::ntp_to_unix_us(u)) / 1000);
        break;
      case 156:
        if (v.size() == 8) start.offer(3, non_negative(ipfix::wire::ntp_to_unix_ns(u)) / 1000000);
        break;
      case 157:
        if (v.size() == 8) end.offer(3, non_negative(ipfix::wire::ntp_to_unix_ns(u)) / 1000000);
        break;
      case 158:
        start.offer(4, export_ms - std::min(export_ms, u / 1000));
        break;
      case 159:
        end.offer(4, export_ms - std::min(export_ms, u / 1000));
        break;
      case 161:
        dur_ms.offer(0, u);
        break;
      case 162:
        dur_ms.offer(1, u / 1000);
        break;
      default:
        break;
    }
  });

  r.in_bytes = in_bytes.value;
  r.in_pkts = in_pkts.value;
  r.out_bytes = out_bytes.value;
  r.out_pkts = out_pkts.value;
  r.src_port = saturate<std::uint16_t>(sport.value);
  r.dst_port = saturate<std::uint16_t>(dport.value);
  r.src_vlan = saturate<std::uint16_t>(vlan.value);
  if (icmp.has()) {
    r.icmp_type = saturate<std::uint16_t>(icmp.value);
  } else if (icmp_type.has() || icmp_code.has()) {
    r.icmp_type =
        static_cast<std::uint16_t>(((icmp_type.value & 0xff) << 8) | (icmp_code.value & 0xff));
  }
  if (version.has()) {
    r.ip_version = saturate<std::uint8_t>(version.value);
  } else if ((v4_src || v4_dst) != (v6_src || v6_dst)) {
    r.ip_version = (v4_src || v4_dst) ? 4 : 6;
  }
  if (!end.has() && start.has() && dur_ms.has()) end.offer(0, start.value + dur_ms.value);
  if (!start.has() && end.has() && dur_ms.has()) {
    start.offer(0, end.value - std::min(end.value, dur_ms.value));
  }
  if (!start.has() && !end.has()) {
    start.offer(0, export_ms);
    end.offer(0, export_ms);
  }
  r.flow_start_ms = start.has() ? start.value : end.value;
  r.flow_end_ms = end.has() ? end.value : start.value;
  return r;
}

void append_tsv(const ClickHouseRow& row, const ClickHouseExporterColumns& exporter,
                std::string& out) {
  bool first = true;
  for (const ColumnDef& d : kDefs) {
    if (!first) out += '\t';
    first = false;
    d.put(row, exporter, out);
  }
  out += '\n';
}

void append_tsv_escaped(std::string_view bytes, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\\':
        out += "\\\\";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\0':
        out += "\\0";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0x0f];
    } else {
      out += ch;
    }
  }
}

}  // namespace flowsec::sinks
