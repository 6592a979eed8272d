#pragma once
// Cisco NetFlow v5: the fixed export format (24-byte header, up to 30 48-byte
// flow records per datagram), its encoder, and the internal template that the
// v5 decoder (decode_netflow_v5 in decode.hpp) uses to present v5 records as
// IPFIX data records.
//
// Contract: plain value types in host byte order; encode_netflow_v5() is a pure
// function (no I/O, no shared state, callable from any thread) that allocates
// only its result. netflow_v5_template() returns one immutable template shared
// by every v5 record in the program; it is never sent on the wire (id 0).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ipfix/template.hpp"

namespace flowsec::ipfix {

inline constexpr std::uint16_t kNetflowV5Version = 5;
inline constexpr std::size_t kNetflowV5HeaderSize = 24;
inline constexpr std::size_t kNetflowV5RecordSize = 48;
// Internal template id: below 256, so no builder ever writes it to the wire.
inline constexpr std::uint16_t kNetflowV5TemplateId = 0;

// The header minus version and count, which the encoder derives.
struct NetflowV5Header {
  std::uint32_t sys_uptime_ms = 0;
  std::uint32_t unix_secs = 0;
  std::uint32_t unix_nsecs = 0;
  std::uint32_t flow_sequence = 0;  // flows seen before the first record of this datagram
  std::uint8_t engine_type = 0;
  std::uint8_t engine_id = 0;
  std::uint16_t sampling_interval = 0;  // as on the wire: 2 bits mode, 14 bits interval
};

struct NetflowV5Record {
  std::uint32_t src_addr = 0;  // IPv4, host order
  std::uint32_t dst_addr = 0;
  std::uint32_t next_hop = 0;
  std::uint16_t input = 0;  // SNMP ifIndex
  std::uint16_t output = 0;
  std::uint32_t packets = 0;
  std::uint32_t octets = 0;
  std::uint32_t first = 0;  // sysUptime (ms) at the first packet
  std::uint32_t last = 0;   // sysUptime (ms) at the last packet
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint8_t tcp_flags = 0;
  std::uint8_t protocol = 0;
  std::uint8_t tos = 0;
  std::uint16_t src_as = 0;
  std::uint16_t dst_as = 0;
  std::uint8_t src_mask = 0;
  std::uint8_t dst_mask = 0;
};

// One v5 datagram. Returns an empty vector when `records` is empty or holds more
// than limits::kMaxV5Records (30): a datagram with either count is invalid and our
// own decoder rejects it, so the caller splits flows into chunks of at most 30.
[[nodiscard]] std::vector<std::byte> encode_netflow_v5(const NetflowV5Header& header,
                                                       std::span<const NetflowV5Record> records);

// The template describing one 48-byte v5 record as IPFIX elements, field by field
// and byte for byte, so decoded records are views of the datagram itself.
[[nodiscard]] const TemplatePtr& netflow_v5_template();

}  // namespace flowsec::ipfix
