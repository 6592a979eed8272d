#include "exporter/field_codec.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "ipfix/value.hpp"

namespace flowsec::exporter {
namespace {

using ipfix::DataType;
using ipfix::FieldSpec;

bool is_unsigned(DataType t) {
  return t == DataType::unsigned8 || t == DataType::unsigned16 || t == DataType::unsigned32 ||
         t == DataType::unsigned64 || t == DataType::dateTimeSeconds ||
         t == DataType::dateTimeMilliseconds;
}
bool is_signed(DataType t) {
  return t == DataType::signed8 || t == DataType::signed16 || t == DataType::signed32 ||
         t == DataType::signed64;
}
bool is_float(DataType t) {
  return t == DataType::float32 || t == DataType::float64;
}

void write_prefix(std::size_t n, std::vector<std::byte>& out) {
  // RFC 7011 §7: one length byte, or 255 and a two-byte length.
  ByteWriter w(out);
  if (n < 255) {
    w.u8(static_cast<std::uint8_t>(n));
  } else {
    w.u8(255);
    w.u16(static_cast<std::uint16_t>(n));
  }
}

}  // namespace

void put_zero_field(const FieldSpec& f, DataType type, std::byte* dst) {
  if (type == DataType::boolean && f.length == 1) {
    dst[0] = std::byte{2};  // RFC 7011 §6.1.5: false
    return;
  }
  std::memset(dst, 0, f.length);
}

std::uint64_t max_unsigned(std::size_t length) {
  return length >= 8 ? std::numeric_limits<std::uint64_t>::max()
                     : (std::uint64_t{1} << (8 * length)) - 1;
}

bool stores_unsigned(const FieldSpec& f, DataType type) {
  return f.length <= 8 && (is_unsigned(type) || type == DataType::octetArray);
}

void put_unsigned_field(const FieldSpec& f, DataType type, std::uint64_t v, std::byte* dst) {
  if (!stores_unsigned(f, type)) {
    put_zero_field(f, type, dst);
    return;
  }
  store_uint_n(dst, std::min(v, max_unsigned(f.length)), f.length);
}

void write_zero_field(const FieldSpec& f, DataType type, std::vector<std::byte>& out) {
  if (f.is_variable()) {
    out.push_back(std::byte{0});
    return;
  }
  const std::size_t at = out.size();
  out.resize(at + f.length);
  put_zero_field(f, type, out.data() + at);
}

void write_unsigned_field(const FieldSpec& f, DataType type, std::uint64_t v,
                          std::vector<std::byte>& out) {
  if (f.is_variable()) {
    write_prefix(8, out);
    ByteWriter(out).u64(v);
    return;
  }
  const std::size_t at = out.size();
  out.resize(at + f.length);
  put_unsigned_field(f, type, v, out.data() + at);
}

void write_raw_field(const FieldSpec& f, Bytes value, std::vector<std::byte>& out) {
  if (f.is_variable()) {
    const std::size_t n = std::min<std::size_t>(value.size(), 65535);
    write_prefix(n, out);
    out.insert(out.end(), value.begin(), value.begin() + static_cast<std::ptrdiff_t>(n));
    return;
  }
  const std::size_t n = std::min<std::size_t>(value.size(), f.length);
  out.insert(out.end(), value.begin(), value.begin() + static_cast<std::ptrdiff_t>(n));
  out.resize(out.size() + (f.length - n));
}

void convert_field(const FieldSpec& out_spec, DataType type, Bytes in,
                   std::vector<std::byte>& out) {
  if (!out_spec.is_variable() && in.size() == out_spec.length) {
    out.insert(out.end(), in.begin(), in.end());
    return;
  }
  if (is_unsigned(type)) {
    if (in.empty() || in.size() > 8) return write_zero_field(out_spec, type, out);
    return write_unsigned_field(out_spec, type, load_be_var(in), out);
  }
  if (is_signed(type)) {
    if (in.empty() || in.size() > 8 || out_spec.is_variable() || out_spec.length > 8) {
      return write_zero_field(out_spec, type, out);
    }
    std::int64_t v = ipfix::wire::load_signed(in);
    const unsigned bits = 8u * out_spec.length;
    if (bits < 64) {
      const std::int64_t hi = (std::int64_t{1} << (bits - 1)) - 1;
      v = std::clamp(v, -hi - 1, hi);
    }
    ByteWriter(out).uint_n(static_cast<std::uint64_t>(v) & max_unsigned(out_spec.length),
                           out_spec.length);
    return;
  }
  if (is_float(type)) {
    auto v = ipfix::decode_value(type, in);
    if (!v || out_spec.is_variable() ||
        !ipfix::encode_value(type, out_spec.length, *v, out).has_value()) {
      write_zero_field(out_spec, type, out);
    }
    return;
  }
  if (type == DataType::string && !out_spec.is_variable()) {
    // A fixed-length string came NUL-padded; cut at a character boundary (UTF-8).
    std::size_t n = in.size();
    while (n > 0 && in[n - 1] == std::byte{0}) --n;
    if (n > out_spec.length) {
      n = out_spec.length;
      while (n > 0 && (static_cast<std::uint8_t>(in[n]) & 0xC0u) == 0x80u) --n;
    }
    return write_raw_field(out_spec, in.first(n), out);
  }
  if (type == DataType::string) {
    std::size_t n = in.size();
    while (n > 0 && in[n - 1] == std::byte{0}) --n;
    return write_raw_field(out_spec, in.first(n), out);
  }
  if (type == DataType::octetArray || type == DataType::basicList ||
      type == DataType::subTemplateList || type == DataType::subTemplateMultiList) {
    return write_raw_field(out_spec, in, out);
  }
  // Addresses, MACs, booleans, NTP times: a length change has no meaning.
  if (out_spec.is_variable()) return write_raw_field(out_spec, in, out);
  write_zero_field(out_spec, type, out);
}

std::optional<TimeElement> time_element(std::uint32_t enterprise, std::uint16_t id) {
  if (enterprise != ipfix::kIanaPen) return std::nullopt;
  using U = TimeElement::Unit;
  switch (id) {
    case 22:
      return TimeElement{false, U::sys_uptime_ms};  // flowStartSysUpTime
    case 21:
      return TimeElement{true, U::sys_uptime_ms};  // flowEndSysUpTime
    case 150:
      return TimeElement{false, U::seconds};
    case 151:
      return TimeElement{true, U::seconds};
    case 152:
      return TimeElement{false, U::milliseconds};
    case 153:
      return TimeElement{true, U::milliseconds};
    case 154:
      return TimeElement{false, U::microseconds};
    case 155:
      return TimeElement{true, U::microseconds};
    default:
      return std::nullopt;
  }
}

std::optional<std::int64_t> record_time_ms(const ipfix::RecordView& r, bool end,
                                           std::int64_t uptime_origin_ms) {
  if (auto v = r.unsigned_field(0, end ? 153 : 152)) return static_cast<std::int64_t>(*v);
  if (auto b = r.field(0, end ? 155 : 154); b && b->size() == 8) {
    return ipfix::wire::ntp_to_unix_us(load_be<std::uint64_t>(b->data())) / 1000;
  }
  if (auto v = r.unsigned_field(0, end ? 151 : 150)) return static_cast<std::int64_t>(*v) * 1000;
  if (auto v = r.unsigned_field(0, end ? 21 : 22)) {
    return uptime_origin_ms + static_cast<std::int64_t>(*v);
  }
  return std::nullopt;
}

namespace {

// What a time element holds for `abs_ms`: a number, or (microseconds) an 8-byte NTP
// timestamp written as is; nullopt when neither fits (the field's zero value then).
struct TimeValue {
  std::uint64_t value = 0;
  bool ntp = false;
};
std::optional<TimeValue> time_value(const FieldSpec& f, TimeElement t, std::int64_t abs_ms,
                                    std::int64_t our_origin_ms) {
  using U = TimeElement::Unit;
  switch (t.unit) {
    case U::sys_uptime_ms:
      return TimeValue{sys_uptime_value(abs_ms, our_origin_ms)};
    case U::seconds:
      return TimeValue{static_cast<std::uint64_t>(std::max<std::int64_t>(abs_ms, 0) / 1000)};
    case U::milliseconds:
      return TimeValue{static_cast<std::uint64_t>(std::max<std::int64_t>(abs_ms, 0))};
    case U::microseconds: {
      std::uint64_t ntp = 0;
      if (f.length != 8 || !ipfix::wire::unix_us_to_ntp(abs_ms * 1000, ntp)) return std::nullopt;
      return TimeValue{ntp, true};
    }
  }
  return std::nullopt;
}

}  // namespace

void write_time_field(const FieldSpec& f, DataType type, TimeElement t, std::int64_t abs_ms,
                      std::int64_t our_origin_ms, std::vector<std::byte>& out) {
  const auto tv = time_value(f, t, abs_ms, our_origin_ms);
  if (!tv) return write_zero_field(f, type, out);
  if (tv->ntp) return ByteWriter(out).u64(tv->value);
  write_unsigned_field(f, type, tv->value, out);
}

void put_time_field(const FieldSpec& f, DataType type, TimeElement t, std::int64_t abs_ms,
                    std::int64_t our_origin_ms, std::byte* dst) {
  const auto tv = time_value(f, t, abs_ms, our_origin_ms);
  if (!tv) return put_zero_field(f, type, dst);
  if (tv->ntp) return store_be<std::uint64_t>(dst, tv->value);
  put_unsigned_field(f, type, tv->value, dst);
}

std::int64_t uptime_origin_ms(const ipfix::MessageMeta& m, std::int64_t fallback_ms) {
  if (m.protocol == ipfix::Protocol::netflow_v5 || m.protocol == ipfix::Protocol::netflow_v9 ||
      ipfix::has_sys_uptime(m)) {
    return static_cast<std::int64_t>(m.export_time) * 1000 +
           static_cast<std::int64_t>(m.export_time_nsec / 1000000) -
           static_cast<std::int64_t>(m.sys_uptime_ms);
  }
  return fallback_ms;
}

std::uint16_t v9_fixed_length(std::uint32_t enterprise, std::uint16_t id) {
  // nProbe's v9 lengths (data/nprobe-template-fields.csv) for the strings flowsec fills.
  if (enterprise == ipfix::kNtopPen) {
    switch (id) {
      case 119:
        return 16;  // L7_PROTO_NAME
      case 501:
        return 16;  // L7_PROTO_CATEGORY
      case 539:
        return 24;  // L7_INFO
      case 591:
        return 24;  // L7_DOMAIN_INFO
      case 510:
        return 64;  // L7_PROTO_RISK_NAME
      case 555:
        return 48;  // L7_RISK_INFO
      default:
        break;
    }
  }
  return 32;
}

}  // namespace flowsec::exporter
