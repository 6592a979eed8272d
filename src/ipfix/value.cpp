#include "ipfix/value.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "ipfix/limits.hpp"

namespace flowsec::ipfix {

namespace {

constexpr std::uint64_t kFrac32 = std::uint64_t{1} << 32;
constexpr std::uint64_t kFrac21 = std::uint64_t{1} << 21;
constexpr std::int64_t kNsPerSec = 1'000'000'000;
constexpr std::int64_t kUsPerSec = 1'000'000;
// NTP seconds with the top bit set are era 0 (1968..2036), the others era 1 (RFC 4330 §3).
constexpr std::int64_t kMinUnixSec = (std::int64_t{1} << 31) - wire::kNtpUnixOffset;
constexpr std::int64_t kEndUnixSec = (std::int64_t{3} << 31) - wire::kNtpUnixOffset;

std::int64_t ntp_seconds_to_unix(std::uint32_t sec) {
  std::int64_t s = sec;
  if ((sec & 0x80000000u) == 0) s += std::int64_t{1} << 32;
  return s - wire::kNtpUnixOffset;
}

bool unix_seconds_to_ntp(std::int64_t s, std::uint32_t& out) {
  if (s < kMinUnixSec || s >= kEndUnixSec) return false;
  out = static_cast<std::uint32_t>(static_cast<std::uint64_t>(s + wire::kNtpUnixOffset));
  return true;
}

// Floor division and remainder (times before 1970 are negative).
void split(std::int64_t v, std::int64_t per, std::int64_t& q, std::int64_t& r) {
  q = v / per;
  r = v % per;
  if (r < 0) {
    r += per;
    --q;
  }
}

bool is_unsigned(DataType t) {
  return t == DataType::unsigned8 || t == DataType::unsigned16 || t == DataType::unsigned32 ||
         t == DataType::unsigned64;
}
bool is_signed(DataType t) {
  return t == DataType::signed8 || t == DataType::signed16 || t == DataType::signed32 ||
         t == DataType::signed64;
}

// Size used for a numeric or fixed-size type in a variable-length field.
std::size_t natural_length(DataType t) {
  switch (t) {
    case DataType::unsigned8:
    case DataType::signed8:
    case DataType::boolean:
      return 1;
    case DataType::unsigned16:
    case DataType::signed16:
      return 2;
    case DataType::unsigned32:
    case DataType::signed32:
    case DataType::float32:
    case DataType::dateTimeSeconds:
    case DataType::ipv4Address:
      return 4;
    case DataType::macAddress:
      return 6;
    case DataType::ipv6Address:
      return 16;
    case DataType::unsigned64:
    case DataType::signed64:
    case DataType::float64:
    case DataType::dateTimeMilliseconds:
    case DataType::dateTimeMicroseconds:
    case DataType::dateTimeNanoseconds:
      return 8;
    case DataType::octetArray:
    case DataType::string:
    case DataType::basicList:
    case DataType::subTemplateList:
    case DataType::subTemplateMultiList:
      return 0;
  }
  return 0;
}

// Range-checks an integer alternative for a `len`-byte field and returns its bit pattern.
ValueResult<std::uint64_t> integer_bits(const Value& v, bool is_signed_field, std::size_t len) {
  const unsigned bits = static_cast<unsigned>(len * 8);
  if (const auto* u = std::get_if<std::uint64_t>(&v)) {
    if (is_signed_field) {
      if (*u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          (bits < 64 && *u >= (std::uint64_t{1} << (bits - 1)))) {
        return unexpected(ValueErrc::out_of_range);
      }
    } else if (bits < 64 && (*u >> bits) != 0) {
      return unexpected(ValueErrc::out_of_range);
    }
    return *u;
  }
  if (const auto* s = std::get_if<std::int64_t>(&v)) {
    if (is_signed_field) {
      if (bits < 64) {
        const std::int64_t half = std::int64_t{1} << (bits - 1);
        if (*s < -half || *s >= half) return unexpected(ValueErrc::out_of_range);
      }
    } else if (*s < 0 || (bits < 64 && (static_cast<std::uint64_t>(*s) >> bits) != 0)) {
      return unexpected(ValueErrc::out_of_range);
    }
    return static_cast<std::uint64_t>(*s);
  }
  return unexpected(ValueErrc::type_mismatch);
}

// Any time alternative converted exactly to Duration since 1970; false if not exact.
template <class Duration>
bool time_of(const Value& v, std::int64_t& out) {
  bool ok = false;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, DateTimeSeconds> ||
                      std::is_same_v<T, DateTimeMilliseconds> ||
                      std::is_same_v<T, DateTimeMicroseconds> ||
                      std::is_same_v<T, DateTimeNanoseconds>) {
          using From = typename T::duration;
          const From d = x.time_since_epoch();
          if constexpr (std::ratio_less_equal_v<typename Duration::period, typename From::period>) {
            // Coarser (or equal) source: exact unless it overflows.
            using R = std::ratio_divide<typename From::period, typename Duration::period>;
            static_assert(R::den == 1);
            std::int64_t wide = 0;
            if (!__builtin_mul_overflow(static_cast<std::int64_t>(d.count()),
                                        static_cast<std::int64_t>(R::num), &wide)) {
              out = wide;
              ok = true;
            }
          } else {
            const auto c = std::chrono::duration_cast<Duration>(d);
            if (std::chrono::duration_cast<From>(c) == d) {
              out = c.count();
              ok = true;
            }
          }
        }
      },
      v);
  return ok;
}

void put_uint(std::vector<std::byte>& out, std::uint64_t v, std::size_t len) {
  ByteWriter(out).uint_n(v, len);
}

// Writes the value of a non-variable-length encoding of `len` bytes.
ValueResult<void> put_fixed(DataType type, std::size_t len, const Value& v,
                            std::vector<std::byte>& out) {
  if (is_unsigned(type) || is_signed(type)) {
    if (!std::holds_alternative<std::uint64_t>(v) && !std::holds_alternative<std::int64_t>(v)) {
      return unexpected(ValueErrc::type_mismatch);
    }
    if (len < 1 || len > 8) return unexpected(ValueErrc::bad_length);
    auto bits = integer_bits(v, is_signed(type), len);
    if (!bits) return unexpected(bits.error());
    put_uint(out, *bits, len);
    return {};
  }
  switch (type) {
    case DataType::float32:
    case DataType::float64: {
      const auto* d = std::get_if<double>(&v);
      if (d == nullptr) return unexpected(ValueErrc::type_mismatch);
      if (len == 8 && type == DataType::float64) {
        put_uint(out, std::bit_cast<std::uint64_t>(*d), 8);
        return {};
      }
      if (len != 4) return unexpected(ValueErrc::bad_length);
      if (std::isfinite(*d) &&
          std::fabs(*d) > static_cast<double>(std::numeric_limits<float>::max())) {
        return unexpected(ValueErrc::out_of_range);
      }
      put_uint(out, std::bit_cast<std::uint32_t>(static_cast<float>(*d)), 4);
      return {};
    }
    case DataType::boolean: {
      const auto* b = std::get_if<bool>(&v);
      if (b == nullptr) return unexpected(ValueErrc::type_mismatch);
      if (len != 1) return unexpected(ValueErrc::bad_length);
      out.push_back(std::byte{static_cast<std::uint8_t>(*b ? 1 : 2)});  // RFC 7011 §6.1.5
      return {};
    }
    case DataType::macAddress: {
      const auto* m = std::get_if<MacAddress>(&v);
      if (m == nullptr) return unexpected(ValueErrc::type_mismatch);
      if (len != 6) return unexpected(ValueErrc::bad_length);
      for (std::uint8_t b : m->bytes) out.push_back(std::byte{b});
      return {};
    }
    case DataType::ipv4Address:
    case DataType::ipv6Address: {
      const auto* a = std::get_if<IpAddress>(&v);
      if (a == nullptr) return unexpected(ValueErrc::type_mismatch);
      if (a->is_v6() != (type == DataType::ipv6Address))
        return unexpected(ValueErrc::type_mismatch);
      if (len != a->bytes().size()) return unexpected(ValueErrc::bad_length);
      for (std::uint8_t b : a->bytes()) out.push_back(std::byte{b});
      return {};
    }
    case DataType::dateTimeSeconds: {
      std::int64_t s = 0;
      if (!time_of<std::chrono::seconds>(v, s)) return unexpected(ValueErrc::type_mismatch);
      if (len != 4) return unexpected(ValueErrc::bad_length);
      if (s < 0 || s > std::int64_t{0xffffffff}) return unexpected(ValueErrc::out_of_range);
      put_uint(out, static_cast<std::uint64_t>(s), 4);
      return {};
    }
    case DataType::dateTimeMilliseconds: {
      std::int64_t ms = 0;
      if (!time_of<std::chrono::milliseconds>(v, ms)) return unexpected(ValueErrc::type_mismatch);
      if (len != 8) return unexpected(ValueErrc::bad_length);
      if (ms < 0) return unexpected(ValueErrc::out_of_range);
      put_uint(out, static_cast<std::uint64_t>(ms), 8);
      return {};
    }
    case DataType::dateTimeMicroseconds:
    case DataType::dateTimeNanoseconds: {
      std::int64_t t = 0;
      const bool micro = type == DataType::dateTimeMicroseconds;
      const bool ok = micro ? time_of<std::chrono::microseconds>(v, t)
                            : time_of<std::chrono::nanoseconds>(v, t);
      if (!ok) return unexpected(ValueErrc::type_mismatch);
      if (len != 8) return unexpected(ValueErrc::bad_length);
      std::uint64_t ntp = 0;
      if (!(micro ? wire::unix_us_to_ntp(t, ntp) : wire::unix_ns_to_ntp(t, ntp))) {
        return unexpected(ValueErrc::out_of_range);
      }
      put_uint(out, ntp, 8);
      return {};
    }
    default:
      break;
  }
  return unexpected(ValueErrc::type_mismatch);
}

// The bytes of a string or octet-array-like value, or empty span + false.
bool raw_bytes_of(DataType type, const Value& v, Bytes& out) {
  if (type == DataType::string) {
    const auto* s = std::get_if<std::string>(&v);
    if (s == nullptr) return false;
    out = as_bytes(*s);
    return true;
  }
  const auto* o = std::get_if<OctetArray>(&v);
  if (o == nullptr) return false;
  out = Bytes(*o);
  return true;
}

}  // namespace

std::string_view describe(ValueErrc code) {
  switch (code) {
    case ValueErrc::bad_length:
      return "bad_length";
    case ValueErrc::bad_boolean:
      return "bad_boolean";
    case ValueErrc::out_of_range:
      return "out_of_range";
    case ValueErrc::type_mismatch:
      return "type_mismatch";
    case ValueErrc::field_count:
      return "field_count";
    case ValueErrc::record_too_long:
      return "record_too_long";
  }
  return "unknown";
}

namespace wire {

std::int64_t ntp_to_unix_ns(std::uint64_t ntp) {
  const std::int64_t s = ntp_seconds_to_unix(static_cast<std::uint32_t>(ntp >> 32));
  const std::uint64_t frac = ntp & 0xffffffffu;
  // Rounded to the nearest nanosecond: frac * 1e9 < 2^62, no overflow.
  const auto ns = static_cast<std::int64_t>((frac * kNsPerSec + kFrac32 / 2) >> 32);
  return s * kNsPerSec + ns;
}

std::int64_t ntp_to_unix_us(std::uint64_t ntp) {
  const std::int64_t s = ntp_seconds_to_unix(static_cast<std::uint32_t>(ntp >> 32));
  const std::uint64_t frac21 = (ntp & 0xffffffffu) >> 11;  // RFC 7011 §6.1.9
  const auto us = static_cast<std::int64_t>((frac21 * kUsPerSec + kFrac21 / 2) >> 21);
  return s * kUsPerSec + us;
}

bool unix_ns_to_ntp(std::int64_t ns, std::uint64_t& ntp) {
  std::int64_t s = 0;
  std::int64_t rem = 0;
  split(ns, kNsPerSec, s, rem);
  std::uint32_t sec = 0;
  if (!unix_seconds_to_ntp(s, sec)) return false;
  // The fraction step (2^-32 s) is finer than 1 ns, so rounding here and in
  // ntp_to_unix_ns() gives back exactly the same nanosecond.
  const std::uint64_t frac = ((static_cast<std::uint64_t>(rem) << 32) + kNsPerSec / 2) / kNsPerSec;
  ntp = (std::uint64_t{sec} << 32) | frac;
  return true;
}

bool unix_us_to_ntp(std::int64_t us, std::uint64_t& ntp) {
  std::int64_t s = 0;
  std::int64_t rem = 0;
  split(us, kUsPerSec, s, rem);
  std::uint32_t sec = 0;
  if (!unix_seconds_to_ntp(s, sec)) return false;
  // 2^-21 s < 1 µs, so the round trip is exact; the low 11 bits stay zero (§6.1.9).
  const std::uint64_t frac21 =
      ((static_cast<std::uint64_t>(rem) << 21) + kUsPerSec / 2) / kUsPerSec;
  ntp = (std::uint64_t{sec} << 32) | (frac21 << 11);
  return true;
}

}  // namespace wire

DataType element_type(std::uint32_t enterprise, std::uint16_t id) {
  const ElementInfo* e = find_element(enterprise, id);
  return e == nullptr ? DataType::octetArray : e->type;
}

ValueResult<Value> decode_value(DataType type, Bytes b) {
  const std::size_t n = b.size();
  if (is_unsigned(type)) {
    if (n < 1 || n > 8) return unexpected(ValueErrc::bad_length);  // RFC 7011 §6.2
    return Value{load_be_var(b)};
  }
  if (is_signed(type)) {
    if (n < 1 || n > 8) return unexpected(ValueErrc::bad_length);  // RFC 7011 §6.2
    return Value{wire::load_signed(b)};
  }
  switch (type) {
    case DataType::float32:
    case DataType::float64:
      if (n == 4) {
        return Value{static_cast<double>(std::bit_cast<float>(load_be<std::uint32_t>(b.data())))};
      }
      if (n == 8 && type == DataType::float64) {
        return Value{std::bit_cast<double>(load_be<std::uint64_t>(b.data()))};
      }
      return unexpected(ValueErrc::bad_length);
    case DataType::boolean: {
      if (n != 1) return unexpected(ValueErrc::bad_length);
      const auto x = static_cast<std::uint8_t>(b[0]);
      if (x == 1) return Value{true};  // RFC 7011 §6.1.5
      if (x == 2) return Value{false};
      return unexpected(ValueErrc::bad_boolean);
    }
    case DataType::macAddress: {
      if (n != 6) return unexpected(ValueErrc::bad_length);
      MacAddress m;
      std::memcpy(m.bytes.data(), b.data(), 6);
      return Value{m};
    }
    case DataType::ipv4Address:
      if (n != 4) return unexpected(ValueErrc::bad_length);
      return Value{IpAddress::v4(b.first<4>())};
    case DataType::ipv6Address:
      if (n != 16) return unexpected(ValueErrc::bad_length);
      return Value{IpAddress::v6(b.first<16>())};
    case DataType::string: {
      std::size_t len = n;
      while (len > 0 && b[len - 1] == std::byte{0}) --len;  // fixed-length NUL padding
      return Value{std::string(reinterpret_cast<const char*>(b.data()), len)};
    }
    case DataType::dateTimeSeconds:
      if (n != 4) return unexpected(ValueErrc::bad_length);
      return Value{DateTimeSeconds{std::chrono::seconds{load_be<std::uint32_t>(b.data())}}};
    case DataType::dateTimeMilliseconds: {
      if (n != 8) return unexpected(ValueErrc::bad_length);
      const std::uint64_t ms = load_be<std::uint64_t>(b.data());
      if (ms > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return unexpected(ValueErrc::out_of_range);
      }
      return Value{DateTimeMilliseconds{std::chrono::milliseconds{static_cast<std::int64_t>(ms)}}};
    }
    case DataType::dateTimeMicroseconds:
      if (n != 8) return unexpected(ValueErrc::bad_length);
      return Value{DateTimeMicroseconds{
          std::chrono::microseconds{wire::ntp_to_unix_us(load_be<std::uint64_t>(b.data()))}}};
    case DataType::dateTimeNanoseconds:
      if (n != 8) return unexpected(ValueErrc::bad_length);
      return Value{DateTimeNanoseconds{
          std::chrono::nanoseconds{wire::ntp_to_unix_ns(load_be<std::uint64_t>(b.data()))}}};
    default:
      // octetArray and the RFC 6313 lists: raw bytes.
      return Value{OctetArray(b.begin(), b.end())};
  }
}

ValueResult<void> encode_value(DataType type, std::uint16_t length, const Value& v,
                               std::vector<std::byte>& out) {
  const std::size_t mark = out.size();
  Bytes raw;
  const bool is_raw = natural_length(type) == 0;
  if (is_raw && !raw_bytes_of(type, v, raw)) return unexpected(ValueErrc::type_mismatch);

  if (length == kVariableLength) {
    // RFC 7011 §7: 1-byte length below 255, else 255 and a 2-byte length.
    std::size_t n = is_raw ? raw.size() : natural_length(type);
    if (n > limits::kMaxVariableLength) return unexpected(ValueErrc::out_of_range);
    ByteWriter w(out);
    if (n < 255) {
      w.u8(static_cast<std::uint8_t>(n));
    } else {
      w.u8(255);
      w.u16(static_cast<std::uint16_t>(n));
    }
    if (is_raw) {
      w.bytes(raw);
      return {};
    }
    auto r = put_fixed(type, n, v, out);
    if (!r) out.resize(mark);
    return r;
  }

  if (is_raw) {
    if (type == DataType::string) {
      if (raw.size() > length) return unexpected(ValueErrc::out_of_range);
      ByteWriter w(out);
      w.bytes(raw);
      w.zeros(length - raw.size());  // NUL padding of fixed-length strings
      return {};
    }
    if (raw.size() != length) return unexpected(ValueErrc::bad_length);
    ByteWriter(out).bytes(raw);
    return {};
  }
  auto r = put_fixed(type, length, v, out);
  if (!r) out.resize(mark);
  return r;
}

RecordWriter::RecordWriter(TemplatePtr t) : template_(std::move(t)) {
  types_.reserve(template_->fields().size());
  for (const FieldSpec& f : template_->fields()) types_.push_back(element_type(f.enterprise, f.id));
}

RecordWriter::RecordWriter(TemplatePtr t, std::vector<DataType> types)
    : template_(std::move(t)), types_(std::move(types)) {
  const auto fields = template_->fields();
  types_.resize(std::min(types_.size(), fields.size()));
  for (std::size_t i = types_.size(); i < fields.size(); ++i) {
    types_.push_back(element_type(fields[i].enterprise, fields[i].id));
  }
}

Expected<void, WriteError> RecordWriter::append(std::span<const Value> values,
                                                std::vector<std::byte>& out) const {
  const auto fields = template_->fields();
  if (values.size() != fields.size()) {
    return unexpected(WriteError{std::min(values.size(), fields.size()), ValueErrc::field_count});
  }
  const std::size_t mark = out.size();
  for (std::size_t i = 0; i < fields.size(); ++i) {
    auto r = encode_value(types_[i], fields[i].length, values[i], out);
    if (!r) {
      out.resize(mark);
      return unexpected(WriteError{i, r.error()});
    }
  }
  // A record must fit in one message: 16-byte message header + 4-byte set header.
  if (out.size() - mark > limits::kMaxMessageSize - 20) {
    out.resize(mark);
    return unexpected(WriteError{fields.size() - 1, ValueErrc::record_too_long});
  }
  return {};
}

}  // namespace flowsec::ipfix
