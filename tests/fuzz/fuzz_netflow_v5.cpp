// libFuzzer target: one NetFlow v5 datagram.
#include <cstddef>
#include <cstdint>

#include "ipfix/decode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowsec::ipfix;
  RecordBatch batch;
  auto r = decode_netflow_v5({reinterpret_cast<const std::byte*>(data), size}, batch);
  if (r) {
    for (std::size_t i = 0; i < batch.size(); ++i) (void)batch[i].unsigned_field(0, 1);
  } else if (!batch.empty()) {
    __builtin_trap();  // all-or-nothing contract broken
  }
  return 0;
}
