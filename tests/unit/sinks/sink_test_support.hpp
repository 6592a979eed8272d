#pragma once
// Test support for the sinks: record batches from the bundled fixtures
// (tests/data, see its README for provenance) or built from chosen values, fake
// sinks that record, block or sleep, and the shared TempDir. Header-only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ipfix/decode.hpp"
#include "ipfix/ipfix_file.hpp"
#include "ipfix/template_store.hpp"
#include "ipfix/value.hpp"
#include "sinks/sink.hpp"
#include "support/temp_dir.hpp"
#include "support/udp_datagrams.hpp"

namespace flowsec::sinks::test {

inline std::string data_path(const std::string& rel) {
  return std::string(FLOWSEC_TEST_DATA) + "/" + rel;
}

// Every batch of an IPFIX file, as the collector would hand them on.
inline std::vector<BatchPtr> ipfix_file_batches(const std::string& path) {
  std::vector<BatchPtr> out;
  auto r = ipfix::read_ipfix_file(path, [&](ipfix::RecordBatch& b) {
    out.push_back(std::make_shared<const ipfix::RecordBatch>(std::move(b)));
  });
  EXPECT_TRUE(r) << path;
  return out;
}

// One batch per datagram of an exporter capture, decoded with one template store.
inline std::vector<BatchPtr> capture_batches(const std::string& path) {
  std::vector<BatchPtr> out;
  ipfix::TemplateStore store(ipfix::TransportKind::datagram);
  for (const auto& d : flowsec::test::read_udp_datagrams(path)) {
    ipfix::RecordBatch b;
    b.exporter.address = d.src;
    b.exporter.port = d.src_port;
    auto r = ipfix::decode_any(d.payload, store, b);
    EXPECT_TRUE(r) << path;
    if (!b.empty()) out.push_back(std::make_shared<const ipfix::RecordBatch>(std::move(b)));
  }
  return out;
}

inline std::size_t total_records(const std::vector<BatchPtr>& v) {
  std::size_t n = 0;
  for (const auto& b : v) n += b->size();
  return n;
}

inline ipfix::TemplatePtr make_template(std::uint16_t id, std::vector<ipfix::FieldSpec> fields) {
  auto t = ipfix::Template::make(id, std::move(fields));
  EXPECT_TRUE(t);
  return *t;
}

// Appends one record encoded by RecordWriter, with its own message metadata.
inline void add_record(ipfix::RecordBatch& batch, const ipfix::TemplatePtr& t,
                       const std::vector<ipfix::Value>& values,
                       const ipfix::MessageMeta& meta = {}) {
  const ipfix::RecordWriter writer(t);
  std::vector<std::byte> rec;
  auto r = writer.append(values, rec);
  ASSERT_TRUE(r) << "field " << r.error().field;
  const auto ti = batch.use_template(t);
  const auto mi = batch.add_message(meta);
  const auto off = batch.store(rec);
  batch.add(off, static_cast<std::uint16_t>(rec.size()), ti, mi);
}

// `n` records (protocol, octetDeltaCount = first + i) of a small IPFIX template.
inline BatchPtr small_batch(std::size_t n, std::uint64_t first = 0) {
  static const ipfix::TemplatePtr t = make_template(300, {{0, 4, 1}, {0, 1, 8}});
  auto b = std::make_shared<ipfix::RecordBatch>();
  ipfix::MessageMeta meta;
  meta.export_time = 1700000000;
  for (std::size_t i = 0; i < n; ++i) {
    add_record(*b, t, {ipfix::Value{std::uint64_t{6}}, ipfix::Value{first + i}}, meta);
  }
  return b;
}

// Records every call; thread-safe.
class RecordingSink : public Sink {
 public:
  explicit RecordingSink(std::string name = "recording") : name_(std::move(name)) {}
  [[nodiscard]] std::string name() const override { return name_; }
  void write(const ipfix::RecordBatch& batch) override {
    std::lock_guard lock(mutex_);
    written_ += batch.size();
    ++batches_;
    changed_.notify_all();
  }
  void tick(std::chrono::system_clock::time_point) override {
    std::lock_guard lock(mutex_);
    ++ticks_;
    changed_.notify_all();
  }
  void close() override {
    std::lock_guard lock(mutex_);
    ++closes_;
    changed_.notify_all();
  }
  [[nodiscard]] SinkStats stats() const override {
    std::lock_guard lock(mutex_);
    SinkStats s;
    s.records_written = written_;
    return s;
  }
  // Waits (bounded) until pred() holds under the lock; returns pred().
  template <class Pred>
  bool wait_for(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return pred(); });
  }
  std::uint64_t written() const {
    std::lock_guard lock(mutex_);
    return written_;
  }
  std::uint64_t written_ = 0, batches_ = 0, ticks_ = 0, closes_ = 0;  // guarded by mutex_

 private:
  std::string name_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
};

// A gate a blocking sink waits on; shared so it can outlive an abandoned worker.
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = false;
  int entered = 0;  // write() calls that reached the gate
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    cv.notify_all();
  }
  bool wait_entered(int n, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, limit, [&] { return entered >= n; });
  }
};

// write() blocks until the gate opens (a hung disk or peer).
class BlockingSink : public Sink {
 public:
  explicit BlockingSink(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
  [[nodiscard]] std::string name() const override { return "blocking"; }
  void write(const ipfix::RecordBatch& batch) override {
    std::unique_lock lock(gate_->mutex);
    ++gate_->entered;
    gate_->cv.notify_all();
    gate_->cv.wait(lock, [&] { return gate_->open; });
    written_ += batch.size();
  }
  void close() override { closed_ = true; }
  [[nodiscard]] SinkStats stats() const override {
    SinkStats s;
    s.records_written = written_;
    return s;
  }
  std::atomic<bool> closed_{false};

 private:
  std::shared_ptr<Gate> gate_;
  std::atomic<std::uint64_t> written_{0};
};

// write() sleeps (a slow output).
class SlowSink : public Sink {
 public:
  explicit SlowSink(std::chrono::milliseconds delay) : delay_(delay) {}
  [[nodiscard]] std::string name() const override { return "slow"; }
  void write(const ipfix::RecordBatch& batch) override {
    std::this_thread::sleep_for(delay_);
    written_ += batch.size();
  }
  void close() override {}
  [[nodiscard]] SinkStats stats() const override {
    SinkStats s;
    s.records_written = written_;
    return s;
  }

 private:
  std::chrono::milliseconds delay_;
  std::atomic<std::uint64_t> written_{0};
};

// A fresh directory, removed with its contents (tests/support/temp_dir.hpp).
using flowsec::test::TempDir;

// Every regular file under `dir`, relative to it, sorted.
inline std::vector<std::string> list_files(const std::string& dir) {
  std::vector<std::string> v;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file()) v.push_back(std::filesystem::relative(e.path(), dir).string());
  }
  std::sort(v.begin(), v.end());
  return v;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace flowsec::sinks::test
