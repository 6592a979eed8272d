// NetFlow v5 decoder. See decode.hpp for the contract and netflow_v5.hpp for
// the format. The datagram is copied into the batch once; each 48-byte record is
// a view into that copy, described by the fixed internal v5 template.
#include "common/bytes.hpp"
#include "ipfix/decode.hpp"
#include "ipfix/limits.hpp"
#include "ipfix/netflow_v5.hpp"

namespace flowsec::ipfix {

Result<DecodeStats> decode_netflow_v5(Bytes packet, RecordBatch& out) {
  // Header: version, count, sysUptime, unix_secs, unix_nsecs, flow_sequence,
  // engine_type, engine_id, sampling_interval.
  if (packet.size() < kNetflowV5HeaderSize) return fail(Errc::truncated_header, 0);
  const std::byte* p = packet.data();
  if (load_be<std::uint16_t>(p) != kNetflowV5Version) return fail(Errc::bad_version, 0);
  const std::size_t count = load_be<std::uint16_t>(p + 2);
  // Cisco's format: 1..30 records, nothing else in the datagram. A count that
  // disagrees with the size either way means we cannot trust either.
  if (count == 0 || count > limits::kMaxV5Records ||
      packet.size() != kNetflowV5HeaderSize + kNetflowV5RecordSize * count) {
    return fail(Errc::count_mismatch, 2);
  }

  MessageMeta meta;
  meta.protocol = Protocol::netflow_v5;
  meta.sys_uptime_ms = load_be<std::uint32_t>(p + 4);
  meta.export_time = load_be<std::uint32_t>(p + 8);
  meta.export_time_nsec = load_be<std::uint32_t>(p + 12);
  meta.sequence = load_be<std::uint32_t>(p + 16);
  const auto engine_type = static_cast<std::uint8_t>(p[20]);
  const auto engine_id = static_cast<std::uint8_t>(p[21]);
  meta.observation_domain = (std::uint32_t{engine_type} << 8) | engine_id;

  // Nothing below can fail, so the batch needs no rollback mark.
  const std::uint32_t base = out.store(packet);
  const std::uint32_t message = out.add_message(meta);
  const std::uint16_t tmpl = out.use_template(netflow_v5_template());
  std::uint32_t at = base + static_cast<std::uint32_t>(kNetflowV5HeaderSize);
  for (std::size_t i = 0; i < count; ++i) {
    out.add(at, static_cast<std::uint16_t>(kNetflowV5RecordSize), tmpl, message);
    at += static_cast<std::uint32_t>(kNetflowV5RecordSize);
  }

  DecodeStats stats;
  stats.protocol = Protocol::netflow_v5;
  stats.observation_domain = meta.observation_domain;
  stats.sequence = meta.sequence;
  stats.data_records = static_cast<std::uint32_t>(count);
  return stats;
}

}  // namespace flowsec::ipfix
