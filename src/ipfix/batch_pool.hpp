#pragma once
// BatchPool: recycles record batches (the collector's decoded messages, the probe's flows).
//
// A batch is handed to the outputs as a shared_ptr; when the last output lets go of it
// (on an output's writer thread), it comes back here cleared but with its capacity, and
// the producer's next batch fills memory that is already mapped. Without it every batch
// is a fresh allocation of a few hundred KB — an mmap, one page fault per 4 KB and an
// munmap — which was the largest part of the collector receive thread's copying cost at
// low and middle rates, and a third of the probe's page faults (docs/benchmarks.md).
//
// Contract:
//  - acquire() on any thread; the returned batch is empty (RecordBatch::clear()).
//  - Returning is thread-safe; at most `max_idle` batches are kept, the rest freed.
//  - Batches may outlive the pool: their deleter then just frees them.
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "ipfix/record.hpp"

namespace flowsec::ipfix {

class BatchPool {
 public:
  explicit BatchPool(std::size_t max_idle = 16);
  BatchPool(const BatchPool&) = delete;
  BatchPool& operator=(const BatchPool&) = delete;

  [[nodiscard]] std::shared_ptr<RecordBatch> acquire();

  // Batches waiting for reuse now (tests).
  [[nodiscard]] std::size_t idle() const;

 private:
  struct Shared {
    std::mutex mutex;
    std::vector<std::unique_ptr<RecordBatch>> idle;
    std::size_t max_idle;
  };
  std::shared_ptr<Shared> shared_;
};

}  // namespace flowsec::ipfix
