#include "sinks/file_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <utility>

namespace flowsec::sinks {

namespace {

constexpr std::string_view kComponent = "sinks";

std::string errno_text(int err) {
  return std::error_code(err, std::system_category()).message();
}

// write(2) until done; 0 or the errno of the failure.
int write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return 0;
}

// stdio FILE* whose bytes land in a std::string (the IPFIX writer wants a FILE*;
// the sink wants to know exactly what reached the disk).
ssize_t cookie_write(void* cookie, const char* buf, std::size_t size) {
  static_cast<std::string*>(cookie)->append(buf, size);
  return static_cast<ssize_t>(size);
}

std::FILE* open_string_file(std::string& target) {
  cookie_io_functions_t io{};
  io.write = cookie_write;
  std::FILE* f = fopencookie(&target, "w", io);
  if (f != nullptr) std::setvbuf(f, nullptr, _IONBF, 0);  // every fwrite straight through
  return f;
}

std::tm utc(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

}  // namespace

std::optional<FileFormat> parse_file_format(std::string_view letter) {
  if (letter == "t") return FileFormat::text;
  if (letter == "j") return FileFormat::json_lines;
  if (letter == "c") return FileFormat::csv;
  if (letter == "b") return FileFormat::ipfix;
  return std::nullopt;
}

std::string_view file_extension(FileFormat format) {
  switch (format) {
    case FileFormat::text:
      return "txt";
    case FileFormat::json_lines:
      return "json";
    case FileFormat::csv:
      return "csv";
    case FileFormat::ipfix:
      return "ipfix";
  }
  return "txt";
}

FileSink::FileSink(FileSinkOptions options) : options_(std::move(options)) {
  to_stdout_ = options_.path == "-";
  if (options_.rotation < std::chrono::seconds(1)) options_.rotation = std::chrono::seconds(1);
  switch (options_.format) {
    case FileFormat::text:
      renderer_.emplace(ipfix::RenderFormat::text);
      break;
    case FileFormat::json_lines:
      renderer_.emplace(ipfix::RenderFormat::json_lines);
      break;
    case FileFormat::csv:
      renderer_.emplace(ipfix::RenderFormat::csv);
      break;
    case FileFormat::ipfix:
      break;
  }
}

FileSink::~FileSink() {
  if (!closed_) close();
}

std::string FileSink::check(const FileSinkOptions& options) {
  if (options.path == "-") return {};
  if (options.path.empty()) return "dump path (-P) is empty";
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return "cannot create dump directory " + options.path + ": " + ec.message();
  if (!std::filesystem::is_directory(options.path, ec)) {
    return "dump path " + options.path + " is not a directory";
  }
  if (::access(options.path.c_str(), W_OK | X_OK) != 0) {
    return "dump directory " + options.path + " is not writable: " + errno_text(errno);
  }
  return {};
}

std::chrono::system_clock::time_point FileSink::now() const {
  return options_.clock ? options_.clock() : std::chrono::system_clock::now();
}

void FileSink::report(std::string_view text) {
  std::uint64_t suppressed = 0;
  if (!error_log_.allow(suppressed)) return;
  std::string line = "output " + name() + ": " + std::string(text);
  if (suppressed > 0) line += " (" + std::to_string(suppressed) + " similar lines suppressed)";
  log::error(kComponent, line);
}

SinkStats FileSink::stats() const {
  SinkStats s;
  s.records_written = records_written_.load(std::memory_order_relaxed);
  s.records_failed = records_failed_.load(std::memory_order_relaxed);
  s.files_completed = files_completed_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  return s;
}

void FileSink::write(const ipfix::RecordBatch& batch) {
  if (batch.empty() || closed_) {
    if (closed_) records_failed_.fetch_add(batch.size(), std::memory_order_relaxed);
    return;
  }
  if (to_stdout_) {
    write_stdout(batch);
    return;
  }
  const auto t = now();
  if (fd_ >= 0 && t >= period_end_) finish_file();
  if (fd_ < 0) {
    if (t < failed_until_ || !open_file(t)) {
      records_failed_.fetch_add(batch.size(), std::memory_order_relaxed);
      return;
    }
  }
  append(batch);
}

void FileSink::tick(std::chrono::system_clock::time_point t) {
  if (to_stdout_ || fd_ < 0) return;
  if (t >= period_end_) {
    finish_file();
  } else if (!writer_) {
    // Text formats: what arrived is on disk (and counted as written) within a tick, even
    // when the buffer is far from full; a reader of the .tmp file or of the metrics need
    // not wait for the rotation.
    (void)flush_buffer();
  }
}

void FileSink::close() {
  if (closed_) return;
  if (fd_ >= 0) finish_file();
  closed_ = true;
}

bool FileSink::open_file(std::chrono::system_clock::time_point t) {
  using std::chrono::system_clock;
  const auto since = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch());
  // Periods aligned on the epoch: floor(now / F) · F.
  const std::int64_t f = options_.rotation.count();
  std::int64_t periods = since.count() / f;
  if (since.count() % f < 0) --periods;
  const system_clock::time_point start{std::chrono::seconds(periods * f)};
  const system_clock::time_point end = start + options_.rotation;

  const std::tm tm = utc(start);
  char dir_part[32];
  char stamp[32];
  std::strftime(dir_part, sizeof dir_part, "%Y/%m/%d/%H", &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
  const std::string dir = options_.path + "/" + dir_part;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    fail_file(ec.value(), "cannot create directory " + dir);
    failed_until_ = end;
    return false;
  }
  const std::string base = dir + "/" + options_.prefix + "-" + stamp;
  const std::string ext = "." + std::string(file_extension(options_.format));
  for (int k = 0; k < 1000; ++k) {
    std::string final_path = base + (k == 0 ? std::string() : "." + std::to_string(k)) + ext;
    std::string tmp_path = final_path + ".tmp";
    if (::access(final_path.c_str(), F_OK) == 0) continue;  // written before a restart
    const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      fail_file(errno, "cannot create " + tmp_path);
      failed_until_ = end;
      return false;
    }
    fd_ = fd;
    tmp_path_ = std::move(tmp_path);
    final_path_ = std::move(final_path);
    period_end_ = end;
    good_offset_ = 0;
    behind_offset_ = 0;
    pending_records_ = 0;
    buffer_.clear();
    if (renderer_) renderer_->reset();  // CSV: header again at the top of each file
    if (options_.format == FileFormat::ipfix) {
      cookie_ = open_string_file(buffer_);
      if (cookie_ == nullptr) {
        fail_file(errno, "cannot set up the IPFIX writer for " + tmp_path_);
        failed_until_ = end;
        return false;
      }
      writer_ = std::make_unique<ipfix::IpfixFileWriter>(cookie_);
      fed_records_ = 0;
      accounted_records_ = 0;
    }
    return true;
  }
  fail_file(EEXIST, "no free file name for " + base + ext);
  failed_until_ = end;
  return false;
}

void FileSink::account_writer() {
  if (!writer_) return;
  const auto& ws = writer_->stats();
  const std::uint64_t done = ws.records + ws.records_dropped;
  if (done <= accounted_records_) return;
  // Split the new ones into written (now in buffer_) and dropped by the writer.
  const std::uint64_t fresh = done - accounted_records_;
  accounted_records_ = done;
  // The writer's own drops: records too large for any message; counted as failed.
  const std::uint64_t dropped_total = ws.records_dropped;
  const std::uint64_t fresh_dropped = dropped_total - dropped_seen_;
  dropped_seen_ = dropped_total;
  pending_records_ += fresh - fresh_dropped;
  if (fresh_dropped > 0) {
    records_failed_.fetch_add(fresh_dropped, std::memory_order_relaxed);
    errors_.fetch_add(1, std::memory_order_relaxed);
    report(std::to_string(fresh_dropped) + " records too large for an IPFIX message dropped");
  }
}

void FileSink::append(const ipfix::RecordBatch& batch) {
  if (renderer_) {
    renderer_->render(batch, buffer_);
    pending_records_ += batch.size();
  } else {
    const ipfix::RecordBatch& conv = converter_.convert(batch);
    fed_records_ += conv.size();
    // The cookie FILE cannot fail (it appends to buffer_), so neither can the writer.
    (void)writer_->write(conv);
    account_writer();
  }
  if (buffer_.size() >= options_.buffer_bytes) flush_buffer();
}

bool FileSink::flush_buffer() {
  if (buffer_.empty()) {
    records_written_.fetch_add(pending_records_, std::memory_order_relaxed);
    pending_records_ = 0;
    return true;
  }
  const int err = write_all(fd_, buffer_.data(), buffer_.size());
  if (err != 0) {
    fail_file(err, "cannot write " + tmp_path_);
    return false;
  }
  good_offset_ += buffer_.size();
  buffer_.clear();
  records_written_.fetch_add(pending_records_, std::memory_order_relaxed);
  pending_records_ = 0;
  write_behind();
  return true;
}

// Write-behind: a collector writes far more than it will ever read back, so each
// completed window of the file is handed to the disk as soon as it is full
// (SYNC_FILE_RANGE_WRITE, asynchronous) and the window before it, once on disk, is
// dropped from the page cache (POSIX_FADV_DONTNEED). Memory then holds at most two
// windows of output per file instead of gigabytes of dirty pages, the final fsync has
// little left to do, and the page-cache pages are recycled rather than freshly
// allocated (which on a virtual machine costs a host page fault per page: most of the
// -D b CPU time before this, docs/benchmarks.md). Failures here are only advice lost:
// a real write error still surfaces at fsync() in finish_file().
void FileSink::write_behind() {
  constexpr std::uint64_t kWindow = 8u << 20;
  while (good_offset_ - behind_offset_ >= kWindow) {
    (void)::sync_file_range(fd_, static_cast<off_t>(behind_offset_), kWindow,
                            SYNC_FILE_RANGE_WRITE);
    if (behind_offset_ >= kWindow) {
      const auto previous = static_cast<off_t>(behind_offset_ - kWindow);
      (void)::sync_file_range(
          fd_, previous, kWindow,
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      (void)::posix_fadvise(fd_, previous, kWindow, POSIX_FADV_DONTNEED);
    }
    behind_offset_ += kWindow;
  }
}

void FileSink::finish_file() {
  if (fd_ < 0) return;
  if (writer_) {
    (void)writer_->finish();  // last message into buffer_ (cannot fail, see append())
    account_writer();
  }
  if (!flush_buffer()) return;  // fail_file() has dealt with the file
  if (good_offset_ == 0) {      // every record refused by the writer: no file
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_path_.c_str());
    reset_file();
    return;
  }
  // Durable before it becomes visible under its final name.
  if (::fsync(fd_) != 0) {
    fail_file(errno, "cannot sync " + tmp_path_);  // still renames what was written
    return;
  }
  if (::close(fd_) != 0) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    report("cannot close " + tmp_path_ + ": " + errno_text(errno));
  }
  fd_ = -1;
  if (std::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    report("cannot rename " + tmp_path_ + " to " + final_path_ + ": " + errno_text(errno));
  } else {
    files_completed_.fetch_add(1, std::memory_order_relaxed);
  }
  reset_file();
}

void FileSink::fail_file(int err, std::string_view what) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t lost = pending_records_;
  if (writer_) lost += fed_records_ - accounted_records_;  // still in the open message
  pending_records_ = 0;
  if (fd_ >= 0) {
    // Cut back to the last complete batch so the file stays readable, and keep it.
    const bool truncated = ::ftruncate(fd_, static_cast<off_t>(good_offset_)) == 0;
    ::close(fd_);
    fd_ = -1;
    if (good_offset_ > 0 && truncated && std::rename(tmp_path_.c_str(), final_path_.c_str()) == 0) {
      files_completed_.fetch_add(1, std::memory_order_relaxed);
    } else if (good_offset_ == 0) {
      ::unlink(tmp_path_.c_str());
    }
    failed_until_ = period_end_;
  }
  records_failed_.fetch_add(lost, std::memory_order_relaxed);
  report(std::string(what) + ": " + errno_text(err) +
         "; records are counted as failed until the next file period");
  reset_file();
}

void FileSink::reset_file() {
  writer_.reset();
  if (cookie_ != nullptr) {
    std::fclose(cookie_);
    cookie_ = nullptr;
  }
  buffer_.clear();
  pending_records_ = 0;
  fed_records_ = 0;
  accounted_records_ = 0;
  dropped_seen_ = 0;
  tmp_path_.clear();
  final_path_.clear();
  good_offset_ = 0;
  behind_offset_ = 0;
}

void FileSink::write_stdout(const ipfix::RecordBatch& batch) {
  buffer_.clear();
  if (renderer_) {
    renderer_->render(batch, buffer_);
    pending_records_ = batch.size();
  } else {
    if (!writer_) {
      cookie_ = open_string_file(buffer_);
      if (cookie_ == nullptr) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        records_failed_.fetch_add(batch.size(), std::memory_order_relaxed);
        report("cannot set up the IPFIX writer: " + errno_text(errno));
        return;
      }
      writer_ = std::make_unique<ipfix::IpfixFileWriter>(cookie_);
    }
    const ipfix::RecordBatch& conv = converter_.convert(batch);
    fed_records_ += conv.size();
    (void)writer_->write(conv);
    (void)writer_->finish();  // each batch ends its message: a reader sees it now
    account_writer();
  }
  const int err = write_all(options_.stdout_fd, buffer_.data(), buffer_.size());
  if (err != 0) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    records_failed_.fetch_add(pending_records_, std::memory_order_relaxed);
    report("cannot write to standard output: " + errno_text(err));
  } else {
    records_written_.fetch_add(pending_records_, std::memory_order_relaxed);
  }
  pending_records_ = 0;
  buffer_.clear();
}

}  // namespace flowsec::sinks
