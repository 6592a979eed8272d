#pragma once
// IPFIX files (RFC 5655): the binary dump format (SPEC §6 "-D b") and the
// replay input (`flowsec -i FILE.ipfix`).
//
// A file is a plain sequence of IPFIX messages (RFC 5655 §6), which is also
// exactly what an IPFIX-over-TCP stream carries, so reading reuses the stream
// framer and decode_ipfix with a TemplateStore of TransportKind::file.
//
// Writer contract:
//  - The FILE* is the caller's (opened, closed, renamed by it; e.g. write to
//    ".tmp" then rename, SPEC §6). The writer only fwrite()s messages to it.
//  - Every file is self-describing (RFC 5655 §8): a template is written, in the
//    record's observation domain, before the first record that uses it. Each
//    distinct layout gets a fresh template id (256, 257, ...) per file, so the
//    internal ids < 256 of v5/sFlow records and clashing ids from different
//    exporters never reach the file.
//  - Messages are ≤ max_message_size (default 65535, RFC 7011 §3.1). A message
//    holds records of one observation domain (MessageMeta::observation_domain)
//    and one export time (MessageMeta::export_time); its sequence number counts
//    the data records written before it in that domain (RFC 7011 §3.1).
//  - Records are copied as they are: they are already encoded for their
//    template (record.hpp). Nothing is lost silently: a record that cannot fit
//    even an empty message is counted in stats().records_dropped.
//  - Call finish() before closing the file: it writes the last message and
//    flushes stdio. One thread at a time.
//  Note: NetFlow sysUpTime-relative times (flowStart/EndSysUpTime 21/22) are
//  copied as they are; the header uptime they refer to is not in the file.
//
// Reader contract: FILE* is the caller's. read() appends the records of the
// messages completed by the next chunk of the file to a batch and reports end
// of file. A framing error (not an IPFIX message, bad length, file ending
// inside a message) is fatal: RFC 7011 §10 framing cannot resynchronise. A
// message that fails to decode is dropped whole and counted (like a malformed
// message on a stream, SPEC §9); reading goes on with the next one.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/result.hpp"
#include "ipfix/decode.hpp"
#include "ipfix/errors.hpp"
#include "ipfix/limits.hpp"
#include "ipfix/message_builder.hpp"
#include "ipfix/record.hpp"
#include "ipfix/stream_framer.hpp"
#include "ipfix/template_store.hpp"
#include "ipfix/uptime_reference.hpp"

namespace flowsec::ipfix {

struct FileWriterStats {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t templates = 0;  // template records written
  std::uint64_t records = 0;    // data records written
  std::uint64_t records_dropped = 0;
};

class IpfixFileWriter {
 public:
  explicit IpfixFileWriter(std::FILE* out, std::size_t max_message_size = limits::kMaxMessageSize);
  IpfixFileWriter(const IpfixFileWriter&) = delete;
  IpfixFileWriter& operator=(const IpfixFileWriter&) = delete;

  // Adds every record of the batch; full messages are written as they fill up.
  [[nodiscard]] Expected<void, std::error_code> write(const RecordBatch& batch);
  // Writes the pending message and fflush()es. The writer may be used again afterwards
  // (templates already written stay valid: it is still the same file).
  [[nodiscard]] Expected<void, std::error_code> finish();

  [[nodiscard]] const FileWriterStats& stats() const { return stats_; }

 private:
  struct Layout {
    TemplatePtr wire;  // same fields, file-local id
  };
  struct Domain {
    explicit Domain(std::uint32_t id, std::size_t max_size) : builder(id, max_size) {}
    IpfixMessageBuilder builder;
    std::uint32_t sequence = 0;  // data records written before the open message
  };

  // File-local template for `t`, or nullptr when the file ran out of template ids.
  const Template* wire_template(const TemplatePtr& t);
  Domain& domain(std::uint32_t id);
  [[nodiscard]] Expected<void, std::error_code> flush_message();
  [[nodiscard]] Expected<void, std::error_code> put(Bytes bytes);

  std::FILE* out_;
  std::size_t max_size_;
  FileWriterStats stats_;
  std::vector<Layout> layouts_;
  std::unordered_multimap<std::size_t, std::size_t> by_hash_;   // layout hash → layouts_
  std::unordered_map<const Template*, std::size_t> layout_of_;  // source template → layouts_
  std::vector<TemplatePtr> sources_;             // keeps layout_of_ keys alive (no address reuse)
  std::unordered_set<std::uint64_t> announced_;  // (domain << 16 | wire id) already written
  std::unordered_map<std::uint32_t, std::unique_ptr<Domain>> domains_;
  Domain* open_ = nullptr;  // domain of the open message, nullptr when none
  std::uint32_t open_export_time_ = 0;
  std::uint16_t next_id_ = 256;
  bool ids_exhausted_ = false;
};

struct FileReaderStats {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t templates = 0;
  std::uint64_t data_records = 0;
  std::uint64_t unknown_template_sets = 0;
  std::uint64_t messages_dropped = 0;          // failed to decode
  Error last_decode_error{};                   // meaningful when messages_dropped > 0
  std::uint64_t last_decode_error_offset = 0;  // file offset of that message
};

struct FileReadError {
  enum class Kind : std::uint8_t { io, framing };
  Kind kind = Kind::io;
  std::error_code io;  // kind == io
  Error framing{};     // kind == framing: stream_bad_version, stream_bad_length, stream_truncated
  std::uint64_t offset = 0;  // file offset where it happened
  [[nodiscard]] std::string message() const;
};

class IpfixFileReader {
 public:
  static constexpr std::size_t kChunkSize = 256 * 1024;

  explicit IpfixFileReader(std::FILE* in);
  IpfixFileReader(const IpfixFileReader&) = delete;
  IpfixFileReader& operator=(const IpfixFileReader&) = delete;

  // Reads the next chunk and appends the records of the messages it completes to `out`.
  // Returns true while there may be more to read, false once the end of the file is reached
  // cleanly (`out` may still have received records in that call).
  [[nodiscard]] Expected<bool, FileReadError> read(RecordBatch& out);

  [[nodiscard]] const FileReaderStats& stats() const { return stats_; }
  [[nodiscard]] const TemplateStore& templates() const { return store_; }

 private:
  std::FILE* in_;
  StreamFramer framer_;
  TemplateStore store_;
  UptimeReference uptime_;
  std::vector<std::byte> chunk_;
  FileReaderStats stats_;
  bool done_ = false;
};

// Opens `path`, reads it to the end and calls on_batch once per non-empty batch (the batch is
// cleared after each call). Returns the reader's stats.
[[nodiscard]] Expected<FileReaderStats, FileReadError> read_ipfix_file(
    const std::string& path, const std::function<void(RecordBatch&)>& on_batch);

}  // namespace flowsec::ipfix
