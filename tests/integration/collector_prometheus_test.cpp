// Integration: a real Prometheus (Debian `prometheus` 2.x) scrapes the flowsec binary's
// --metrics every second while a known amount of traffic reaches its UDP listener:
// N IPFIX datagrams of M data records each, from one exporter socket on 127.0.0.1.
// The values Prometheus stores, read back through its HTTP query API with `curl`,
// must be exactly what was sent:
//   flowsec_messages_received_total{exporter="127.0.0.1"} == N
//   flowsec_records_received_total{exporter="127.0.0.1"}  == N*M
//   sum(flowsec_output_records_written_total)             == N*M
//   sum(flowsec_decode_errors_total) has no series (nothing malformed was sent)
// and the output (-P - -D j: JSON lines on standard output, written batch by batch so
// the written counter moves while running) holds N*M records.
// Skips with a printed reason when prometheus or curl is missing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "support/flowsec_process.hpp"
#include "support/transport_harness.hpp"

namespace flowsec::test {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMessages = 40;  // N
constexpr std::size_t kRecords = 25;   // M, per message

void put(std::vector<std::byte>& b, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}

// IPFIX message `seq`: a template set (id 256: sourceIPv4Address, destinationIPv4Address,
// packetDeltaCount, octetDeltaCount) and a data set of kRecords records.
std::vector<std::byte> message(std::uint32_t seq) {
  std::vector<std::byte> sets;
  put(sets, 2, 2);
  put(sets, 4 + 4 + 4 * 4, 2);
  put(sets, 256, 2);
  put(sets, 4, 2);
  for (auto [ie, len] : {std::pair{8, 4}, std::pair{12, 4}, std::pair{2, 8}, std::pair{1, 8}}) {
    put(sets, static_cast<std::uint64_t>(ie), 2);
    put(sets, static_cast<std::uint64_t>(len), 2);
  }
  put(sets, 256, 2);
  put(sets, 4 + kRecords * 24, 2);
  for (std::size_t r = 0; r < kRecords; ++r) {
    put(sets, 0x0a000000u + seq, 4);
    put(sets, 0x0a010000u + r, 4);
    put(sets, r + 1, 8);
    put(sets, 100 * (r + 1), 8);
  }
  std::vector<std::byte> m;
  put(m, 10, 2);
  put(m, 16 + sets.size(), 2);
  put(m, 1700000000, 4);
  put(m, seq * kRecords, 4);  // sequence: data records before this message
  put(m, 1, 4);
  m.insert(m.end(), sets.begin(), sets.end());
  return m;
}

// A PromQL instant query through curl; the JSON answer ("" on failure).
std::string promql(std::uint16_t port, const TempDir& dir, const std::string& query) {
  const std::string qfile = dir / "query.txt";
  std::ofstream(qfile) << query;
  const auto r =
      run_command({"curl", "-sS", "--max-time", "3", "-G", "--data-urlencode", "query@" + qfile,
                   "http://127.0.0.1:" + std::to_string(port) + "/api/v1/query"},
                  dir.path(), 5s);
  return r.out;
}

// The value of the single series a query returns; nullopt if none or several.
std::optional<std::string> single_value(const std::string& json) {
  if (json.find("\"status\":\"success\"") == std::string::npos) return std::nullopt;
  const std::string key = "\"value\":[";
  const auto at = json.find(key);
  if (at == std::string::npos || json.find(key, at + 1) != std::string::npos) return std::nullopt;
  const auto q1 = json.find('"', json.find(',', at + key.size()));
  const auto q2 = json.find('"', q1 + 1);
  if (q1 == std::string::npos || q2 == std::string::npos) return std::nullopt;
  return json.substr(q1 + 1, q2 - q1 - 1);
}

TEST(CollectorPrometheus, ScrapedCountersEqualTheTrafficSent) {
  if (!have_command("prometheus"))
    GTEST_SKIP() << "prometheus is not installed (Debian: prometheus)";
  if (!have_command("curl")) GTEST_SKIP() << "curl is not installed (needed to query prometheus)";
  TempDir dir("collector-prom");

  const std::uint16_t metrics_port = free_port();
  FlowsecProcess flowsec({"-i", "none", "-n", "none", "-3", "udp://127.0.0.1:0", "-P", "-", "-D",
                          "j", "--metrics", "127.0.0.1:" + std::to_string(metrics_port)},
                         dir.path());
  const auto ports = flowsec.listen_ports(1);
  ASSERT_EQ(ports.size(), 1u) << flowsec.log();

  const std::uint16_t prom_port = free_port();
  std::ofstream(dir / "prometheus.yml") << "global:\n"
                                           "  scrape_interval: 1s\n"
                                           "  scrape_timeout: 1s\n"
                                           "scrape_configs:\n"
                                           "  - job_name: flowsec\n"
                                           "    static_configs:\n"
                                           "      - targets: ['127.0.0.1:"
                                        << metrics_port << "']\n";
  ChildProcess prom({"prometheus", "--config.file=" + (dir / "prometheus.yml"),
                     "--storage.tsdb.path=" + (dir / "tsdb"),
                     "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                    dir / "prometheus.out", dir / "prometheus.err");
  auto prom_log = [&] {
    const std::string err = prom.err();
    return err.size() > 3000 ? err.substr(err.size() - 3000) : err;
  };
  auto value = [&](const std::string& q) { return single_value(promql(prom_port, dir, q)); };
  auto wait_value = [&](const std::string& q, const std::string& want,
                        std::chrono::milliseconds limit) {
    std::optional<std::string> last;
    const bool ok = eventually(
        [&] {
          last = value(q);
          return last == want;
        },
        limit);
    return ::testing::AssertionResult(ok)
           << q << " = " << last.value_or("(no single series)") << ", want " << want;
  };

  ASSERT_TRUE(wait_value("up{job=\"flowsec\"}", "1", 20000ms)) << prom_log();

  UdpSender exporter;
  for (std::uint32_t i = 0; i < kMessages; ++i) ASSERT_TRUE(exporter.send(message(i), ports[0]));

  const std::string n = std::to_string(kMessages);
  const std::string nm = std::to_string(kMessages * kRecords);
  EXPECT_TRUE(wait_value("flowsec_messages_received_total{exporter=\"127.0.0.1\"}", n, 10000ms))
      << flowsec.log();
  EXPECT_TRUE(wait_value("flowsec_records_received_total{exporter=\"127.0.0.1\"}", nm, 5000ms));
  EXPECT_TRUE(wait_value("sum(flowsec_output_records_written_total)", nm, 5000ms));
  EXPECT_NE(promql(prom_port, dir, "flowsec_decode_errors_total").find("\"result\":[]"),
            std::string::npos);
  EXPECT_EQ(value("flowsec_sequence_lost_total"), "0");
  EXPECT_EQ(value("flowsec_unknown_template_sets_total"), "0");

  ASSERT_EQ(prom.terminate(20s), 0) << prom.exit_description() << prom_log();
  ASSERT_EQ(flowsec.terminate(), 0) << flowsec.exit_description() << "\n" << flowsec.log();
  std::size_t bad = 0;
  EXPECT_EQ(json_lines(flowsec.out(), &bad).size(), kMessages * kRecords);
  EXPECT_EQ(bad, 0u);
}

}  // namespace
}  // namespace flowsec::test
