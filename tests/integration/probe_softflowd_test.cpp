// Probe mode compared with another probe on the same input (SPEC §5, PEERS.md): softflowd
// 1.1.0 and flowsec each read the same pcap and export IPFIX over UDP, each to its own
// nfcapd; `nfdump -R DIR -I` totals are compared with each other and with tshark.
//
// What the peers showed on these captures (numbers checked below, computed from tshark):
//  - Packets: softflowd = flowsec = tshark's IP packet count.
//  - Bytes: flowsec counts IP bytes (IPv4 total length, IPv6 40 + payload length), which
//    is tshark's count. softflowd counts the captured frame minus the link header, so the
//    Ethernet padding of short frames is included: google_ssl.pcap has four 60-byte frames
//    carrying 44- or 40-byte IP packets (frames 2, 5, 25, 27: 2 + 6 + 6 + 6 = 20 bytes of
//    padding), so softflowd reports 8716 bytes where tshark and flowsec count 8696. The
//    other captures have no padding and all three agree (1974 and 28835 bytes).
//      tshark -r F -T fields -E occurrence=f -e frame.len -e ip.len -e ipv6.plen
//  - Flows: softflowd is bidirectional too (one flow per connection, like flowsec), and
//    like flowsec with nProbe's default template it exports one record per direction
//    that saw packets ("Flows exported: 9 (12 records)" for whatsapp_login_chat.pcap).
//    So the record counts in nfdump agree (2, 14, 12), and softflowd's flow count equals
//    flowsec's "F flows exported" (1, 7, 9): both equal the connections tshark sees.
// Peers: softflowd, nfcapd, nfdump, tshark; the test skips with a printed reason without
// them.
#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/probe_process.hpp"

namespace flowsec::test::probe {
namespace {

// Ethernet padding per capture: frame.len − 14 − IP bytes, summed (these captures have
// no VLAN tags; every frame is IP).
std::optional<std::uint64_t> ethernet_padding(const std::string& pcap) {
  const auto r = run_shell("tshark -r " + shell_quote(pcap) +
                           " -T fields -E occurrence=f -e frame.len -e ip.len -e ipv6.plen"
                           " -e vlan.id 2>/dev/null");
  if (!r.ok()) return std::nullopt;
  std::uint64_t padding = 0;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    const auto f = split(line, '\t');
    if (f.size() < 4 || !f[3].empty()) return std::nullopt;  // VLAN: not this formula
    const std::uint64_t ip = !f[1].empty() ? to_u64(f[1]) : 40 + to_u64(f[2]);
    padding += to_u64(f[0]) - 14 - ip;
  }
  return padding;
}

TEST(ProbeSoftflowd, SamePacketsBytesAndRecordsAsSoftflowd) {
  for (const char* tool : {"softflowd", "nfcapd", "nfdump", "tshark"}) {
    if (!have_command(tool)) GTEST_SKIP() << tool << " is not installed";
  }
  TempDir tmp("probe-softflowd");
  ASSERT_FALSE(tmp.path().empty());
  struct Run {
    std::string pcap;
    TsharkTruth truth;
    std::uint64_t padding = 0;
    std::string dir[2];  // 0: softflowd's nfcapd, 1: flowsec's
    std::uint16_t port[2] = {0, 0};
    std::unique_ptr<ChildProcess> nfcapd[2], softflowd, flowsec;
    std::string sf_out, fs_log;
  };
  std::vector<Run> runs;
  int n = 0;
  for (const char* in :
       {"flow/google_ssl.pcap", "flow/dns-google-nsid.pcapng", "probe/whatsapp_login_chat.pcap"}) {
    Run r;
    r.pcap = data_path(in);
    r.truth = tshark_truth(r.pcap);
    ASSERT_TRUE(r.truth.ok) << r.truth.error;
    const auto pad = ethernet_padding(r.pcap);
    ASSERT_TRUE(pad.has_value()) << r.pcap;
    r.padding = *pad;
    for (int side = 0; side < 2; ++side) {
      const std::string tag = std::to_string(n) + (side == 0 ? "sf" : "fs");
      r.dir[side] = tmp.subdir("nf" + tag);
      r.port[side] = free_udp_port();
      r.nfcapd[side] = std::make_unique<ChildProcess>(
          std::vector<std::string>{"nfcapd", "-w", r.dir[side], "-p", std::to_string(r.port[side]),
                                   "-b", "127.0.0.1", "-B", "8388608"},
          tmp / ("nfcapd" + tag + ".out"), tmp / ("nfcapd" + tag + ".err"));
      ASSERT_TRUE(wait_bound(*r.nfcapd[side], true, r.port[side])) << r.nfcapd[side]->err();
    }
    r.sf_out = tmp / ("softflowd" + std::to_string(n) + ".out");
    r.fs_log = tmp / ("flowsec" + std::to_string(n) + ".log");
    r.softflowd = std::make_unique<ChildProcess>(
        std::vector<std::string>{"softflowd", "-r", r.pcap, "-n",
                                 "127.0.0.1:" + std::to_string(r.port[0]), "-v", "10"},
        r.sf_out, r.sf_out + ".err");
    r.flowsec = std::make_unique<ChildProcess>(
        std::vector<std::string>{flowsec_binary(), "-i", r.pcap, "-n",
                                 "udp://127.0.0.1:" + std::to_string(r.port[1]), "-V", "10"},
        "", r.fs_log);
    runs.push_back(std::move(r));
    ++n;
  }
  for (auto& r : runs) {
    ASSERT_TRUE(r.softflowd->wait_ended(30s))
        << "softflowd -r " << r.pcap << " did not finish in 30 s";
    EXPECT_EQ(r.softflowd->exit_code(), 0) << r.softflowd->exit_description();
    ASSERT_TRUE(r.flowsec->wait_ended(60s)) << r.flowsec->command() << " did not finish in 60 s";
    EXPECT_EQ(r.flowsec->exit_code(), 0) << r.flowsec->exit_description() << "\n"
                                         << slurp_file(r.fs_log);
    for (auto& c : r.nfcapd) {
      const bool clean = c->stop(SIGTERM, 10s);
      EXPECT_TRUE(clean && c->exit_code() == 0) << "nfcapd: " << c->exit_description();
    }
  }
  for (const auto& r : runs) {
    SCOPED_TRACE(r.pcap);
    std::string raw_sf, raw_fs;
    const auto sf = nfdump_totals(r.dir[0], &raw_sf);
    const auto fs = nfdump_totals(r.dir[1], &raw_fs);
    ASSERT_TRUE(sf.has_value()) << raw_sf;
    ASSERT_TRUE(fs.has_value()) << raw_fs;
    // Packets: everyone agrees.
    EXPECT_EQ(sf->packets, r.truth.all.packets) << raw_sf;
    EXPECT_EQ(fs->packets, r.truth.all.packets) << raw_fs;
    EXPECT_EQ(fs->packets, sf->packets);
    // Bytes: flowsec = IP bytes; softflowd = IP bytes + Ethernet padding.
    EXPECT_EQ(fs->bytes, r.truth.all.bytes) << raw_fs;
    EXPECT_EQ(sf->bytes, r.truth.all.bytes + r.padding) << raw_sf;
    // Records: one per direction on both sides.
    EXPECT_EQ(sf->records, r.truth.directions.size()) << raw_sf;
    EXPECT_EQ(fs->records, sf->records);
    // Flows: softflowd's "Flows exported: N (M records)" and flowsec's log line.
    const std::string sf_text = slurp_file(r.sf_out) + slurp_file(r.sf_out + ".err");
    std::smatch m;
    static const std::regex kSf(R"(Flows exported: (\d+) \((\d+) records\))");
    ASSERT_TRUE(std::regex_search(sf_text, m, kSf)) << sf_text;
    EXPECT_EQ(std::stoull(m[1]), connection_count(r.truth)) << sf_text;
    EXPECT_EQ(std::stoull(m[2]), sf->records) << sf_text;
    const auto logged = probe_log_totals(slurp_file(r.fs_log));
    ASSERT_TRUE(logged.has_value()) << slurp_file(r.fs_log);
    EXPECT_EQ(logged->records, connection_count(r.truth));
  }
  // The one capture with padding shows the difference (guards the explanation above).
  EXPECT_EQ(runs[0].padding, 20u);
  EXPECT_EQ(runs[1].padding + runs[2].padding, 0u);
}

}  // namespace
}  // namespace flowsec::test::probe
