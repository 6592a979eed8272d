#include "capture/pcap_records.hpp"

#include <pcap/dlt.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "common/bytes.hpp"

namespace flowsec::capture {
namespace {

constexpr std::uint32_t kMagicMicro = 0xa1b2c3d4;
constexpr std::uint32_t kMagicNano = 0xa1b23c4d;

std::uint32_t load32(const std::byte* p, bool swapped) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return swapped ? byteswap(v) : v;
}

std::uint16_t load16(const std::byte* p, bool swapped) {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return swapped ? byteswap(v) : v;
}

}  // namespace

std::uint32_t max_caplen_for_link_type(int link_type) {
  switch (link_type) {
    case DLT_DBUS:
      return 128 * 1024 * 1024;
    case DLT_EBHSCR:
      return 8 * 1024 * 1024;
    case DLT_USBPCAP:
      return 1024 * 1024;
    default:
      return 262144;  // libpcap's MAXIMUM_SNAPLEN
  }
}

bool needs_pseudo_header_swap(int link_type) {
  switch (link_type) {
    case DLT_PFLOG:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_USB_LINUX:
    case DLT_USB_LINUX_MMAPPED:
    case DLT_NFLOG:
      return true;
    default:
      return false;
  }
}

Expected<PcapRecordFormat, std::string> parse_pcap_file_header(std::span<const std::byte> file) {
  if (file.size() < 4) {
    return unexpected("truncated dump file; tried to read 4 file header bytes, only got " +
                      std::to_string(file.size()));
  }
  PcapRecordFormat f;
  const std::uint32_t magic = load32(file.data(), false);
  if (magic == kMagicMicro || magic == kMagicNano) {
    f.swapped = false;
  } else if (byteswap(magic) == kMagicMicro || byteswap(magic) == kMagicNano) {
    f.swapped = true;
  } else {
    return unexpected(std::string("unknown file format"));
  }
  f.nanoseconds = (f.swapped ? byteswap(magic) : magic) == kMagicNano;
  // libpcap counts the bytes after the magic it has already read.
  if (file.size() < kPcapFileHeaderSize) {
    return unexpected("truncated dump file; tried to read 24 file header bytes, only got " +
                      std::to_string(file.size() - 4));
  }
  const std::uint16_t major = load16(file.data() + 4, f.swapped);
  const std::uint16_t minor = load16(file.data() + 6, f.swapped);
  if (major < 2) return unexpected(std::string("archaic pcap savefile format"));
  if (!((major == 2 && minor <= 4) || (major == 543 && minor == 0))) {
    return unexpected("unsupported pcap savefile version " + std::to_string(major) + "." +
                      std::to_string(minor));
  }
  // The length fields were interchanged at 2.3, and some 2.3 files were written either way.
  if (major == 543 || minor < 3) {
    f.lengths = PcapLengthOrder::len_first;
  } else if (minor == 3) {
    f.lengths = PcapLengthOrder::either;
  }
  // The upper 6 bits of the link type carry extra information (LT_LINKTYPE_EXT).
  f.link_type = static_cast<int>(load32(file.data() + 20, f.swapped) & 0x03ffffff);
  const std::uint32_t snaplen = load32(file.data() + 16, f.swapped);
  const std::uint32_t max = max_caplen_for_link_type(f.link_type);
  f.snapshot = snaplen == 0 || snaplen > max ? max : snaplen;
  return f;
}

PcapRecordWalker::PcapRecordWalker(std::span<const std::byte> records,
                                   const PcapRecordFormat& format, bool final)
    : in_(records),
      format_(format),
      max_caplen_(max_caplen_for_link_type(format.link_type)),
      native_(!format.swapped && format.lengths == PcapLengthOrder::caplen_first),
      plain_caplen_(std::min(format.snapshot, max_caplen_)),
      frac_to_ns_(format.nanoseconds ? 1 : 1000),
      final_(final) {}

PcapStep PcapRecordWalker::damaged(std::string why) {
  error_ = std::move(why);
  done_ = PcapStep::damaged;
  return done_;
}

PcapStep PcapRecordWalker::next(PcapRecord& out) {
  if (done_ != PcapStep::record) return done_;
  const std::size_t left = in_.size() - pos_;
  if (native_ && left >= kPcapRecordHeaderSize) {
    // The usual record, judged as below would judge it: a whole record within the snapshot
    // length, in this host's byte order (signed seconds and fraction, as libpcap reads them).
    const std::byte* h = in_.data() + pos_;
    const std::uint32_t caplen = load32(h + 8, false);
    if (caplen <= plain_caplen_ && caplen <= left - kPcapRecordHeaderSize) {
      const auto sec = static_cast<std::int32_t>(load32(h, false));
      const auto frac = static_cast<std::int32_t>(load32(h + 4, false));
      out.timestamp_ns = std::int64_t{sec} * 1'000'000'000 + std::int64_t{frac} * frac_to_ns_;
      out.caplen = caplen;
      out.wire_length = load32(h + 12, false);
      out.data = in_.subspan(pos_ + kPcapRecordHeaderSize, caplen);
      pos_ += kPcapRecordHeaderSize + caplen;
      return PcapStep::record;
    }
  }
  if (!final_ && left < kPcapRecordHeaderSize) {
    needed_ = kPcapRecordHeaderSize;
    return PcapStep::need_more;
  }
  if (left == 0) {
    done_ = PcapStep::end;
    return done_;
  }
  if (left < kPcapRecordHeaderSize) {
    return damaged("truncated dump file; tried to read 16 header bytes, only got " +
                   std::to_string(left));
  }
  const std::byte* h = in_.data() + pos_;
  const bool sw = format_.swapped;
  // libpcap 1.10 reads ts_sec and ts_usec as signed 32-bit values (struct pcap_timeval) in a
  // file of this host's byte order, but as unsigned ones in a swapped file (its SWAPLONG
  // yields an unsigned int). Only damaged or fuzzed files tell the difference.
  const std::uint32_t raw_sec = load32(h, sw);
  const std::uint32_t raw_frac = load32(h + 4, sw);
  const std::int64_t sec =
      sw ? std::int64_t{raw_sec} : std::int64_t{static_cast<std::int32_t>(raw_sec)};
  const std::int64_t frac =
      sw ? std::int64_t{raw_frac} : std::int64_t{static_cast<std::int32_t>(raw_frac)};
  std::uint32_t caplen = load32(h + 8, sw);
  std::uint32_t len = load32(h + 12, sw);
  if (format_.lengths == PcapLengthOrder::len_first ||
      (format_.lengths == PcapLengthOrder::either && caplen > len)) {
    std::swap(caplen, len);
  }
  const std::uint32_t snapshot = format_.snapshot;
  if (caplen > max_caplen_) {
    // libpcap names the snapshot length whenever it is the smaller bound, which for the
    // four classic magics is always (the snapshot never exceeds the maximum).
    if (caplen > snapshot) {
      return damaged("invalid packet capture length " + std::to_string(caplen) +
                     ", bigger than snaplen of " + std::to_string(snapshot));
    }
    return damaged("invalid packet capture length " + std::to_string(caplen) +
                   ", bigger than maximum of " + std::to_string(max_caplen_));
  }
  const std::size_t avail = left - kPcapRecordHeaderSize;
  if (!final_ && avail < caplen) {
    needed_ = kPcapRecordHeaderSize + std::size_t{caplen};
    return PcapStep::need_more;
  }
  std::uint32_t keep = caplen;
  if (caplen > snapshot) {
    // sf-pcap.c reads the first `snapshot` bytes, discards the rest of the record and
    // reports caplen = snapshot, so that no caller sees more than the snapshot length.
    if (avail < snapshot) {
      return damaged("truncated dump file; tried to read " + std::to_string(snapshot) +
                     " captured bytes, only got " + std::to_string(avail));
    }
    keep = snapshot;
  }
  if (avail < caplen) {
    return damaged("truncated dump file; tried to read " + std::to_string(caplen) +
                   " captured bytes, only got " + std::to_string(avail));
  }
  out.timestamp_ns = sec * 1'000'000'000 + (format_.nanoseconds ? frac : frac * 1000);
  out.caplen = keep;
  out.wire_length = len;
  out.data = in_.subspan(pos_ + kPcapRecordHeaderSize, keep);
  pos_ += kPcapRecordHeaderSize + caplen;
  return PcapStep::record;
}

namespace {
std::atomic<std::uint64_t> g_inputs_started{0};
std::atomic<std::size_t> g_default_buffer_bytes{0};
}  // namespace

std::uint64_t PcapRecordReader::inputs_started() {
  return g_inputs_started.load();
}

void PcapRecordReader::set_default_buffer_bytes_for_testing(std::size_t bytes) {
  g_default_buffer_bytes.store(bytes);
}

std::size_t PcapRecordReader::default_buffer_bytes() {
  const std::size_t n = g_default_buffer_bytes.load();
  return n == 0 ? kPcapReadBufferBytes : n;
}

PcapRecordReader::PcapRecordReader(std::size_t buffer_bytes)
    : size_(std::max(buffer_bytes == 0 ? default_buffer_bytes() : buffer_bytes,
                     kPcapRecordHeaderSize)) {
  buf_.reset(new std::byte[size_]);
  walker_ = PcapRecordWalker({buf_.get(), 0}, format_, false);
}

void PcapRecordReader::start(const PcapRecordFormat& format, ReadFn read) {
  format_ = format;
  read_ = std::move(read);
  read_error_.clear();
  // The previous input's bytes stay where they are, in case its records are still in use.
  origin_ = filled_;
  consumed_ = 0;
  walker_ = PcapRecordWalker({buf_.get() + origin_, 0}, format_, false);
  g_inputs_started.fetch_add(1);
}

PcapStep PcapRecordReader::next(PcapRecord& out) {
  const PcapStep step = walker_.next(out);
  // What was read before a failed read is delivered; the record it cut is damaged (sticky,
  // since the walker keeps needing more).
  if (step == PcapStep::need_more && !read_error_.empty()) return PcapStep::damaged;
  return step;
}

void PcapRecordReader::refill() {
  if (!read_error_.empty() || walker_.done()) return;
  const std::size_t pos = origin_ + walker_.offset();
  const std::size_t tail = filled_ - pos;
  if (tail > 0 && pos > 0) std::memmove(buf_.get(), buf_.get() + pos, tail);
  consumed_ += walker_.offset();
  origin_ = 0;
  filled_ = tail;
  // A record larger than the buffer (up to 16 + 128 MiB for D-Bus): the buffer grows for it
  // and stays that size.
  const std::size_t need = walker_.needed();
  if (need > size_) {
    std::unique_ptr<std::byte[]> bigger(new std::byte[need]);
    std::memcpy(bigger.get(), buf_.get(), tail);
    buf_ = std::move(bigger);
    size_ = need;
  }
  read_more();
}

bool PcapRecordReader::append() {
  if (!read_error_.empty() || walker_.done()) return false;
  const std::size_t pos = origin_ + walker_.offset();
  if (filled_ == size_ || size_ - pos < walker_.needed()) return false;
  consumed_ += walker_.offset();
  origin_ = pos;
  read_more();
  return true;
}

void PcapRecordReader::read_more() {
  bool at_end = false;
  while (filled_ < size_) {
    const long n = read_ ? read_(buf_.get() + filled_, size_ - filled_) : 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      read_error_ = std::string("error reading dump file: ") + std::strerror(errno);
      break;
    }
    if (n == 0) {
      at_end = true;
      break;
    }
    filled_ += static_cast<std::size_t>(n);
  }
  walker_ = PcapRecordWalker({buf_.get() + origin_, filled_ - origin_}, format_, at_end);
}

}  // namespace flowsec::capture
