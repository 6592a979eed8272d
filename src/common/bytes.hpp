#pragma once
// Bounds-checked big-endian readers and writers over byte spans.
//
// Contract: ByteReader never reads past its span. Every read returns false
// (or an empty optional) when too few bytes remain, and leaves the cursor
// unchanged, so callers turn a short read into a decode error with
// offset(). ByteWriter appends to a caller-owned std::vector<std::byte>.
// Neither allocates on its own nor throws. Not thread-safe (no shared state).
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace flowsec {

using Bytes = std::span<const std::byte>;

[[nodiscard]] inline Bytes as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// std::byteswap is C++23; the compiler builtins do the same in one instruction.
template <class T>
[[nodiscard]] constexpr T byteswap(T v) {
  if constexpr (sizeof(T) == 2) return static_cast<T>(__builtin_bswap16(v));
  if constexpr (sizeof(T) == 4) return static_cast<T>(__builtin_bswap32(v));
  if constexpr (sizeof(T) == 8) return static_cast<T>(__builtin_bswap64(v));
  return v;
}

template <class T>
[[nodiscard]] inline T load_be(const std::byte* p) {
  static_assert(std::is_unsigned_v<T>);
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::little && sizeof(T) > 1) {
    v = byteswap(v);
  }
  return v;
}

template <class T>
inline void store_be(std::byte* p, T v) {
  static_assert(std::is_unsigned_v<T>);
  if constexpr (std::endian::native == std::endian::little && sizeof(T) > 1) {
    v = byteswap(v);
  }
  std::memcpy(p, &v, sizeof v);
}

// Reads an unsigned big-endian integer of 1..8 bytes (IPFIX reduced-size encoding, RFC 7011 §6.2).
[[nodiscard]] inline std::uint64_t load_be_var(Bytes b) {
  std::uint64_t v = 0;
  for (std::byte x : b) v = (v << 8) | static_cast<std::uint8_t>(x);
  return v;
}

class ByteReader {
 public:
  explicit ByteReader(Bytes data, std::size_t base_offset = 0) : data_(data), base_(base_offset) {}

  [[nodiscard]] std::size_t remaining() const { return data_.size() - pos_; }
  [[nodiscard]] std::size_t position() const { return pos_; }
  // Offset of the cursor in the outermost buffer (base_offset + position), for error reports.
  [[nodiscard]] std::size_t offset() const { return base_ + pos_; }
  [[nodiscard]] bool empty() const { return pos_ == data_.size(); }

  template <class T>
  [[nodiscard]] bool read(T& out) {
    if (remaining() < sizeof(T)) return false;
    out = load_be<T>(data_.data() + pos_);
    pos_ += sizeof(T);
    return true;
  }
  [[nodiscard]] std::optional<std::uint8_t> u8() { return get<std::uint8_t>(); }
  [[nodiscard]] std::optional<std::uint16_t> u16() { return get<std::uint16_t>(); }
  [[nodiscard]] std::optional<std::uint32_t> u32() { return get<std::uint32_t>(); }
  [[nodiscard]] std::optional<std::uint64_t> u64() { return get<std::uint64_t>(); }

  // Takes the next n bytes as a span; empty optional (cursor unchanged) if fewer remain.
  [[nodiscard]] std::optional<Bytes> take(std::size_t n) {
    if (remaining() < n) return std::nullopt;
    Bytes out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  [[nodiscard]] bool skip(std::size_t n) {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
  }
  // Everything not yet read.
  [[nodiscard]] Bytes rest() const { return data_.subspan(pos_); }

 private:
  template <class T>
  std::optional<T> get() {
    T v;
    if (!read(v)) return std::nullopt;
    return v;
  }

  Bytes data_;
  std::size_t pos_ = 0;
  std::size_t base_ = 0;
};

// Writes the low `length` bytes of v big-endian at p (zeros in front beyond 8). The
// common widths are one store each (the probe's export writes a dozen of these per flow).
inline void store_uint_n(std::byte* p, std::uint64_t v, std::size_t length) {
  switch (length) {
    case 1:
      p[0] = static_cast<std::byte>(v & 0xff);
      return;
    case 2:
      store_be<std::uint16_t>(p, static_cast<std::uint16_t>(v));
      return;
    case 4:
      store_be<std::uint32_t>(p, static_cast<std::uint32_t>(v));
      return;
    case 8:
      store_be<std::uint64_t>(p, v);
      return;
    default:
      for (std::size_t i = 0; i < length; ++i) {
        p[length - 1 - i] = i < 8 ? static_cast<std::byte>((v >> (8 * i)) & 0xff) : std::byte{0};
      }
  }
}

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::byte>& out) : out_(out) {}

  [[nodiscard]] std::size_t size() const { return out_.size(); }

  template <class T>
  void put(T v) {
    std::size_t at = out_.size();
    out_.resize(at + sizeof(T));
    store_be<T>(out_.data() + at, v);
  }
  void u8(std::uint8_t v) { out_.push_back(static_cast<std::byte>(v)); }
  void u16(std::uint16_t v) { put(v); }
  void u32(std::uint32_t v) { put(v); }
  void u64(std::uint64_t v) { put(v); }
  // The low `length` bytes of v, big-endian (reduced-size encoding, RFC 7011 §6.2).
  void uint_n(std::uint64_t v, std::size_t length) {
    const std::size_t at = out_.size();
    out_.resize(at + length);
    store_uint_n(out_.data() + at, v, length);
  }
  void bytes(Bytes b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void zeros(std::size_t n) { out_.resize(out_.size() + n); }
  // Overwrites a big-endian u16 already written at `at` (length fields patched after the fact).
  void patch_u16(std::size_t at, std::uint16_t v) { store_be<std::uint16_t>(out_.data() + at, v); }
  void patch_u32(std::size_t at, std::uint32_t v) { store_be<std::uint32_t>(out_.data() + at, v); }

 private:
  std::vector<std::byte>& out_;
};

}  // namespace flowsec
