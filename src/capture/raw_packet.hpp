#pragma once
// One captured frame as every capture source hands it out. A RawPacket does not own
// its bytes: `data` points into the source's buffer (a file reader's arena or the
// kernel ring) and is valid only as long as the source says (see CaptureSource and
// PcapFile). Copy the bytes to keep them longer.
#include <cstddef>
#include <cstdint>
#include <span>

namespace flowsec::capture {

struct RawPacket {
  std::int64_t timestamp_ns = 0;    // since 1970
  std::uint32_t wire_length = 0;    // length on the wire (may exceed data.size())
  int link_type = 0;                // DLT_* / LINKTYPE_* value of the capture
  std::span<const std::byte> data;  // captured bytes
};

}  // namespace flowsec::capture
