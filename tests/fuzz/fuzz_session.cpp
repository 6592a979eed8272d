// libFuzzer target: a whole collector session. The input is a sequence of
// messages, each prefixed by a 2-byte length, all decoded against ONE template
// store, in turn as IPFIX, NetFlow v9 or whatever decode_any detects, so
// templates defined by one message meet data, withdrawals and redefinitions
// in later ones. The store's clock jumps between messages to exercise expiry.
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "common/bytes.hpp"
#include "common/clock.hpp"
#include "ipfix/decode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowsec::ipfix;
  using namespace std::chrono_literals;
  if (size < 1) return 0;
  flowsec::ManualClock clock;
  const auto kind = data[0] & 1 ? TransportKind::stream : TransportKind::datagram;
  TemplateStore store(kind, clock);
  RecordBatch batch;
  flowsec::ByteReader in({reinterpret_cast<const std::byte*>(data + 1), size - 1});
  while (auto len = in.u16()) {
    auto msg = in.take(*len % 4096);
    if (!msg) break;
    clock.advance(std::chrono::minutes(*len >> 12));  // 0..15 min per message
    (void)decode_any(*msg, store, batch);
    if (batch.size() > 100000) batch.clear();
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].for_each_field([](const FieldValue& v) { (void)v.value.size(); });
  }
  return 0;
}
