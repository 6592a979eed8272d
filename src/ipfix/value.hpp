#pragma once
// Typed values of information elements (RFC 7011 §6.1 abstract data types) and
// their wire encoding, in both directions.
//
// Contract:
//  - decode_value() reads the value bytes of one field (without the
//    variable-length prefix) as the given type. Input is untrusted: a length the
//    type cannot have, or a boolean other than 1/2, is a ValueErrc, never a
//    crash. Strings keep their bytes even when they are not UTF-8; renderers
//    escape them on output.
//  - RecordWriter is the inverse: one Value per template field in, one data
//    record appended to a caller-owned byte vector out. All or nothing: on
//    error the vector is left as it was.
//  - Value types own their data (strings, octet arrays); the renderers
//    (render.hpp) never go through Value on the hot path.
// No shared state; every function is safe to call from any thread.
//
// Encoding rules enforced here:
//  - unsigned/signed integers: 1..8 bytes, big-endian, reduced-size encoding
//    (RFC 7011 §6.2). Decoding also accepts a length above the type's natural
//    size (up to 8): real exporters do send that, and nothing is lost.
//  - float32: 4 bytes; float64: 8 bytes, or 4 bytes reduced (RFC 7011 §6.2).
//    Writing a double into 4 bytes rounds to float precision; it is an error
//    only when the magnitude overflows a float.
//  - boolean: 1 byte, 1 = true, 2 = false (RFC 7011 §6.1.5); anything else is
//    an error.
//  - string: UTF-8 (RFC 7011 §6.1.6). A fixed-length string field is padded
//    with NUL bytes when written, and trailing NULs are dropped when read.
//  - octetArray and the RFC 6313 lists (basicList, subTemplateList,
//    subTemplateMultiList) are kept as raw bytes (OctetArray); a fixed-length
//    octetArray field takes exactly its length.
//  - dateTimeSeconds: u32 seconds since 1970 (§6.1.7); dateTimeMilliseconds:
//    u64 milliseconds since 1970 (§6.1.8); dateTimeMicroseconds and
//    dateTimeNanoseconds: NTP timestamps, u32 seconds since 1900 + u32 binary
//    fraction (§6.1.9, §6.1.10). For microseconds the low 11 bits of the
//    fraction are ignored when read and written as zero. NTP seconds with the
//    top bit clear are taken as era 1 (2036..2104, RFC 4330 §3), so the range
//    is 1968-01-20 .. 2104-02-26.
//  - variable-length fields: 1-byte length, or 255 then a 2-byte length
//    (RFC 7011 §7).
#include <array>
#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/bytes.hpp"
#include "common/ip_address.hpp"
#include "common/result.hpp"
#include "ipfix/ie_registry.hpp"
#include "ipfix/template.hpp"

namespace flowsec::ipfix {

struct MacAddress {
  std::array<std::uint8_t, 6> bytes{};
  friend auto operator<=>(const MacAddress&, const MacAddress&) = default;
};

using OctetArray = std::vector<std::byte>;
using DateTimeSeconds = std::chrono::sys_time<std::chrono::seconds>;
using DateTimeMilliseconds = std::chrono::sys_time<std::chrono::milliseconds>;
using DateTimeMicroseconds = std::chrono::sys_time<std::chrono::microseconds>;
using DateTimeNanoseconds = std::chrono::sys_time<std::chrono::nanoseconds>;

// Which alternative each DataType decodes to:
//   unsigned8..64 → std::uint64_t      signed8..64 → std::int64_t
//   float32/64    → double             boolean     → bool
//   macAddress    → MacAddress         ipv4/ipv6Address → IpAddress
//   string        → std::string        octetArray, lists → OctetArray
//   dateTimeSeconds/Milli/Micro/Nanoseconds → the matching DateTime* type
// Build integers explicitly (Value{std::uint64_t{5}}): a plain int picks int64.
using Value = std::variant<std::uint64_t, std::int64_t, double, bool, MacAddress, IpAddress,
                           std::string, OctetArray, DateTimeSeconds, DateTimeMilliseconds,
                           DateTimeMicroseconds, DateTimeNanoseconds>;

enum class ValueErrc : std::uint8_t {
  bad_length,       // the field length is not one this type can have
  bad_boolean,      // boolean octet other than 1 or 2 (RFC 7011 §6.1.5)
  out_of_range,     // value does not fit the field (writing) or the time range (NTP)
  type_mismatch,    // Value alternative does not match the element's type (writing)
  field_count,      // number of Values differs from the template's field count (writing)
  record_too_long,  // record would not fit in one IPFIX message (writing)
};
[[nodiscard]] std::string_view describe(ValueErrc code);

template <class T>
using ValueResult = Expected<T, ValueErrc>;

// Type of an element from the registry; octetArray for unknown elements (RFC 7011 §6.1.1).
[[nodiscard]] DataType element_type(std::uint32_t enterprise, std::uint16_t id);

// Decodes one field's value bytes (variable-length prefix already removed).
[[nodiscard]] ValueResult<Value> decode_value(DataType type, Bytes bytes);

// Appends one field: the variable-length prefix when `length` is kVariableLength, then the
// value in `length` bytes (or its natural size for variable-length numeric fields).
// On error nothing is appended.
[[nodiscard]] ValueResult<void> encode_value(DataType type, std::uint16_t length, const Value& v,
                                             std::vector<std::byte>& out);

struct WriteError {
  std::size_t field = 0;  // index of the offending field in the template
  ValueErrc code = ValueErrc::type_mismatch;
  friend bool operator==(const WriteError&, const WriteError&) = default;
};

// Writes data records for one template. Caches the data type of each field.
class RecordWriter {
 public:
  // Field types from the registry (element_type()).
  explicit RecordWriter(TemplatePtr t);
  // Field types given by the caller, for elements the registry does not know (e.g. another
  // enterprise's); `types` shorter than the template is completed from the registry.
  RecordWriter(TemplatePtr t, std::vector<DataType> types);

  [[nodiscard]] const TemplatePtr& record_template() const { return template_; }
  // Appends one record made of `values` (one per field, template order) to `out`.
  [[nodiscard]] Expected<void, WriteError> append(std::span<const Value> values,
                                                  std::vector<std::byte>& out) const;

 private:
  TemplatePtr template_;
  std::vector<DataType> types_;
};

// Low-level helpers shared with the renderers; they never allocate.
namespace wire {

// RFC 5905: NTP era 0 starts 1900-01-01, 2208988800 s before the Unix epoch.
inline constexpr std::int64_t kNtpUnixOffset = 2208988800;

// Two's complement value of 1..8 big-endian bytes (RFC 7011 §6.2 reduced-size signed).
[[nodiscard]] inline std::int64_t load_signed(Bytes b) {
  std::uint64_t v = load_be_var(b);
  const std::size_t bits = b.size() * 8;
  if (bits > 0 && bits < 64 && ((v >> (bits - 1)) & 1u) != 0) v |= ~std::uint64_t{0} << bits;
  return static_cast<std::int64_t>(v);
}
// NTP timestamp (u32 seconds since 1900, u32 fraction) → nanoseconds since 1970 (§6.1.10).
[[nodiscard]] std::int64_t ntp_to_unix_ns(std::uint64_t ntp);
// As above with microsecond resolution; the low 11 fraction bits are ignored (§6.1.9).
[[nodiscard]] std::int64_t ntp_to_unix_us(std::uint64_t ntp);
// Inverse conversions; false when the time is outside 1968-01-20 .. 2104-02-26.
[[nodiscard]] bool unix_ns_to_ntp(std::int64_t ns, std::uint64_t& ntp);
[[nodiscard]] bool unix_us_to_ntp(std::int64_t us, std::uint64_t& ntp);

}  // namespace wire

}  // namespace flowsec::ipfix
