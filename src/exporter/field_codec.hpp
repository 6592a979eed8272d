#pragma once
// Field-level helpers shared by Exporter (mapping received records onto other
// layouts) and FlowEncoder (writing computed flow values): write one field of a
// data record in exactly the length its FieldSpec says, whatever the value.
//
// Contract: pure functions, no shared state, callable from any thread. They never
// fail: a value that does not fit its field is saturated (integers), truncated
// (strings, octet arrays) or, when no sensible conversion exists (an IPv6 address
// into a 4-byte field), written as the field's zero value. Zero values are valid
// for every type: zero bytes, an empty variable-length field, and "false" (2) for
// booleans (RFC 7011 §6.1.5: 0 is not a boolean).
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "ipfix/ie_registry.hpp"
#include "ipfix/record.hpp"
#include "ipfix/template.hpp"

namespace flowsec::exporter {

// The zero value of a field (absent from the input, or not computable).
void write_zero_field(const ipfix::FieldSpec& f, ipfix::DataType type, std::vector<std::byte>& out);

// An unsigned value, saturated to the field length (RFC 7011 §6.2 reduced-size encoding).
void write_unsigned_field(const ipfix::FieldSpec& f, ipfix::DataType type, std::uint64_t v,
                          std::vector<std::byte>& out);

// Raw bytes (addresses, MACs, strings, octet arrays): a variable-length field gets the
// RFC 7011 §7 prefix; a fixed-length one is truncated or NUL-padded.
void write_raw_field(const ipfix::FieldSpec& f, Bytes value, std::vector<std::byte>& out);

// The value bytes `in` of a field of length `in_length` (the input template's field
// length, kVariableLength included) rewritten for `out_spec`. Integer and float types are
// converted numerically; everything else is copied byte for byte (truncated or padded).
void convert_field(const ipfix::FieldSpec& out_spec, ipfix::DataType type, Bytes in,
                   std::vector<std::byte>& out);

// The same three for a fixed-length field (!f.is_variable()) written in place: `dst` has
// room for exactly f.length bytes, which are all written.
void put_zero_field(const ipfix::FieldSpec& f, ipfix::DataType type, std::byte* dst);
void put_unsigned_field(const ipfix::FieldSpec& f, ipfix::DataType type, std::uint64_t v,
                        std::byte* dst);
// True when put_unsigned_field() stores the number (saturated to f.length bytes): an
// unsigned, dateTime or octetArray field of at most 8 bytes. Otherwise it writes the zero
// value. Lets a caller that writes many records decide once per field.
[[nodiscard]] bool stores_unsigned(const ipfix::FieldSpec& f, ipfix::DataType type);
// The largest unsigned value `length` bytes hold: what a number saturates to.
[[nodiscard]] std::uint64_t max_unsigned(std::size_t length);

// Time elements the exporter can derive from one another (flowStart/End in sysUpTime,
// seconds, milliseconds, microseconds). nullopt for any other element.
struct TimeElement {
  bool end = false;
  enum class Unit : std::uint8_t { sys_uptime_ms, seconds, milliseconds, microseconds } unit{};
};
[[nodiscard]] std::optional<TimeElement> time_element(std::uint32_t enterprise, std::uint16_t id);

// Absolute start or end time (ms since 1970) of a record, from whichever time element it has.
// sysUpTime values are relative to `uptime_origin_ms`.
[[nodiscard]] std::optional<std::int64_t> record_time_ms(const ipfix::RecordView& r, bool end,
                                                         std::int64_t uptime_origin_ms);

// A sysUpTime element's value for an absolute time: ms since `origin_ms`, saturated to
// 0..2^32-1.
[[nodiscard]] inline std::uint64_t sys_uptime_value(std::int64_t abs_ms, std::int64_t origin_ms) {
  const std::int64_t v = abs_ms - origin_ms;
  return static_cast<std::uint64_t>(v < 0 ? 0 : (v > 0xffffffffLL ? 0xffffffffLL : v));
}

// Writes an absolute time (ms since 1970) as time element `t`; sysUpTime elements relative to
// `our_origin_ms`, saturated to 0..2^32-1.
void write_time_field(const ipfix::FieldSpec& f, ipfix::DataType type, TimeElement t,
                      std::int64_t abs_ms, std::int64_t our_origin_ms, std::vector<std::byte>& out);
// The same for a fixed-length field, in place (see put_unsigned_field).
void put_time_field(const ipfix::FieldSpec& f, ipfix::DataType type, TimeElement t,
                    std::int64_t abs_ms, std::int64_t our_origin_ms, std::byte* dst);

// The origin of a received record's sysUpTime values: the exporter's boot time, known for
// NetFlow v5/v9 from the header (unix time - sysUpTime), and for IPFIX when the collector
// filled sys_uptime_ms from the session's systemInitTimeMilliseconds (IE 160,
// ipfix/uptime_reference.hpp); otherwise `fallback_ms`.
[[nodiscard]] std::int64_t uptime_origin_ms(const ipfix::MessageMeta& m, std::int64_t fallback_ms);

// NetFlow v9 has fixed-length fields only (RFC 3954 §5.2): the length a variable-length
// element gets in v9 (nProbe's length for its string fields, else 32 bytes).
[[nodiscard]] std::uint16_t v9_fixed_length(std::uint32_t enterprise, std::uint16_t id);

}  // namespace flowsec::exporter
