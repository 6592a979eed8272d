#pragma once
// nProbe -T template strings (SPEC §2 "-T, --flow-templ"): "%IPV4_SRC_ADDR
// %IN_BYTES %L7_PROTO" → the fields to export.
//
// Contract: pure functions over the immutable element registry; safe from any
// thread. Parsing is a start-up step, so errors are plain text naming the
// offending token, ready for the one-line start-up error.
//
// Syntax accepted: names separated by whitespace and/or commas; each name may
// start with '%' (a '%' also starts a new name, so "%A%B" is two names, as
// nProbe users write it); nProbe names and aliases (IN_BYTES), IANA names
// (octetDeltaCount) and ntop names. "@NTOPNG@" expands to nProbe's ntopng field
// list; names in that list the registry does not know are skipped and reported,
// not an error. A field named twice is kept once (the first time) and reported.
// Each field gets the registry's default length: nProbe's length where nProbe
// has the field, else the type's natural length; kVariableLength for strings,
// octet arrays and lists (RFC 7011 §7).
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "ipfix/template.hpp"

namespace flowsec::ipfix {

// nProbe's template when -T is absent (shared/data/README.md).
inline constexpr std::string_view kNprobeDefaultTemplate =
    "%IPV4_SRC_ADDR %IPV4_DST_ADDR %INPUT_SNMP %OUTPUT_SNMP %IN_PKTS %IN_BYTES %FIRST_SWITCHED "
    "%LAST_SWITCHED %L4_SRC_PORT %L4_DST_PORT %TCP_FLAGS %PROTOCOL %SRC_TOS %SRC_AS %DST_AS";

inline constexpr std::string_view kNtopngMacro = "@NTOPNG@";
// What @NTOPNG@ expands to in probe mode (shared/data/README.md).
inline constexpr std::string_view kNtopngMacroFields =
    "%IN_SRC_MAC %OUT_DST_MAC %INPUT_SNMP %OUTPUT_SNMP %SRC_VLAN %IPV4_SRC_ADDR %IPV4_DST_ADDR "
    "%L4_SRC_PORT %L4_DST_PORT %IPV6_SRC_ADDR %IPV6_DST_ADDR %SRC_TOS %DST_TOS "
    "%IP_PROTOCOL_VERSION %PROTOCOL %L7_PROTO %L7_CONFIDENCE %IN_BYTES %IN_PKTS %OUT_BYTES "
    "%OUT_PKTS %FIRST_SWITCHED %LAST_SWITCHED %CLIENT_TCP_FLAGS %SERVER_TCP_FLAGS %L7_PROTO_RISK "
    "%L7_RISK_SCORE %EXPORTER_IPV4_ADDRESS %DIRECTION %SAMPLING_INTERVAL %TOTAL_FLOWS_EXP "
    "%NPROBE_IPV4_ADDRESS %NPROBE_INSTANCE_NAME %FLOW_SOURCE %JA4C_HASH %UNIQUE_SOURCE_ID "
    "%CLIENT_NW_LATENCY_MS %SERVER_NW_LATENCY_MS %APPL_LATENCY_MS %TCP_WIN_MAX_IN "
    "%TCP_WIN_MAX_OUT %OOORDER_IN_PKTS %OOORDER_OUT_PKTS %RETRANSMITTED_IN_PKTS "
    "%RETRANSMITTED_OUT_PKTS %SRC_FRAGMENTS %DST_FRAGMENTS %L7_INFO %DNS_QUERY %DNS_QUERY_TYPE "
    "%DNS_RET_CODE %HTTP_URL %HTTP_SITE %HTTP_METHOD %HTTP_RET_CODE %TLS_SERVER_NAME "
    "%BITTORRENT_HASH %SRC_TOS %DST_TOS %HTTP_USER_AGENT %L7_RISK_INFO";

struct ParsedTemplate {
  std::vector<FieldSpec> fields;
  // Names from a macro that the registry does not know (the caller warns about them).
  std::vector<std::string> skipped;
  // Fields the text names more than once (only the first is kept). Repeats inside
  // @NTOPNG@ itself (it lists SRC_TOS and DST_TOS twice) are dropped silently.
  std::vector<std::string> duplicates;
};

// Errors: "unknown template field 'FOO'", "unknown template macro '@FOO@'",
// "empty template", "template has N fields, more than the limit of 512".
[[nodiscard]] Expected<ParsedTemplate, std::string> parse_template_string(std::string_view text);

// The fields of kNprobeDefaultTemplate.
[[nodiscard]] std::vector<FieldSpec> nprobe_default_template();

}  // namespace flowsec::ipfix
