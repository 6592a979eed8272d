// Fanout (fanout.hpp): every batch reaches every output; a blocked or slow output
// never delays publish() or the other outputs, and its drops are its own.
#include "sinks/fanout.hpp"

#include <gtest/gtest.h>

#include "unit/sinks/sink_test_support.hpp"

namespace flowsec::sinks {
namespace {

using namespace std::chrono_literals;
using test::BlockingSink;
using test::Gate;
using test::RecordingSink;
using test::SlowSink;
using test::small_batch;

TEST(FanoutTest, EveryOutputGetsEveryBatch) {
  Fanout f;
  auto a = std::make_unique<RecordingSink>("a");
  auto b = std::make_unique<RecordingSink>("b");
  f.add(std::move(a));
  f.add(std::move(b));
  EXPECT_EQ(f.size(), 2u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(f.publish(small_batch(5)), 0u);
  EXPECT_TRUE(f.close(10s));
  const auto stats = f.stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].name, "a");
  EXPECT_EQ(stats[1].name, "b");
  for (const auto& s : stats) {
    EXPECT_EQ(s.stats.sink.records_written, 100u);
    EXPECT_EQ(s.stats.records_dropped, 0u);
  }
}

TEST(FanoutTest, BlockedOutputBlocksNeitherPublishNorOthers) {
  auto gate = std::make_shared<Gate>();
  Fanout f;
  QueuedSinkOptions small;
  small.max_records = 50;
  f.add(std::make_unique<BlockingSink>(gate), small);
  auto fast = std::make_unique<RecordingSink>("fast");
  RecordingSink* rec = fast.get();
  f.add(std::move(fast));

  // The first batch gets the blocked output stuck inside write().
  std::size_t refused = f.publish(small_batch(10));
  ASSERT_TRUE(gate->wait_entered(1));
  const auto before = std::chrono::steady_clock::now();
  for (int i = 1; i < 1000; ++i) refused += f.publish(small_batch(10));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);  // never waited on the blocked one
  // The other output got everything while the first is still stuck in its first write().
  EXPECT_TRUE(rec->wait_for([&] { return rec->written_ == 10000; }));
  EXPECT_TRUE(gate->wait_entered(1));
  {
    std::lock_guard lock(gate->mutex);
    EXPECT_EQ(gate->entered, 1);
  }

  const auto stats = f.stats();
  EXPECT_EQ(stats[0].name, "blocking");
  // Blocked: one batch inside write(), five queued (50 records), the rest dropped and counted.
  EXPECT_EQ(stats[0].stats.queued_records, 50u);
  EXPECT_EQ(stats[0].stats.records_dropped, 10000u - 10u - 50u);
  EXPECT_EQ(refused, 1000u - 1u - 5u);
  EXPECT_EQ(stats[1].stats.records_dropped, 0u);
  EXPECT_EQ(stats[1].stats.sink.records_written, 10000u);

  gate->release();
  EXPECT_TRUE(f.close(10s));
  EXPECT_EQ(f.stats()[0].stats.sink.records_written, 60u);
}

TEST(FanoutTest, SlowOutputDoesNotSlowOthers) {
  Fanout f;
  f.add(std::make_unique<SlowSink>(20ms));
  auto fast = std::make_unique<RecordingSink>("fast");
  RecordingSink* rec = fast.get();
  f.add(std::move(fast));
  for (int i = 0; i < 100; ++i) f.publish(small_batch(1));
  // 100 × 20 ms = 2 s for the slow one; the fast one is done long before.
  EXPECT_TRUE(rec->wait_for([&] { return rec->written_ == 100; }, 1500ms));
  EXPECT_TRUE(f.close(30s));
  EXPECT_EQ(f.stats()[0].stats.sink.records_written, 100u);
}

TEST(FanoutTest, CloseSharesOneDeadline) {
  auto gate1 = std::make_shared<Gate>();
  auto gate2 = std::make_shared<Gate>();
  Fanout f;
  f.add(std::make_unique<BlockingSink>(gate1));
  f.add(std::make_unique<BlockingSink>(gate2));
  f.publish(small_batch(1));
  ASSERT_TRUE(gate1->wait_entered(1));
  ASSERT_TRUE(gate2->wait_entered(1));
  const auto before = std::chrono::steady_clock::now();
  EXPECT_FALSE(f.close(1s));
  // Both waited against the same deadline, not 1 s each after the other.
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1900ms);
  gate1->release();
  gate2->release();
}

}  // namespace
}  // namespace flowsec::sinks
