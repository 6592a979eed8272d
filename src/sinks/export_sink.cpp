#include "sinks/export_sink.hpp"

#include <condition_variable>
#include <mutex>

namespace flowsec::sinks {

ExportSink::ExportSink(std::unique_ptr<exporter::Exporter> exporter,
                       std::chrono::milliseconds shutdown_timeout)
    : exporter_(std::move(exporter)), shutdown_timeout_(shutdown_timeout) {}

ExportSink::~ExportSink() = default;

void ExportSink::write(const ipfix::RecordBatch& batch) {
  if (closed_) {
    failed_ += batch.size();
    return;
  }
  const auto before = exporter_->stats();
  exporter_->export_batch(batch);
  const auto after = exporter_->stats();
  const std::uint64_t failed = after.records_not_exportable - before.records_not_exportable;
  failed_ += failed;
  written_ += batch.size() - std::min<std::uint64_t>(failed, batch.size());
}

void ExportSink::tick(std::chrono::system_clock::time_point /*now*/) {
  // A partial message left by write() (flush_each_batch off) goes out within a second.
  if (!closed_) exporter_->flush();
}

void ExportSink::close() {
  if (closed_) return;
  closed_ = true;
  struct Wait {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    bool ok = false;
  };
  auto w = std::make_shared<Wait>();
  exporter_->shutdown(shutdown_timeout_, [w](bool ok) {
    std::lock_guard lock(w->m);
    w->done = true;
    w->ok = ok;
    w->cv.notify_all();
  });
  std::unique_lock lock(w->m);
  // The senders answer within their timeout; the extra second covers the io thread's
  // latency. Without an answer the exporter is left to its io thread's end.
  w->cv.wait_for(lock, shutdown_timeout_ + std::chrono::seconds(1), [&] { return w->done; });
  delivered_ = w->done && w->ok;
}

SinkStats ExportSink::stats() const {
  SinkStats s;
  s.records_written = written_;
  s.records_failed = failed_;
  return s;
}

}  // namespace flowsec::sinks
