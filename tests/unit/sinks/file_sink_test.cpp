// FileSink (file_sink.hpp): rotation by a test-driven wall clock, .tmp then
// rename, no file for an empty period, each format's content (compared with the
// renderer and read back with the IPFIX file reader), NetFlow sysUptime times
// made absolute in binary files, standard output, and errors that are counted
// instead of crashing.
#include "sinks/file_sink.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <filesystem>

#include "ipfix/render.hpp"
#include "unit/sinks/sink_test_support.hpp"

namespace flowsec::sinks {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;
using test::list_files;
using test::read_text;
using test::small_batch;
using test::TempDir;

constexpr std::int64_t kT0 = 1709294405;  // 2024-03-01 12:00:05 UTC

// Wall clock the test moves by hand.
class TestClock {
 public:
  explicit TestClock(std::int64_t s) : s_(s) {}
  [[nodiscard]] system_clock::time_point now() const {
    return system_clock::time_point(std::chrono::seconds(s_.load()));
  }
  void set(std::int64_t s) { s_ = s; }
  [[nodiscard]] WallClock fn() const {
    return [this] { return now(); };
  }

 private:
  std::atomic<std::int64_t> s_;
};

FileSinkOptions options(const std::string& dir, FileFormat f, const TestClock& clock) {
  FileSinkOptions o;
  o.path = dir;
  o.format = f;
  o.rotation = 60s;
  o.clock = clock.fn();
  return o;
}

std::string render(ipfix::RenderFormat f, const std::vector<BatchPtr>& batches) {
  ipfix::RecordRenderer r(f);
  std::string out;
  for (const auto& b : batches) r.render(*b, out);
  return out;
}

TEST(FileSinkTest, ParsesDumpFormatLetters) {
  EXPECT_EQ(parse_file_format("t"), FileFormat::text);
  EXPECT_EQ(parse_file_format("j"), FileFormat::json_lines);
  EXPECT_EQ(parse_file_format("c"), FileFormat::csv);
  EXPECT_EQ(parse_file_format("b"), FileFormat::ipfix);
  EXPECT_FALSE(parse_file_format("x"));
  EXPECT_FALSE(parse_file_format(""));
  EXPECT_EQ(file_extension(FileFormat::ipfix), "ipfix");
}

TEST(FileSinkTest, WritesTmpThenRenamesAtTheEndOfThePeriod) {
  TempDir dir("sinks");
  TestClock clock(kT0);
  FileSink sink(options(dir.path(), FileFormat::json_lines, clock));
  EXPECT_EQ(sink.name(), "file");
  sink.write(*small_batch(3));
  const std::string final_rel = "2024/03/01/12/flows-20240301120000.json";
  EXPECT_EQ(sink.current_file(), dir.path() + "/" + final_rel);
  EXPECT_EQ(list_files(dir.path()), std::vector<std::string>{final_rel + ".tmp"});

  sink.tick(system_clock::time_point(std::chrono::seconds(kT0 + 30)));  // same period
  sink.write(*small_batch(2));
  EXPECT_EQ(list_files(dir.path()), std::vector<std::string>{final_rel + ".tmp"});

  // 12:01:00: the period is over; tick() closes the file although nothing arrives.
  sink.tick(system_clock::time_point(std::chrono::seconds(kT0 + 55)));
  EXPECT_EQ(list_files(dir.path()), std::vector<std::string>{final_rel});
  EXPECT_EQ(sink.current_file(), "");
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.records_written, 5u);
  EXPECT_EQ(s.files_completed, 1u);
  EXPECT_EQ(s.errors, 0u);
  EXPECT_EQ(s.records_failed, 0u);
  sink.close();
}

TEST(FileSinkTest, EmptyPeriodsCreateNoFile) {
  TempDir dir("sinks");
  TestClock clock(kT0);
  FileSink sink(options(dir.path(), FileFormat::text, clock));
  for (int i = 0; i < 10; ++i) {  // ten idle minutes
    sink.tick(system_clock::time_point(std::chrono::seconds(kT0 + 60 * i)));
  }
  EXPECT_TRUE(list_files(dir.path()).empty());
  clock.set(kT0 + 1);
  sink.write(*small_batch(1));
  for (int i = 1; i < 5; ++i)
    sink.tick(system_clock::time_point(std::chrono::seconds(kT0 + 60 * i)));
  clock.set(kT0 + 60 * 5);  // 12:05:05
  sink.write(*small_batch(1));
  sink.close();
  EXPECT_EQ(list_files(dir.path()),
            (std::vector<std::string>{"2024/03/01/12/flows-20240301120000.txt",
                                      "2024/03/01/12/flows-20240301120500.txt"}));
  EXPECT_EQ(sink.stats().files_completed, 2u);
}

TEST(FileSinkTest, WriteInALaterPeriodRotatesWithoutTick) {
  TempDir dir("sinks");
  TestClock clock(kT0);
  auto o = options(dir.path(), FileFormat::csv, clock);
  o.rotation = 3600s;  // hourly files
  FileSink sink(o);
  sink.write(*small_batch(2));
  clock.set(kT0 + 3600);  // 13:00:05
  sink.write(*small_batch(2));
  EXPECT_EQ(list_files(dir.path()),
            (std::vector<std::string>{"2024/03/01/12/flows-20240301120000.csv",
                                      "2024/03/01/13/flows-20240301130000.csv.tmp"}));
  sink.close();  // close renames too
  EXPECT_EQ(list_files(dir.path()),
            (std::vector<std::string>{"2024/03/01/12/flows-20240301120000.csv",
                                      "2024/03/01/13/flows-20240301130000.csv"}));
  // CSV: every file starts with its header.
  const std::string a = read_text(dir.path() + "/2024/03/01/12/flows-20240301120000.csv");
  const std::string b = read_text(dir.path() + "/2024/03/01/13/flows-20240301130000.csv");
  EXPECT_EQ(a, "PROTOCOL,IN_BYTES\n6,0\n6,1\n");
  EXPECT_EQ(b, a);
}

TEST(FileSinkTest, ExistingNameGetsASuffix) {
  TempDir dir("sinks");
  TestClock clock(kT0);
  std::filesystem::create_directories(dir.path() + "/2024/03/01/12");
  std::ofstream(dir.path() + "/2024/03/01/12/flows-20240301120000.txt") << "earlier run\n";
  FileSink sink(options(dir.path(), FileFormat::text, clock));
  sink.write(*small_batch(1));
  sink.close();
  EXPECT_EQ(list_files(dir.path()),
            (std::vector<std::string>{"2024/03/01/12/flows-20240301120000.1.txt",
                                      "2024/03/01/12/flows-20240301120000.txt"}));
  EXPECT_EQ(read_text(dir.path() + "/2024/03/01/12/flows-20240301120000.txt"), "earlier run\n");
}

class FileSinkFormatTest : public ::testing::TestWithParam<FileFormat> {};

TEST_P(FileSinkFormatTest, ContentIsTheRenderersOutput) {
  const auto batches = test::capture_batches(
      test::data_path("export/pmacct/101-NFv9-CISCO-cust_primitives_traffic-00.pcap"));
  ASSERT_FALSE(batches.empty());
  TempDir dir("sinks");
  TestClock clock(kT0);
  FileSink sink(options(dir.path(), GetParam(), clock));
  for (const auto& b : batches) sink.write(*b);
  sink.close();
  const auto files = list_files(dir.path());
  ASSERT_EQ(files.size(), 1u);
  const std::string got = read_text(dir.path() + "/" + files[0]);
  const auto f = GetParam() == FileFormat::text         ? ipfix::RenderFormat::text
                 : GetParam() == FileFormat::json_lines ? ipfix::RenderFormat::json_lines
                                                        : ipfix::RenderFormat::csv;
  EXPECT_EQ(got, render(f, batches));
  const std::size_t n = test::total_records(batches);
  EXPECT_EQ(sink.stats().records_written, n);
  if (GetParam() != FileFormat::csv) {
    EXPECT_EQ(static_cast<std::size_t>(std::count(got.begin(), got.end(), '\n')), n);
  }
}

INSTANTIATE_TEST_SUITE_P(Text, FileSinkFormatTest,
                         ::testing::Values(FileFormat::text, FileFormat::json_lines,
                                           FileFormat::csv));

TEST(FileSinkTest, BinaryFileReadsBackRecordForRecord) {
  const auto batches =
      test::ipfix_file_batches(test::data_path("ipfix/ipfixcol2_example_flows.ipfix"));
  const std::size_t n = test::total_records(batches);
  ASSERT_EQ(n, 3979u);  // tests/data/README
  TempDir dir("sinks");
  TestClock clock(kT0);
  FileSink sink(options(dir.path(), FileFormat::ipfix, clock));
  for (const auto& b : batches) sink.write(*b);
  sink.close();
  EXPECT_EQ(sink.stats().records_written, n);
  EXPECT_EQ(sink.stats().records_failed, 0u);
  const auto files = list_files(dir.path());
  ASSERT_EQ(files, std::vector<std::string>{"2024/03/01/12/flows-20240301120000.ipfix"});

  std::vector<BatchPtr> back = test::ipfix_file_batches(dir.path() + "/" + files[0]);
  ASSERT_EQ(test::total_records(back), n);
  // Same records, byte for byte and field for field, in the same order.
  std::size_t bi = 0, ri = 0;
  for (const auto& b : back) {
    for (std::size_t i = 0; i < b->size(); ++i) {
      while (ri >= batches[bi]->size()) {
        ++bi;
        ri = 0;
      }
      const auto want = (*batches[bi])[ri++];
      const auto got = (*b)[i];
      ASSERT_TRUE(got.record_template().same_layout(want.record_template()));
      ASSERT_TRUE(std::equal(got.bytes().begin(), got.bytes().end(), want.bytes().begin(),
                             want.bytes().end()));
    }
  }
}

TEST(FileSinkTest, BinaryMakesNetflowV9TimesAbsolute) {
  // Frame 2 of the capture (tshark -V): SysUptime 944951.609 s, CurrentSecs 1647285928,
  // four flows with StartTime = EndTime = 944948.659, .659, .660, .661 s.
  const auto batches =
      test::capture_batches(test::data_path("export/akvorado-merged/netflow_template+data.pcap"));
  ASSERT_EQ(test::total_records(batches), 4u);
  TempDir dir("sinks");
  TestClock clock(kT0);
  FileSink sink(options(dir.path(), FileFormat::ipfix, clock));
  for (const auto& b : batches) sink.write(*b);
  sink.close();
  const auto files = list_files(dir.path());
  ASSERT_EQ(files.size(), 1u);
  const auto back = test::ipfix_file_batches(dir.path() + "/" + files[0]);
  ASSERT_EQ(test::total_records(back), 4u);
  const std::uint64_t base = 1647285928000ull - 944951609ull;  // boot time in epoch ms
  const std::uint64_t want[] = {944948659, 944948659, 944948660, 944948661};
  std::size_t k = 0;
  for (const auto& b : back) {
    for (std::size_t i = 0; i < b->size(); ++i, ++k) {
      const auto r = (*b)[i];
      EXPECT_FALSE(r.field(0, 21));
      EXPECT_FALSE(r.field(0, 22));
      EXPECT_EQ(r.unsigned_field(0, 152), base + want[k]);
      EXPECT_EQ(r.unsigned_field(0, 153), base + want[k]);
      EXPECT_EQ(r.field(0, 152)->size(), 8u);
    }
  }
}

TEST(FileSinkTest, StandardOutputGetsEveryBatchAtOnce) {
  const auto batches = test::ipfix_file_batches(test::data_path("ipfix/softflowd_1kxun_tcp.ipfix"));
  FileSinkOptions o;
  o.path = "-";
  o.format = FileFormat::json_lines;
  FileSink sink(o);
  EXPECT_EQ(sink.name(), "stdout");
  ::testing::internal::CaptureStdout();
  for (const auto& b : batches) sink.write(*b);
  // Nothing waits for close(): every batch is already out.
  const std::string got = ::testing::internal::GetCapturedStdout();
  sink.close();
  EXPECT_EQ(got, render(ipfix::RenderFormat::json_lines, batches));
  EXPECT_EQ(sink.stats().records_written, test::total_records(batches));
}

TEST(FileSinkTest, StandardOutputBinaryIsAnIpfixStream) {
  const auto batches = test::ipfix_file_batches(test::data_path("ipfix/softflowd_1kxun_tcp.ipfix"));
  TempDir dir("sinks");
  const std::string out_path = dir.path() + "/stdout.ipfix";
  const int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  FileSinkOptions o;
  o.path = "-";
  o.format = FileFormat::ipfix;
  o.stdout_fd = fd;
  FileSink sink(o);
  for (const auto& b : batches) sink.write(*b);
  // Readable before close(): each batch ended its message.
  EXPECT_EQ(test::total_records(test::ipfix_file_batches(out_path)), test::total_records(batches));
  sink.close();
  ::close(fd);
}

TEST(FileSinkTest, UnwritableDirectoryIsCountedAndRetriedNextPeriod) {
  TempDir dir("sinks");
  // A regular file where the sink wants a directory: mkdir fails (also as root).
  const std::string blocked = dir.path() + "/out";
  std::ofstream(blocked) << "x";
  TestClock clock(kT0);
  FileSink sink(options(blocked, FileFormat::json_lines, clock));
  EXPECT_FALSE(FileSink::check(options(blocked, FileFormat::json_lines, clock)).empty());
  sink.write(*small_batch(3));
  sink.write(*small_batch(2));  // same period: not retried, still counted
  SinkStats s = sink.stats();
  EXPECT_EQ(s.records_failed, 5u);
  EXPECT_EQ(s.errors, 1u);
  EXPECT_EQ(s.records_written, 0u);

  // Next period: tried again (still failing).
  clock.set(kT0 + 60);
  sink.write(*small_batch(1));
  s = sink.stats();
  EXPECT_EQ(s.records_failed, 6u);
  EXPECT_EQ(s.errors, 2u);

  // The operator fixes it; the period after works.
  std::filesystem::remove(blocked);
  clock.set(kT0 + 120);
  sink.write(*small_batch(4));
  sink.close();
  s = sink.stats();
  EXPECT_EQ(s.records_written, 4u);
  EXPECT_EQ(s.records_failed, 6u);
  EXPECT_EQ(list_files(blocked),
            std::vector<std::string>{"2024/03/01/12/flows-20240301120200.json"});
  EXPECT_TRUE(FileSink::check(options(blocked, FileFormat::json_lines, clock)).empty());
}

// RLIMIT_FSIZE stands in for a full disk: past it write(2) fails with EFBIG (SIGXFSZ ignored).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit r = old_;
    r.rlim_cur = bytes;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &r) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  rlimit old_{};
  sighandler_t old_handler_{};
  bool ok_ = false;
};

TEST(FileSinkTest, FailedWriteKeepsTheCompleteBatchesAndCountsTheRest) {
  for (const FileFormat f : {FileFormat::json_lines, FileFormat::ipfix}) {
    SCOPED_TRACE(static_cast<int>(f));
    const auto batches = test::capture_batches(
        test::data_path("export/pmacct/101-NFv9-CISCO-cust_primitives_traffic-00.pcap"));
    ASSERT_GE(batches.size(), 4u);
    TempDir dir("sinks");
    TestClock clock(kT0);
    auto o = options(dir.path(), f, clock);
    o.buffer_bytes = 1;  // write(2) after every batch
    FileSink sink(o);
    // Binary: batch 0's message reaches the file when batch 1 (another export time) starts.
    sink.write(*batches[0]);
    sink.write(*batches[1]);
    const std::string tmp = sink.current_file() + ".tmp";
    const auto size0 = std::filesystem::file_size(tmp);
    ASSERT_GT(size0, 0u);
    {
      FileSizeLimit limit(size0 + 10);
      ASSERT_TRUE(limit.ok());
      sink.write(*batches[2]);  // does not fit: EFBIG
    }
    SinkStats s = sink.stats();
    EXPECT_EQ(s.errors, 1u);
    EXPECT_EQ(s.records_failed + s.records_written,
              batches[0]->size() + batches[1]->size() + batches[2]->size());
    EXPECT_GE(s.records_failed, batches[2]->size());
    EXPECT_GE(s.records_written, batches[0]->size());
    // The file was cut back to the complete batches and put in place.
    EXPECT_EQ(sink.current_file(), "");
    const auto files = list_files(dir.path());
    ASSERT_EQ(files.size(), 1u);
    EXPECT_TRUE(files[0].ends_with(f == FileFormat::ipfix ? ".ipfix" : ".json")) << files[0];
    EXPECT_EQ(std::filesystem::file_size(dir.path() + "/" + files[0]), size0);
    if (f == FileFormat::ipfix) {
      EXPECT_EQ(test::total_records(test::ipfix_file_batches(dir.path() + "/" + files[0])),
                s.records_written);
    } else {
      const std::string text = read_text(dir.path() + "/" + files[0]);
      EXPECT_EQ(static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n')),
                s.records_written);
    }
    // Same period: counted, not retried.
    sink.write(*batches[3]);
    EXPECT_EQ(sink.stats().records_failed, s.records_failed + batches[3]->size());
    EXPECT_EQ(sink.stats().errors, 1u);
    sink.close();
  }
}

TEST(FileSinkTest, WritesAfterCloseAreCountedAsFailed) {
  TempDir dir("sinks");
  TestClock clock(kT0);
  FileSink sink(options(dir.path(), FileFormat::text, clock));
  sink.close();
  sink.write(*small_batch(2));
  EXPECT_EQ(sink.stats().records_failed, 2u);
  EXPECT_TRUE(list_files(dir.path()).empty());
}

TEST(FileSinkTest, RunsBehindAQueue) {
  TempDir dir("sinks");
  TestClock clock(kT0);
  QueuedSinkOptions qo;
  qo.wall_clock = clock.fn();  // ticks see the same time as the sink: one period, one file
  QueuedSink q(std::make_unique<FileSink>(options(dir.path(), FileFormat::json_lines, clock)), qo);
  for (int i = 0; i < 100; ++i) q.push(small_batch(10, static_cast<std::uint64_t>(i) * 10));
  EXPECT_TRUE(q.close(10s));
  EXPECT_EQ(q.stats().sink.records_written, 1000u);
  EXPECT_EQ(q.stats().sink.files_completed, 1u);
  const auto files = list_files(dir.path());
  ASSERT_EQ(files.size(), 1u);
  const std::string text = read_text(dir.path() + "/" + files[0]);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1000);
}

}  // namespace
}  // namespace flowsec::sinks
