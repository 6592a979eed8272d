#include "ipfix/ie_registry.hpp"

#include <algorithm>
#include <string>

namespace flowsec::ipfix {

std::string_view to_string(DataType t) {
  switch (t) {
    case DataType::octetArray:
      return "octetArray";
    case DataType::unsigned8:
      return "unsigned8";
    case DataType::unsigned16:
      return "unsigned16";
    case DataType::unsigned32:
      return "unsigned32";
    case DataType::unsigned64:
      return "unsigned64";
    case DataType::signed8:
      return "signed8";
    case DataType::signed16:
      return "signed16";
    case DataType::signed32:
      return "signed32";
    case DataType::signed64:
      return "signed64";
    case DataType::float32:
      return "float32";
    case DataType::float64:
      return "float64";
    case DataType::boolean:
      return "boolean";
    case DataType::macAddress:
      return "macAddress";
    case DataType::string:
      return "string";
    case DataType::dateTimeSeconds:
      return "dateTimeSeconds";
    case DataType::dateTimeMilliseconds:
      return "dateTimeMilliseconds";
    case DataType::dateTimeMicroseconds:
      return "dateTimeMicroseconds";
    case DataType::dateTimeNanoseconds:
      return "dateTimeNanoseconds";
    case DataType::ipv4Address:
      return "ipv4Address";
    case DataType::ipv6Address:
      return "ipv6Address";
    case DataType::basicList:
      return "basicList";
    case DataType::subTemplateList:
      return "subTemplateList";
    case DataType::subTemplateMultiList:
      return "subTemplateMultiList";
  }
  return "octetArray";
}

std::span<const ElementInfo> all_elements() {
  return {detail::kElements, detail::kElementCount};
}

const ElementInfo* find_element(std::uint32_t enterprise, std::uint16_t id) {
  const auto all = all_elements();
  auto it =
      std::lower_bound(all.begin(), all.end(), std::pair{enterprise, id},
                       [](const ElementInfo& e, const std::pair<std::uint32_t, std::uint16_t>& k) {
                         return std::pair{e.enterprise, e.id} < k;
                       });
  if (it == all.end() || it->enterprise != enterprise || it->id != id) return nullptr;
  return &*it;
}

const ElementInfo* find_element(std::string_view name) {
  if (!name.empty() && name.front() == '%') name.remove_prefix(1);
  const std::span<const detail::NameEntry> names{detail::kNprobeNames, detail::kNprobeNameCount};
  auto it =
      std::lower_bound(names.begin(), names.end(), name,
                       [](const detail::NameEntry& e, std::string_view n) { return e.name < n; });
  if (it != names.end() && it->name == name) return find_element(it->enterprise, it->id);
  // Not an nProbe name: try the IANA / ntop element names.
  for (const ElementInfo& e : all_elements()) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

ElementId element_for_v9_type(std::uint16_t type) {
  if (type >= kNtopV9Base) {
    const auto id = static_cast<std::uint16_t>(type - kNtopV9Base);
    if (find_element(kNtopPen, id) != nullptr) return {kNtopPen, id};
  }
  constexpr std::uint16_t kHighBit = 0x8000;
  if ((type & kHighBit) != 0) return {kV9HighTypePen, static_cast<std::uint16_t>(type & ~kHighBit)};
  return {kIanaPen, type};
}

std::string output_name(std::uint32_t enterprise, std::uint16_t id) {
  if (const ElementInfo* e = find_element(enterprise, id)) {
    return std::string(e->nprobe_name.empty() ? e->name : e->nprobe_name);
  }
  std::string name = "E";
  name += std::to_string(enterprise);
  name += '_';
  name += std::to_string(id);
  return name;
}

}  // namespace flowsec::ipfix
