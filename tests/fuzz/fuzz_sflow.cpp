// libFuzzer target: one sFlow v5 datagram, flow and counter samples.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ipfix/decode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowsec::ipfix;
  RecordBatch batch;
  std::vector<SflowInterfaceCounters> counters;
  auto r = decode_sflow_v5({reinterpret_cast<const std::byte*>(data), size}, batch, &counters);
  if (!r && !batch.empty()) __builtin_trap();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].for_each_field([](const FieldValue& v) { (void)v.value.size(); });
  }
  return 0;
}
