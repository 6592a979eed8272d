#pragma once
// The information-element registry: every IANA element (RFC 7012 / IANA
// "IPFIX Information Elements"), their RFC 5103 reverse twins (enterprise
// 29305), and ntop's enterprise-35632 elements, each with nProbe's field name
// where it has one. Generated at build-authoring time by
// tools/gen_ie_registry.py; immutable, so safe to read from any thread.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace flowsec::ipfix {

inline constexpr std::uint32_t kIanaPen = 0;
inline constexpr std::uint32_t kReversePen = 29305;  // RFC 5103 §6
inline constexpr std::uint32_t kNtopPen = 35632;
inline constexpr std::uint16_t kVariableLength = 65535;  // RFC 7011 §7
// ntop's NetFlow v9 field types 57472.. map to enterprise 35632, id = type - 57472.
inline constexpr std::uint16_t kNtopV9Base = 57472;

// RFC 7011 §6.1 abstract data types (RFC 6313 lists included).
enum class DataType : std::uint8_t {
  octetArray,
  unsigned8,
  unsigned16,
  unsigned32,
  unsigned64,
  signed8,
  signed16,
  signed32,
  signed64,
  float32,
  float64,
  boolean,
  macAddress,
  string,
  dateTimeSeconds,
  dateTimeMilliseconds,
  dateTimeMicroseconds,
  dateTimeNanoseconds,
  ipv4Address,
  ipv6Address,
  basicList,
  subTemplateList,
  subTemplateMultiList,
};

[[nodiscard]] std::string_view to_string(DataType t);

struct ElementInfo {
  std::uint32_t enterprise;
  std::uint16_t id;
  DataType type;
  // Length exported by default: nProbe's length where nProbe has the field, else the
  // natural length of the type; kVariableLength for strings, octet arrays and lists.
  std::uint16_t default_length;
  // NetFlow v9 field type carrying this element (ntop: 57xxx); 0 if v9 has none.
  std::uint16_t v9_type;
  std::string_view name;         // IANA name, reverseXxx, or ntop's name
  std::string_view nprobe_name;  // "IPV4_SRC_ADDR"; empty when nProbe has no name for it
};

// nullptr when unknown. Unknown elements are still decoded (as octetArray).
[[nodiscard]] const ElementInfo* find_element(std::uint32_t enterprise, std::uint16_t id);
// Accepts an nProbe name or alias ("IN_BYTES", "%IN_BYTES") or an IANA name ("octetDeltaCount").
[[nodiscard]] const ElementInfo* find_element(std::string_view name);
[[nodiscard]] std::span<const ElementInfo> all_elements();

// NetFlow v9 field types 32768..65535 that are not ntop's have no IANA counterpart (IANA
// ids are 15 bits, RFC 7011 §3.2). Like ipfixcol2 (src/core/netflow2ipfix/netflow9.c,
// NF_INCOMP_EN_HIGH) they become this enterprise with the low 15 bits as id, so they
// survive re-export unchanged.
inline constexpr std::uint32_t kV9HighTypePen = 4294967295u;

// Element carried by NetFlow v9 field type `type` outside an options scope (RFC 3954 §8:
// types below 32768 equal IANA ids; ntop's 57472.. types are enterprise 35632; other
// high types kV9HighTypePen).
struct ElementId {
  std::uint32_t enterprise = 0;
  std::uint16_t id = 0;
  friend bool operator==(const ElementId&, const ElementId&) = default;
};
[[nodiscard]] ElementId element_for_v9_type(std::uint16_t type);

// Name used as the key in text/JSON/CSV output: nProbe's name, else the IANA
// (or reverse, or ntop) name, else "E<enterprise>_<id>".
[[nodiscard]] std::string output_name(std::uint32_t enterprise, std::uint16_t id);

namespace detail {
struct NameEntry {
  std::string_view name;
  std::uint32_t enterprise;
  std::uint16_t id;
};
extern const ElementInfo kElements[];
extern const std::size_t kElementCount;
extern const NameEntry kNprobeNames[];
extern const std::size_t kNprobeNameCount;
}  // namespace detail

}  // namespace flowsec::ipfix
