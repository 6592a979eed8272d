// libFuzzer target: the IPFIX stream framer fed the input in chunks whose
// sizes come from the input's first byte, as a TCP/TLS session would.
#include <cstddef>
#include <cstdint>

#include "ipfix/stream_framer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowsec::ipfix;
  if (size == 0) return 0;
  const std::size_t chunk = 1 + data[0] % 97;
  StreamFramer framer;
  std::size_t delivered = 0;
  for (std::size_t at = 1; at < size; at += chunk) {
    const std::size_t n = at + chunk <= size ? chunk : size - at;
    auto r = framer.feed({reinterpret_cast<const std::byte*>(data + at), n}, [&](flowsec::Bytes m) {
      // Framed messages always honour RFC 7011 §10 bounds.
      if (m.size() < 16 || m.size() > 65535) __builtin_trap();
      delivered += m.size();
    });
    if (!r) break;
  }
  if (framer.buffered() > 2 * 65535) __builtin_trap();
  (void)framer.finish();
  return 0;
}
