#pragma once
// FileSink: the `-P DIR -D t|j|c|b -F SECONDS` output (SPEC §2, §6), and `-P -`
// (standard output).
//
// Files. Time is cut into periods of F seconds aligned on the epoch (UTC), so
// `-F 60` starts a file on every minute, `-F 3600` on every hour. A file is named
// after the UTC start of its period:
//     DIR/YYYY/MM/DD/HH/flows-YYYYMMDDHHMMSS.EXT      EXT = txt | json | csv | ipfix
// (nProbe writes DIR/YYYY/MM/DD/HH/MM.flows; a full timestamp in the name keeps the
// files sortable and unambiguous once moved out of their folder, whatever F is).
// UTC, not local time: no hour exists twice. Should the name be taken already (a
// restart within the same period), ".1", ".2", ... is inserted before EXT.
// A file is written as NAME.tmp and renamed to NAME once complete (fsync, then
// rename: readers never see a partial file under its final name) — at the end of
// its period, detected by write() or by tick() (so an idle output still closes
// its file on time), and by close(). Files are opened on the first record of a
// period: a period without records creates no file. Directories are created as
// needed (mode 0755 & umask; files 0644 & umask).
//
// Formats: text, JSON lines and CSV through ipfix::RecordRenderer (CSV repeats its
// header at the top of every file); binary is an IPFIX file (RFC 5655) through
// ipfix::IpfixFileWriter, self-describing per file, with NetFlow
// flowStart/EndSysUpTime made absolute (UptimeConverter: IE 22/21 become 152/153).
//
// Standard output (`-P -`): no rotation, no .tmp; every batch is written out
// before write() returns (binary too: each batch ends its IPFIX message).
// The program should ignore SIGPIPE so a closed pipe is a counted error (EPIPE).
//
// Errors never stop the program and never block anything but this output
// (sink.hpp): a failed mkdir/open is counted (stats().errors), logged
// (rate-limited) and the records of that period are counted as failed; opening is
// tried again in the next period. A failed write (disk full) truncates the file
// back to the last complete batch (so it stays readable), renames it into place,
// counts what was lost in records_failed, and likewise waits for the next period.
// records_written counts records that reached the file descriptor (binary: whose
// IPFIX message was written).
//
// Threads: driven by one thread (its QueuedSink worker); stats() from any thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.hpp"
#include "ipfix/ipfix_file.hpp"
#include "ipfix/render.hpp"
#include "sinks/queued_sink.hpp"
#include "sinks/sink.hpp"
#include "sinks/uptime_converter.hpp"

namespace flowsec::sinks {

enum class FileFormat : std::uint8_t { text, json_lines, csv, ipfix };

// "t", "j", "c", "b" (the -D letters); nullopt otherwise.
[[nodiscard]] std::optional<FileFormat> parse_file_format(std::string_view letter);
// "txt", "json", "csv", "ipfix".
[[nodiscard]] std::string_view file_extension(FileFormat format);

struct FileSinkOptions {
  std::string path;  // -P: directory, or "-" for standard output
  FileFormat format = FileFormat::text;
  std::chrono::seconds rotation{60};   // -F; values below 1 s count as 1 s
  WallClock clock;                     // time for write(); empty: system_clock::now
  int stdout_fd = 1;                   // where "-" writes (tests pass another descriptor)
  std::string prefix = "flows";        // file name prefix
  std::size_t buffer_bytes = 1 << 20;  // bytes collected before a write(2)
};

class FileSink final : public Sink {
 public:
  explicit FileSink(FileSinkOptions options);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  // Start-up check for the app (fail fast, one clear line): creates DIR if needed and
  // checks it is a writable directory. Empty string when fine, else the reason.
  [[nodiscard]] static std::string check(const FileSinkOptions& options);

  [[nodiscard]] std::string name() const override { return to_stdout_ ? "stdout" : "file"; }
  void write(const ipfix::RecordBatch& batch) override;
  void tick(std::chrono::system_clock::time_point now) override;
  void close() override;
  [[nodiscard]] SinkStats stats() const override;

  // Final name of the file being written ("" when none is open); for tests and logs.
  [[nodiscard]] const std::string& current_file() const { return final_path_; }

 private:
  [[nodiscard]] std::chrono::system_clock::time_point now() const;
  bool open_file(std::chrono::system_clock::time_point now);
  void append(const ipfix::RecordBatch& batch);
  // Moves records the IPFIX writer has written (or dropped) into the counters.
  void account_writer();
  bool flush_buffer();
  void write_behind();
  void finish_file();
  void fail_file(int err, std::string_view what);
  void reset_file();
  void write_stdout(const ipfix::RecordBatch& batch);
  void report(std::string_view text);

  FileSinkOptions options_;
  bool to_stdout_ = false;
  bool closed_ = false;
  std::optional<ipfix::RecordRenderer> renderer_;  // text formats
  UptimeConverter converter_;                      // binary

  // The open file (fd_ >= 0) and its period.
  int fd_ = -1;
  std::string tmp_path_;
  std::string final_path_;
  std::chrono::system_clock::time_point period_end_{};
  std::chrono::system_clock::time_point failed_until_{};  // after an error: records fail
  std::uint64_t good_offset_ = 0;                         // bytes of complete batches on disk
  std::uint64_t behind_offset_ = 0;    // write-behind: bytes whose writeback was started
  std::string buffer_;                 // bytes not yet written
  std::uint64_t pending_records_ = 0;  // records whose bytes are in buffer_
  // Binary: the writer fwrite()s into buffer_ through a cookie FILE.
  std::FILE* cookie_ = nullptr;
  std::unique_ptr<ipfix::IpfixFileWriter> writer_;
  std::uint64_t fed_records_ = 0;        // records handed to writer_
  std::uint64_t accounted_records_ = 0;  // writer_ records + dropped already counted
  std::uint64_t dropped_seen_ = 0;       // writer_ records_dropped already counted

  std::atomic<std::uint64_t> records_written_{0};
  std::atomic<std::uint64_t> records_failed_{0};
  std::atomic<std::uint64_t> files_completed_{0};
  std::atomic<std::uint64_t> errors_{0};
  log::RateLimiter error_log_{5, std::chrono::seconds(60)};
};

}  // namespace flowsec::sinks
