// libFuzzer target: the L2–L4 packet parser (SPEC §9), every link type it
// accepts, with and without tunnel stripping. The first byte picks both.
#include <array>
#include <cstddef>
#include <cstdint>

#include "packet/parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowsec::packet;
  if (size < 1) return 0;
  static constexpr std::array kLinkTypes = {
      link_type::kNull, link_type::kEthernet, link_type::kRawDlt12,
      link_type::kRaw,  link_type::kLoop,     link_type::kLinuxSll,
      link_type::kIpv4, link_type::kIpv6,     link_type::kLinuxSll2};
  ParseOptions opts;
  opts.strip_tunnels = (data[0] & 0x80) != 0;
  const int lt = kLinkTypes[(data[0] & 0x7f) % kLinkTypes.size()];
  const std::span<const std::byte> frame{reinterpret_cast<const std::byte*>(data + 1), size - 1};
  auto r = parse_packet(lt, frame, opts);
  if (r && r->is_ip() && r->has_l4) {
    // Offsets the parser reports always lie inside the frame.
    if (r->l4_offset > frame.size() || r->l3_offset > r->l4_offset) __builtin_trap();
  }
  return 0;
}
