// Offline sources: one pcap/pcapng file, a directory of them, or stdin. libpcap's
// reader reuses one buffer per packet, so each batch copies its packets (at most
// snaplen bytes each) into an arena owned by the source; the copy is what lets the
// probe see 256 packets at once with one virtual call.
#include <pcap/pcap.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "capture/sources.hpp"
#include "common/log.hpp"

namespace flowsec::capture::detail {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kComponent = "capture";

// First four bytes of a pcap (either byte order, micro- or nanosecond) or of a
// pcapng section header block.
bool has_capture_magic(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<unsigned char, 4> m{};
  if (!in.read(reinterpret_cast<char*>(m.data()), m.size())) return false;
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
        snaplen_(options.snaplen),
        arena_(std::size_t{options.snaplen} * PacketBatch::kCapacity) {
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
    std::byte* out = arena_.data();
    while (batch.size < PacketBatch::kCapacity) {
      if (pcap_ == nullptr && !advance()) break;
      pcap_pkthdr* hdr = nullptr;
      const u_char* data = nullptr;
      const int rc = pcap_next_ex(pcap_, &hdr, &data);
      if (rc == 1) {
        if (has_filter_ && pcap_offline_filter(&filter_, hdr, data) == 0) {
          ++stats_.filtered_out;
          continue;
        }
        const std::uint32_t len = std::min(hdr->caplen, snaplen_);
        std::memcpy(out, data, len);
        RawPacket& p = batch.packets[batch.size++];
        const std::int64_t frac = hdr->ts.tv_usec;
        p.timestamp_ns =
            std::int64_t{hdr->ts.tv_sec} * 1'000'000'000 + (nanoseconds_ ? frac : frac * 1000);
        p.wire_length = hdr->len;
        p.link_type = link_type_;
        p.data = {out, len};
        out += len;
        continue;
      }
      if (rc == PCAP_ERROR_BREAK) {  // end of this file
        bytes_done_ += files_[index_].size;
        close_current();
        ++index_;
        continue;
      }
      // A damaged file: the packets before the damage were delivered.
      std::string why = quoted("file", files_[index_].path) + ": " + pcap_geterr(pcap_);
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
    if (pcap_ != nullptr) {
      const long pos = std::ftell(pcap_file(pcap_));
      if (pos > 0) p.bytes_read += static_cast<std::uint64_t>(pos);
    }
    if (done_ == ReadStatus::end) p.bytes_read = bytes_total_;
    p.bytes_read = std::min(p.bytes_read, p.bytes_total);
    return p;
  }

 private:
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

  Expected<void, std::string> open_file(std::size_t i) {
    close_current();
    const std::string& path = files_[i].path;
    char err[PCAP_ERRBUF_SIZE] = {};
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
      // libpcap reads through stdio; with its default 4 KB buffer every 4 KB costs a read(2),
      // about a fifth of the probe's CPU on a large trace. Open the file with a 1 MiB buffer.
      FILE* fp = std::fopen(path.c_str(), "rb");
      if (fp == nullptr) return unexpected(quoted("file", path) + ": " + std::strerror(errno));
      if (read_buffer_.empty()) read_buffer_.resize(kReadBufferBytes);
      std::setvbuf(fp, read_buffer_.data(), _IOFBF, read_buffer_.size());
      pcap_ = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, err);
      if (pcap_ == nullptr) {
        std::fclose(fp);
        // libpcap may prefix its reason with the path; keep the reason only.
        std::string reason = err;
        if (reason.rfind(path + ": ", 0) == 0) reason.erase(0, path.size() + 2);
        return unexpected(quoted("file", path) + ": " + reason);
      }
    }
    nanoseconds_ = pcap_get_tstamp_precision(pcap_) == PCAP_TSTAMP_PRECISION_NANO;
    link_type_ = pcap_datalink(pcap_);
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

  void close_current() {
    if (has_filter_) {
      pcap_freecode(&filter_);
      has_filter_ = false;
    }
    if (pcap_ != nullptr) {
      pcap_close(pcap_);
      pcap_ = nullptr;
    }
  }

  std::vector<InputFile> files_;
  std::string filter_expr_;
  std::uint32_t snaplen_;
  std::vector<std::byte> arena_;
  std::size_t index_ = 0;
  static constexpr std::size_t kReadBufferBytes = std::size_t{1} << 20;
  std::vector<char> read_buffer_;  // stdio buffer of the open file (outlives pcap_)
  pcap_t* pcap_ = nullptr;
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
