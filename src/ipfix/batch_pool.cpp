#include "ipfix/batch_pool.hpp"

namespace flowsec::ipfix {

BatchPool::BatchPool(std::size_t max_idle) : shared_(std::make_shared<Shared>()) {
  shared_->max_idle = max_idle;
}

std::shared_ptr<RecordBatch> BatchPool::acquire() {
  std::unique_ptr<RecordBatch> batch;
  {
    std::lock_guard lock(shared_->mutex);
    if (!shared_->idle.empty()) {
      batch = std::move(shared_->idle.back());
      shared_->idle.pop_back();
    }
  }
  if (!batch) batch = std::make_unique<RecordBatch>();
  // The deleter holds the pool weakly: a batch still in an output queue when the
  // collector is gone is simply freed.
  return {batch.release(), [pool = std::weak_ptr<Shared>(shared_)](RecordBatch* b) {
            std::unique_ptr<RecordBatch> owned(b);
            auto shared = pool.lock();
            if (!shared) return;
            owned->clear();  // outside the lock: releases the batch's templates
            std::lock_guard lock(shared->mutex);
            if (shared->idle.size() < shared->max_idle) shared->idle.push_back(std::move(owned));
          }};
}

std::size_t BatchPool::idle() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->idle.size();
}

}  // namespace flowsec::ipfix
