// Peer check for the binary file output (FileSink -D b, SPEC §6): files written
// by the sink are read by ipfixDump (libfixbuf-tools, an independent RFC 5655 /
// RFC 7011 reader) with the same record count we wrote and no complaint; and
// NetFlow v9 records, whose FIRST/LAST_SWITCHED are relative to the header's
// sysUptime, come out as absolute flowStart/EndMilliseconds equal to what tshark
// (Wireshark's NetFlow dissector) computes from the original capture. Skips
// loudly when ipfixDump or tshark is missing.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "ipfix/decode.hpp"
#include "ipfix/ipfix_file.hpp"
#include "ipfix/template_store.hpp"
#include "sinks/file_sink.hpp"
#include "support/flowsec_process.hpp"
#include "support/udp_datagrams.hpp"

namespace flowsec::sinks {
namespace {

using test::CommandResult;

// A shell command (tests/support: sh -c, bounded); stderr joins stdout unless
// `with_stderr` is false.
CommandResult run(const std::string& cmd, bool with_stderr = true) {
  return test::run_shell(with_stderr ? cmd : cmd + " 2>/dev/null");
}

std::string data_path(const std::string& rel) {
  return std::string(FLOWSEC_TEST_DATA) + "/" + rel;
}

using test::TempDir;

std::vector<BatchPtr> batches_of(const std::string& rel) {
  std::vector<BatchPtr> out;
  const std::string path = data_path(rel);
  if (rel.ends_with(".ipfix")) {
    auto r = ipfix::read_ipfix_file(path, [&](ipfix::RecordBatch& b) {
      out.push_back(std::make_shared<const ipfix::RecordBatch>(std::move(b)));
    });
    EXPECT_TRUE(r) << path;
    return out;
  }
  ipfix::TemplateStore store(ipfix::TransportKind::datagram);
  for (const auto& d : flowsec::test::read_udp_datagrams(path)) {
    ipfix::RecordBatch b;
    b.exporter.address = d.src;
    EXPECT_TRUE(ipfix::decode_any(d.payload, store, b)) << path;
    if (!b.empty()) out.push_back(std::make_shared<const ipfix::RecordBatch>(std::move(b)));
  }
  return out;
}

// Writes the batches through a FileSink -D b; returns the one file it made.
std::string write_ipfix_file(const TempDir& dir, const std::vector<BatchPtr>& batches,
                             SinkStats& stats) {
  FileSinkOptions o;
  o.path = dir.path();
  o.format = FileFormat::ipfix;
  FileSink sink(o);
  for (const auto& b : batches) sink.write(*b);
  sink.close();
  stats = sink.stats();
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  EXPECT_EQ(files.size(), 1u);
  return files.empty() ? std::string() : files[0];
}

class IpfixDumpCount : public ::testing::TestWithParam<const char*> {};

TEST_P(IpfixDumpCount, ReadsEveryRecordWeWrote) {
  if (!test::have_command("ipfixDump"))
    GTEST_SKIP() << "ipfixDump not installed (Debian libfixbuf-tools)";
  const auto batches = batches_of(GetParam());
  std::uint64_t n = 0;
  for (const auto& b : batches) n += b->size();
  ASSERT_GT(n, 0u);
  TempDir dir("sinks-it");
  SinkStats stats;
  const std::string file = write_ipfix_file(dir, batches, stats);
  ASSERT_FALSE(file.empty());
  EXPECT_TRUE(file.ends_with(".ipfix")) << file;
  EXPECT_EQ(stats.records_written, n);
  EXPECT_EQ(stats.records_failed, 0u);

  const CommandResult r = run("ipfixDump -i '" + file + "' -s");
  ASSERT_TRUE(r.ok()) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"((\d+) Data Records)"))) << r.out;
  EXPECT_EQ(std::stoull(m[1].str()), n) << r.out;
  // Our sequence numbers and templates are right: no warning of any kind.
  EXPECT_EQ(r.out.find("WARNING"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("rror"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, IpfixDumpCount,
    ::testing::Values("ipfix/ipfixcol2_example_flows.ipfix", "ipfix/softflowd_1kxun_tcp.ipfix",
                      "export/pmacct/101-NFv9-CISCO-cust_primitives_traffic-00.pcap",
                      "export/pmacct/110-IPFIXv10-NFv9-multiple-sources_traffic-00.pcap",
                      "export/akvorado/netflow_nfv5.pcap",
                      "export/akvorado/sflow_data-sflow-ipv4-data.pcap"));

// (start, end) in epoch ms for every v9 flow of a capture, as tshark dissects it:
// CurrentSecs·1000 − (SysUptime − StartTime), all three printed by tshark.
std::vector<std::pair<std::int64_t, std::int64_t>> tshark_v9_times(const std::string& pcap,
                                                                   int port) {
  const CommandResult r = run("tshark -r '" + pcap + "' -d udp.port==" + std::to_string(port) +
                                  ",cflow -T fields -e cflow.unix_secs -e cflow.sysuptime "
                                  "-e cflow.timestart -e cflow.timeend",
                              false);
  EXPECT_TRUE(r.ok());
  auto ms = [](const std::string& s) { return std::llround(std::stod(s) * 1000.0); };
  auto split = [](const std::string& s) {
    std::vector<std::string> v;
    std::stringstream ss(s);
    std::string x;
    while (std::getline(ss, x, ',')) v.push_back(x);
    return v;
  };
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  std::stringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> cols;
    std::stringstream ls(line);
    std::string c;
    while (std::getline(ls, c, '\t')) cols.push_back(c);
    if (cols.size() < 4 || cols[2].empty()) continue;
    const std::int64_t now_ms = std::stoll(cols[0]) * 1000;
    const std::int64_t up = ms(cols[1]);
    const auto starts = split(cols[2]);
    const auto ends = split(cols[3]);
    EXPECT_EQ(starts.size(), ends.size());
    for (std::size_t i = 0; i < starts.size() && i < ends.size(); ++i) {
      out.emplace_back(now_ms - (up - ms(starts[i])), now_ms - (up - ms(ends[i])));
    }
  }
  return out;
}

// flowStartMilliseconds / flowEndMilliseconds of every data record in ipfixDump's output.
std::vector<std::pair<std::int64_t, std::int64_t>> ipfixdump_times(const std::string& file,
                                                                   std::string& raw) {
  const CommandResult r = run("ipfixDump -i '" + file + "' -d");
  raw = r.out;
  EXPECT_TRUE(r.ok()) << r.out;
  // e.g. "	(152)              flowStartMilliseconds : 2023-02-28 09:46:39.865" (UTC);
  // a record may list the end before the start (template order).
  const std::regex re(
      R"(\(15[23]\)\s+flow(Start|End)Milliseconds\s*:\s*(\d{4}-\d\d-\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3}))");
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  std::int64_t start = -1, end = -1;
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), re); it != std::sregex_iterator();
       ++it) {
    const auto& m = *it;
    std::tm tm{};
    std::istringstream(m[2].str() + " " + m[3].str() + ":" + m[4].str() + ":" + m[5].str()) >>
        std::get_time(&tm, "%Y-%m-%d %H:%M:%S");
    const std::int64_t v = static_cast<std::int64_t>(timegm(&tm)) * 1000 + std::stoll(m[6].str());
    (m[1].str() == "Start" ? start : end) = v;
    if (start >= 0 && end >= 0) {
      out.emplace_back(start, end);
      start = end = -1;
    }
  }
  return out;
}

class V9Times : public ::testing::TestWithParam<std::pair<const char*, int>> {};

TEST_P(V9Times, AreAbsoluteAndMatchTshark) {
  if (!test::have_command("ipfixDump"))
    GTEST_SKIP() << "ipfixDump not installed (Debian libfixbuf-tools)";
  if (!test::have_command("tshark")) GTEST_SKIP() << "tshark not installed";
  const auto [rel, port] = GetParam();
  const auto want = tshark_v9_times(data_path(rel), port);
  ASSERT_FALSE(want.empty());
  TempDir dir("sinks-it");
  SinkStats stats;
  const std::string file = write_ipfix_file(dir, batches_of(rel), stats);
  ASSERT_FALSE(file.empty());
  std::string raw;
  const auto got = ipfixdump_times(file, raw);
  EXPECT_EQ(got, want) << raw.substr(0, 4000);
  EXPECT_EQ(raw.find("SysUpTime"), std::string::npos) << "relative times left in the file";
}

INSTANTIATE_TEST_SUITE_P(
    Captures, V9Times,
    ::testing::Values(std::pair{"export/akvorado-merged/netflow_template+data.pcap", 2055},
                      std::pair{"export/pmacct/101-NFv9-CISCO-cust_primitives_traffic-00.pcap",
                                9991}));

}  // namespace
}  // namespace flowsec::sinks
