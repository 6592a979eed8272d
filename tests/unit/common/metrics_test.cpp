// Unit tests of the metrics registry (common/metrics.hpp): the Prometheus text format
// 0.0.4 as specified at prometheus.io/docs/instrumenting/exposition_formats (HELP and
// TYPE once per family, escaping, names), sums of repeated series, rejection of bad
// samples, collection while other threads update, and the -b 1 stats line.
#include "common/metrics.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace flowsec {
namespace {

using namespace std::chrono_literals;

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(MetricNames, FollowThePrometheusGrammar) {
  EXPECT_TRUE(valid_metric_name("flowsec_records_received_total"));
  EXPECT_TRUE(valid_metric_name("a:b_c9"));
  EXPECT_TRUE(valid_metric_name("_x"));
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_FALSE(valid_metric_name("9lives"));
  EXPECT_FALSE(valid_metric_name("records-total"));
  EXPECT_FALSE(valid_metric_name("records total"));
  EXPECT_FALSE(valid_metric_name("caf\xc3\xa9"));

  EXPECT_TRUE(valid_label_name("exporter"));
  EXPECT_TRUE(valid_label_name("_x1"));
  EXPECT_FALSE(valid_label_name(""));
  EXPECT_FALSE(valid_label_name("__name__"));  // reserved
  EXPECT_FALSE(valid_label_name("a:b"));       // colons are for metric names only
  EXPECT_FALSE(valid_label_name("1a"));
}

TEST(MetricsRegistry, WritesHelpAndTypeOncePerFamilyAcrossCollectors) {
  MetricsRegistry registry;
  registry.add_collector([](MetricWriter& w) {
    w.counter("flowsec_records_received_total", "Records received.", {{"exporter", "10.0.0.1"}}, 5);
    w.gauge("flowsec_sessions_active", "Open sessions.", 2);
  });
  registry.add_collector([](MetricWriter& w) {
    w.counter("flowsec_records_received_total", "Another help, ignored.",
              {{"exporter", "10.0.0.2"}}, 7);
  });
  EXPECT_EQ(registry.collect(),
            "# HELP flowsec_records_received_total Records received.\n"
            "# TYPE flowsec_records_received_total counter\n"
            "flowsec_records_received_total{exporter=\"10.0.0.1\"} 5\n"
            "flowsec_records_received_total{exporter=\"10.0.0.2\"} 7\n"
            "# HELP flowsec_sessions_active Open sessions.\n"
            "# TYPE flowsec_sessions_active gauge\n"
            "flowsec_sessions_active 2\n");
  EXPECT_EQ(registry.rejected_samples(), 0u);
}

TEST(MetricsRegistry, EmptyRegistryGivesEmptyText) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.collect(), "");
}

TEST(MetricWriter, EscapesLabelValuesAndHelp) {
  MetricWriter w;
  w.counter("m_total", "line one\nback\\slash \"quoted\"", {{"path", "a\\b\"c\nd"}}, 1);
  EXPECT_EQ(w.text(),
            "# HELP m_total line one\\nback\\\\slash \"quoted\"\n"
            "# TYPE m_total counter\n"
            "m_total{path=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricWriter, ReplacesInvalidUtf8InLabelValues) {
  MetricWriter w;
  // Valid two-, three- and four-byte sequences pass; a lone continuation byte, a
  // truncated sequence, an overlong form and a surrogate become U+FFFD.
  w.gauge("g", "h",
          {{"v", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\x80|\xe2\x82|\xc0\xaf|\xed\xa0\x80"}}, 1);
  const std::string repl = "\xef\xbf\xbd";
  EXPECT_EQ(w.text(), "# HELP g h\n# TYPE g gauge\ng{v=\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|" +
                          repl + "|" + repl + repl + "|" + repl + repl + "|" + repl + repl + repl +
                          "\"} 1\n");
}

TEST(MetricWriter, SortsLabelsSoTheSameSetIsOneSeries) {
  MetricWriter w;
  w.counter("e_total", "h", {{"reason", "short"}, {"exporter", "a"}}, 1);
  w.counter("e_total", "h", {{"exporter", "a"}, {"reason", "short"}}, 2);
  w.counter("e_total", "h", {{"exporter", "b"}, {"reason", "short"}}, 4);
  EXPECT_EQ(w.text(),
            "# HELP e_total h\n# TYPE e_total counter\n"
            "e_total{exporter=\"a\",reason=\"short\"} 3\n"
            "e_total{exporter=\"b\",reason=\"short\"} 4\n");
}

TEST(MetricWriter, SumsRepeatedGaugesToo) {
  MetricWriter w;
  w.gauge("queue_depth", "h", {{"output", "file"}}, 3);
  w.gauge("queue_depth", "h", {{"output", "file"}}, 4.5);
  EXPECT_NE(w.text().find("queue_depth{output=\"file\"} 7.5\n"), std::string::npos) << w.text();
}

TEST(MetricWriter, FormatsValuesExactly) {
  MetricWriter w;
  w.counter("big_total", "h", std::numeric_limits<std::uint64_t>::max());
  w.gauge("g_int", "h", 1e15);
  w.gauge("g_huge", "h", 1e300);
  w.gauge("g_frac", "h", 0.1);
  w.gauge("g_nan", "h", std::numeric_limits<double>::quiet_NaN());
  w.gauge("g_pinf", "h", std::numeric_limits<double>::infinity());
  w.gauge("g_ninf", "h", -std::numeric_limits<double>::infinity());
  w.gauge("g_neg", "h", -2);
  const std::string t = w.text();
  EXPECT_NE(t.find("\nbig_total 18446744073709551615\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\ng_int 1000000000000000\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\ng_huge 1e+300\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\ng_frac 0.1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\ng_nan NaN\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\ng_pinf +Inf\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\ng_ninf -Inf\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\ng_neg -2\n"), std::string::npos) << t;
}

TEST(MetricWriter, DropsAndCountsBadSamplesButKeepsTheRest) {
  testing::internal::CaptureStderr();
  MetricWriter w;
  w.counter("bad-name_total", "h", 1);
  w.counter("ok_total", "h", {{"bad-label", "x"}}, 1);
  w.counter("ok_total", "h", {{"__reserved", "x"}}, 1);
  w.counter("ok_total", "h", {{"a", "x"}, {"a", "y"}}, 1);
  w.counter("ok_total", "h", {{"a", "x"}}, 1);
  w.gauge("ok_total", "h", {{"a", "y"}}, 1);  // type conflict
  // The log lines are rate-limited process-wide, so which of them show depends on the
  // tests run before; only the counts are checked.
  (void)testing::internal::GetCapturedStderr();
  EXPECT_EQ(w.rejected(), 5u);
  EXPECT_EQ(w.text(), "# HELP ok_total h\n# TYPE ok_total counter\nok_total{a=\"x\"} 1\n");
}

TEST(MetricsRegistry, CountsRejectedSamplesOverCollections) {
  MetricsRegistry registry;
  registry.add_collector([](MetricWriter& w) { w.counter("no good", "h", 1); });
  testing::internal::CaptureStderr();
  (void)registry.collect();
  (void)registry.collect();
  (void)testing::internal::GetCapturedStderr();
  EXPECT_EQ(registry.rejected_samples(), 2u);
}

TEST(MetricsRegistry, RemovedCollectorNoLongerRuns) {
  MetricsRegistry registry;
  int first_runs = 0;
  const auto a = registry.add_collector([&](MetricWriter& w) {
    ++first_runs;
    w.counter("a_total", "h", 1);
  });
  const auto b = registry.add_collector([](MetricWriter& w) { w.counter("b_total", "h", 2); });
  EXPECT_NE(a, b);
  EXPECT_NE(registry.collect().find("a_total 1"), std::string::npos);
  registry.remove_collector(a);
  registry.remove_collector(12345);  // unknown: ignored
  const std::string t = registry.collect();
  EXPECT_EQ(first_runs, 1);
  EXPECT_EQ(t.find("a_total"), std::string::npos);
  EXPECT_NE(t.find("b_total 2"), std::string::npos);
}

TEST(MetricsRegistry, LabelsBuiltAtRunTime) {
  // Per-reason counters from an array, as decoders keep them.
  const std::array<const char*, 3> reasons = {"short", "bad_version", "bad_length"};
  const std::array<std::uint64_t, 3> counts = {4, 0, 9};
  MetricsRegistry registry;
  registry.add_collector([&](MetricWriter& w) {
    for (std::size_t i = 0; i < reasons.size(); ++i) {
      const std::array<MetricLabel, 2> labels = {MetricLabel{"exporter", "192.0.2.1"},
                                                 MetricLabel{"reason", reasons[i]}};
      w.counter("flowsec_decode_errors_total", "Decode errors.", std::span(labels), counts[i]);
      const std::vector<MetricLabel> as_vector(labels.begin(), labels.end());
      w.counter("flowsec_decode_errors_vector_total", "Same from a vector.", as_vector, counts[i]);
    }
  });
  const std::string t = registry.collect();
  EXPECT_EQ(count_of(t, "# TYPE flowsec_decode_errors_total counter\n"), 1u);
  EXPECT_NE(t.find("flowsec_decode_errors_total{exporter=\"192.0.2.1\",reason=\"bad_length\"} 9\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("{exporter=\"192.0.2.1\",reason=\"bad_version\"} 0\n"), std::string::npos);
  EXPECT_NE(
      t.find("flowsec_decode_errors_vector_total{exporter=\"192.0.2.1\",reason=\"short\"} 4\n"),
      std::string::npos)
      << t;
}

TEST(MetricsRegistry, CollectsWhileOtherThreadsCountAndRegister) {
  // Run under TSan/ASan: collect() on this thread, atomics bumped and collectors added
  // and removed on others. Values seen must never go backwards.
  MetricsRegistry registry;
  std::atomic<std::uint64_t> records{0};
  registry.add_collector([&](MetricWriter& w) {
    w.counter("records_total", "h", {{"exporter", "x"}}, records.load(std::memory_order_relaxed));
  });
  std::atomic<bool> stop{false};
  std::thread counter([&] {
    while (!stop) records.fetch_add(1, std::memory_order_relaxed);
  });
  std::thread churn([&] {
    while (!stop) {
      const auto id = registry.add_collector([](MetricWriter& w) { w.gauge("tmp", "h", 1); });
      registry.remove_collector(id);
    }
  });
  std::uint64_t last = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string t = registry.collect();
    const auto at = t.find("records_total{exporter=\"x\"} ");
    ASSERT_NE(at, std::string::npos) << t;
    const std::uint64_t v = std::stoull(t.substr(at + 28));
    EXPECT_GE(v, last);
    last = v;
  }
  stop = true;
  counter.join();
  churn.join();
}

TEST(StatsLine, ShowsTotalsThenRatesAgainstThePreviousLine) {
  StatsLine line;
  const std::chrono::steady_clock::time_point t0{};
  EXPECT_EQ(line.format({{"msgs", 100}, {"records", 1000}}, t0), "msgs=100 records=1000");
  EXPECT_EQ(line.format({{"msgs", 105}, {"records", 51000}, {"drops", 3}}, t0 + 5s),
            "msgs=105 (+1.0/s) records=51000 (+10000/s) drops=3");
  // No time passed: no rate rather than a division by zero. A counter that went
  // down (a restart) shows no rate either.
  EXPECT_EQ(line.format({{"msgs", 106}, {"drops", 1}}, t0 + 5s), "msgs=106 drops=1");
  EXPECT_EQ(line.format({{"msgs", 106}}, t0 + 10s), "msgs=106 (+0.0/s)");
}

}  // namespace
}  // namespace flowsec
