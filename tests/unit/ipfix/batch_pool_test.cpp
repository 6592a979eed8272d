// BatchPool (src/ipfix/batch_pool.hpp): batches come back cleared with their capacity
// when the last owner lets go, on any thread; the pool keeps a bounded number; batches
// outliving the pool are freed.
#include "ipfix/batch_pool.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace flowsec::ipfix {
namespace {

std::shared_ptr<RecordBatch> filled(BatchPool& pool, std::size_t bytes) {
  auto b = pool.acquire();
  b->exporter.port = 2055;
  const std::vector<std::byte> data(bytes, std::byte{0x5a});
  b->store(data);
  b->add(0, static_cast<std::uint16_t>(bytes), 0, 0);
  return b;
}

TEST(BatchPool, ReturnedBatchIsReusedEmptyWithItsCapacity) {
  BatchPool pool;
  auto b = filled(pool, 100'000);
  const std::byte* storage = b->storage().data();
  const std::size_t capacity = b->storage().capacity();
  std::shared_ptr<const RecordBatch> reader = b;  // an output's reference
  b.reset();
  EXPECT_EQ(pool.idle(), 0u);  // still held by the output
  reader.reset();
  EXPECT_EQ(pool.idle(), 1u);
  auto again = pool.acquire();
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_TRUE(again->empty());
  EXPECT_TRUE(again->storage().empty());
  EXPECT_EQ(again->exporter.port, 0);
  EXPECT_EQ(again->storage().capacity(), capacity);
  EXPECT_EQ(again->storage().data(), storage);  // the same memory, not a new allocation
}

TEST(BatchPool, KeepsAtMostMaxIdle) {
  BatchPool pool(2);
  std::vector<std::shared_ptr<RecordBatch>> held;
  for (int i = 0; i < 5; ++i) held.push_back(filled(pool, 10));
  held.clear();
  EXPECT_EQ(pool.idle(), 2u);
}

TEST(BatchPool, ReturnedFromOtherThreads) {
  BatchPool pool(64);
  std::vector<std::shared_ptr<RecordBatch>> held;
  for (int i = 0; i < 32; ++i) held.push_back(filled(pool, 1000));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    std::vector<std::shared_ptr<RecordBatch>> mine(held.begin() + t * 8,
                                                   held.begin() + (t + 1) * 8);
    threads.emplace_back([mine = std::move(mine)]() mutable { mine.clear(); });
  }
  held.clear();
  for (auto& t : threads) t.join();
  EXPECT_EQ(pool.idle(), 32u);
}

TEST(BatchPool, BatchOutlivingThePoolIsFreed) {
  std::shared_ptr<RecordBatch> survivor;
  {
    BatchPool pool;
    survivor = filled(pool, 10);
  }
  survivor.reset();  // no pool to return to: freed (ASan reports a leak or a bad access)
  SUCCEED();
}

}  // namespace
}  // namespace flowsec::ipfix
