// Offline sources: one pcap/pcapng file, a directory of them, or stdin.
//
// Two readers:
//  - A regular file that starts with one of the four classic pcap magics is read with
//    pread(2) into one 256 KiB buffer that the source owns and reuses from file to file
//    (PcapRecordReader, pcap_records.hpp), and its records are walked in place: a batch's spans
//    point into that buffer, no packet is copied. libpcap still opens the file, because it
//    validates the header, maps the file's LINKTYPE_ to the DLT_ that pcap_datalink() reports
//    (LINKTYPE_RAW 101 is DLT_RAW 12) and compiles the -f filter for it. The buffer is only
//    refilled (the partial record at its end moved to its front, then more read) while the
//    batch being filled is still empty; under a batch that holds packets it is only read
//    into the room after its bytes (a small file's next file goes there), and when there is
//    none the batch is returned short, so that its spans stay valid until the next
//    next_batch() call. A record larger than the buffer grows it. A file that another process
//    truncates while it is read is a truncated file, reported with libpcap's wording, since damage
//    at the end of the buffer only counts once read returns 0. Where a swapped file has a link type
//    whose pseudo-header libpcap rewrites, libpcap reads the file like any other. (A mapping of the
//    file was tried first: truncation raised SIGBUS, and on this VM first touches of mapped
//    page-cache pages made it slower than libpcap in some cache states.)
//  - Everything else (pcapng, stdin, FIFOs, Kuznetzov's magic) is read by libpcap, which
//    reuses one buffer per packet, so each batch copies its packets (at most snaplen bytes
//    each) into an arena owned by the source; the copy is what lets the probe see 256
//    packets at once with one virtual call.
// Both stop at a damaged record as libpcap does, with libpcap's wording of the reason.
#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "capture/pcap_records.hpp"
#include "capture/sources.hpp"
#include "common/file_head.hpp"
#include "common/log.hpp"

namespace flowsec::capture::detail {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kComponent = "capture";

// First four bytes of a pcap (either byte order, micro- or nanosecond) or of a
// pcapng section header block.
bool has_capture_magic(const fs::path& path) {
  std::array<unsigned char, 4> m{};
  if (read_file_head(path.string(), std::as_writable_bytes(std::span(m))) != m.size()) return false;
  const std::uint32_t be = std::uint32_t{m[0]} << 24 | std::uint32_t{m[1]} << 16 |
                           std::uint32_t{m[2]} << 8 | std::uint32_t{m[3]};
  switch (be) {
    case 0xa1b2c3d4:  // pcap, microseconds
    case 0xd4c3b2a1:
    case 0xa1b23c4d:  // pcap, nanoseconds
    case 0x4d3cb2a1:
    case 0x0a0d0d0a:  // pcapng SHB (same in both byte orders)
      return true;
    default:
      return false;
  }
}

struct InputFile {
  std::string path;  // "-" for stdin
  std::uint64_t size = 0;
};

class OfflineSource final : public CaptureSource {
 public:
  OfflineSource(SourceKind kind, std::string description, std::vector<InputFile> files,
                const CaptureOptions& options)
      : CaptureSource(kind, std::move(description)),
        files_(std::move(files)),
        filter_expr_(options.bpf_filter),
        snaplen_(options.snaplen) {
    for (const auto& f : files_) bytes_total_ += f.size;
  }
  ~OfflineSource() override { close_current(); }

  // Opens the first file so that a bad filter or an unreadable file is a start-up error.
  // In a directory a damaged file is skipped, but a filter that does not compile is
  // still an error: it would not compile for the other files of that link type either.
  Expected<void, std::string> start() {
    while (index_ < files_.size()) {
      auto r = open_file(index_);
      if (r) return {};
      if (files_.size() == 1 || filter_failed_) return unexpected(std::move(r.error()));
      skip_damaged(std::move(r.error()));
    }
    return unexpected(description_ + ": no readable pcap or pcapng file");
  }

  ReadStatus next_batch(PacketBatch& batch) override {
    batch.size = 0;
    if (done_ != ReadStatus::packets) return done_;
    if (stop_requested()) return finish(ReadStatus::end);
    std::size_t arena_used = 0;  // the arena is allocated with the first libpcap-read file
    while (batch.size < PacketBatch::kCapacity) {
      if (pcap_ == nullptr && !advance()) break;
      if (buffered_) {
        const PcapStep step = fill_from_buffer(batch);
        if (step == PcapStep::record) break;  // the batch is full
        if (step == PcapStep::need_more) {
          // Refilling would overwrite what this batch's spans point to: only into the room
          // after them, else the batch ends here.
          if (batch.size == 0) {
            reader_->refill();
          } else if (!reader_->append()) {
            break;
          }
          continue;
        }
        if (step == PcapStep::end) {
          end_of_file();
          continue;
        }
        if (auto s = damaged(reader_->error(), batch)) return *s;
        continue;
      }
      pcap_pkthdr* hdr = nullptr;
      const u_char* data = nullptr;
      const int rc = pcap_next_ex(pcap_, &hdr, &data);
      if (rc == 1) {
        if (has_filter_ && pcap_offline_filter(&filter_, hdr, data) == 0) {
          ++stats_.filtered_out;
          continue;
        }
        const std::uint32_t len = std::min(hdr->caplen, snaplen_);
        std::byte* out = arena_.data() + arena_used;
        std::memcpy(out, data, len);
        RawPacket& p = batch.packets[batch.size++];
        const std::int64_t frac = hdr->ts.tv_usec;
        p.timestamp_ns =
            std::int64_t{hdr->ts.tv_sec} * 1'000'000'000 + (nanoseconds_ ? frac : frac * 1000);
        p.wire_length = hdr->len;
        p.link_type = link_type_;
        p.data = {out, len};
        arena_used += len;
        continue;
      }
      if (rc == PCAP_ERROR_BREAK) {
        end_of_file();
        continue;
      }
      if (auto s = damaged(pcap_geterr(pcap_), batch)) return *s;
    }
    stats_.received += batch.size;
    if (batch.size > 0) return ReadStatus::packets;
    return finish(ReadStatus::end);
  }

  CaptureStats stats() override { return stats_; }

  std::optional<Progress> progress() const override {
    if (kind_ == SourceKind::standard_input) return std::nullopt;
    Progress p;
    p.bytes_total = bytes_total_;
    p.bytes_read = bytes_done_;
    p.file_count = files_.size();
    p.file_index = std::min(index_, files_.size() - 1);
    if (buffered_) {
      p.bytes_read += kPcapFileHeaderSize + reader_->consumed();
    } else if (pcap_ != nullptr) {
      const long pos = std::ftell(pcap_file(pcap_));
      if (pos > 0) p.bytes_read += static_cast<std::uint64_t>(pos);
    }
    if (done_ == ReadStatus::end) p.bytes_read = bytes_total_;
    p.bytes_read = std::min(p.bytes_read, p.bytes_total);
    return p;
  }

 private:
  // Adds the buffered records of the file to the batch, in place. Returns PcapStep::record
  // when the batch is full, else where the buffer or the file stopped.
  PcapStep fill_from_buffer(PacketBatch& batch) {
    PcapRecord rec;
    while (batch.size < PacketBatch::kCapacity) {
      const PcapStep step = reader_->next(rec);
      if (step != PcapStep::record) return step;
      if (has_filter_) {
        pcap_pkthdr hdr{};
        hdr.ts.tv_sec = static_cast<time_t>(rec.timestamp_ns / 1'000'000'000);
        hdr.ts.tv_usec = static_cast<suseconds_t>(rec.timestamp_ns % 1'000'000'000 / 1000);
        hdr.caplen = rec.caplen;
        hdr.len = rec.wire_length;
        if (pcap_offline_filter(&filter_, &hdr, reinterpret_cast<const u_char*>(rec.data.data())) ==
            0) {
          ++stats_.filtered_out;
          continue;
        }
      }
      RawPacket& p = batch.packets[batch.size++];
      p.timestamp_ns = rec.timestamp_ns;
      p.wire_length = rec.wire_length;
      p.link_type = link_type_;
      p.data = rec.data.first(std::min(rec.caplen, snaplen_));
    }
    return PcapStep::record;
  }

  void end_of_file() {
    bytes_done_ += files_[index_].size;
    close_current();
    ++index_;
  }

  // A damaged file: the packets before the damage were delivered (or are in `batch`).
  // A single file ends the reading; a directory goes on with its next file (nullopt).
  std::optional<ReadStatus> damaged(std::string reason, PacketBatch& batch) {
    std::string why = quoted("file", files_[index_].path) + ": " + reason;
    if (files_.size() == 1) {
      error_ = std::move(why);
      close_current();
      if (batch.size > 0) {
        done_ = ReadStatus::error;
        stats_.received += batch.size;
        return ReadStatus::packets;
      }
      return finish(ReadStatus::error);
    }
    skip_damaged(std::move(why));
    return std::nullopt;
  }

  ReadStatus finish(ReadStatus s) {
    close_current();
    done_ = s;
    return s;
  }

  void skip_damaged(std::string why) {
    log::warning(kComponent, why + " (skipped)");
    error_ = std::move(why);
    ++stats_.damaged_files;
    bytes_done_ += files_[index_].size;
    close_current();
    ++index_;
  }

  // Opens the next readable file; false when none is left.
  bool advance() {
    while (index_ < files_.size()) {
      auto r = open_file(index_);
      if (r) return true;
      skip_damaged(std::move(r.error()));
    }
    return false;
  }

  Expected<void, std::string> open_file(std::size_t i, bool may_buffer = true) {
    close_current();
    const std::string& path = files_[i].path;
    char err[PCAP_ERRBUF_SIZE] = {};
    bool classic = false;  // a regular file with a classic pcap magic: for reader_
    if (path == "-") {
      // A duplicate, so that pcap_close() leaves the process's stdin open.
      const int fd = ::dup(STDIN_FILENO);
      FILE* fp = fd >= 0 ? ::fdopen(fd, "rb") : nullptr;
      if (fp == nullptr) {
        if (fd >= 0) ::close(fd);
        return unexpected(quoted("file", "-") + ": " + std::strerror(errno));
      }
      pcap_ = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, err);
      if (pcap_ == nullptr) {
        std::fclose(fp);
        return unexpected(quoted("file", "-") + ": " + err);
      }
    } else {
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return unexpected(quoted("file", path) + ": " + std::strerror(errno));
      classic = may_buffer && is_classic_pcap_file(fd);
      FILE* fp = ::fdopen(fd, "rb");
      if (fp == nullptr) {
        const int e = errno;
        ::close(fd);
        close_current();
        return unexpected(quoted("file", path) + ": " + std::strerror(e));
      }
      if (!classic) {
        // libpcap reads through stdio; with its default 4 KB buffer every 4 KB costs a
        // read(2), about a fifth of the probe's CPU on a large trace. Use a 1 MiB buffer.
        if (read_buffer_.empty()) read_buffer_.resize(kReadBufferBytes);
        std::setvbuf(fp, read_buffer_.data(), _IOFBF, read_buffer_.size());
      }
      pcap_ = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, err);
      if (pcap_ == nullptr) {
        std::fclose(fp);
        close_current();
        // libpcap may prefix its reason with the path; keep the reason only.
        std::string reason = err;
        if (reason.rfind(path + ": ", 0) == 0) reason.erase(0, path.size() + 2);
        return unexpected(quoted("file", path) + ": " + reason);
      }
    }
    nanoseconds_ = pcap_get_tstamp_precision(pcap_) == PCAP_TSTAMP_PRECISION_NANO;
    link_type_ = pcap_datalink(pcap_);
    if (classic && !start_reader()) return open_file(i, false);
    if (!buffered_ && arena_.empty()) {
      arena_.resize(std::size_t{snaplen_} * PacketBatch::kCapacity);
    }
    if (!filter_expr_.empty()) {
      if (pcap_compile(pcap_, &filter_, filter_expr_.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
        std::string why = quoted("file", path) + ": " + quoted("filter", filter_expr_) + ": " +
                          pcap_geterr(pcap_);
        close_current();
        filter_failed_ = true;
        return unexpected(std::move(why));
      }
      has_filter_ = true;
    }
    return {};
  }

  // Reads the records of the classic pcap file that libpcap has just opened into the buffer;
  // false when libpcap must read them itself. libpcap's stdio stream has read ahead of the
  // header, so the file is read with pread(2) from an offset of its own.
  bool start_reader() {
    const int fd = ::fileno(pcap_file(pcap_));
    std::array<std::byte, kPcapFileHeaderSize> header{};
    if (fd < 0 || ::pread(fd, header.data(), header.size(), 0) != std::ssize(header)) return false;
    auto format = parse_pcap_file_header(header);
    if (!format || format->swapped != (pcap_is_swapped(pcap_) == 1)) return false;
    // libpcap rewrites some pseudo-headers of swapped files in its own buffer.
    if (format->swapped && needs_pseudo_header_swap(link_type_)) return false;
    const int snapshot = pcap_snapshot(pcap_);
    if (snapshot <= 0) return false;
    format->snapshot = static_cast<std::uint32_t>(snapshot);
    format->link_type = link_type_;
    if (!reader_) reader_ = std::make_unique<PcapRecordReader>();
    read_offset_ = kPcapFileHeaderSize;
    reader_->start(*format, [this, fd](std::byte* into, std::size_t size) -> long {
      const ssize_t n = ::pread(fd, into, size, static_cast<off_t>(read_offset_));
      if (n > 0) read_offset_ += static_cast<std::uint64_t>(n);
      return n;
    });
    buffered_ = true;
    return true;
  }

  // A regular file that starts with a classic pcap magic (read without moving the offset).
  static bool is_classic_pcap_file(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    std::uint32_t m = 0;
    if (::pread(fd, &m, sizeof m, 0) != static_cast<ssize_t>(sizeof m)) return false;
    for (const std::uint32_t magic : {0xa1b2c3d4U, 0xa1b23c4dU}) {
      if (m == magic || m == __builtin_bswap32(magic)) return true;
    }
    return false;
  }

  void close_current() {
    if (has_filter_) {
      pcap_freecode(&filter_);
      has_filter_ = false;
    }
    if (pcap_ != nullptr) {
      pcap_close(pcap_);
      pcap_ = nullptr;
    }
    // The current batch may point into the reader's buffer, which stays as it is until the
    // next file's first refill.
    buffered_ = false;
  }

  std::vector<InputFile> files_;
  std::string filter_expr_;
  std::uint32_t snaplen_;
  std::vector<std::byte> arena_;  // libpcap reader only: the batch's copies
  std::size_t index_ = 0;
  static constexpr std::size_t kReadBufferBytes = std::size_t{1} << 20;
  std::vector<char> read_buffer_;  // stdio buffer of the open file (outlives pcap_)
  pcap_t* pcap_ = nullptr;
  std::unique_ptr<PcapRecordReader> reader_;  // made with the first classic pcap file
  bool buffered_ = false;                     // the open file is read by reader_
  std::uint64_t read_offset_ = 0;             // of the open file, for reader_
  bpf_program filter_{};
  bool has_filter_ = false;
  bool filter_failed_ = false;
  bool nanoseconds_ = false;
  int link_type_ = 0;
  std::uint64_t bytes_total_ = 0;
  std::uint64_t bytes_done_ = 0;
  CaptureStats stats_{};
  ReadStatus done_ = ReadStatus::packets;  // packets = still reading
};

}  // namespace

Expected<std::unique_ptr<CaptureSource>, std::string> open_offline(const CaptureOptions& options,
                                                                   SourceKind kind) {
  const std::string& name = options.interface;
  std::vector<InputFile> files;
  std::string description;
  std::error_code ec;
  switch (kind) {
    case SourceKind::standard_input:
      files.push_back({"-", 0});
      description = "standard input";
      break;
    case SourceKind::file: {
      const auto size = fs::file_size(name, ec);
      files.push_back({name, ec ? 0 : static_cast<std::uint64_t>(size)});
      description = quoted("file", name);
      break;
    }
    case SourceKind::directory: {
      description = quoted("directory", name);
      fs::directory_iterator it(name, ec);
      if (ec) return unexpected(description + ": " + ec.message());
      std::vector<fs::path> paths;
      for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) return unexpected(description + ": " + ec.message());
        std::error_code fec;
        if (it->is_regular_file(fec) && has_capture_magic(it->path())) paths.push_back(it->path());
      }
      if (ec) return unexpected(description + ": " + ec.message());
      std::sort(paths.begin(), paths.end(), [](const fs::path& a, const fs::path& b) {
        return a.filename().native() < b.filename().native();
      });
      if (paths.empty()) return unexpected(description + ": no pcap or pcapng files");
      for (const auto& p : paths) {
        std::error_code sec;
        const auto size = fs::file_size(p, sec);
        files.push_back({p.string(), sec ? 0 : static_cast<std::uint64_t>(size)});
      }
      break;
    }
    default:
      return unexpected(quoted("interface", name) + ": not an offline source");
  }
  auto source =
      std::make_unique<OfflineSource>(kind, std::move(description), std::move(files), options);
  if (auto r = source->start(); !r) return unexpected(std::move(r.error()));
  return std::unique_ptr<CaptureSource>(std::move(source));
}

}  // namespace flowsec::capture::detail
