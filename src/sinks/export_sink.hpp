#pragma once
// ExportSink: the proxy's re-export output (SPEC §1 "proxy", §6 "proxy re-export with
// -n"): collected record batches → exporter::Exporter → the -n collectors, in the -V
// format, with the fields received (or the -T fields).
//
// Contract: a Sink (sink.hpp). write() and close() run on the sink's one worker thread,
// which is therefore the Exporter's producer thread; the Exporter posts the messages to
// its senders' io thread and never blocks on the network (the senders queue, bounded, and
// count what they drop). The sink does not own the Exporter's io thread; it owns the
// Exporter only if given it by unique_ptr. close() flushes and shuts the senders down,
// waiting at most `shutdown_timeout` for their verdict. stats() reads atomics.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "exporter/exporter.hpp"
#include "sinks/sink.hpp"

namespace flowsec::sinks {

class ExportSink final : public Sink {
 public:
  ExportSink(std::unique_ptr<exporter::Exporter> exporter,
             std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(10));
  ~ExportSink() override;

  [[nodiscard]] std::string name() const override { return "export"; }
  void write(const ipfix::RecordBatch& batch) override;
  void tick(std::chrono::system_clock::time_point now) override;
  // Flushes, shuts the senders down and waits (at most the timeout + 1 s) for them; the
  // io thread must still be running. Idempotent.
  void close() override;
  [[nodiscard]] SinkStats stats() const override;

  // True once close() saw every sender deliver everything.
  [[nodiscard]] bool delivered() const override { return delivered_; }
  [[nodiscard]] exporter::Exporter& exporter() { return *exporter_; }

 private:
  std::unique_ptr<exporter::Exporter> exporter_;
  std::chrono::milliseconds shutdown_timeout_;
  std::atomic<std::uint64_t> written_{0}, failed_{0};
  std::atomic<bool> delivered_{false};
  bool closed_ = false;
};

}  // namespace flowsec::sinks
