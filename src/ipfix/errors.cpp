#include "ipfix/errors.hpp"

namespace flowsec::ipfix {

std::string_view describe(Errc code) {
  switch (code) {
    case Errc::truncated_header:
      return "truncated header";
    case Errc::bad_version:
      return "unexpected version number";
    case Errc::length_exceeds_data:
      return "message length larger than the data";
    case Errc::length_below_data:
      return "message length smaller than the data";
    case Errc::length_too_small:
      return "message length below the header size";
    case Errc::set_too_short:
      return "set length under 4";
    case Errc::set_overruns_message:
      return "set length beyond the message";
    case Errc::set_id_reserved:
      return "reserved set id";
    case Errc::template_truncated:
      return "truncated template record";
    case Errc::template_zero_fields:
      return "template with zero fields";
    case Errc::template_too_many_fields:
      return "template field count beyond the cap";
    case Errc::template_id_reserved:
      return "template id below 256";
    case Errc::template_scope_count:
      return "options template scope count invalid";
    case Errc::template_field_length:
      return "template field length invalid";
    case Errc::template_limit:
      return "too many templates in session";
    case Errc::varlen_truncated:
      return "variable-length field truncated";
    case Errc::count_mismatch:
      return "record count field disagrees with the data";
    case Errc::sflow_address_type:
      return "sFlow agent address type unknown";
    case Errc::sflow_sample_length:
      return "sFlow sample length invalid";
    case Errc::sflow_record_length:
      return "sFlow record length invalid";
    case Errc::sflow_too_many:
      return "sFlow sample or record count beyond the cap";
    case Errc::stream_bad_version:
      return "stream message is not IPFIX";
    case Errc::stream_bad_length:
      return "stream message length outside 16..65535";
    case Errc::stream_truncated:
      return "stream ended inside a message";
    case Errc::unsupported_version:
      return "not NetFlow v5/v9, IPFIX or sFlow v5";
  }
  return "unknown error";
}

}  // namespace flowsec::ipfix
