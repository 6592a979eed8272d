// libFuzzer target: the classic pcap record walker (capture/pcap_records.hpp). The first 24
// bytes are the global header, read as libpcap reads it; the rest is the record area.
// Whatever the bytes, the walker stays inside its input, hands out no more than the snapshot
// length, moves forward by whole records and ends exactly at the end or with a reason.
// The same input is then read through PcapRecordReader in pieces of sizes taken from the
// input, with a buffer of 16 to 271 bytes (grown for larger records), refilled as
// offline_source.cpp does: it must yield the same records, bytes, end or error, and offset.
// Seeds (corpus/pcap_records/, written for this target by hand): two packets native
// microsecond, the same big-endian nanosecond, one cut in a packet's data, a caplen above
// the snapshot then one above the maximum, and a version 2.3 file with either length order.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "capture/pcap_records.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowsec::capture;
  const std::span<const std::byte> file{reinterpret_cast<const std::byte*>(data), size};
  auto format = parse_pcap_file_header(file);
  if (!format) {
    if (format.error().empty()) __builtin_trap();
    return 0;
  }
  if (format->snapshot == 0 || format->snapshot > max_caplen_for_link_type(format->link_type)) {
    __builtin_trap();
  }
  const auto records = file.subspan(kPcapFileHeaderSize);
  PcapRecordWalker walker(records, *format);
  PcapRecord r;
  std::size_t before = 0;
  for (;;) {
    const PcapStep step = walker.next(r);
    if (step == PcapStep::end) {
      if (walker.offset() != records.size() || !walker.error().empty()) __builtin_trap();
      break;
    }
    if (step == PcapStep::damaged) {
      if (walker.error().empty() || walker.offset() != before) __builtin_trap();
      break;
    }
    const std::size_t after = walker.offset();
    // The record's data is inside the input, right after its 16-byte header.
    if (r.data.size() != r.caplen || r.caplen > format->snapshot) __builtin_trap();
    if (r.data.data() != records.data() + before + kPcapRecordHeaderSize) __builtin_trap();
    if (after < before + kPcapRecordHeaderSize + r.caplen || after > records.size()) {
      __builtin_trap();
    }
    if (r.caplen > 0) {
      // Touch both ends so that ASan sees a read outside the input.
      volatile std::byte sink = r.data.front();
      sink = r.data.back();
      (void)sink;
    }
    before = after;
  }
  // Both ends are sticky.
  const PcapStep again = walker.next(r);
  if (again == PcapStep::record) __builtin_trap();

  // The same records through the reader, the input handed out in pieces.
  PcapRecordWalker whole(records, *format);
  PcapRecordReader reader(16 + (size > 0 ? data[size - 1] : 0));
  std::size_t at = 0, reads = 0;
  reader.start(*format, [&](std::byte* into, std::size_t n) -> long {
    const std::size_t piece = 1 + (size > 0 ? data[reads++ % size] : 0);
    n = std::min({n, records.size() - at, piece});
    std::memcpy(into, records.data() + at, n);
    at += n;
    return static_cast<long>(n);
  });
  PcapRecord a, b;
  for (std::size_t guard = 0;; ++guard) {
    if (guard > 4 * size + 16) __builtin_trap();  // each refill makes progress
    const PcapStep got = reader.next(b);
    if (got == PcapStep::need_more) {
      reader.refill();
      continue;
    }
    const PcapStep want = whole.next(a);
    if (got != want) __builtin_trap();
    if (got != PcapStep::record) {
      if (reader.error() != whole.error() || reader.consumed() != whole.offset()) {
        __builtin_trap();
      }
      break;
    }
    if (a.timestamp_ns != b.timestamp_ns || a.caplen != b.caplen ||
        a.wire_length != b.wire_length || reader.consumed() != whole.offset() ||
        !std::equal(a.data.begin(), a.data.end(), b.data.begin(), b.data.end())) {
      __builtin_trap();
    }
  }
  return 0;
}
