#include "sinks/queued_sink.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "common/log.hpp"

namespace flowsec::sinks {

struct QueuedSink::State {
  explicit State(std::unique_ptr<Sink> s, QueuedSinkOptions o)
      : sink(std::move(s)), options(std::move(o)) {}

  std::unique_ptr<Sink> sink;
  QueuedSinkOptions options;
  std::string name;

  mutable std::mutex mutex;
  std::condition_variable wake;  // worker: work, close
  std::condition_variable room;  // push(WhenFull::wait): the worker took a batch
  std::condition_variable done;  // close(): worker finished
  std::deque<BatchPtr> queue;
  std::size_t queued_records = 0;   // guarded by mutex
  std::uint64_t batches_taken = 0;  // by the worker; guarded by mutex
  bool closing = false;             // no more push(); drain and stop
  bool abandoned = false;           // close() gave up: discard what is left
  bool finished = false;            // worker returned from sink.close()

  std::atomic<std::uint64_t> queued_records_now{0};
  std::atomic<std::uint64_t> queued_batches_now{0};
  std::atomic<std::uint64_t> records_queued_total{0};
  std::atomic<std::uint64_t> records_dropped{0};
  std::atomic<std::uint64_t> batches_dropped{0};

  log::RateLimiter drop_log{5, std::chrono::seconds(10)};
  std::thread worker;

  std::chrono::system_clock::time_point wall_now() const {
    return options.wall_clock ? options.wall_clock() : std::chrono::system_clock::now();
  }

  void count_drop(std::size_t records, std::string_view why) {
    records_dropped.fetch_add(records, std::memory_order_relaxed);
    batches_dropped.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t suppressed = 0;
    if (drop_log.allow(suppressed)) {
      std::string line = "output " + name + ": " + std::string(why) + ", dropped a batch of " +
                         std::to_string(records) + " records (" +
                         std::to_string(records_dropped.load(std::memory_order_relaxed)) +
                         " dropped in total)";
      if (suppressed > 0) line += "; " + std::to_string(suppressed) + " similar lines suppressed";
      log::warning("sinks", line);
    }
  }
};

QueuedSink::QueuedSink(std::unique_ptr<Sink> sink, QueuedSinkOptions options)
    : name_(sink->name()), state_(std::make_shared<State>(std::move(sink), std::move(options))) {
  state_->name = name_;
  if (state_->options.tick_interval <= std::chrono::milliseconds::zero()) {
    state_->options.tick_interval = std::chrono::milliseconds(1000);
  }
  state_->worker = std::thread([s = state_] { run(s); });
}

QueuedSink::~QueuedSink() {
  if (!joined_) close(kDefaultCloseTimeout);
}

bool QueuedSink::push(BatchPtr batch, WhenFull when_full) {
  if (!batch || batch->empty()) return true;
  State& s = *state_;
  const std::size_t n = batch->size();
  {
    std::unique_lock lock(s.mutex);
    const auto over = [&](std::size_t limit) {
      return !s.queue.empty() && s.queued_records + n > limit;
    };
    if (when_full == WhenFull::wait) {
      // Wait while the worker makes progress; stop waiting when it has taken nothing for
      // stall_timeout (then the batch is queued or dropped below, as without waiting).
      const std::size_t limit = std::min(s.options.wait_limit_records, s.options.max_records);
      for (std::uint64_t taken = s.batches_taken; !s.closing && over(limit);) {
        if (s.room.wait_for(lock, s.options.stall_timeout) == std::cv_status::timeout &&
            s.batches_taken == taken) {
          break;
        }
        taken = s.batches_taken;
      }
    }
    if (s.closing) {
      lock.unlock();
      s.count_drop(n, "closed");
      return false;
    }
    if (over(s.options.max_records)) {
      lock.unlock();
      s.count_drop(n, "queue full (limit " + std::to_string(s.options.max_records) + " records)");
      return false;
    }
    s.queue.push_back(std::move(batch));
    s.queued_records += n;
    s.queued_records_now.store(s.queued_records, std::memory_order_relaxed);
    s.queued_batches_now.store(s.queue.size(), std::memory_order_relaxed);
  }
  s.records_queued_total.fetch_add(n, std::memory_order_relaxed);
  s.wake.notify_one();
  return true;
}

void QueuedSink::run(const std::shared_ptr<State>& state) {
  State& s = *state;
  using steady = std::chrono::steady_clock;
  auto next_tick = steady::now() + s.options.tick_interval;
  std::unique_lock lock(s.mutex);
  for (;;) {
    if (s.queue.empty()) {
      if (s.closing || s.abandoned) break;
      s.wake.wait_until(lock, next_tick,
                        [&] { return !s.queue.empty() || s.closing || s.abandoned; });
    }
    BatchPtr batch;
    if (!s.queue.empty() && !s.abandoned) {
      batch = std::move(s.queue.front());
      s.queue.pop_front();
      s.queued_records -= batch->size();
      ++s.batches_taken;
      s.queued_records_now.store(s.queued_records, std::memory_order_relaxed);
      s.queued_batches_now.store(s.queue.size(), std::memory_order_relaxed);
    }
    lock.unlock();
    if (batch) s.room.notify_all();
    if (batch) {
      s.sink->write(*batch);
      batch.reset();  // release the records before waiting again
    }
    if (steady::now() >= next_tick) {
      s.sink->tick(s.wall_now());
      next_tick = steady::now() + s.options.tick_interval;
    }
    lock.lock();
    if (s.abandoned) break;
  }
  lock.unlock();
  s.sink->close();
  lock.lock();
  s.finished = true;
  lock.unlock();
  s.done.notify_all();
}

void QueuedSink::begin_close() {
  {
    std::lock_guard lock(state_->mutex);
    state_->closing = true;
  }
  state_->wake.notify_one();
  state_->room.notify_all();
}

bool QueuedSink::finish_close(std::chrono::steady_clock::time_point deadline) {
  if (joined_) return closed_ok_;
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  const bool finished = s.done.wait_until(lock, deadline, [&] { return s.finished; });
  if (finished) {
    lock.unlock();
    s.worker.join();
    joined_ = true;
    closed_ok_ = s.sink->delivered();
    return closed_ok_;
  }
  // Blocked for good (or too slow): give up on what is still queued, never on the caller.
  s.abandoned = true;
  std::size_t left_records = s.queued_records;
  const std::size_t left_batches = s.queue.size();
  s.queue.clear();
  s.queued_records = 0;
  s.queued_records_now.store(0, std::memory_order_relaxed);
  s.queued_batches_now.store(0, std::memory_order_relaxed);
  lock.unlock();
  s.wake.notify_one();
  s.records_dropped.fetch_add(left_records, std::memory_order_relaxed);
  s.batches_dropped.fetch_add(left_batches, std::memory_order_relaxed);
  log::error("sinks", "output " + name_ + ": did not finish before the shutdown deadline; " +
                          std::to_string(left_records) + " queued records not delivered (" +
                          std::to_string(s.records_dropped.load()) + " dropped in total)");
  s.worker.detach();  // it holds the state (and the sink) until its current call returns
  joined_ = true;
  closed_ok_ = false;
  return false;
}

bool QueuedSink::close(std::chrono::milliseconds timeout) {
  if (joined_) return closed_ok_;
  begin_close();
  return finish_close(std::chrono::steady_clock::now() + timeout);
}

QueueStats QueuedSink::stats() const {
  const State& s = *state_;
  QueueStats q;
  q.queued_records = s.queued_records_now.load(std::memory_order_relaxed);
  q.queued_batches = s.queued_batches_now.load(std::memory_order_relaxed);
  q.records_queued_total = s.records_queued_total.load(std::memory_order_relaxed);
  q.records_dropped = s.records_dropped.load(std::memory_order_relaxed);
  q.batches_dropped = s.batches_dropped.load(std::memory_order_relaxed);
  q.sink = s.sink->stats();
  return q;
}

}  // namespace flowsec::sinks
