// Protocol dispatch for datagram payloads (decode.hpp). Every format we read
// starts with its version number: NetFlow v5/v9 and IPFIX as a 16-bit field
// (Cisco v5, RFC 3954 §5.1, RFC 7011 §3.1), sFlow v5 as a 32-bit field
// (sFlow v5 spec §4), whose first 16 bits are therefore 0.
#include "ipfix/decode.hpp"

namespace flowsec::ipfix {

Result<DecodeStats> decode_any(Bytes message, TemplateStore& templates, RecordBatch& out,
                               std::vector<SflowInterfaceCounters>* counters) {
  if (message.size() < 4) return fail(Errc::truncated_header, 0);
  switch (load_be<std::uint16_t>(message.data())) {
    case 10:
      return decode_ipfix(message, templates, out);
    case 9:
      return decode_netflow_v9(message, templates, out);
    case 5:
      return decode_netflow_v5(message, out);
    default:
      break;
  }
  if (load_be<std::uint32_t>(message.data()) == 5) return decode_sflow_v5(message, out, counters);
  return fail(Errc::unsupported_version, 0);
}

}  // namespace flowsec::ipfix
