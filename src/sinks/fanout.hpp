#pragma once
// Fanout: every record batch to every output (SPEC §6), each output behind its
// own QueuedSink so that a slow or blocked one never delays publish() or the
// others; its drops are counted per output.
//
// Contract:
//  - Outputs are added with add() before the first publish(); after that the set is
//    fixed (add() is not synchronised with publish()).
//  - publish() may be called from any number of threads; it never blocks on an
//    output (QueuedSink::push), unless asked to wait for room. The batch is shared,
//    never copied.
//  - close(timeout) closes every output against one common deadline and reports
//    whether all of them finished in time and delivered everything (Sink::delivered). Called once,
//    at shutdown; the destructor calls it if the owner did not.
//  - stats() may be called from any thread (metrics): one entry per output, in the
//    order they were added.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sinks/queued_sink.hpp"
#include "sinks/sink.hpp"

namespace flowsec::sinks {

struct OutputStats {
  std::string name;
  QueueStats stats;
};

class Fanout {
 public:
  Fanout() = default;
  ~Fanout();
  Fanout(const Fanout&) = delete;
  Fanout& operator=(const Fanout&) = delete;

  // Starts the output's worker. `sink` must not be null.
  void add(std::unique_ptr<Sink> sink, QueuedSinkOptions options = {});
  [[nodiscard]] std::size_t size() const { return outputs_.size(); }
  [[nodiscard]] bool empty() const { return outputs_.empty(); }

  // Queues the batch on every output. Returns how many outputs refused it (dropped, counted).
  // WhenFull::wait: a full output is waited for (QueuedSink::push), one after the other.
  std::size_t publish(const BatchPtr& batch, WhenFull when_full = WhenFull::drop);

  // True when every output drained, closed before the deadline and delivered.
  bool close(std::chrono::milliseconds timeout = QueuedSink::kDefaultCloseTimeout);

  [[nodiscard]] std::vector<OutputStats> stats() const;

 private:
  std::vector<std::unique_ptr<QueuedSink>> outputs_;
  bool closed_ = false;
};

}  // namespace flowsec::sinks
