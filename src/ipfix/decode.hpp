#pragma once
// Sans-I/O decoders: one message (datagram payload, or one framed stream
// message) in, records appended to a RecordBatch out.
//
// Contract for every decoder here:
//  - Input is untrusted. Malformed input returns an Error {code, offset} and
//    never crashes, hangs or allocates more than the input's own size.
//  - All or nothing: on error the batch is rolled back to its state before
//    the call and no template change is kept, so a bad message is dropped whole
//    (SPEC §9: "a malformed UDP message is dropped and counted").
//  - Data sets for templates the store does not hold are skipped and counted
//    in DecodeStats::unknown_template_sets; they are not an error.
//  - Output records are IPFIX-shaped (record.hpp): v9 field types map to IPFIX
//    elements (element_for_v9_type), v5 and sFlow use fixed internal templates.
// The caller owns the TemplateStore (one per transport session) and the batch.
#include <cstdint>
#include <vector>

#include "common/bytes.hpp"
#include "ipfix/errors.hpp"
#include "ipfix/record.hpp"
#include "ipfix/template_store.hpp"

namespace flowsec::ipfix {

struct DecodeStats {
  Protocol protocol = Protocol::ipfix;
  std::uint32_t observation_domain = 0;
  std::uint32_t sequence = 0;
  std::uint32_t templates = 0;           // template + options template records accepted
  std::uint32_t withdrawals = 0;         // withdrawal records seen
  std::uint32_t templates_rejected = 0;  // refused by the per-session cap
  std::uint32_t data_records = 0;        // records appended to the batch
  std::uint32_t options_records = 0;     // of which described by options templates
  std::uint32_t unknown_template_sets = 0;
  std::uint32_t unknown_template_bytes = 0;
  std::uint32_t skipped_sets = 0;  // reserved set ids 4..255 skipped (RFC 7011 §3.3.2)
  // sFlow: counter samples decoded (appended to the caller's vector when one is given).
  std::uint32_t counter_samples = 0;
};

// RFC 7011: one IPFIX message.
[[nodiscard]] Result<DecodeStats> decode_ipfix(Bytes message, TemplateStore& templates,
                                               RecordBatch& out);
// RFC 3954: one NetFlow v9 export packet.
[[nodiscard]] Result<DecodeStats> decode_netflow_v9(Bytes packet, TemplateStore& templates,
                                                    RecordBatch& out);
// Cisco NetFlow v5: one export datagram (header + up to 30 records).
[[nodiscard]] Result<DecodeStats> decode_netflow_v5(Bytes packet, RecordBatch& out);

// sFlow v5 generic interface counters (counter record enterprise 0, format 1).
struct SflowInterfaceCounters {
  IpAddress agent;
  std::uint32_t sub_agent_id = 0;
  std::uint32_t source_id = 0;  // data source (type << 24 | index)
  std::uint32_t if_index = 0;
  std::uint32_t if_type = 0;
  std::uint64_t if_speed = 0;
  std::uint32_t if_direction = 0;
  std::uint32_t if_status = 0;
  std::uint64_t in_octets = 0;
  std::uint32_t in_ucast_pkts = 0, in_multicast_pkts = 0, in_broadcast_pkts = 0;
  std::uint32_t in_discards = 0, in_errors = 0, in_unknown_protos = 0;
  std::uint64_t out_octets = 0;
  std::uint32_t out_ucast_pkts = 0, out_multicast_pkts = 0, out_broadcast_pkts = 0;
  std::uint32_t out_discards = 0, out_errors = 0, promiscuous_mode = 0;
};
// sFlow v5 datagram: flow samples (sampled packet headers parsed into flow records)
// and, when `counters` is non-null, generic interface counter samples.
[[nodiscard]] Result<DecodeStats> decode_sflow_v5(
    Bytes datagram, RecordBatch& out, std::vector<SflowInterfaceCounters>* counters = nullptr);

// Picks the decoder from the first bytes (v5, v9, IPFIX version 10, sFlow version 5 as u32).
[[nodiscard]] Result<DecodeStats> decode_any(
    Bytes message, TemplateStore& templates, RecordBatch& out,
    std::vector<SflowInterfaceCounters>* counters = nullptr);

}  // namespace flowsec::ipfix
