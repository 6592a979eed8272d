#pragma once
// FlowRecord: one bidirectional flow as the flow cache hands it over when it
// ends (SPEC §5). A plain value type with no pointers, so the cache can copy
// it into an export batch and forget it.
//
// Direction (nProbe's convention, which its IN_/OUT_ field names carry): the
// key's source is the client — the side that sent the first packet seen, or
// the SYN sender for TCP — and "in" counts client → server packets
// (IN_BYTES = src→dst), "out" server → client (OUT_BYTES = dst→src).
//
// Times are packet timestamps in nanoseconds since 1970 (SPEC §5: packet time
// drives everything, so a pcap gives the same flows on every run).
#include <array>
#include <cstdint>
#include <string_view>

namespace flowsec::flow {

// IANA flowEndReason (IE 136) values, RFC 5102 §5.11.3.
enum class EndReason : std::uint8_t {
  idle_timeout = 0x01,
  active_timeout = 0x02,
  end_of_flow = 0x03,        // TCP FIN from both sides, or RST
  forced_end = 0x04,         // shutdown or end of the capture file
  lack_of_resources = 0x05,  // evicted early because the cache was full (-M)
};
[[nodiscard]] std::string_view to_string(EndReason r);

struct FlowKey {
  // Network byte order; IPv4 uses the first 4 bytes, the rest are zero.
  std::array<std::uint8_t, 16> src_addr{};
  std::array<std::uint8_t, 16> dst_addr{};
  std::uint16_t src_port = 0;  // ICMP: 0 (type/code are in FlowRecord)
  std::uint16_t dst_port = 0;
  std::uint16_t vlan = 0;       // outer VLAN id, 0 when untagged
  std::uint8_t ip_version = 0;  // 4 or 6
  std::uint8_t protocol = 0;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

// Counters of one direction of a flow.
struct DirectionCounters {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;                  // IP length (header + payload), as NetFlow counts
  std::uint32_t retransmitted_packets = 0;  // TCP segments whose data was seen before
  std::uint32_t retransmitted_bytes = 0;
  std::uint32_t out_of_order_packets = 0;  // TCP segments arriving below the highest sequence
  std::uint32_t fragments = 0;             // IP fragments
  std::uint16_t tcp_flags = 0;             // OR of every segment's flags (12 bits, RFC 7125)
  std::uint16_t tcp_window_max = 0;
  std::uint8_t tos = 0;  // TOS / traffic class of the first packet
};

struct FlowRecord {
  FlowKey key;
  std::int64_t first_ns = 0;                 // first packet in either direction
  std::int64_t last_ns = 0;                  // last packet in either direction
  DirectionCounters in;                      // client → server
  DirectionCounters out;                     // server → client
  std::array<std::uint8_t, 6> client_mac{};  // source MAC of the client's packets
  std::array<std::uint8_t, 6> server_mac{};  // destination MAC of the client's packets
  std::uint8_t icmp_type = 0;                // first ICMP/ICMPv6 packet's type and code
  std::uint8_t icmp_code = 0;
  std::uint8_t min_ttl = 0;  // of the client's packets
  std::uint8_t max_ttl = 0;
  EndReason end_reason = EndReason::idle_timeout;
  // TCP three-way handshake: half the SYN→SYN-ACK and SYN-ACK→ACK times as the probe saw
  // them (nProbe's CLIENT_/SERVER_NW_LATENCY_MS), in microseconds; 0 when not seen.
  std::uint32_t client_latency_us = 0;  // probe ↔ client
  std::uint32_t server_latency_us = 0;  // probe ↔ server
  // nDPI classification (0/0 = unknown or --no-l7): master and application protocol ids.
  std::uint16_t l7_master = 0;
  std::uint16_t l7_app = 0;
  std::uint8_t l7_confidence = 0;
  std::uint32_t tunnel_id = 0;  // GRE key, VXLAN VNI or GTP-U TEID of the outer tunnel
};

}  // namespace flowsec::flow
