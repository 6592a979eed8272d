// libFuzzer target: one IPFIX message against a fresh stream-kind template
// store (so withdrawals are exercised), decoded twice so data sets can use the
// templates the first pass added.
#include <cstddef>
#include <cstdint>

#include "ipfix/decode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowsec::ipfix;
  TemplateStore store(TransportKind::stream);
  RecordBatch batch;
  const flowsec::Bytes in{reinterpret_cast<const std::byte*>(data), size};
  for (int pass = 0; pass < 2; ++pass) {
    const auto before = batch.size();
    auto r = decode_ipfix(in, store, batch);
    if (!r && batch.size() != before) __builtin_trap();
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].for_each_field([](const FieldValue& v) { (void)v.value.size(); });
  }
  return 0;
}
