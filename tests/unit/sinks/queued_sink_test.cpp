// QueuedSink (queued_sink.hpp): order, ticks when idle, the bounded queue that
// drops and counts instead of blocking (or, asked to, waits for room until the sink
// stalls or the queue closes), draining on close, and giving up on a sink that
// never returns.
#include "sinks/queued_sink.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "unit/sinks/sink_test_support.hpp"

namespace flowsec::sinks {
namespace {

using namespace std::chrono_literals;
using test::BlockingSink;
using test::Gate;
using test::RecordingSink;
using test::small_batch;

TEST(QueuedSinkTest, WritesEverythingAndClosesOnce) {
  auto sink = std::make_unique<RecordingSink>("rec");
  RecordingSink* rec = sink.get();
  QueuedSink q(std::move(sink));
  EXPECT_EQ(q.name(), "rec");
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(q.push(small_batch(3)));
  EXPECT_TRUE(q.push(small_batch(0)));  // empty: ignored
  EXPECT_TRUE(q.close(10s));
  EXPECT_EQ(rec->written(), 150u);
  EXPECT_EQ(rec->batches_, 50u);
  EXPECT_EQ(rec->closes_, 1u);
  const QueueStats s = q.stats();
  EXPECT_EQ(s.records_queued_total, 150u);
  EXPECT_EQ(s.records_dropped, 0u);
  EXPECT_EQ(s.queued_records, 0u);
  EXPECT_EQ(s.sink.records_written, 150u);
  EXPECT_TRUE(q.close(10s));  // idempotent
  EXPECT_EQ(rec->closes_, 1u);
}

TEST(QueuedSinkTest, TicksWhileIdle) {
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* rec = sink.get();
  QueuedSinkOptions o;
  o.tick_interval = 5ms;
  QueuedSink q(std::move(sink), o);
  EXPECT_TRUE(rec->wait_for([&] { return rec->ticks_ >= 3; }));
  q.close(10s);
}

TEST(QueuedSinkTest, FullQueueDropsWholeBatchesAndCountsThem) {
  auto gate = std::make_shared<Gate>();
  QueuedSinkOptions o;
  o.max_records = 100;
  QueuedSink q(std::make_unique<BlockingSink>(gate), o);
  // The worker takes the first batch and blocks inside write().
  ASSERT_TRUE(q.push(small_batch(10)));
  ASSERT_TRUE(gate->wait_entered(1));
  // 100 records fit in the queue...
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(q.push(small_batch(10)));
  QueueStats s = q.stats();
  EXPECT_EQ(s.queued_records, 100u);
  EXPECT_EQ(s.queued_batches, 10u);
  // ...the next ones do not, and push() returns at once.
  const auto before = std::chrono::steady_clock::now();
  EXPECT_FALSE(q.push(small_batch(1)));
  EXPECT_FALSE(q.push(small_batch(7)));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);
  s = q.stats();
  EXPECT_EQ(s.records_dropped, 8u);
  EXPECT_EQ(s.batches_dropped, 2u);
  EXPECT_EQ(s.queued_records, 100u);

  gate->release();
  EXPECT_TRUE(q.close(10s));
  s = q.stats();
  EXPECT_EQ(s.sink.records_written, 110u);
  EXPECT_EQ(s.records_dropped, 8u);
  EXPECT_EQ(s.queued_records, 0u);
}

// A queue whose worker is blocked in write() on a first batch of 10 records, with 10 more
// records queued behind it: full at max_records = 10.
struct StuckQueue {
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  QueuedSink q;
  explicit StuckQueue(QueuedSinkOptions o) : q(std::make_unique<BlockingSink>(gate), o) {
    EXPECT_TRUE(q.push(small_batch(10)));
    EXPECT_TRUE(gate->wait_entered(1));
    EXPECT_TRUE(q.push(small_batch(10), WhenFull::wait));
  }
};

QueuedSinkOptions limits(std::size_t max_records, std::chrono::milliseconds stall_timeout = 10s,
                         std::size_t wait_limit_records = 16384) {
  QueuedSinkOptions o;
  o.max_records = max_records;
  o.stall_timeout = stall_timeout;
  o.wait_limit_records = wait_limit_records;
  return o;
}

TEST(QueuedSinkTest, WaitingPushLosesNothingWhenTheQueueIsFull) {
  StuckQueue s(limits(10));
  // A file reader pushes 5 more batches: each waits for room instead of being dropped.
  std::atomic<int> pushed{0};
  std::thread reader([&] {
    for (int i = 0; i < 5; ++i) {
      if (s.q.push(small_batch(10), WhenFull::wait)) ++pushed;
    }
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(pushed.load(), 0) << "pushed into a full queue";
  s.gate->release();
  reader.join();
  EXPECT_EQ(pushed.load(), 5);
  EXPECT_TRUE(s.q.close(10s));
  EXPECT_EQ(s.q.stats().records_dropped, 0u);
  EXPECT_EQ(s.q.stats().sink.records_written, 70u);
}

TEST(QueuedSinkTest, WaitingPushGivesUpOnAStalledSinkAndCounts) {
  StuckQueue s(limits(10, 50ms));
  const auto before = std::chrono::steady_clock::now();
  EXPECT_FALSE(s.q.push(small_batch(3), WhenFull::wait));
  const auto waited = std::chrono::steady_clock::now() - before;
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(s.q.stats().records_dropped, 3u);
  s.gate->release();
  EXPECT_TRUE(s.q.close(10s));
}

TEST(QueuedSinkTest, WaitingPushKeepsTheQueueShortButNeverDropsBelowTheLimit) {
  // The 10 queued records reach the wait limit; max_records would take 90 more.
  StuckQueue s(limits(100, 50ms, 10));
  // Past the wait limit it waits; the sink stays stuck, so after stall_timeout the batch
  // is queued anyway, as there is room below max_records.
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(s.q.push(small_batch(5), WhenFull::wait));
  EXPECT_GE(std::chrono::steady_clock::now() - before, 50ms);
  EXPECT_EQ(s.q.stats().queued_records, 15u);
  EXPECT_EQ(s.q.stats().records_dropped, 0u);
  s.gate->release();
  EXPECT_TRUE(s.q.close(10s));
  EXPECT_EQ(s.q.stats().sink.records_written, 25u);
}

TEST(QueuedSinkTest, ClosingReleasesAWaitingPush) {
  StuckQueue s(limits(10));
  std::atomic<bool> result{true};
  std::thread reader([&] { result = s.q.push(small_batch(4), WhenFull::wait); });
  std::this_thread::sleep_for(20ms);
  s.q.begin_close();
  reader.join();  // returns without the sink making room
  EXPECT_FALSE(result.load());
  EXPECT_EQ(s.q.stats().records_dropped, 4u);
  s.gate->release();
  EXPECT_TRUE(s.q.close(10s));
}

TEST(QueuedSinkTest, OversizedBatchPassesWhenQueueIsEmpty) {
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* rec = sink.get();
  QueuedSinkOptions o;
  o.max_records = 5;
  QueuedSink q(std::move(sink), o);
  EXPECT_TRUE(q.push(small_batch(20)));
  EXPECT_TRUE(rec->wait_for([&] { return rec->written_ == 20; }));
  EXPECT_TRUE(q.close(10s));
  EXPECT_EQ(q.stats().records_dropped, 0u);
}

TEST(QueuedSinkTest, PushAfterCloseIsCountedAsDropped) {
  QueuedSink q(std::make_unique<RecordingSink>());
  EXPECT_TRUE(q.close(10s));
  EXPECT_FALSE(q.push(small_batch(4)));
  EXPECT_EQ(q.stats().records_dropped, 4u);
}

TEST(QueuedSinkTest, CloseGivesUpOnABlockedSinkAndCountsWhatIsLeft) {
  auto gate = std::make_shared<Gate>();
  auto sink = std::make_unique<BlockingSink>(gate);
  QueuedSink q(std::move(sink));
  ASSERT_TRUE(q.push(small_batch(2)));
  ASSERT_TRUE(gate->wait_entered(1));
  ASSERT_TRUE(q.push(small_batch(3)));
  ASSERT_TRUE(q.push(small_batch(4)));
  const auto before = std::chrono::steady_clock::now();
  EXPECT_FALSE(q.close(50ms));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
  const QueueStats s = q.stats();
  EXPECT_EQ(s.records_dropped, 7u);
  EXPECT_EQ(s.queued_records, 0u);
  EXPECT_FALSE(q.close(10s));  // same answer again
  gate->release();             // the detached worker finishes its write and the sink's close
}

TEST(QueuedSinkTest, DestructorDrainsAndCloses) {
  // The sink dies with the QueuedSink: it reports into counters the test keeps.
  struct Counts {
    std::atomic<std::uint64_t> written{0};
    std::atomic<int> closes{0};
  };
  class CountingSink : public Sink {
   public:
    explicit CountingSink(std::shared_ptr<Counts> c) : c_(std::move(c)) {}
    [[nodiscard]] std::string name() const override { return "counting"; }
    void write(const ipfix::RecordBatch& batch) override { c_->written += batch.size(); }
    void close() override { ++c_->closes; }
    [[nodiscard]] SinkStats stats() const override { return {}; }

   private:
    std::shared_ptr<Counts> c_;
  };
  auto counts = std::make_shared<Counts>();
  {
    QueuedSink q(std::make_unique<CountingSink>(counts));
    for (int i = 0; i < 10; ++i) q.push(small_batch(1));
  }
  EXPECT_EQ(counts->written.load(), 10u);
  EXPECT_EQ(counts->closes.load(), 1);
}

TEST(QueuedSinkTest, ConcurrentPushersLoseNothingBelowTheLimit) {
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* rec = sink.get();
  QueuedSink q(std::move(sink));  // default limit: 1 M records
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) q.push(small_batch(2));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(q.close(10s));
  EXPECT_EQ(rec->written(), 1600u);
  EXPECT_EQ(q.stats().records_dropped, 0u);
}

}  // namespace
}  // namespace flowsec::sinks
