#pragma once
// QueuedSink: one output behind its own bounded queue and worker thread
// (SPEC §6 "each behind its own bounded queue so that a slow one never blocks
// the others or the receive path").
//
// Contract:
//  - Owns one Sink and one worker thread, started by the constructor. Only the
//    worker ever calls the Sink (write, tick, close), as sink.hpp requires.
//  - push() never blocks on the sink: it takes a short lock, appends and
//    returns. The queue is bounded in records (QueuedSinkOptions::max_records).
//    A batch that does not fit is dropped whole; its records are counted in
//    QueueStats::records_dropped and logged (rate-limited) — never silently.
//    An oversized batch (more records than the limit) is accepted when the
//    queue is empty, so it is not dropped forever. Empty batches are ignored.
//    push() may be called from any number of threads.
//  - push(batch, WhenFull::wait) is for inputs that can pause (a file): it waits
//    for the worker while the queue holds more than wait_limit_records (or
//    max_records, if lower), since a producer that can wait gains nothing from a
//    longer queue but memory. It stops waiting when the queue closes or the worker
//    takes nothing for stall_timeout — a sink stuck for good must not hang the
//    input — and then queues or drops as above.
//  - The worker writes batches in order and calls sink.tick(now) about every
//    tick_interval, also when idle and also between batches under load.
//  - close(timeout) stops accepting batches, lets the worker drain the queue,
//    calls sink.close() and joins. If that does not finish by the deadline
//    (a sink blocked for good), what is still queued is counted as dropped,
//    logged, and the worker is detached: it keeps the sink alive until its
//    current call returns, then exits. close() is idempotent; the destructor
//    calls it with kDefaultCloseTimeout if the owner did not.
//  - stats() may be called from any thread at any time (metrics).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sinks/sink.hpp"

namespace flowsec::sinks {

// Wall clock for tick(now); tests pass their own.
using WallClock = std::function<std::chrono::system_clock::time_point()>;

// What push() does with a batch that does not fit in the queue.
enum class WhenFull : std::uint8_t {
  drop,  // at once, counted: live input, where waiting would lose packets instead
  wait,  // until the worker makes room: input that can pause, such as a file
};

struct QueuedSinkOptions {
  static constexpr std::size_t kDefaultMaxRecords = 1 << 20;
  std::size_t max_records = kDefaultMaxRecords;  // queue limit, in records
  // WhenFull::wait: the queue length it waits for, and how long it waits without the
  // worker taking a batch before giving up.
  std::size_t wait_limit_records = 16384;
  std::chrono::milliseconds stall_timeout{10000};
  std::chrono::milliseconds tick_interval{1000};
  WallClock wall_clock;  // empty: std::chrono::system_clock::now
};

struct QueueStats {
  std::uint64_t queued_records = 0;  // waiting in the queue now
  std::uint64_t queued_batches = 0;
  std::uint64_t records_queued_total = 0;  // accepted by push() since start
  std::uint64_t records_dropped = 0;       // refused by push(): queue full or closed
  std::uint64_t batches_dropped = 0;
  SinkStats sink;  // the sink's own counters: written, failed, files, errors
};

class QueuedSink {
 public:
  static constexpr std::chrono::milliseconds kDefaultCloseTimeout{10000};

  // `sink` must not be null.
  explicit QueuedSink(std::unique_ptr<Sink> sink, QueuedSinkOptions options = {});
  ~QueuedSink();
  QueuedSink(const QueuedSink&) = delete;
  QueuedSink& operator=(const QueuedSink&) = delete;

  // The sink's name(), fixed at construction.
  [[nodiscard]] const std::string& name() const { return name_; }

  // Queues the batch; false when it was dropped (queue full, or closing).
  bool push(BatchPtr batch, WhenFull when_full = WhenFull::drop);

  // Drains and closes; true when everything queued was handed to the sink,
  // sink.close() returned before the deadline and the sink reports delivered().
  bool close(std::chrono::milliseconds timeout = kDefaultCloseTimeout);
  // The two halves of close(), so that a Fanout can close every output against one
  // deadline: begin_close() returns at once, finish_close() waits and joins.
  void begin_close();
  bool finish_close(std::chrono::steady_clock::time_point deadline);

  [[nodiscard]] QueueStats stats() const;

 private:
  struct State;
  static void run(const std::shared_ptr<State>& state);

  std::string name_;
  std::shared_ptr<State> state_;  // shared with the worker (it may outlive us, see close())
  bool joined_ = false;
  bool closed_ok_ = true;
};

}  // namespace flowsec::sinks
