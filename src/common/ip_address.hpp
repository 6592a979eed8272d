#pragma once
// An IPv4 or IPv6 address as plain bytes, with text conversion. Value type;
// no allocation except to_string().
#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace flowsec {

class IpAddress {
 public:
  IpAddress() = default;
  static IpAddress v4(std::uint32_t host_order);
  static IpAddress v4(std::span<const std::byte, 4> network_order);
  static IpAddress v6(std::span<const std::byte, 16> network_order);
  // "192.0.2.1" or "2001:db8::1" (no brackets); nullopt if neither.
  static std::optional<IpAddress> parse(std::string_view text);

  [[nodiscard]] bool is_v6() const { return v6_; }
  [[nodiscard]] bool is_unspecified() const;
  // 4 bytes for IPv4, 16 for IPv6, network order.
  [[nodiscard]] std::span<const std::uint8_t> bytes() const {
    return {bytes_.data(), v6_ ? 16u : 4u};
  }
  [[nodiscard]] std::uint32_t v4_host_order() const;
  [[nodiscard]] std::string to_string() const;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
  bool v6_ = false;
};

// An address prefix ("192.0.2.0/24", "2001:db8::/32", or a single address) for
// allow-lists such as --collector-allow. An IPv4 network never contains an IPv6
// address: IPv4-mapped IPv6 peers are expected to be unmapped by the caller.
class IpNetwork {
 public:
  // nullopt on bad syntax, or a prefix length beyond the family's (32 / 128).
  static std::optional<IpNetwork> parse(std::string_view text);
  [[nodiscard]] bool contains(const IpAddress& address) const;
  [[nodiscard]] std::string to_string() const;

 private:
  IpAddress base_;
  std::uint8_t prefix_ = 0;
};

}  // namespace flowsec
