// Integration: the file outputs of the real flowsec binary (SPEC §2 -P/-D/-F, §6).
//
//  - A UDP collector with -P DIR -D t|j|c|b -F 1 fed ~3 s of synthetic IPFIX
//    (IpfixBuilder: every record distinct, counts and sums known from the input):
//    files rotate (more than one), are named DIR/YYYY/MM/DD/HH/flows-YYYYMMDDHHMMSS.EXT,
//    complete files only ever carry their final name (no .tmp left after SIGTERM, a
//    finished JSON file read mid-run is whole), CSV files open with a header, and every
//    record is in the files: -D b files are counted by ipfixDump (libfixbuf) `-s`.
//  - -P - writes JSON lines to standard output.
//  - Replay of an IPFIX file (tests/data/ipfix/ipfixcol2_example_flows.ipfix, CESNET
//    ipfixcol2): `flowsec -i FILE.ipfix -P DIR -D j` writes as many records as ipfixDump -s
//    counts, with ipfixDump's octetDeltaCount/packetDeltaCount sums; `flowsec -i FILE.ipfix
//    -n udp://127.0.0.1:P` re-exports it to nfcapd, whose nfdump -I totals are the same.
// Skips with a printed reason when ipfixDump or nfcapd/nfdump is missing.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/app_process.hpp"
#include "support/ipfix_dump.hpp"

namespace flowsec::test::app {
namespace {

using nlohmann::json;

// ipfixDump's figures for an IPFIX file (support/ipfix_dump.hpp): its data records and
// the sums of octetDeltaCount (IE 1) and packetDeltaCount (IE 2).
std::optional<Totals> ipfixdump_totals(const std::string& file, const std::string& dir) {
  const auto dump = ipfix_dump(file, dir);
  if (!dump) return std::nullopt;
  return dump->totals();
}

struct Format {
  const char* letter;
  const char* extension;
};

class AppOutputFormats : public ::testing::TestWithParam<Format> {};

TEST_P(AppOutputFormats, RotateNameAndCloseFilesAtomically) {
  const Format f = GetParam();
  const bool binary = std::string(f.letter) == "b";
  if (binary && !have_command("ipfixDump")) {
    GTEST_SKIP() << "ipfixDump is not installed (Debian: libfixbuf-tools)";
  }
  TempDir dir("outputs");
  const std::string out = dir / "out";
  auto collector =
      start_flowsec({"-i", "none", "-3", "udp://127.0.0.1:0", "-P", out, "-D", f.letter, "-F", "1"},
                    dir.path(), "collector");
  const auto port = collector->listen_port();
  ASSERT_GT(port, 0) << collector->log();

  // ~3 s of traffic: 15 messages of 20 records, one every 200 ms.
  IpfixBuilder ipfix;
  UdpSender exporter;
  bool checked_mid_run = false;
  for (int m = 0; m < 15; ++m) {
    ASSERT_TRUE(exporter.send(ipfix.message(20), port));
    std::this_thread::sleep_for(200ms);
    if (m == 10 && std::string(f.letter) == "j") {
      // A file under its final name is complete: every line is a whole record.
      for (const auto& file : files_under(out)) {
        if (!ends_with(file, ".json")) continue;
        const std::string text = slurp_file(file);
        EXPECT_TRUE(!text.empty() && text.back() == '\n') << file;
        for (const auto& r : parse_json_lines(text)) EXPECT_TRUE(r.is_object()) << file;
        checked_mid_run = true;
      }
    }
  }
  const std::uint64_t sent = ipfix.records();
  std::this_thread::sleep_for(300ms);  // the last datagram is read before the signal
  EXPECT_EQ(collector->stop(), 0) << collector->log();

  const auto files = files_under(out);
  const std::regex name(
      R"(/(\d{4})/(\d{2})/(\d{2})/(\d{2})/flows-(\d{4})(\d{2})(\d{2})(\d{2})\d{4}(\.\d+)?\.)" +
      std::string(f.extension) + "$");
  for (const auto& file : files) {
    EXPECT_FALSE(ends_with(file, ".tmp")) << "left behind after SIGTERM: " << file;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(file, m, name)) << file;
    for (int k = 1; k <= 4; ++k) EXPECT_EQ(m[k].str(), m[k + 4].str()) << file;
  }
  EXPECT_GT(files.size(), 1u) << "no rotation with -F 1 over ~3 s";
  if (std::string(f.letter) == "j") {
    EXPECT_TRUE(checked_mid_run) << "no finished file mid-run";
  }

  std::uint64_t records = 0;
  if (std::string(f.letter) == "j") {
    const auto t = json_totals(json_values(out));
    records = t.records;
    EXPECT_EQ(t.bytes, IpfixBuilder::bytes_sum(sent));
    EXPECT_EQ(t.packets, IpfixBuilder::packets_sum(sent));
  } else if (std::string(f.letter) == "t") {
    for (const auto& file : files) {
      for (const auto& line : lines_of(slurp_file(file))) {
        if (line.find("IPV4_SRC_ADDR=10.") != std::string::npos) ++records;
      }
    }
  } else if (std::string(f.letter) == "c") {
    const std::regex header(R"([A-Za-z_][A-Za-z0-9_]*(,[A-Za-z_][A-Za-z0-9_]*)*)");
    for (const auto& file : files) {
      const auto lines = lines_of(slurp_file(file));
      ASSERT_FALSE(lines.empty()) << file;
      EXPECT_TRUE(std::regex_match(lines[0], header)) << file << ": " << lines[0];
      EXPECT_NE(lines[0].find("IPV4_SRC_ADDR"), std::string::npos) << lines[0];
      for (std::size_t k = 1; k < lines.size(); ++k) {
        if (lines[k].rfind("10.", 0) == 0) ++records;
      }
    }
  } else {
    for (const auto& file : files) {
      const auto t = ipfixdump_totals(file, dir.path());
      ASSERT_TRUE(t) << "ipfixDump cannot read " << file;
      records += t->records;
    }
  }
  EXPECT_EQ(records, sent) << "records in the -D " << f.letter << " files";
  std::printf("-D %s: %zu files, %llu of %llu records\n", f.letter, files.size(),
              static_cast<unsigned long long>(records), static_cast<unsigned long long>(sent));
}

INSTANTIATE_TEST_SUITE_P(Formats, AppOutputFormats,
                         ::testing::Values(Format{"t", "txt"}, Format{"j", "json"},
                                           Format{"c", "csv"}, Format{"b", "ipfix"}),
                         [](const auto& param_info) {
                           return std::string(param_info.param.extension);
                         });

TEST(AppOutputs, DashPWritesJsonLinesToStdout) {
  TempDir dir("stdout");
  auto collector = start_flowsec({"-i", "none", "-3", "udp://127.0.0.1:0", "-P", "-", "-D", "j"},
                                 dir.path(), "collector");
  const auto port = collector->listen_port();
  ASSERT_GT(port, 0) << collector->log();
  IpfixBuilder ipfix;
  UdpSender exporter;
  for (int m = 0; m < 5; ++m) ASSERT_TRUE(exporter.send(ipfix.message(10), port));
  const std::uint64_t sent = ipfix.records();
  // Written as they come (no rotation, no .tmp), before any signal.
  EXPECT_TRUE(wait_for([&] { return parse_json_lines(collector->out()).size() >= sent; }, 10s))
      << collector->log();
  EXPECT_EQ(collector->stop(), 0) << collector->log();
  const auto t = json_totals(parse_json_lines(collector->out()));
  EXPECT_EQ(t.records, sent);
  EXPECT_EQ(t.packets, IpfixBuilder::packets_sum(sent));
  // Nothing but the logs and stdout: no dump directory named "-".
  EXPECT_FALSE(std::filesystem::exists(dir / "-"));
}

const std::string kIpfixFile = data_path("ipfix/ipfixcol2_example_flows.ipfix");

TEST(AppOutputs, ReplayIpfixFileToJsonFiles) {
  if (!have_command("ipfixDump")) {
    GTEST_SKIP() << "ipfixDump is not installed (Debian: libfixbuf-tools)";
  }
  TempDir dir("replay");
  const auto expected = ipfixdump_totals(kIpfixFile, dir.path());
  ASSERT_TRUE(expected) << "ipfixDump failed on " << kIpfixFile;
  ASSERT_GT(expected->records, 0u);
  const std::string out = dir / "out";
  auto replay = start_flowsec({"-i", kIpfixFile, "-P", out, "-D", "j"}, dir.path(), "replay");
  EXPECT_EQ(replay->wait(30s), 0) << replay->log();
  for (const auto& f : files_under(out)) EXPECT_FALSE(ends_with(f, ".tmp")) << f;
  const auto got = json_totals(json_values(out));
  EXPECT_EQ(got.records, expected->records) << "flowsec replay vs ipfixDump -s";
  EXPECT_EQ(got.bytes, expected->bytes) << "IN_BYTES vs ipfixDump octetDeltaCount";
  EXPECT_EQ(got.packets, expected->packets) << "IN_PKTS vs ipfixDump packetDeltaCount";
}

TEST(AppOutputs, ReplayIpfixFileReexportsToNfcapd) {
  if (!have_command("ipfixDump")) {
    GTEST_SKIP() << "ipfixDump is not installed (Debian: libfixbuf-tools)";
  }
  if (!have_command("nfcapd") || !have_command("nfdump")) {
    GTEST_SKIP() << "nfcapd/nfdump are not installed (Debian: nfdump)";
  }
  TempDir dir("replay-nf");
  const auto expected = ipfixdump_totals(kIpfixFile, dir.path());
  ASSERT_TRUE(expected) << "ipfixDump failed on " << kIpfixFile;
  const std::string nf_dir = dir / "nfcapd";
  std::filesystem::create_directories(nf_dir);
  const auto port = free_udp_port();
  ChildProcess nfcapd(
      {"nfcapd", "-w", nf_dir, "-p", std::to_string(port), "-b", "127.0.0.1", "-B", "33554432"},
      dir / "nfcapd.out", dir / "nfcapd.out");
  ASSERT_TRUE(wait_for([&] { return udp_bound(port); }, 10s)) << nfcapd.out();

  auto replay = start_flowsec({"-i", kIpfixFile, "-n", "udp://127.0.0.1:" + std::to_string(port)},
                              dir.path(), "replay");
  EXPECT_EQ(replay->wait(30s), 0) << replay->log();
  std::this_thread::sleep_for(300ms);  // the last datagrams reach nfcapd
  EXPECT_TRUE(nfcapd.stop(SIGTERM, 10s)) << "nfcapd did not stop on SIGTERM";
  std::string summary;
  const auto nf = nfdump_totals(nf_dir, &summary, 30s);
  ASSERT_TRUE(nf) << summary;
  EXPECT_EQ(nf->records, expected->records) << summary << replay->log();
  EXPECT_EQ(nf->bytes, expected->bytes) << summary;
  EXPECT_EQ(nf->packets, expected->packets) << summary;
}

}  // namespace
}  // namespace flowsec::test::app
