#pragma once
// Decode errors of every flow codec. A decoder that meets malformed input
// returns Error{code, offset}: `offset` is the byte position in the input
// message where the problem was found. Codes are stable and finite so that
// callers count them by reason (SPEC §7) with describe() as the label.
#include <cstdint>
#include <string_view>

#include "common/result.hpp"

namespace flowsec::ipfix {

enum class Errc : std::uint8_t {
  // Message header
  truncated_header,     // fewer bytes than the fixed header
  bad_version,          // version field is not what this decoder reads
  length_exceeds_data,  // header length larger than the bytes received
  length_below_data,    // bytes received beyond the header length (datagram)
  length_too_small,     // header length below the minimum message size
  // Sets (IPFIX, v9 flowsets)
  set_too_short,         // set length under 4
  set_overruns_message,  // set length beyond the end of the message
  set_id_reserved,       // IPFIX set id 0, 1 or 4..255 (RFC 7011 §3.3.2)
  // Templates
  template_truncated,        // template record cut short by the end of its set
  template_zero_fields,      // field count 0 on a non-withdrawal template
  template_too_many_fields,  // field count above limits::kMaxFieldsPerTemplate
  template_id_reserved,      // template id below 256
  template_scope_count,      // options scope count 0, or above the field count
  template_field_length,     // fixed field length 0, or template record longer than 65535
  template_limit,            // session already holds limits::kMaxTemplatesPerSession
  // Data records
  varlen_truncated,  // variable-length field (RFC 7011 §7) runs past its set
  // NetFlow v5 / v9
  count_mismatch,  // header count disagrees with the records present
  // sFlow v5
  sflow_address_type,   // agent address type neither 1 (IPv4) nor 2 (IPv6)
  sflow_sample_length,  // sample length lies
  sflow_record_length,  // flow/counter record length lies
  sflow_too_many,       // sample or record count above its cap
  // Stream framing (RFC 7011 §10.4.1 / §10.5.1)
  stream_bad_version,  // next message in the stream is not IPFIX
  stream_bad_length,   // message length outside 16..65535
  stream_truncated,    // stream ended inside a message
  // Anything else that cannot be a valid message
  unsupported_version,  // first bytes name no format we decode
};

[[nodiscard]] std::string_view describe(Errc code);
inline constexpr std::size_t kErrcCount = static_cast<std::size_t>(Errc::unsupported_version) + 1;

struct Error {
  Errc code;
  std::uint32_t offset = 0;
  friend bool operator==(const Error&, const Error&) = default;
};

template <class T>
using Result = Expected<T, Error>;

[[nodiscard]] inline tl::unexpected<Error> fail(Errc code, std::size_t offset) {
  return tl::unexpected<Error>(Error{code, static_cast<std::uint32_t>(offset)});
}

}  // namespace flowsec::ipfix
