#pragma once
// The records of a classic pcap file (draft-ietf-opsawg-pcap §4-§5, libpcap's pcap-savefile(5)),
// walked over bytes in memory (PcapRecordWalker: no I/O, no allocation except an error text),
// and read into one reusable buffer through a read callback (PcapRecordReader).
//
// Contract:
//  - A walker reads the record area, i.e. the file after its 24-byte global header, given
//    the header's byte order, timestamp precision, snapshot length and link type
//    (PcapRecordFormat). next() yields one record at a time; each record's data points into
//    the input, which must outlive the use of the record.
//  - Reading stops with PcapStep::end exactly at the end of the input, or with
//    PcapStep::damaged and a reason worded as libpcap 1.10's (error()): a record header or
//    data cut short, a caplen above the link type's maximum. After either, next() keeps
//    returning it. A walker over a piece of a longer input (not `final`) says
//    PcapStep::need_more instead of end or "cut short" when the piece ends before the next
//    whole record, and needed() tells how many bytes that record takes; a caplen above the
//    maximum is damage either way, as libpcap judges it from the header alone. Records are judged
//    as libpcap 1.10's sf-pcap.c judges them, so that this walker and pcap_next_ex() deliver the
//    same packets and stop at the same record; in particular a caplen above the file's snapshot
//    length (but within the maximum) is delivered cut to the snapshot length, the rest of its data
//    skipped.
//  - Byte-order-dependent pseudo-headers inside the packet data (libpcap rewrites those of
//    a few link types in swapped files) are left as they are: see needs_pseudo_header_swap().
//  - One thread at a time per walker or reader; they share nothing but the reader's test-hook
//    atomics (inputs_started(), the default buffer size).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "common/result.hpp"

namespace flowsec::capture {

inline constexpr std::size_t kPcapFileHeaderSize = 24;
inline constexpr std::size_t kPcapRecordHeaderSize = 16;

// Where the two length fields of a record header are (pcap-savefile(5); libpcap sf-pcap.c).
enum class PcapLengthOrder : std::uint8_t {
  caplen_first,  // version 2.4, what libpcap has written for decades
  len_first,     // versions 2.0-2.2 and DG/UX's 543.0: wire length first
  either,        // version 2.3 was written both ways: swapped when caplen > len
};

struct PcapRecordFormat {
  bool swapped = false;             // multi-byte fields are in the opposite of this host's order
  bool nanoseconds = false;         // magic 0xa1b23c4d: the fraction is in ns, else in us
  std::uint32_t snapshot = 262144;  // the header's snaplen as libpcap adjusts it (0 → maximum)
  int link_type = 1;                // DLT_*, as pcap_datalink() reports it
  PcapLengthOrder lengths = PcapLengthOrder::caplen_first;
};

// The largest caplen libpcap accepts for a link type (max_snaplen_for_dlt in libpcap 1.10):
// 262144 except for D-Bus, EBHSCR and USBPcap.
[[nodiscard]] std::uint32_t max_caplen_for_link_type(int link_type);

// libpcap 1.10 rewrites pseudo-header fields of these link types from the writer's byte order
// (swap_pseudo_headers: PFLOG, LINUX_SLL and LINUX_SLL2 CAN ids, USB_LINUX(_MMAPPED), NFLOG);
// a swapped file of one of them cannot be handed out unchanged, byte for byte as libpcap does.
[[nodiscard]] bool needs_pseudo_header_swap(int link_type);

// Reads a global header as libpcap 1.10 does for the four classic magics (pcap-savefile(5)):
// byte order, precision, version, snapshot length (0 or above the maximum becomes the
// maximum) and link type (the LINKTYPE_ value without its upper 6 "extension" bits; libpcap
// maps it to a DLT_, equal for all but a few old types). Errors read like libpcap's.
[[nodiscard]] Expected<PcapRecordFormat, std::string> parse_pcap_file_header(
    std::span<const std::byte> file);

struct PcapRecord {
  // ts_sec * 1e9 + fraction (ns, or us * 1000), unnormalised. As in libpcap 1.10 both fields
  // are signed 32-bit in a file of this host's byte order and unsigned in a swapped one.
  std::int64_t timestamp_ns = 0;
  std::uint32_t caplen = 0;  // == data.size(); never above the snapshot length
  std::uint32_t wire_length = 0;
  std::span<const std::byte> data;
};

enum class PcapStep : std::uint8_t {
  record,     // `out` holds the next record
  end,        // the input ended exactly after the last record
  damaged,    // error() says why; the records before were good
  need_more,  // a walker not `final` (or a reader) holds no whole next record: not sticky
};

class PcapRecordWalker {
 public:
  PcapRecordWalker() = default;
  // `final`: `records` goes to the end of the input; else more may follow it.
  PcapRecordWalker(std::span<const std::byte> records, const PcapRecordFormat& format,
                   bool final = true);

  [[nodiscard]] PcapStep next(PcapRecord& out);

  // Bytes of the input consumed: the start of the next record, or of the damaged one.
  [[nodiscard]] std::size_t offset() const { return pos_; }
  // After PcapStep::need_more: the bytes from offset() that the next record needs in all
  // (16 until its header is whole, then 16 + its caplen).
  [[nodiscard]] std::size_t needed() const { return needed_; }
  // next() has returned end or damaged.
  [[nodiscard]] bool done() const { return done_ != PcapStep::record; }
  // Empty unless next() returned PcapStep::damaged.
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  PcapStep damaged(std::string why);

  std::span<const std::byte> in_;
  PcapRecordFormat format_{};
  std::uint32_t max_caplen_ = 262144;
  // Records in this host's byte order with caplen first (nearly every file) whose caplen is
  // within this bound and whose bytes are all in the input take a short path in next().
  bool native_ = false;
  std::uint32_t plain_caplen_ = 0;  // min(snapshot, max_caplen_)
  std::int64_t frac_to_ns_ = 1000;  // 1 in a nanosecond file
  std::size_t pos_ = 0;
  std::size_t needed_ = 0;
  bool final_ = true;
  PcapStep done_ = PcapStep::record;  // record = still walking
  std::string error_;
};

// 256 KiB: small enough that the records are still in the core's L2 cache when they are
// parsed, right after read(2) copied them (4 MiB, the first size, let them fall out to L3:
// the probe took 8-12% more CPU on the benchmark trace, docs/benchmarks.md), large enough
// that a batch of 256 typical frames fits many times over.
inline constexpr std::size_t kPcapReadBufferBytes = std::size_t{256} << 10;

// The records of one input after its global header, read through `read` into a buffer the
// reader owns and reuses from input to input (allocated once, grown only for a record larger
// than it), walked in place: a record's data points into that buffer.
//  - next() yields the records that are whole in the buffer, then PcapStep::need_more; the
//    caller then calls refill(), which moves the unconsumed tail (a partial record) to the
//    front and reads more, or append(). refill() invalidates the data of every record handed
//    out before, which is why it is the caller's to call: offline_source.cpp refills only
//    when the batch it fills is still empty, so that a batch's spans stay valid until the
//    next batch. append() keeps every byte where it is and reads into the room after them,
//    if the next record fits there: that is how a batch goes on into the next file (start()
//    keeps the previous input's bytes too), until the buffer is full.
//  - Damage at the end of the buffer is only damage once `read` has returned 0 (the end of
//    the input): a file cut short, or shrunk by another process while it is read, reads as a
//    truncated file with libpcap's wording. A failed read is damage, worded as libpcap's
//    ("error reading dump file: " and strerror).
//  - consumed() is the count of input bytes before the next record (progress).
class PcapRecordReader {
 public:
  // Reads up to `size` bytes into `into`: the count read, 0 at the end of the input, or -1
  // with errno set (EINTR is retried).
  using ReadFn = std::function<long(std::byte* into, std::size_t size)>;

  // 0: default_buffer_bytes(). The buffer is allocated here, at least 16 bytes.
  explicit PcapRecordReader(std::size_t buffer_bytes = 0);

  // A new input; nothing is read until the first refill() (next() says need_more).
  void start(const PcapRecordFormat& format, ReadFn read);
  [[nodiscard]] PcapStep next(PcapRecord& out);
  void refill();
  // Reads more without moving anything, so that the records handed out stay valid; false
  // (nothing done) when the next record would not fit in the room left.
  [[nodiscard]] bool append();

  [[nodiscard]] std::uint64_t consumed() const { return consumed_ + walker_.offset(); }
  [[nodiscard]] const std::string& error() const {
    return read_error_.empty() ? walker_.error() : read_error_;
  }
  [[nodiscard]] std::size_t buffer_size() const { return size_; }

  // Test hooks: the number of inputs all readers of the process have started (tests tell the
  // buffered path from libpcap's by it), and the buffer size of readers made after the call
  // where they ask for the default (0 restores kPcapReadBufferBytes).
  [[nodiscard]] static std::uint64_t inputs_started();
  static void set_default_buffer_bytes_for_testing(std::size_t bytes);
  [[nodiscard]] static std::size_t default_buffer_bytes();

 private:
  std::unique_ptr<std::byte[]> buf_;  // not value-initialised: pages are touched by reading
  std::size_t size_ = 0;
  void read_more();

  std::size_t origin_ = 0;      // where the walker's span starts in buf_
  std::size_t filled_ = 0;      // end of the bytes read
  std::uint64_t consumed_ = 0;  // input bytes before buf_[origin_]
  PcapRecordFormat format_{};
  ReadFn read_;
  std::string read_error_;
  PcapRecordWalker walker_;
};

}  // namespace flowsec::capture
