#include "exporter/flow_encoder.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "exporter/field_codec.hpp"
#include "ipfix/ie_registry.hpp"
#include "ipfix/template_string.hpp"
#include "ipfix/value.hpp"

namespace flowsec::exporter {

enum class FlowEncoder::Kind : std::uint8_t {
  unsupported,  // written as zero, reported by unsupported_fields()
  zero,         // zero by design: INPUT_SNMP/OUTPUT_SNMP, SRC_AS/DST_AS, FLOW_SOURCE (packets)
  in_bytes,
  in_pkts,
  out_bytes,
  out_pkts,
  protocol,
  src_tos,
  dst_tos,
  tcp_flags,
  client_tcp_flags,
  server_tcp_flags,
  src_port,
  dst_port,
  src_v4,
  dst_v4,
  src_v6,
  dst_v6,
  first_time,    // any flowStart* element (22, 150, 152, 154)
  last_time,     // any flowEnd* element (21, 151, 153, 155)
  first_uptime,  // first_time as FIRST_SWITCHED (22): sysUpTime ms, a plain number
  last_uptime,   // last_time as LAST_SWITCHED (21)
  duration_ms,
  duration_us,
  icmp_type_code,
  icmp_type,
  icmp_code,
  min_ttl,
  max_ttl,
  client_mac,  // IN_SRC_MAC, OUT_DST_MAC
  server_mac,  // IN_DST_MAC, OUT_SRC_MAC
  vlan,
  ip_version,
  end_reason,
  biflow_direction,
  client_latency_ms,
  server_latency_ms,
  retransmitted_in_pkts,
  retransmitted_out_pkts,
  retransmitted_in_bytes,
  retransmitted_out_bytes,
  ooorder_in_pkts,
  ooorder_out_pkts,
  src_fragments,
  dst_fragments,
  win_max_in,
  win_max_out,
  l7_proto,
  l7_proto_name,
  l7_confidence,
  tunnel_id,
};

namespace {

using Kind = FlowEncoder::Kind;

Kind kind_of(const ipfix::FieldSpec& f) {
  if (f.enterprise == ipfix::kIanaPen) {
    switch (f.id) {
      case 1:
        return Kind::in_bytes;
      case 2:
        return Kind::in_pkts;
      case 4:
        return Kind::protocol;
      case 5:
        return Kind::src_tos;
      case 6:
        return Kind::tcp_flags;
      case 7:
        return Kind::src_port;
      case 8:
        return Kind::src_v4;
      case 10:
      case 14:
      case 16:
      case 17:
        return Kind::zero;
      case 11:
        return Kind::dst_port;
      case 12:
        return Kind::dst_v4;
      case 21:
      case 151:
      case 153:
      case 155:
        return Kind::last_time;
      case 22:
      case 150:
      case 152:
      case 154:
        return Kind::first_time;
      case 23:
        return Kind::out_bytes;
      case 24:
        return Kind::out_pkts;
      case 27:
        return Kind::src_v6;
      case 28:
        return Kind::dst_v6;
      case 32:
      case 139:
        return Kind::icmp_type_code;  // nProbe uses 32 for both families
      case 176:
      case 178:
        return Kind::icmp_type;
      case 177:
      case 179:
        return Kind::icmp_code;
      case 52:
        return Kind::min_ttl;
      case 53:
        return Kind::max_ttl;
      case 55:
        return Kind::dst_tos;
      case 56:
      case 57:
        return Kind::client_mac;  // IN_SRC_MAC, OUT_DST_MAC
      case 80:
      case 81:
        return Kind::server_mac;  // IN_DST_MAC, OUT_SRC_MAC
      case 58:
      case 59:
        return Kind::vlan;
      case 60:
        return Kind::ip_version;
      case 136:
        return Kind::end_reason;
      case 161:
        return Kind::duration_ms;
      case 162:
        return Kind::duration_us;
      case 239:
        return Kind::biflow_direction;
      default:
        return Kind::unsupported;
    }
  }
  if (f.enterprise == ipfix::kReversePen) {  // RFC 5103 biflow counters
    switch (f.id) {
      case 1:
        return Kind::out_bytes;
      case 2:
        return Kind::out_pkts;
      case 6:
        return Kind::server_tcp_flags;
      case 5:
        return Kind::dst_tos;
      default:
        return Kind::unsupported;
    }
  }
  if (f.enterprise == ipfix::kNtopPen) {
    switch (f.id) {
      case 78:
        return Kind::client_tcp_flags;
      case 79:
        return Kind::server_tcp_flags;
      case 80:
        return Kind::src_fragments;
      case 81:
        return Kind::dst_fragments;
      case 106:
        return Kind::tunnel_id;  // UPSTREAM_TUNNEL_ID
      case 109:
        return Kind::retransmitted_in_pkts;
      case 110:
        return Kind::retransmitted_out_pkts;
      case 111:
        return Kind::ooorder_in_pkts;
      case 112:
        return Kind::ooorder_out_pkts;
      case 118:
        return Kind::l7_proto;
      case 119:
        return Kind::l7_proto_name;
      case 123:
        return Kind::client_latency_ms;
      case 124:
        return Kind::server_latency_ms;
      case 127:
        return Kind::retransmitted_in_bytes;
      case 128:
        return Kind::retransmitted_out_bytes;
      case 416:
        return Kind::win_max_in;
      case 420:
        return Kind::win_max_out;
      case 560:
        return Kind::l7_confidence;
      case 579:
        return Kind::zero;  // FLOW_SOURCE: 0 = packets
      default:
        return Kind::unsupported;
    }
  }
  return Kind::unsupported;
}

// The other address family's twin of an IANA address element (nProbe's v4/v6 templates).
std::uint16_t twin(std::uint16_t id, bool to_v6) {
  static constexpr std::pair<std::uint16_t, std::uint16_t> kPairs[] = {
      {8, 27}, {12, 28}, {15, 62}, {9, 29}, {13, 30}};
  for (auto [v4, v6] : kPairs) {
    if (to_v6 && id == v4) return v6;
    if (!to_v6 && id == v6) return v4;
  }
  return id;
}

bool has(const std::vector<ipfix::FieldSpec>& fields, std::uint32_t e, std::uint16_t id) {
  return std::any_of(fields.begin(), fields.end(),
                     [&](const ipfix::FieldSpec& f) { return f.enterprise == e && f.id == id; });
}

// The list with one family's address fields replaced by the other's, where the list has
// only the first family.
std::vector<ipfix::FieldSpec> for_family(const std::vector<ipfix::FieldSpec>& fields, bool v6) {
  const bool has_v4 = has(fields, 0, 8) || has(fields, 0, 12);
  const bool has_v6 = has(fields, 0, 27) || has(fields, 0, 28);
  if (has_v4 == has_v6) return fields;
  if (v6 == has_v6) return fields;
  std::vector<ipfix::FieldSpec> out;
  for (ipfix::FieldSpec f : fields) {
    if (f.enterprise == ipfix::kIanaPen) {
      const std::uint16_t t = twin(f.id, v6);
      if (t != f.id) {
        f.id = t;
        const ipfix::ElementInfo* e = ipfix::find_element(0, t);
        f.length = e != nullptr ? e->default_length : f.length;
      }
    }
    out.push_back(f);
  }
  return out;
}

std::optional<TimeElement> time_of(const ipfix::FieldSpec& f) {
  return time_element(f.enterprise, f.id);
}

// TCP flags are a bit field: cut to the field's width instead of saturated.
constexpr bool is_bit_field(Kind k) {
  return k == Kind::tcp_flags || k == Kind::client_tcp_flags || k == Kind::server_tcp_flags;
}

// The kinds whose value is one unsigned number (FlowEncoder::number_of); the others are
// bytes (addresses, MACs, names), zero, or a time in a unit other than sysUpTime.
constexpr bool is_number(Kind k) {
  switch (k) {
    case Kind::unsupported:
    case Kind::zero:
    case Kind::src_v4:
    case Kind::dst_v4:
    case Kind::src_v6:
    case Kind::dst_v6:
    case Kind::first_time:
    case Kind::last_time:
    case Kind::client_mac:
    case Kind::server_mac:
    case Kind::l7_proto_name:
      return false;
    default:
      return true;
  }
}

}  // namespace

FlowEncoder::Layout FlowEncoder::layout_of(ipfix::TemplatePtr t) {
  Layout l;
  const auto specs = t->fields();
  const bool fixed = !t->has_variable_length();
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const ipfix::FieldSpec& f = specs[i];
    Field k{kind_of(f), ipfix::element_type(f.enterprise, f.id), time_of(f)};
    const bool uptime = k.time && k.time->unit == TimeElement::Unit::sys_uptime_ms;
    if (k.kind == Kind::first_time && uptime) k.kind = Kind::first_uptime;
    if (k.kind == Kind::last_time && uptime) k.kind = Kind::last_uptime;
    if (fixed) {
      k.offset = t->fixed_offset(i);
      k.number = stores_unsigned(f, k.type);
      k.max = max_unsigned(f.length);
      k.direct = k.number && f.length >= 1 && is_number(k.kind);
      k.shift = static_cast<std::uint8_t>(64 - 8 * std::min<std::size_t>(f.length, 8));
      if (is_bit_field(k.kind) && f.length == 1) k.mask = 0xff;
    }
    // A zeroed record already holds these fields' value (a boolean's zero is 2, not 0).
    const bool always_zero =
        (k.kind == Kind::zero || k.kind == Kind::unsupported) && k.type != ipfix::DataType::boolean;
    if (!fixed || !always_zero) l.visit.push_back(static_cast<std::uint16_t>(i));
    l.fields.push_back(k);
  }
  l.tmpl = std::move(t);
  return l;
}

Expected<FlowEncoder, std::string> FlowEncoder::create(FlowEncoderOptions options) {
  FlowEncoder e;
  if (options.fields.empty()) options.fields = ipfix::nprobe_default_template();
  const auto& fields = options.fields;
  auto v4 = ipfix::Template::make(256, for_family(fields, false));
  if (!v4) return unexpected("bad flow template: " + std::string(ipfix::describe(v4.error().code)));
  auto v6_fields = for_family(fields, true);
  ipfix::TemplatePtr v6_template = *v4;
  if (v6_fields != std::vector<ipfix::FieldSpec>((*v4)->fields().begin(), (*v4)->fields().end())) {
    auto v6 = ipfix::Template::make(257, std::move(v6_fields));
    if (!v6)
      return unexpected("bad flow template: " + std::string(ipfix::describe(v6.error().code)));
    v6_template = *v6;
  }
  e.v4_ = layout_of(*v4);
  e.v6_ = layout_of(std::move(v6_template));
  e.split_ = !has(fields, 0, 23) && !has(fields, 0, 24) && !has(fields, ipfix::kReversePen, 1) &&
             !has(fields, ipfix::kReversePen, 2);
  e.options_ = std::move(options);
  return e;
}

std::vector<std::string> FlowEncoder::unsupported_fields() const {
  std::vector<std::string> out;
  for (const auto& f : options_.fields) {
    if (kind_of(f) == Kind::unsupported) out.push_back(ipfix::output_name(f.enterprise, f.id));
  }
  return out;
}

void FlowEncoder::encode(std::span<const flow::FlowRecord> flows, ipfix::RecordBatch& out) {
  if (flows.empty()) return;
  begin(out, flows.size());
  for (const auto& f : flows) add(f);
  finish();
}

// A message's metadata carries the uptime its header would have at export_time, so outputs
// that render FIRST/LAST_SWITCHED (22/21) as absolute times get them right.
ipfix::MessageMeta FlowEncoder::message_meta(std::int64_t last_ns, std::int64_t origin_ms) const {
  ipfix::MessageMeta meta;
  meta.protocol = ipfix::Protocol::ipfix;
  meta.observation_domain = options_.observation_domain;
  meta.export_time = static_cast<std::uint32_t>(std::max<std::int64_t>(last_ns, 0) / 1000000000);
  meta.sys_uptime_ms =
      static_cast<std::uint32_t>(std::int64_t{meta.export_time} * 1000 - origin_ms);
  meta.ipfix_uptime = true;  // 0 too: a flow exported within the first second
  return meta;
}

void FlowEncoder::begin(ipfix::RecordBatch& out, std::size_t expected_flows) {
  if (open_.out != nullptr) finish();
  open_ = Open{};
  open_.out = &out;
  open_.mark = out.mark();
  // Room for every record at once (the IPv6 layout is the longer): a growing batch was
  // re-copied and re-faulted at each doubling.
  const std::size_t records = expected_flows * (split_ ? 2 : 1);
  // (+ 8: the slack encode_one() zeroes after a record.)
  const std::size_t bytes =
      8 + records * std::max(v4_.tmpl->min_record_length(), v6_.tmpl->min_record_length());
  out.reserve(open_.mark.data + bytes, open_.mark.refs + records);
  open_.presized = !v4_.tmpl->has_variable_length() && !v6_.tmpl->has_variable_length();
  open_.end = open_.mark.data;
  if (open_.presized) out.storage().resize(open_.mark.data + bytes);
  // The flows' message; finish() sets its export time from the latest flow.
  open_.shared = out.add_message(message_meta(0, options_.start_time_ms));
}

void FlowEncoder::add(const flow::FlowRecord& f) {
  ipfix::RecordBatch& out = *open_.out;
  ++open_.flows;
  // 22/21 count 32-bit milliseconds from start_time_ms. A flow outside that window — a
  // capture directory whose files go back in time, or spanning more than 49.7 days —
  // gets a message of its own whose uptime counts from the flow's own start.
  const std::int64_t first_ms = f.first_ns / 1000000;
  const std::int64_t last_ms = f.last_ns / 1000000;
  const bool fits = first_ms >= options_.start_time_ms &&
                    last_ms - options_.start_time_ms <= std::int64_t{0xffffffff};
  const std::int64_t origin = fits ? options_.start_time_ms : first_ms;
  open_.last_ns = std::max(open_.last_ns, f.last_ns);
  const std::uint32_t message =
      fits ? open_.shared : out.add_message(message_meta(f.last_ns, origin));
  const bool v6 = f.key.ip_version == 6;
  const Layout& layout = v6 ? v6_ : v4_;
  // A family's template enters the batch with its first flow (not before: the batch
  // must not announce a template it has no record of).
  int& index = v6 ? open_.v6_index : open_.v4_index;
  if (index < 0) index = out.use_template(layout.tmpl);
  const auto ti = static_cast<std::uint16_t>(index);
  encode_one(f, false, layout, ti, message, origin, out);
  if (split_ && f.out.packets > 0) encode_one(f, true, layout, ti, message, origin, out);
}

void FlowEncoder::finish() {
  if (open_.out == nullptr) return;
  ipfix::RecordBatch& out = *open_.out;
  if (open_.presized) out.storage().resize(open_.end);  // the records, not the room left
  if (open_.flows == 0) {
    out.rollback(open_.mark);  // no flow: no message either
  } else {
    out.messages_from(open_.shared)[0] = message_meta(open_.last_ns, options_.start_time_ms);
  }
  open_ = Open{};
}

namespace {

// Where encode_fields() puts a record's fields. Both write each field in exactly its
// template length (field_codec.hpp); they differ in where.
// AppendWriter: one field after the other at the end of a vector, for templates with a
// variable-length field (whose offsets depend on the values).
struct AppendWriter {
  std::vector<std::byte>& out;
  void zero(std::size_t, const ipfix::FieldSpec& f, ipfix::DataType t) {
    write_zero_field(f, t, out);
  }
  void num(std::size_t, const ipfix::FieldSpec& f, ipfix::DataType t, std::uint64_t v) {
    write_unsigned_field(f, t, v, out);
  }
  void raw(std::size_t, const ipfix::FieldSpec& f, Bytes v) { write_raw_field(f, v, out); }
  void time(std::size_t, const ipfix::FieldSpec& f, ipfix::DataType t, TimeElement te,
            std::int64_t abs_ms, std::int64_t origin_ms) {
    write_time_field(f, t, te, abs_ms, origin_ms, out);
  }
  void convert(std::size_t, const ipfix::FieldSpec& f, ipfix::DataType t, Bytes v) {
    convert_field(f, t, v, out);
  }
};

// InPlaceWriter: each field at its fixed offset in a record already sized and zeroed in
// the batch's storage — the probe's usual case (nProbe's templates have fixed lengths),
// with no copy of the record and no growth check per field.
// The per-field decisions (offset, whether a number fits, its bound) were taken once per
// template (FlowEncoder::Field), so a number is one inline store: the generic calls per
// field were a quarter of the probe's export cost.
template <class Field>
struct InPlaceWriter {
  std::byte* record;
  const std::vector<Field>& kinds;
  std::vector<std::byte>& scratch;  // convert(): the rare field built the general way
  std::byte* at(std::size_t i) const { return record + kinds[i].offset; }
  void zero(std::size_t i, const ipfix::FieldSpec& f, ipfix::DataType type) {
    // The record is zeroed already: only a boolean's zero value (false = 2) needs writing.
    if (type == ipfix::DataType::boolean) put_zero_field(f, type, at(i));
  }
  void num(std::size_t i, const ipfix::FieldSpec& f, ipfix::DataType type, std::uint64_t v) {
    const Field& k = kinds[i];
    if (!k.number) return zero(i, f, type);
    store_uint_n(at(i), std::min(v, k.max), f.length);
  }
  void raw(std::size_t i, const ipfix::FieldSpec& f, Bytes v) {
    // Truncated or NUL-padded, as write_raw_field does (the padding is already zero).
    std::memcpy(at(i), v.data(), std::min<std::size_t>(v.size(), f.length));
  }
  void time(std::size_t i, const ipfix::FieldSpec& f, ipfix::DataType type, TimeElement te,
            std::int64_t abs_ms, std::int64_t origin_ms) {
    put_time_field(f, type, te, abs_ms, origin_ms, at(i));
  }
  void convert(std::size_t i, const ipfix::FieldSpec& f, ipfix::DataType type, Bytes v) {
    scratch.clear();
    convert_field(f, type, v, scratch);
    std::memcpy(at(i), scratch.data(), std::min<std::size_t>(scratch.size(), f.length));
  }
};

}  // namespace

// The flow as one record sees it. The reverse record (a template without OUT_ fields, see
// the header) is the flow seen from the server: its key, counters, MACs and latencies
// swapped, read in place.
struct FlowEncoder::Side {
  const flow::FlowRecord& f;
  bool reverse;
  const flow::DirectionCounters& in;
  const flow::DirectionCounters& out;
  std::int64_t first_ms;
  std::int64_t last_ms;
  std::int64_t origin_ms;
  bool split;  // two records per flow: each carries its own direction's flags

  Side(const flow::FlowRecord& flow, bool rev, std::int64_t origin, bool two_records)
      : f(flow),
        reverse(rev),
        in(rev ? flow.out : flow.in),
        out(rev ? flow.in : flow.out),
        first_ms(flow.first_ns / 1000000),
        last_ms(flow.last_ns / 1000000),
        origin_ms(origin),
        split(two_records) {}
};

// Inlined into encode_one()'s loop: a call per field was a third of the encoder's cost.
[[gnu::always_inline]] inline bool FlowEncoder::number_of(Kind kind, const Side& s,
                                                          std::uint64_t& v) {
  const flow::FlowRecord& f = s.f;
  switch (kind) {
    case Kind::in_bytes:
      v = s.in.bytes;
      return true;
    case Kind::in_pkts:
      v = s.in.packets;
      return true;
    case Kind::out_bytes:
      v = s.out.bytes;
      return true;
    case Kind::out_pkts:
      v = s.out.packets;
      return true;
    case Kind::protocol:
      v = f.key.protocol;
      return true;
    case Kind::src_tos:
      v = s.in.tos;
      return true;
    case Kind::dst_tos:
      v = s.out.tos;
      return true;
    case Kind::tcp_flags:
      v = s.split ? s.in.tcp_flags : s.in.tcp_flags | s.out.tcp_flags;
      return true;
    case Kind::client_tcp_flags:
      v = s.in.tcp_flags;
      return true;
    case Kind::server_tcp_flags:
      v = s.out.tcp_flags;
      return true;
    case Kind::src_port:
      v = s.reverse ? f.key.dst_port : f.key.src_port;
      return true;
    case Kind::dst_port:
      v = s.reverse ? f.key.src_port : f.key.dst_port;
      return true;
    case Kind::first_uptime:
      v = sys_uptime_value(s.first_ms, s.origin_ms);
      return true;
    case Kind::last_uptime:
      v = sys_uptime_value(s.last_ms, s.origin_ms);
      return true;
    case Kind::duration_ms:
      v = static_cast<std::uint64_t>(std::max<std::int64_t>(s.last_ms - s.first_ms, 0));
      return true;
    case Kind::duration_us:
      v = static_cast<std::uint64_t>(std::max<std::int64_t>((f.last_ns - f.first_ns) / 1000, 0));
      return true;
    case Kind::icmp_type_code:
      v = std::uint64_t{f.icmp_type} * 256 + f.icmp_code;
      return true;
    case Kind::icmp_type:
      v = f.icmp_type;
      return true;
    case Kind::icmp_code:
      v = f.icmp_code;
      return true;
    case Kind::min_ttl:
      v = f.min_ttl;
      return true;
    case Kind::max_ttl:
      v = f.max_ttl;
      return true;
    case Kind::vlan:
      v = f.key.vlan;
      return true;
    case Kind::ip_version:
      v = f.key.ip_version;
      return true;
    case Kind::end_reason:
      v = static_cast<std::uint8_t>(f.end_reason);
      return true;
    case Kind::biflow_direction:
      v = s.reverse ? 2 : 1;  // RFC 5103 §6.3
      return true;
    case Kind::client_latency_ms:
      v = (s.reverse ? f.server_latency_us : f.client_latency_us) / 1000;
      return true;
    case Kind::server_latency_ms:
      v = (s.reverse ? f.client_latency_us : f.server_latency_us) / 1000;
      return true;
    case Kind::retransmitted_in_pkts:
      v = s.in.retransmitted_packets;
      return true;
    case Kind::retransmitted_out_pkts:
      v = s.out.retransmitted_packets;
      return true;
    case Kind::retransmitted_in_bytes:
      v = s.in.retransmitted_bytes;
      return true;
    case Kind::retransmitted_out_bytes:
      v = s.out.retransmitted_bytes;
      return true;
    case Kind::ooorder_in_pkts:
      v = s.in.out_of_order_packets;
      return true;
    case Kind::ooorder_out_pkts:
      v = s.out.out_of_order_packets;
      return true;
    case Kind::src_fragments:
      v = s.in.fragments;
      return true;
    case Kind::dst_fragments:
      v = s.out.fragments;
      return true;
    case Kind::win_max_in:
      v = s.in.tcp_window_max;
      return true;
    case Kind::win_max_out:
      v = s.out.tcp_window_max;
      return true;
    case Kind::l7_proto:
      v = f.l7_app != 0 ? f.l7_app : f.l7_master;
      return true;
    case Kind::l7_confidence:
      v = f.l7_confidence;
      return true;
    case Kind::tunnel_id:
      v = f.tunnel_id;
      return true;
    default:
      return false;
  }
}

void FlowEncoder::encode_one(const flow::FlowRecord& f, bool reverse, const Layout& l,
                             std::uint16_t template_index, std::uint32_t message_index,
                             std::int64_t origin_ms, ipfix::RecordBatch& out) {
  const Side side(f, reverse, origin_ms, split_);
  if (!l.tmpl->has_variable_length()) {
    std::vector<std::byte>& data = out.storage();
    const std::size_t offset = open_.presized ? open_.end : data.size();
    const std::uint16_t length = l.tmpl->min_record_length();
    // Zeroed (by begin() or the growth here), with 8 bytes of slack for the last direct
    // field's store (Field::direct), which writes only zeros past the record.
    const std::size_t need = offset + length + 8;
    if (data.size() < need) data.resize(open_.presized ? 2 * need : need);
    std::byte* const record = data.data() + offset;
    InPlaceWriter<Field> w{record, l.fields, scratch_};
    for (const std::size_t i : l.visit) {
      const Field& k = l.fields[i];
      std::uint64_t v = 0;
      if (k.direct && number_of(k.kind, side, v)) {
        store_be<std::uint64_t>(record + k.offset, std::min(v & k.mask, k.max) << k.shift);
      } else {
        encode_field(i, side, l, w);
      }
    }
    if (open_.presized) {
      open_.end = offset + length;
    } else {
      data.resize(offset + length);
    }
    out.add(static_cast<std::uint32_t>(offset), length, template_index, message_index);
    return;
  }
  std::vector<std::byte>& r = scratch_;
  r.clear();
  AppendWriter w{r};
  for (const std::size_t i : l.visit) encode_field(i, side, l, w);
  if (r.size() > 0xffff) return;  // cannot happen with registry lengths; never a bad record
  const std::uint32_t offset = out.store(r);
  out.add(offset, static_cast<std::uint16_t>(r.size()), template_index, message_index);
}

template <class Writer>
void FlowEncoder::encode_field(std::size_t i, const Side& s, const Layout& l, Writer& w) const {
  const ipfix::FieldSpec& spec = l.tmpl->fields()[i];
  const Field& k = l.fields[i];
  const ipfix::DataType type = k.type;
  const flow::FlowRecord& f = s.f;
  const bool v6 = f.key.ip_version == 6;
  auto bytes_of = [](const auto& arr, std::size_t n) {
    return Bytes(reinterpret_cast<const std::byte*>(arr.data()), n);
  };
  switch (k.kind) {
    case Kind::unsupported:
    case Kind::zero:
      w.zero(i, spec, type);
      return;
    case Kind::src_v4:
    case Kind::dst_v4:
    case Kind::src_v6:
    case Kind::dst_v6: {
      const bool want_v6 = k.kind == Kind::src_v6 || k.kind == Kind::dst_v6;
      const bool src = k.kind == Kind::src_v4 || k.kind == Kind::src_v6;
      if (want_v6 != v6) {
        w.zero(i, spec, type);
      } else {
        w.raw(i, spec, bytes_of(src != s.reverse ? f.key.src_addr : f.key.dst_addr, v6 ? 16 : 4));
      }
      return;
    }
    case Kind::first_time:
    case Kind::last_time:
      if (k.time) {
        w.time(i, spec, type, *k.time, k.kind == Kind::last_time ? s.last_ms : s.first_ms,
               s.origin_ms);
      } else {
        w.zero(i, spec, type);
      }
      return;
    case Kind::client_mac:
      w.raw(i, spec, bytes_of(s.reverse ? f.server_mac : f.client_mac, 6));
      return;
    case Kind::server_mac:
      w.raw(i, spec, bytes_of(s.reverse ? f.client_mac : f.server_mac, 6));
      return;
    case Kind::l7_proto_name: {
      std::string name;
      if (options_.l7_name) name = options_.l7_name(f.l7_master, f.l7_app);
      w.convert(i, spec, type, as_bytes(name));
      return;
    }
    default: {
      std::uint64_t v = 0;
      if (!number_of(k.kind, s, v)) return;  // every kind not named above is a number
      if (is_bit_field(k.kind) && spec.length == 1) v &= 0xffu;
      w.num(i, spec, type, v);
      return;
    }
  }
}

}  // namespace flowsec::exporter
