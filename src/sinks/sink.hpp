#pragma once
// Sink: one output of record batches (SPEC §6 "Outputs"): rotated files,
// standard output, re-export, and later ntopng and ClickHouse.
//
// Contract:
//  - Batches arrive as BatchPtr, shared and immutable: the same batch goes to
//    every output, and each keeps it only as long as it needs it.
//  - A Sink is driven by exactly one thread (its QueuedSink worker), so an
//    implementation needs no locks of its own. write() may block (disk, network):
//    that only ever delays this output, never the receive path or another output.
//  - Errors are the sink's own business: it logs them (rate-limited), counts
//    them in SinkStats and carries on; it never throws on the data path.
//  - close() delivers or finishes everything written so far (renames a file
//    from .tmp, flushes a connection) and is called once, at shutdown; delivered()
//    then says whether everything reached its destination (an output whose peer
//    may be away — re-export, ntopng, ClickHouse — can say no; the exit code follows).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ipfix/record.hpp"

namespace flowsec::sinks {

using BatchPtr = std::shared_ptr<const ipfix::RecordBatch>;

struct SinkStats {
  std::uint64_t records_written = 0;  // handed on by write() without error
  std::uint64_t records_failed = 0;   // write() could not store or send them
  std::uint64_t files_completed = 0;  // file sinks: files renamed into place
  std::uint64_t errors = 0;           // failed operations (open, write, rename, send), each logged
  std::uint64_t records_pending = 0;  // held for a peer that is away (ClickHouse), not yet sent
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Label of this output in logs and metrics ("file", "stdout", "export", ...).
  [[nodiscard]] virtual std::string name() const = 0;
  virtual void write(const ipfix::RecordBatch& batch) = 0;
  // Called about once a second, also when no batch arrives (file rotation, retries).
  virtual void tick(std::chrono::system_clock::time_point /*now*/) {}
  virtual void close() = 0;
  // After close(): true when everything written reached its destination.
  [[nodiscard]] virtual bool delivered() const { return true; }
  // Read from other threads (metrics): implementations keep the counters atomic.
  [[nodiscard]] virtual SinkStats stats() const = 0;
};

}  // namespace flowsec::sinks
