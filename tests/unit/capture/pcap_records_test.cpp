// The classic pcap record walker and reader (capture/pcap_records.hpp) and the buffered
// reader that open_capture() makes of them for classic pcap files (offline_source.cpp).
//  - Walker tests run on byte arrays built here (PcapBuilder); the expected texts are
//    libpcap 1.10's (sf-pcap.c pcap_next_packet / pcap_check_header).
//  - Differential tests read every classic pcap under tests/data/ and the shared corpus
//    (/work/shared/data/corpus/, many of its nDPI files fuzzed or damaged), and the byte
//    arrays of the walker tests written to files, both through open_capture() and through
//    libpcap's own pcap_next_ex(), and require the same packets, bytes, end and error text;
//    once with the default buffer, once with a 300-byte one, so that refills fall inside
//    records all the time.
//    Byte order and precision in the data (little-endian host; swapped = big-endian file):
//      tests/data: swapped microsecond in probe_corpus/fuzz-2006-06-26-2594.pcap,
//        probe_corpus/fuzz-2006-09-29-28586.pcap and packets/sctp.cap; native nanosecond in
//        {capture/mixed,packets}/tcp-handshake-nano.pcap (Linux SLL) and in
//        probe_corpus/fuzz-2021-10-13.pcap (version 2.0, so lengths swapped; snaplen 0;
//        extension bits in the link type); everything else native microsecond, version 2.4.
//      shared corpus: the same swapped files under ndpi/, plus ndpi/nfsv2.pcap and
//        ndpi/nfsv3.pcap (swapped, version 2.1); native nanosecond also in
//        ndpi/someip_sd_sample.pcap. One file libpcap finds damaged.
//      No file has swapped nanoseconds: swapped_copy() makes swapped and nanosecond copies
//      of tcpreplay_test.pcap and nats.pcap in a temporary directory, and the hand-built
//      files cover all four formats.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "capture/capture_source.hpp"
#include "capture/pcap_records.hpp"
#include "support/temp_dir.hpp"

namespace flowsec::capture {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(FLOWSEC_TEST_DATA) + "/";
const std::string kSharedCorpus = "/work/shared/data/corpus";

constexpr int kDltEthernet = 1;
constexpr std::uint32_t kMaxCaplen = 262144;

// ---------------------------------------------------------------------------------------
// Building pcap files byte by byte.

class PcapBuilder {
 public:
  PcapBuilder& swapped(bool v) {
    swapped_ = v;
    return *this;
  }
  PcapBuilder& nanoseconds(bool v) {
    nano_ = v;
    return *this;
  }
  PcapBuilder& version(std::uint16_t major, std::uint16_t minor) {
    major_ = major;
    minor_ = minor;
    return *this;
  }
  PcapBuilder& snaplen(std::uint32_t v) {
    snaplen_ = v;
    return *this;
  }
  PcapBuilder& link_type(std::uint32_t v) {
    link_type_ = v;
    return *this;
  }
  // A record whose data is `data_bytes` long (caplen's worth when omitted) of a pattern
  // that differs from record to record.
  PcapBuilder& record(std::int32_t sec, std::int32_t frac, std::uint32_t caplen, std::uint32_t len,
                      std::size_t data_bytes = std::numeric_limits<std::size_t>::max()) {
    put32(records_, static_cast<std::uint32_t>(sec));
    put32(records_, static_cast<std::uint32_t>(frac));
    put32(records_, caplen);
    put32(records_, len);
    if (data_bytes == std::numeric_limits<std::size_t>::max()) data_bytes = caplen;
    for (std::size_t i = 0; i < data_bytes; ++i) {
      records_.push_back(static_cast<std::byte>((i * 7 + seed_) & 0xff));
    }
    seed_ += 31;
    return *this;
  }
  // Raw bytes appended to the record area (a cut header, garbage).
  PcapBuilder& raw(std::size_t n, std::byte value = std::byte{0x5a}) {
    records_.insert(records_.end(), n, value);
    return *this;
  }

  [[nodiscard]] std::vector<std::byte> header() const {
    std::vector<std::byte> h;
    put32(h, nano_ ? 0xa1b23c4d : 0xa1b2c3d4);
    put16(h, major_);
    put16(h, minor_);
    put32(h, 0);
    put32(h, 0);
    put32(h, snaplen_);
    put32(h, link_type_);
    return h;
  }
  [[nodiscard]] std::vector<std::byte> file() const {
    auto f = header();
    f.insert(f.end(), records_.begin(), records_.end());
    return f;
  }
  [[nodiscard]] const std::vector<std::byte>& records() const { return records_; }

 private:
  // Writes in this host's order, or the other one for a swapped file.
  void put32(std::vector<std::byte>& out, std::uint32_t v) const {
    if (swapped_) v = __builtin_bswap32(v);
    std::byte b[4];
    std::memcpy(b, &v, 4);
    out.insert(out.end(), b, b + 4);
  }
  void put16(std::vector<std::byte>& out, std::uint16_t v) const {
    if (swapped_) v = __builtin_bswap16(v);
    std::byte b[2];
    std::memcpy(b, &v, 2);
    out.insert(out.end(), b, b + 2);
  }

  bool swapped_ = false;
  bool nano_ = false;
  std::uint16_t major_ = 2;
  std::uint16_t minor_ = 4;
  std::uint32_t snaplen_ = 65535;
  std::uint32_t link_type_ = kDltEthernet;
  unsigned seed_ = 1;
  std::vector<std::byte> records_;
};

struct Walked {
  std::vector<PcapRecord> records;
  PcapStep last = PcapStep::record;
  std::string error;
  std::size_t offset = 0;
};

Walked walk(std::span<const std::byte> file, std::optional<PcapRecordFormat> format = {}) {
  Walked w;
  if (!format) {
    auto f = parse_pcap_file_header(file);
    EXPECT_TRUE(f.has_value()) << (f ? "" : f.error());
    if (!f) return w;
    format = *f;
  }
  PcapRecordWalker walker(file.subspan(kPcapFileHeaderSize), *format);
  PcapRecord r;
  for (int guard = 0; guard < 100000; ++guard) {
    w.last = walker.next(r);
    if (w.last != PcapStep::record) break;
    EXPECT_EQ(r.caplen, r.data.size());
    w.records.push_back(r);
  }
  w.error = walker.error();
  w.offset = walker.offset();
  // The end and the damage are sticky.
  EXPECT_EQ(walker.next(r), w.last);
  return w;
}

std::string damage(const PcapBuilder& b) {
  const auto file = b.file();
  const Walked w = walk(file);
  EXPECT_EQ(w.last, PcapStep::damaged);
  return w.error;
}

// ---------------------------------------------------------------------------------------
// Walker on hand-built bytes.

TEST(PcapRecords, NativeMicrosecondRecordsPointIntoTheInput) {
  PcapBuilder b;
  b.record(1700000000, 123456, 60, 60).record(1700000001, 999999, 42, 1514);
  const auto file = b.file();
  const Walked w = walk(file);
  EXPECT_EQ(w.last, PcapStep::end);
  EXPECT_TRUE(w.error.empty());
  EXPECT_EQ(w.offset, file.size() - kPcapFileHeaderSize);
  ASSERT_EQ(w.records.size(), 2u);
  EXPECT_EQ(w.records[0].timestamp_ns, 1700000000'123456000);
  EXPECT_EQ(w.records[0].caplen, 60u);
  EXPECT_EQ(w.records[0].wire_length, 60u);
  // Zero-copy: the data is the input's own bytes, right after each record header.
  EXPECT_EQ(w.records[0].data.data(), file.data() + 24 + 16);
  EXPECT_EQ(w.records[1].timestamp_ns, 1700000001'999999000);
  EXPECT_EQ(w.records[1].caplen, 42u);
  EXPECT_EQ(w.records[1].wire_length, 1514u);
  EXPECT_EQ(w.records[1].data.data(), file.data() + 24 + 16 + 60 + 16);
}

TEST(PcapRecords, EveryByteOrderAndPrecisionReadsTheSame) {
  for (const bool swapped : {false, true}) {
    for (const bool nano : {false, true}) {
      SCOPED_TRACE(std::string(swapped ? "swapped" : "native") + (nano ? " ns" : " us"));
      PcapBuilder b;
      b.swapped(swapped).nanoseconds(nano).snaplen(1600).link_type(12);
      b.record(1418145369, nano ? 924505488 : 924505, 76, 76).record(0, 1, 3, 200);
      const auto file = b.file();
      auto format = parse_pcap_file_header(file);
      ASSERT_TRUE(format.has_value()) << format.error();
      EXPECT_EQ(format->swapped, swapped);
      EXPECT_EQ(format->nanoseconds, nano);
      EXPECT_EQ(format->snapshot, 1600u);
      EXPECT_EQ(format->link_type, 12);
      EXPECT_EQ(format->lengths, PcapLengthOrder::caplen_first);
      const Walked w = walk(file);
      EXPECT_EQ(w.last, PcapStep::end);
      ASSERT_EQ(w.records.size(), 2u);
      EXPECT_EQ(w.records[0].timestamp_ns, nano ? 1418145369924505488 : 1418145369924505000);
      EXPECT_EQ(w.records[0].caplen, 76u);
      EXPECT_EQ(w.records[1].timestamp_ns, nano ? 1 : 1000);
      EXPECT_EQ(w.records[1].caplen, 3u);
      EXPECT_EQ(w.records[1].wire_length, 200u);
      // The data is never swapped.
      EXPECT_EQ(w.records[0].data[1], std::byte{8});
    }
  }
}

// libpcap 1.10 reads ts_sec and ts_usec as signed 32-bit values in a file of this host's
// byte order and as unsigned ones in a swapped file, and does not normalise them.
TEST(PcapRecords, TimestampsAsLibpcapReadsThem) {
  PcapBuilder b;
  b.record(-5, -7, 1, 1).record(std::numeric_limits<std::int32_t>::min(), 999999, 0, 0);
  b.record(std::numeric_limits<std::int32_t>::max(), 1000000, 0, 0);
  const auto file = b.file();
  const Walked w = walk(file);
  ASSERT_EQ(w.records.size(), 3u);
  EXPECT_EQ(w.records[0].timestamp_ns, -5'000'000'000 - 7'000);
  EXPECT_EQ(w.records[1].timestamp_ns, -2147483648'000000000 + 999'999'000);
  EXPECT_EQ(w.records[2].timestamp_ns, 2147483647'000000000 + 1'000'000'000);

  PcapBuilder sw;
  sw.swapped(true).nanoseconds(true).record(-5, -7, 1, 1);
  const auto swapped = sw.file();
  const Walked s = walk(swapped);
  ASSERT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.records[0].timestamp_ns, 4294967291'000000000 + 4294967289);
}

TEST(PcapRecords, EmptyRecordAreaIsAnEnd) {
  const auto file = PcapBuilder().file();
  const Walked w = walk(file);
  EXPECT_EQ(w.last, PcapStep::end);
  EXPECT_TRUE(w.records.empty());
  EXPECT_EQ(w.offset, 0u);
}

TEST(PcapRecords, HeaderCutAtEveryLength) {
  for (std::size_t n = 1; n < kPcapRecordHeaderSize; ++n) {
    PcapBuilder b;
    b.record(1, 2, 10, 10).raw(n);
    const auto file = b.file();
    const Walked w = walk(file);
    EXPECT_EQ(w.records.size(), 1u) << n;
    EXPECT_EQ(w.last, PcapStep::damaged) << n;
    EXPECT_EQ(w.error,
              "truncated dump file; tried to read 16 header bytes, only got " + std::to_string(n));
    EXPECT_EQ(w.offset, 16u + 10u) << "stops at the damaged record";
  }
}

TEST(PcapRecords, DataCutShort) {
  PcapBuilder b;
  b.record(1, 2, 10, 10).record(1, 2, 100, 100, 40);
  EXPECT_EQ(damage(b), "truncated dump file; tried to read 100 captured bytes, only got 40");
  PcapBuilder none;
  none.record(1, 2, 100, 100, 0);
  EXPECT_EQ(damage(none), "truncated dump file; tried to read 100 captured bytes, only got 0");
}

// libpcap names the snapshot length, not the maximum, when a caplen exceeds both (which for
// the classic magics is always, since the snapshot is capped at the maximum).
TEST(PcapRecords, CaplenAboveTheMaximum) {
  PcapBuilder b;
  b.snaplen(65535).record(1, 2, 300000, 300000, 0);
  EXPECT_EQ(damage(b), "invalid packet capture length 300000, bigger than snaplen of 65535");
  PcapBuilder unset;
  unset.snaplen(0).record(1, 2, kMaxCaplen + 1, 300000, 0);
  EXPECT_EQ(damage(unset), "invalid packet capture length 262145, bigger than snaplen of 262144");
  // Only a snapshot above the maximum (not from a classic header) names the maximum.
  PcapRecordFormat loose;
  loose.snapshot = 1'000'000;
  const auto file = unset.file();
  const Walked w = walk(file, loose);
  EXPECT_EQ(w.error, "invalid packet capture length 262145, bigger than maximum of 262144");
  // Exactly the maximum is a packet.
  PcapBuilder max;
  max.snaplen(0).record(1, 2, kMaxCaplen, kMaxCaplen);
  const auto max_file = max.file();
  const Walked m = walk(max_file);
  EXPECT_EQ(m.last, PcapStep::end);
  ASSERT_EQ(m.records.size(), 1u);
  EXPECT_EQ(m.records[0].caplen, kMaxCaplen);
}

TEST(PcapRecords, LargerMaximaOfSomeLinkTypes) {
  EXPECT_EQ(max_caplen_for_link_type(kDltEthernet), kMaxCaplen);
  EXPECT_EQ(max_caplen_for_link_type(231), 128u * 1024 * 1024);  // DLT_DBUS
  EXPECT_EQ(max_caplen_for_link_type(279), 8u * 1024 * 1024);    // DLT_EBHSCR
  EXPECT_EQ(max_caplen_for_link_type(249), 1024u * 1024);        // DLT_USBPCAP
  PcapBuilder dbus;
  dbus.link_type(231).snaplen(0).record(1, 2, 300000, 300000);
  const auto file = dbus.file();
  const Walked w = walk(file);
  EXPECT_EQ(w.last, PcapStep::end);
  ASSERT_EQ(w.records.size(), 1u);
  EXPECT_EQ(w.records[0].caplen, 300000u);
}

TEST(PcapRecords, ZeroLengthRecords) {
  PcapBuilder b;
  b.record(1, 2, 0, 0).record(3, 4, 0, 60).record(5, 6, 1, 1);
  const auto file = b.file();
  const Walked w = walk(file);
  EXPECT_EQ(w.last, PcapStep::end);
  ASSERT_EQ(w.records.size(), 3u);
  EXPECT_TRUE(w.records[0].data.empty());
  EXPECT_EQ(w.records[1].wire_length, 60u);
  EXPECT_TRUE(w.records[1].data.empty());
  EXPECT_EQ(w.records[2].timestamp_ns, 5'000'006'000);
}

// sf-pcap.c: a caplen above the file's snapshot length (but not above the maximum) is read
// as the first `snapshot` bytes with caplen = snapshot; the rest of the record is skipped.
TEST(PcapRecords, CaplenAboveTheSnapshotIsCutToIt) {
  PcapBuilder b;
  b.snaplen(100).record(1, 2, 150, 200).record(3, 4, 50, 60);
  const auto file = b.file();
  const Walked w = walk(file);
  EXPECT_EQ(w.last, PcapStep::end);
  ASSERT_EQ(w.records.size(), 2u);
  EXPECT_EQ(w.records[0].caplen, 100u);
  EXPECT_EQ(w.records[0].wire_length, 200u);
  EXPECT_EQ(w.records[0].data.data(), file.data() + 24 + 16);
  EXPECT_EQ(w.records[1].timestamp_ns, 3'000'004'000);
  EXPECT_EQ(w.records[1].caplen, 50u);
  EXPECT_EQ(w.records[1].data.data(), file.data() + 24 + 16 + 150 + 16);

  // Cut before the snapshot length: libpcap names the snapshot; after it, the caplen.
  PcapBuilder before;
  before.snaplen(100).record(1, 2, 150, 200, 80);
  EXPECT_EQ(damage(before), "truncated dump file; tried to read 100 captured bytes, only got 80");
  PcapBuilder after;
  after.snaplen(100).record(1, 2, 150, 200, 120);
  EXPECT_EQ(damage(after), "truncated dump file; tried to read 150 captured bytes, only got 120");
}

// Versions before 2.3 (and DG/UX 543.0) wrote the wire length first; 2.3 either way.
TEST(PcapRecords, OldVersionsLengthOrder) {
  PcapBuilder v21;
  v21.version(2, 1).record(1, 2, 60, 20);  // fields as written: "caplen" 60, "len" 20
  const auto f21 = v21.file();
  EXPECT_EQ(parse_pcap_file_header(f21)->lengths, PcapLengthOrder::len_first);
  // 20 captured bytes follow; reading them as 60 would be damage.
  PcapBuilder v21_data;
  v21_data.version(2, 1).record(1, 2, 60, 20, 20);
  const auto f21d = v21_data.file();
  const Walked w21 = walk(f21d);
  EXPECT_EQ(w21.last, PcapStep::end);
  ASSERT_EQ(w21.records.size(), 1u);
  EXPECT_EQ(w21.records[0].caplen, 20u);
  EXPECT_EQ(w21.records[0].wire_length, 60u);

  PcapBuilder v23;
  v23.version(2, 3).record(1, 2, 60, 20, 20).record(1, 2, 20, 60);
  const auto f23 = v23.file();
  EXPECT_EQ(parse_pcap_file_header(f23)->lengths, PcapLengthOrder::either);
  const Walked w23 = walk(f23);
  EXPECT_EQ(w23.last, PcapStep::end);
  ASSERT_EQ(w23.records.size(), 2u);
  for (const PcapRecord& r : w23.records) {
    EXPECT_EQ(r.caplen, 20u);
    EXPECT_EQ(r.wire_length, 60u);
  }
  PcapBuilder dgux;
  dgux.version(543, 0);
  const auto fdg = dgux.file();
  EXPECT_EQ(parse_pcap_file_header(fdg)->lengths, PcapLengthOrder::len_first);
}

TEST(PcapRecords, GlobalHeader) {
  auto err = [](const std::vector<std::byte>& f) {
    auto r = parse_pcap_file_header(f);
    EXPECT_FALSE(r.has_value());
    return r ? std::string() : r.error();
  };
  EXPECT_EQ(err(PcapBuilder().version(1, 0).file()), "archaic pcap savefile format");
  EXPECT_EQ(err(PcapBuilder().version(2, 5).file()), "unsupported pcap savefile version 2.5");
  EXPECT_EQ(err(PcapBuilder().version(543, 1).file()), "unsupported pcap savefile version 543.1");
  auto cut = PcapBuilder().file();
  cut.resize(10);
  EXPECT_EQ(err(cut), "truncated dump file; tried to read 24 file header bytes, only got 6");
  cut.resize(3);
  EXPECT_EQ(err(cut), "truncated dump file; tried to read 4 file header bytes, only got 3");
  auto ng = PcapBuilder().file();
  ng[0] = ng[3] = std::byte{0x0a};
  ng[1] = ng[2] = std::byte{0x0d};
  EXPECT_EQ(err(ng), "unknown file format");

  // The upper 6 bits of the link type are extension bits; a zero or oversized snaplen is
  // the link type's maximum.
  auto f = parse_pcap_file_header(PcapBuilder().link_type(0x40000000 | 101).snaplen(0).file());
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->link_type, 101);
  EXPECT_EQ(f->snapshot, kMaxCaplen);
  f = parse_pcap_file_header(PcapBuilder().swapped(true).snaplen(524288).file());
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->swapped);
  EXPECT_EQ(f->snapshot, kMaxCaplen);
}

TEST(PcapRecords, PseudoHeaderLinkTypes) {
  for (const int lt : {113, 117, 189, 220, 239, 276}) EXPECT_TRUE(needs_pseudo_header_swap(lt));
  for (const int lt : {0, 1, 12, 101, 108, 192}) EXPECT_FALSE(needs_pseudo_header_swap(lt));
}

// ---------------------------------------------------------------------------------------
// open_capture() against libpcap.

struct Frame {
  std::int64_t ts = 0;
  std::uint32_t caplen = 0;
  std::uint32_t wire = 0;
  int link = 0;
  std::vector<std::byte> bytes;
  bool operator==(const Frame&) const = default;
};

struct Reading {
  bool opened = false;
  std::string error;  // "file 'PATH': reason" (open or damage), empty on a clean end
  std::vector<Frame> frames;
  bool buffered = false;  // open_capture() only: read by the source's PcapRecordReader
};

// Sets the buffer size of the readers made while it lives (0: the default).
class BufferBytes {
 public:
  explicit BufferBytes(std::size_t n) { PcapRecordReader::set_default_buffer_bytes_for_testing(n); }
  ~BufferBytes() { PcapRecordReader::set_default_buffer_bytes_for_testing(0); }
  BufferBytes(const BufferBytes&) = delete;
  BufferBytes& operator=(const BufferBytes&) = delete;
};

Reading read_with_libpcap(const std::string& path, std::uint32_t snaplen) {
  Reading r;
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) {
    r.error = "file '" + path + "': " + err;
    return r;
  }
  r.opened = true;
  pcap_pkthdr* h = nullptr;
  const u_char* d = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
    Frame f;
    f.ts = std::int64_t{h->ts.tv_sec} * 1'000'000'000 + h->ts.tv_usec;
    f.caplen = std::min(h->caplen, snaplen);
    f.wire = h->len;
    f.link = pcap_datalink(p);
    const auto* b = reinterpret_cast<const std::byte*>(d);
    f.bytes.assign(b, b + f.caplen);
    r.frames.push_back(std::move(f));
  }
  if (rc != PCAP_ERROR_BREAK) r.error = "file '" + path + "': " + pcap_geterr(p);
  pcap_close(p);
  return r;
}

Reading read_with_source(const std::string& path, std::uint32_t snaplen) {
  Reading r;
  CaptureOptions opts;
  opts.interface = path;
  opts.snaplen = snaplen;
  const std::uint64_t started = PcapRecordReader::inputs_started();
  auto src = open_capture(opts);
  if (!src) {
    r.error = src.error();
    return r;
  }
  r.opened = true;
  r.buffered = PcapRecordReader::inputs_started() > started;
  PacketBatch batch;
  ReadStatus s = ReadStatus::packets;
  while ((s = (*src)->next_batch(batch)) == ReadStatus::packets) {
    for (const RawPacket& p : batch.view()) {
      r.frames.push_back({p.timestamp_ns, static_cast<std::uint32_t>(p.data.size()), p.wire_length,
                          p.link_type, std::vector<std::byte>(p.data.begin(), p.data.end())});
    }
  }
  if (s == ReadStatus::error) r.error = (*src)->error();
  if (s == ReadStatus::error && r.error.empty()) r.error = "error without a reason";
  return r;
}

::testing::AssertionResult same_reading(const Reading& ours, const Reading& theirs) {
  if (ours.opened != theirs.opened || ours.error != theirs.error) {
    return ::testing::AssertionFailure()
           << "open_capture: opened=" << ours.opened << " error='" << ours.error
           << "'\n      libpcap: opened=" << theirs.opened << " error='" << theirs.error << "'";
  }
  const std::size_t n = std::min(ours.frames.size(), theirs.frames.size());
  for (std::size_t i = 0; i < n; ++i) {
    const Frame& a = ours.frames[i];
    const Frame& b = theirs.frames[i];
    if (a != b) {
      return ::testing::AssertionFailure()
             << "frame " << i << ": open_capture ts=" << a.ts << " caplen=" << a.caplen
             << " wire=" << a.wire << " link=" << a.link << "; libpcap ts=" << b.ts
             << " caplen=" << b.caplen << " wire=" << b.wire << " link=" << b.link
             << (a.bytes != b.bytes ? "; bytes differ" : "");
    }
  }
  if (ours.frames.size() != theirs.frames.size()) {
    return ::testing::AssertionFailure() << "open_capture: " << ours.frames.size()
                                         << " frames, libpcap: " << theirs.frames.size();
  }
  return ::testing::AssertionSuccess();
}

bool has_classic_magic(const fs::path& path, bool* swapped = nullptr, bool* nano = nullptr) {
  std::ifstream in(path, std::ios::binary);
  std::uint32_t m = 0;
  if (!in.read(reinterpret_cast<char*>(&m), 4)) return false;
  const bool sw = m == 0xd4c3b2a1 || m == 0x4d3cb2a1;
  const bool ns = m == 0xa1b23c4d || m == 0x4d3cb2a1;
  if (!sw && !ns && m != 0xa1b2c3d4) return false;
  if (swapped != nullptr) *swapped = sw;
  if (nano != nullptr) *nano = ns;
  return true;
}

std::vector<std::string> classic_pcaps_under(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file() && has_classic_magic(e.path())) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Coverage {
  std::size_t files = 0, buffered = 0, buffered_swapped = 0, buffered_nano = 0,
              buffered_swapped_nano = 0;
  std::size_t damaged = 0, buffered_damaged = 0, frames = 0, cut_by_snaplen = 0;
};

void compare_files(const std::vector<std::string>& files, Coverage& cov) {
  for (const std::string& path : files) {
    bool swapped = false, nano = false;
    has_classic_magic(path, &swapped, &nano);
    for (const std::uint32_t snaplen : {kDefaultSnaplen, std::uint32_t{64}}) {
      const Reading theirs = read_with_libpcap(path, snaplen);
      const Reading ours = read_with_source(path, snaplen);
      EXPECT_TRUE(same_reading(ours, theirs)) << path << " -s " << snaplen;
      if (snaplen != kDefaultSnaplen) {
        for (const Frame& f : theirs.frames) cov.cut_by_snaplen += f.caplen == snaplen;
        continue;
      }
      ++cov.files;
      cov.frames += theirs.frames.size();
      const bool damaged = theirs.opened && !theirs.error.empty();
      cov.damaged += damaged;
      if (ours.buffered) {
        ++cov.buffered;
        cov.buffered_swapped += swapped;
        cov.buffered_nano += nano;
        cov.buffered_swapped_nano += swapped && nano;
        cov.buffered_damaged += damaged;
      }
    }
  }
}

// A copy of a well-formed native-order microsecond pcap in the other byte order and/or with
// nanosecond timestamps (its bytes rewritten field by field).
void swapped_copy(const std::string& from, const fs::path& to, bool swap, bool to_nano) {
  std::ifstream in(from, std::ios::binary);
  std::vector<char> f((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GE(f.size(), 24u);
  auto u32 = [&](std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, f.data() + at, 4);
    return v;
  };
  auto put32 = [&](std::size_t at, std::uint32_t v) {
    if (swap) v = __builtin_bswap32(v);
    std::memcpy(f.data() + at, &v, 4);
  };
  auto put16 = [&](std::size_t at) {
    std::uint16_t v;
    std::memcpy(&v, f.data() + at, 2);
    if (swap) v = __builtin_bswap16(v);
    std::memcpy(f.data() + at, &v, 2);
  };
  ASSERT_EQ(u32(0), 0xa1b2c3d4u) << from << " must be native microsecond";
  put32(0, to_nano ? 0xa1b23c4d : 0xa1b2c3d4);
  put16(4);
  put16(6);
  for (std::size_t at : {8, 12, 16, 20}) put32(at, u32(at));
  std::size_t pos = 24;
  while (pos + 16 <= f.size()) {
    const std::uint32_t caplen = u32(pos + 8);
    put32(pos, u32(pos));
    put32(pos + 4, to_nano ? u32(pos + 4) * 1000 : u32(pos + 4));
    put32(pos + 8, caplen);
    put32(pos + 12, u32(pos + 12));
    pos += 16 + caplen;
  }
  ASSERT_EQ(pos, f.size()) << from << " must be well-formed";
  std::ofstream(to, std::ios::binary).write(f.data(), static_cast<std::streamsize>(f.size()));
}

using flowsec::test::TempDir;

// Every classic pcap of tests/data, plus swapped, nanosecond and cut copies made in `dir`.
std::vector<std::string> test_data_files(TempDir& dir) {
  std::vector<std::string> files = classic_pcaps_under(kData);
  // Swapped and nanosecond variants (no such file in tests/data): Ethernet and BSD loopback,
  // whose pseudo-headers libpcap leaves alone, so the buffered reader takes them.
  for (const char* base : {"capture/tcpreplay_test.pcap", "capture/mixed/nats.pcap"}) {
    const std::string name = fs::path(base).stem().string();
    for (const bool swap : {false, true}) {
      for (const bool nano : {false, true}) {
        if (!swap && !nano) continue;
        const fs::path to = dir / (name + (swap ? "_swapped" : "") + (nano ? "_ns" : "") + ".pcap");
        swapped_copy(kData + base, to, swap, nano);
        if (::testing::Test::HasFatalFailure()) return files;
        files.push_back(to.string());
      }
    }
  }
  // A swapped Linux SLL file goes to libpcap (it may rewrite CAN ids in its pseudo-header).
  PcapBuilder sll;
  sll.swapped(true).link_type(113).record(1, 2, 20, 20);
  files.push_back(dir.write("swapped_sll.pcap", sll.file()));
  // Cut copies of the big trace: inside a record header, inside record data.
  {
    std::ifstream in(kData + "capture/tcpreplay_test.pcap", std::ios::binary);
    std::vector<std::byte> all;
    for (char c; in.get(c);) all.push_back(static_cast<std::byte>(c));
    for (const std::size_t n :
         {std::size_t{24}, std::size_t{30}, std::size_t{1000}, all.size() - 1}) {
      files.push_back(dir.write("cut_" + std::to_string(n) + ".pcap",
                                std::vector<std::byte>(all.begin(), all.begin() + n)));
    }
  }
  return files;
}

// What makes these tests able to fail: packets were compared, mostly through the buffer, in
// both byte orders and precisions, and damaged files were among them.
void expect_test_data_coverage(const Coverage& cov) {
  EXPECT_GT(cov.frames, 1000u);
  EXPECT_GT(cov.cut_by_snaplen, 100u);
  EXPECT_GE(cov.buffered + 1, cov.files);  // all but swapped_sll.pcap
  EXPECT_GE(cov.buffered_swapped, 3u);
  EXPECT_GE(cov.buffered_nano, 3u);
  EXPECT_GE(cov.buffered_swapped_nano, 2u);
  EXPECT_GE(cov.buffered_damaged, 4u);
}

TEST(PcapRecordsDifferential, TestDataMatchesLibpcap) {
  TempDir dir("pcap-records");
  const auto files = test_data_files(dir);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  Coverage cov;
  compare_files(files, cov);
  expect_test_data_coverage(cov);
}

// A 300-byte buffer (grown for each record larger than it): nearly every record is split
// between two reads, headers included.
TEST(PcapRecordsDifferential, TestDataMatchesLibpcapWithATinyBuffer) {
  TempDir dir("pcap-records");
  const auto files = test_data_files(dir);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  BufferBytes tiny(300);
  Coverage cov;
  compare_files(files, cov);
  expect_test_data_coverage(cov);
}

// The shared corpus is not part of the repository; where it is absent this test says so.
void compare_shared_corpus() {
  Coverage cov;
  compare_files(classic_pcaps_under(kSharedCorpus), cov);
  std::printf(
      "shared corpus: %zu classic pcaps (%zu buffered, %zu swapped, %zu ns), %zu frames, %zu "
      "damaged\n",
      cov.files, cov.buffered, cov.buffered_swapped, cov.buffered_nano, cov.frames, cov.damaged);
  EXPECT_GT(cov.files, 300u);
  EXPECT_GT(cov.frames, 10000u);
  EXPECT_GT(cov.buffered_swapped, 0u);
  EXPECT_GT(cov.buffered_nano, 0u);
  EXPECT_GT(cov.damaged, 0u);
}

TEST(PcapRecordsDifferential, SharedCorpusMatchesLibpcap) {
  if (!fs::is_directory(kSharedCorpus)) {
    GTEST_SKIP() << kSharedCorpus << " is absent: the nDPI/tcpdump corpus was not compared";
  }
  compare_shared_corpus();
}

TEST(PcapRecordsDifferential, SharedCorpusMatchesLibpcapWithATinyBuffer) {
  if (!fs::is_directory(kSharedCorpus)) {
    GTEST_SKIP() << kSharedCorpus << " is absent: the nDPI/tcpdump corpus was not compared";
  }
  BufferBytes tiny(300);
  compare_shared_corpus();
}

// Every hand-built byte array of the walker tests, as a file: the texts and the cutting at
// the snapshot length above are what libpcap itself does.
TEST(PcapRecordsDifferential, HandBuiltFilesMatchLibpcap) {
  TempDir dir("pcap-records");
  std::vector<std::string> files;
  auto add = [&](const std::string& name, const PcapBuilder& b) {
    files.push_back(dir.write(name + ".pcap", b.file()));
  };
  for (const bool swapped : {false, true}) {
    for (const bool nano : {false, true}) {
      const std::string tag = std::string(swapped ? "sw" : "na") + (nano ? "ns" : "us");
      PcapBuilder b;
      b.swapped(swapped).nanoseconds(nano);
      add(tag + "_plain", PcapBuilder(b).record(1418145369, 924505, 76, 76).record(0, 1, 3, 200));
      add(tag + "_signed", PcapBuilder(b)
                               .record(-5, -7, 1, 1)
                               .record(std::numeric_limits<std::int32_t>::min(), 1000000, 0, 0));
      add(tag + "_zero", PcapBuilder(b).record(1, 2, 0, 0).record(3, 4, 0, 60));
      add(tag + "_over_snapshot",
          PcapBuilder(b).snaplen(100).record(1, 2, 150, 200).record(3, 4, 50, 60));
      add(tag + "_over_snapshot_cut80", PcapBuilder(b).snaplen(100).record(1, 2, 150, 200, 80));
      add(tag + "_over_snapshot_cut120", PcapBuilder(b).snaplen(100).record(1, 2, 150, 200, 120));
      add(tag + "_over_max", PcapBuilder(b).record(1, 2, 10, 10).record(1, 2, 300000, 300000, 0));
      add(tag + "_over_max_snap0", PcapBuilder(b).snaplen(0).record(1, 2, 262145, 9, 0));
      add(tag + "_max", PcapBuilder(b).snaplen(0).record(1, 2, kMaxCaplen, kMaxCaplen));
      add(tag + "_dbus", PcapBuilder(b).link_type(231).snaplen(0).record(1, 2, 300000, 300000));
      add(tag + "_dbus_snap", PcapBuilder(b).link_type(231).record(1, 2, 300000, 300000));
      add(tag + "_data_cut", PcapBuilder(b).record(1, 2, 10, 10).record(1, 2, 100, 100, 40));
      add(tag + "_v21", PcapBuilder(b).version(2, 1).record(1, 2, 60, 20, 20));
      add(tag + "_v23", PcapBuilder(b).version(2, 3).record(1, 2, 60, 20, 20).record(1, 2, 20, 60));
      add(tag + "_dgux", PcapBuilder(b).version(543, 0).record(1, 2, 60, 20, 20));
      add(tag + "_raw101", PcapBuilder(b).link_type(101).record(1, 2, 20, 20));
      add(tag + "_ext_bits", PcapBuilder(b).link_type(0x40000000).record(1, 2, 20, 20));
      add(tag + "_empty", PcapBuilder(b));
      for (std::size_t n = 1; n < kPcapRecordHeaderSize; ++n) {
        add(tag + "_header_cut" + std::to_string(n), PcapBuilder(b).record(1, 2, 10, 10).raw(n));
      }
    }
  }
  for (const std::size_t bytes : {std::size_t{0}, std::size_t{16}, std::size_t{300}}) {
    SCOPED_TRACE("buffer " + std::to_string(bytes));
    BufferBytes size(bytes);
    Coverage cov;
    compare_files(files, cov);
    EXPECT_EQ(cov.buffered, cov.files);
    EXPECT_GE(cov.buffered_damaged, 4u * 20);
  }
}

// ---------------------------------------------------------------------------------------
// PcapRecordReader over an in-memory input handed out in pieces.

struct Pieces {
  std::span<const std::byte> input;
  std::size_t at = 0;
  std::size_t piece = 1;  // at most this many bytes per read, varied from read to read
  std::size_t reads = 0;
  long fail_after = -1;  // a read fails (EIO) once `at` has reached this offset

  long operator()(std::byte* into, std::size_t size) {
    ++reads;
    if (fail_after >= 0 && at >= static_cast<std::size_t>(fail_after)) {
      errno = EIO;
      return -1;
    }
    std::size_t n = std::min({size, input.size() - at, 1 + (reads * 7919) % piece});
    if (fail_after >= 0) n = std::min(n, static_cast<std::size_t>(fail_after) - at);
    std::memcpy(into, input.data() + at, n);
    at += n;
    return static_cast<long>(n);
  }
};

// Reads as offline_source.cpp does: refill on need_more, the records copied out at once.
Walked read_in_pieces(PcapRecordReader& reader, std::span<const std::byte> file, Pieces& pieces) {
  Walked w;
  auto format = parse_pcap_file_header(file);
  EXPECT_TRUE(format.has_value());
  if (!format) return w;
  pieces.input = file.subspan(kPcapFileHeaderSize);
  reader.start(*format, std::ref(pieces));
  PcapRecord r;
  std::vector<std::vector<std::byte>> copies;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    w.last = reader.next(r);
    if (w.last == PcapStep::need_more) {
      reader.refill();
      continue;
    }
    if (w.last != PcapStep::record) break;
    EXPECT_EQ(r.caplen, r.data.size());
    w.records.push_back(r);
  }
  w.error = reader.error();
  w.offset = reader.consumed();
  return w;
}

TEST(PcapRecordReader, PiecesOfAnySizeReadAsTheWholeInput) {
  PcapBuilder b;
  b.snaplen(100);
  for (int i = 0; i < 50; ++i) b.record(i, i, static_cast<std::uint32_t>(i * 5), 1000);
  b.record(1, 2, 150, 200).record(1, 2, 100, 100, 40);  // over the snapshot, then cut
  const auto file = b.file();
  const Walked whole = walk(file);
  ASSERT_EQ(whole.last, PcapStep::damaged);
  for (const std::size_t buffer : {16, 17, 40, 300, 4096}) {
    for (const std::size_t piece : {1, 3, 16, 1000}) {
      SCOPED_TRACE("buffer " + std::to_string(buffer) + " piece " + std::to_string(piece));
      PcapRecordReader reader(buffer);
      Pieces pieces;
      pieces.piece = piece;
      const Walked w = read_in_pieces(reader, file, pieces);
      EXPECT_EQ(w.last, whole.last);
      EXPECT_EQ(w.error, whole.error);
      EXPECT_EQ(w.offset, whole.offset);
      ASSERT_EQ(w.records.size(), whole.records.size());
      for (std::size_t i = 0; i < w.records.size(); ++i) {
        EXPECT_EQ(w.records[i].timestamp_ns, whole.records[i].timestamp_ns);
        EXPECT_EQ(w.records[i].caplen, whole.records[i].caplen);
        EXPECT_EQ(w.records[i].wire_length, whole.records[i].wire_length);
      }
      // Grown for the largest record (16 + 49 * 5 bytes), else as asked.
      EXPECT_EQ(reader.buffer_size(), std::max<std::size_t>(buffer, 16 + 245));
    }
  }
}

// Records whose data straddles refills: every record checked while the next one is read
// would invalidate it, i.e. right after next().
TEST(PcapRecordReader, RecordDataIsRightAfterARefill) {
  PcapBuilder b;
  for (int i = 0; i < 20; ++i) b.record(i, 0, 37, 37);
  const auto file = b.file();
  const Walked whole = walk(file);
  auto format = parse_pcap_file_header(file);
  ASSERT_TRUE(format.has_value());
  PcapRecordReader reader(64);
  Pieces pieces;
  pieces.piece = 5;
  pieces.input = std::span<const std::byte>(file).subspan(kPcapFileHeaderSize);
  reader.start(*format, std::ref(pieces));
  PcapRecord r;
  std::size_t i = 0, refills = 0;
  for (PcapStep s; (s = reader.next(r)) != PcapStep::end;) {
    ASSERT_NE(s, PcapStep::damaged) << reader.error();
    if (s == PcapStep::need_more) {
      reader.refill();
      ++refills;
      continue;
    }
    ASSERT_LT(i, whole.records.size());
    const auto want = whole.records[i++].data;
    EXPECT_TRUE(std::equal(r.data.begin(), r.data.end(), want.begin(), want.end()));
    EXPECT_EQ(reader.consumed(), i * (16 + 37));
  }
  EXPECT_EQ(i, 20u);
  EXPECT_GT(refills, 10u);
}

TEST(PcapRecordReader, AFailedReadIsDamageAfterTheWholeRecords) {
  PcapBuilder b;
  for (int i = 0; i < 10; ++i) b.record(i, 0, 10, 10);
  const auto file = b.file();
  PcapRecordReader reader(1000);
  Pieces pieces;
  pieces.piece = 1000;
  pieces.fail_after = 3 * 26 + 5;
  const Walked w = read_in_pieces(reader, file, pieces);
  EXPECT_EQ(w.last, PcapStep::damaged);
  EXPECT_EQ(w.records.size(), 3u);
  EXPECT_EQ(w.error, std::string("error reading dump file: ") + std::strerror(EIO));
  EXPECT_EQ(w.offset, 3u * 26);
}

// A D-Bus record of 300000 bytes in a 4 KiB buffer: the buffer grows for it, and the
// reader goes on with the file.
TEST(PcapRecordReader, ARecordLargerThanTheBufferGrowsIt) {
  PcapBuilder b;
  b.link_type(231).snaplen(0).record(1, 2, 10, 10).record(1, 2, 300000, 300000).record(3, 4, 5, 5);
  const auto file = b.file();
  PcapRecordReader reader(4096);
  Pieces pieces;
  pieces.piece = 65536;
  const Walked w = read_in_pieces(reader, file, pieces);
  EXPECT_EQ(w.last, PcapStep::end) << w.error;
  ASSERT_EQ(w.records.size(), 3u);
  EXPECT_EQ(w.records[1].caplen, 300000u);
  EXPECT_EQ(reader.buffer_size(), 16u + 300000u);
  EXPECT_EQ(w.offset, file.size() - 24);
}

// ---------------------------------------------------------------------------------------
// The buffered source (CaptureSource: spans valid until the next next_batch()).

std::vector<Frame> frames_of(const PacketBatch& batch) {
  std::vector<Frame> out;
  for (const RawPacket& p : batch.view()) {
    out.push_back({p.timestamp_ns, static_cast<std::uint32_t>(p.data.size()), p.wire_length,
                   p.link_type, std::vector<std::byte>(p.data.begin(), p.data.end())});
  }
  return out;
}

// The capture source for a file or a directory, with the default options.
Expected<std::unique_ptr<CaptureSource>, std::string> open_path(const std::string& path) {
  CaptureOptions opts;
  opts.interface = path;
  return open_capture(opts);
}

// Packets of one refill lie one after the other in the buffer, 16 header bytes apart.
bool in_place(const PacketBatch& batch, std::size_t i) {
  return batch.packets[i].data.data() ==
         batch.packets[i - 1].data.data() + batch.packets[i - 1].data.size() + 16;
}

TEST(BufferReader, SpansOfEndedFilesStayValidUntilTheNextCall) {
  TempDir dir("pcap-records");
  // Five 2-packet files: one batch holds all ten packets, each file read into the room after
  // the one before in the buffer.
  for (int i = 0; i < 5; ++i) {
    fs::copy_file(kData + "capture/mixed/dns_udp.pcap", dir / ("f" + std::to_string(i) + ".pcap"));
  }
  const Reading one = read_with_libpcap(kData + "capture/mixed/dns_udp.pcap", kDefaultSnaplen);
  ASSERT_EQ(one.frames.size(), 2u);
  auto src = open_path(dir.path());
  ASSERT_TRUE(src.has_value()) << src.error();
  PacketBatch batch;
  ASSERT_EQ((*src)->next_batch(batch), ReadStatus::packets);
  ASSERT_EQ(batch.size, 10u);
  const auto frames = frames_of(batch);
  for (std::size_t i = 0; i < batch.size; ++i) {
    EXPECT_EQ(frames[i], one.frames[i % 2]) << i;
    if (i % 2 == 1) {
      EXPECT_TRUE(in_place(batch, i));
    }
    // The next file follows in the buffer, after the previous one's records.
    if (i > 0) {
      EXPECT_GT(batch.packets[i].data.data(), batch.packets[i - 1].data.data());
    }
  }
  EXPECT_EQ((*src)->next_batch(batch), ReadStatus::end);
}

// 2000 small packets through a 4 KiB buffer: batches end where the buffer runs out, their
// packets still intact when the batch is returned, and read in place.
TEST(BufferReader, BatchesEndAtARefillWithTheirSpansIntact) {
  TempDir dir("pcap-records");
  PcapBuilder b;
  for (int i = 0; i < 2000; ++i) b.record(i, 0, 60 + i % 7, 60 + i % 7);
  const std::string path = dir.write("small.pcap", b.file());
  const Reading theirs = read_with_libpcap(path, kDefaultSnaplen);
  BufferBytes size(4096);
  auto src = open_path(path);
  ASSERT_TRUE(src.has_value()) << src.error();
  PacketBatch batch;
  std::vector<Frame> got;
  std::size_t batches = 0, short_batches = 0;
  while ((*src)->next_batch(batch) == ReadStatus::packets) {
    ++batches;
    short_batches += batch.size < PacketBatch::kCapacity;
    for (std::size_t i = 1; i < batch.size; ++i) ASSERT_TRUE(in_place(batch, i)) << i;
    const auto frames = frames_of(batch);
    got.insert(got.end(), frames.begin(), frames.end());
  }
  EXPECT_EQ(got, theirs.frames);
  EXPECT_GT(batches, 30u);  // 4096 / ~80 bytes a record: about 50 packets a batch
  EXPECT_EQ(short_batches, batches);
}

// Many files of tests/data read through one 64 KiB buffer: the same as libpcap file by file.
TEST(BufferReader, ADirectoryThroughA64KiBBuffer) {
  TempDir dir("pcap-records");
  std::vector<Frame> want;
  int n = 0;
  for (const std::string& f : classic_pcaps_under(kData)) {
    const Reading r = read_with_libpcap(f, kDefaultSnaplen);
    if (!r.error.empty() || r.frames.empty()) continue;
    char name[32];
    std::snprintf(name, sizeof name, "%03d.pcap", n++);
    fs::copy_file(f, dir / name);
    want.insert(want.end(), r.frames.begin(), r.frames.end());
  }
  ASSERT_GE(n, 10);
  BufferBytes size(65536);
  auto src = open_path(dir.path());
  ASSERT_TRUE(src.has_value()) << src.error();
  PacketBatch batch;
  std::vector<Frame> got;
  while ((*src)->next_batch(batch) == ReadStatus::packets) {
    const auto frames = frames_of(batch);
    got.insert(got.end(), frames.begin(), frames.end());
  }
  EXPECT_EQ((*src)->stats().damaged_files, 0u);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want);
}

TEST(BufferReader, DamagedSingleFileKeepsItsPacketsUntilTheNextCall) {
  TempDir dir("pcap-records");
  PcapBuilder b;
  b.record(1, 2, 10, 10).record(1, 2, 100, 100, 40);
  const std::string path = dir.write("cut.pcap", b.file());
  auto src = open_path(path);
  ASSERT_TRUE(src.has_value()) << src.error();
  PacketBatch batch;
  ASSERT_EQ((*src)->next_batch(batch), ReadStatus::packets);
  ASSERT_EQ(batch.size, 1u);
  EXPECT_EQ(batch.packets[0].data.size(), 10u);
  EXPECT_EQ(batch.packets[0].data[0], std::byte{1});
  EXPECT_EQ((*src)->next_batch(batch), ReadStatus::error);
  EXPECT_EQ(
      (*src)->error(),
      "file '" + path + "': truncated dump file; tried to read 100 captured bytes, only got 40");
}

// Another process truncates the file between two next_batch() calls: no crash; the packets
// read before are delivered, then what libpcap says of the truncated file.
TEST(BufferReader, AFileTruncatedWhileReadIsATruncatedFile) {
  struct Cut {
    std::size_t at;
    const char* what;
  };
  // 3000 records of 116 bytes; a 64 KiB buffer holds 564 of them.
  for (const Cut cut : {Cut{24 + 1000 * 116 + 50, "inside a record"},
                        Cut{24 + 1000 * 116 + 7, "inside a record header"},
                        Cut{24 + 1000 * 116, "between records"}}) {
    SCOPED_TRACE(cut.what);
    TempDir dir("pcap-records");
    PcapBuilder b;
    for (int i = 0; i < 3000; ++i) b.record(i, 0, 100, 100);
    const std::string path = dir.write("shrinking.pcap", b.file());
    BufferBytes size(65536);
    auto src = open_path(path);
    ASSERT_TRUE(src.has_value()) << src.error();
    PacketBatch batch;
    ASSERT_EQ((*src)->next_batch(batch), ReadStatus::packets);
    std::vector<Frame> got = frames_of(batch);
    ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(cut.at)), 0);
    ReadStatus s;
    while ((s = (*src)->next_batch(batch)) == ReadStatus::packets) {
      const auto frames = frames_of(batch);
      got.insert(got.end(), frames.begin(), frames.end());
    }
    const Reading theirs = read_with_libpcap(path, kDefaultSnaplen);
    EXPECT_EQ(got.size(), 1000u);
    EXPECT_TRUE(got == theirs.frames);
    EXPECT_EQ((*src)->error(), theirs.error);
    EXPECT_EQ(s, theirs.error.empty() ? ReadStatus::end : ReadStatus::error);
    EXPECT_EQ(theirs.error.empty(), cut.at == 24 + 1000 * 116);
  }
}

TEST(BufferReader, ProgressIsTheBytesConsumed) {
  TempDir dir("pcap-records");
  PcapBuilder b;
  for (int i = 0; i < 300; ++i) b.record(i, 0, 100, 100);
  const std::string path = dir.write("300.pcap", b.file());
  auto src = open_path(path);
  ASSERT_TRUE(src.has_value()) << src.error();
  PacketBatch batch;
  ASSERT_EQ((*src)->next_batch(batch), ReadStatus::packets);
  ASSERT_EQ(batch.size, 256u);
  const auto p = (*src)->progress();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->bytes_read, 24u + 256u * 116u);
  EXPECT_EQ(p->bytes_total, 24u + 300u * 116u);
  ASSERT_EQ((*src)->next_batch(batch), ReadStatus::packets);
  EXPECT_EQ(batch.size, 44u);
  EXPECT_EQ((*src)->progress()->bytes_read, 24u + 300u * 116u);
}

TEST(BufferReader, FilterAndSnaplenApplyToBufferedPackets) {
  const std::string path = kData + "capture/tcpreplay_test.pcap";
  CaptureOptions opts;
  opts.interface = path;
  opts.bpf_filter = "udp";
  opts.snaplen = 64;
  const std::uint64_t started = PcapRecordReader::inputs_started();
  auto src = open_capture(opts);
  ASSERT_TRUE(src.has_value()) << src.error();
  EXPECT_GT(PcapRecordReader::inputs_started(), started);
  // The same filter run by libpcap over its own reading.
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  ASSERT_NE(p, nullptr) << err;
  bpf_program prog{};
  ASSERT_EQ(pcap_compile(p, &prog, "udp", 1, PCAP_NETMASK_UNKNOWN), 0);
  ASSERT_EQ(pcap_setfilter(p, &prog), 0);
  std::vector<std::uint32_t> want;
  pcap_pkthdr* h = nullptr;
  const u_char* d = nullptr;
  while (pcap_next_ex(p, &h, &d) == 1) want.push_back(h->len);
  pcap_freecode(&prog);
  pcap_close(p);
  std::vector<std::uint32_t> got;
  PacketBatch batch;
  while ((*src)->next_batch(batch) == ReadStatus::packets) {
    for (const RawPacket& pk : batch.view()) {
      got.push_back(pk.wire_length);
      EXPECT_LE(pk.data.size(), 64u);
    }
  }
  EXPECT_FALSE(want.empty());
  EXPECT_LT(want.size(), 179u);
  EXPECT_EQ(got, want);
  EXPECT_EQ((*src)->stats().filtered_out, 179u - want.size());
}

// A swapped Linux SLL file whose packet is a CAN frame: libpcap puts the CAN id into this
// host's byte order in its own buffer (swap_linux_sll_header), which the buffered reader
// does not do, so libpcap reads the file.
TEST(BufferReader, SwappedPseudoHeaderIsLeftToLibpcap) {
  TempDir dir("pcap-records");
  PcapBuilder b;
  b.swapped(true).link_type(113).record(1, 2, 0, 0, 0);
  auto file = b.file();
  // SLL header (16 bytes, big-endian fields), protocol LINUX_SLL_P_CAN (0x000c), then a
  // CAN frame whose id the capturing host wrote in its (here: the other) byte order.
  std::vector<std::byte> frame(16 + 16, std::byte{0});
  frame[15] = std::byte{0x0c};
  frame[16] = std::byte{0x12};
  frame[17] = std::byte{0x34};
  frame[18] = std::byte{0x56};
  frame[19] = std::byte{0x78};
  const auto caplen = __builtin_bswap32(static_cast<std::uint32_t>(frame.size()));
  std::memcpy(file.data() + 24 + 8, &caplen, 4);
  std::memcpy(file.data() + 24 + 12, &caplen, 4);
  file.insert(file.end(), frame.begin(), frame.end());
  const std::string path = dir.write("can.pcap", file);
  const Reading theirs = read_with_libpcap(path, kDefaultSnaplen);
  ASSERT_EQ(theirs.frames.size(), 1u);
  ASSERT_NE(theirs.frames[0].bytes, frame) << "libpcap 1.10 rewrites the CAN id";
  const Reading ours = read_with_source(path, kDefaultSnaplen);
  EXPECT_FALSE(ours.buffered);
  EXPECT_TRUE(same_reading(ours, theirs));
}

// A FIFO is not read into the buffer: libpcap reads it as before.
TEST(BufferReader, FifoIsReadByLibpcap) {
  TempDir dir("pcap-records");
  const fs::path fifo = dir / "trace.pcap";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string from = kData + "capture/mixed/dns_udp.pcap";
  std::thread writer([&] {
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(fifo, std::ios::binary);
    out << in.rdbuf();
  });
  const Reading ours = read_with_source(fifo.string(), kDefaultSnaplen);
  writer.join();
  const Reading theirs = read_with_libpcap(from, kDefaultSnaplen);
  EXPECT_FALSE(ours.buffered);
  EXPECT_TRUE(ours.opened);
  EXPECT_TRUE(ours.error.empty()) << ours.error;
  ASSERT_EQ(ours.frames.size(), 2u);
  EXPECT_EQ(ours.frames, theirs.frames);
}

}  // namespace
}  // namespace flowsec::capture
