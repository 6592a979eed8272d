// Integration: flowsec as a collector of a real exporter, checked against a real
// collector. softflowd 1.1.0 (Debian) reads pcaps and exports NetFlow v5, v9 and IPFIX
// over UDP to a socket of this test, which records its datagrams; the identical
// datagrams are then sent to the flowsec binary (child process, -P DIR -D j) and to
// nfcapd 1.7.1. Expected: the number of flows, total packets and total bytes flowsec
// writes equal what `nfdump -R DIR -I` prints for nfcapd's file, and the number of
// flow records equals what softflowd reports exporting ("Flows exported: F (R records)
// in P packets": R records, P datagrams). softflowd's v9/IPFIX options record (its
// sampling information) is not a flow: nfdump does not count it, and the flow count
// here is of flowsec records carrying IN_PKTS (flowsec writes the options record too:
// exactly one per softflowd run for v9 and IPFIX, none for v5).
//
// Recording once and replaying is the robust way to give both collectors the SAME
// export: running softflowd twice would give two exports (times, sequence numbers).
// Inputs: tests/data/capture/tcpreplay_test.pcap (IPv4 and IPv6, TCP/UDP/ICMP, some
// MPLS softflowd ignores) and tests/data/flow/dns-google-nsid.pcapng (DNS over IPv4
// and IPv6). v5 carries IPv4 only; v9 and IPFIX carry both.
// Skips with a printed reason when softflowd, nfcapd or nfdump is missing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <regex>
#include <string>
#include <vector>

#include "support/flowsec_process.hpp"
#include "support/transport_harness.hpp"

namespace flowsec::test {
namespace {

using namespace std::chrono_literals;

const std::vector<std::string> kPcaps = {
    std::string(FLOWSEC_TEST_DATA) + "/capture/tcpreplay_test.pcap",
    std::string(FLOWSEC_TEST_DATA) + "/flow/dns-google-nsid.pcapng",
};

struct Export {
  std::vector<std::vector<std::byte>> datagrams;
  std::uint64_t records = 0;             // softflowd: "(R records)"
  std::uint64_t datagrams_reported = 0;  // softflowd: "in P packets"
};

// softflowd -r PCAP -n 127.0.0.1:PORT -v VERSION, recorded by a UdpReceiver.
// (Not -c: softflowd hangs before reading when -r and -c are combined; -d keeps it in
// the foreground so it exits at the end of the file after exporting every flow.)
::testing::AssertionResult record_softflowd(int version, const TempDir& dir, Export& out) {
  UdpReceiver sink;
  if (sink.port() == 0) return ::testing::AssertionFailure() << "cannot bind a UDP socket";
  for (const auto& pcap : kPcaps) {
    const auto r =
        run_command({"softflowd", "-r", pcap, "-n", "127.0.0.1:" + std::to_string(sink.port()),
                     "-v", std::to_string(version), "-p", dir / "softflowd.pid", "-d"},
                    dir.path(), 20s);
    if (r.exit_code != 0) {
      return ::testing::AssertionFailure() << "softflowd on " << pcap << " failed: " << r.err;
    }
    const std::string text = r.out + r.err;
    static const std::regex exported(
        R"(Flows exported: \d+ \((\d+) records\) in (\d+) packets \(0 failures\))");
    std::smatch m;
    if (!std::regex_search(text, m, exported)) {
      return ::testing::AssertionFailure()
             << "no loss-free export summary from softflowd: " << text;
    }
    out.records += std::stoull(m[1].str());
    out.datagrams_reported += std::stoull(m[2].str());
    // softflowd has exited: what it sent is in the socket's queue already.
    auto got = sink.drain(300ms);
    out.datagrams.insert(out.datagrams.end(), got.begin(), got.end());
  }
  return ::testing::AssertionSuccess();
}

class CollectorSoftflowd : public ::testing::TestWithParam<int> {};

TEST_P(CollectorSoftflowd, FlowsPacketsAndBytesEqualNfdumpOnTheSameExport) {
  for (const char* peer : {"softflowd", "nfcapd", "nfdump"}) {
    if (!have_command(peer))
      GTEST_SKIP() << peer << " is not installed (Debian: softflowd, nfdump)";
  }
  const int version = GetParam();
  TempDir dir("softflowd-v" + std::to_string(version));

  Export exp;
  ASSERT_TRUE(record_softflowd(version, dir, exp));
  ASSERT_EQ(exp.datagrams.size(), exp.datagrams_reported)
      << "datagrams recorded vs softflowd's count";
  ASSERT_GT(exp.records, 0u);

  // nfcapd (the reference collector) and flowsec, both on loopback.
  const std::string nf_dir = dir / "nfcapd";
  std::filesystem::create_directories(nf_dir);
  const std::uint16_t nf_port = free_udp_port();
  ChildProcess nfcapd(
      {"nfcapd", "-w", nf_dir, "-p", std::to_string(nf_port), "-b", "127.0.0.1", "-B", "33554432"},
      dir / "nfcapd.out", dir / "nfcapd.err");
  ASSERT_TRUE(eventually([&] { return udp_bound(nf_port); }, 10000ms)) << nfcapd.err();

  const std::string out_dir = dir / "flowsec";
  const std::uint16_t metrics_port = free_port();
  FlowsecProcess flowsec(
      {"-i", "none", "-n", "none", "-3", "udp://127.0.0.1:0", "-P", out_dir, "-D", "j", "-F", "60",
       "--metrics", "127.0.0.1:" + std::to_string(metrics_port)},
      dir.path());
  const auto ports = flowsec.listen_ports(1);
  ASSERT_EQ(ports.size(), 1u) << flowsec.log();

  UdpSender to_nfcapd;
  UdpSender to_flowsec;
  for (const auto& d : exp.datagrams) {
    ASSERT_TRUE(to_nfcapd.send(d, nf_port));
    ASSERT_TRUE(to_flowsec.send(d, ports[0]));
  }

  // nfcapd has read everything once its socket queue is empty; SIGTERM makes it
  // finish the packet in hand, close its file and exit 0.
  ASSERT_TRUE(eventually([&] { return udp_rx_queue(nf_port) == 0u; }, 10000ms));
  ASSERT_EQ(nfcapd.terminate(10s), 0) << nfcapd.exit_description() << "\n" << nfcapd.err();
  const auto info = run_command({"nfdump", "-R", nf_dir, "-I"}, dir.path(), 20s);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto nf = parse_nfdump_info(info.out);
  ASSERT_TRUE(nf) << info.out;

  // flowsec has received every datagram (its own counter, used only to know when to
  // stop it), then SIGTERM: it flushes and renames its file, and exits 0.
  const double sent = static_cast<double>(exp.datagrams.size());
  ASSERT_TRUE(eventually(
      [&] {
        const auto m = http_get(metrics_port);
        return m && metric_sum(*m, "flowsec_messages_received_total") == sent;
      },
      10000ms))
      << flowsec.log();
  const auto code = flowsec.terminate();
  ASSERT_EQ(code, 0) << flowsec.exit_description() << "\n" << flowsec.log();
  EXPECT_EQ(files_ending_in(out_dir, ".tmp"), 0u);

  std::size_t bad = 0;
  const auto records = json_records(out_dir, &bad);
  EXPECT_EQ(bad, 0u);
  Totals fs;
  for (const auto& r : records) {
    const auto pkts = r.find("IN_PKTS");
    if (pkts == r.end()) continue;  // softflowd's options record (sampling), not a flow
    ++fs.records;
    fs.packets += std::stoull(pkts->second);
    fs.bytes += std::stoull(r.at("IN_BYTES"));
    EXPECT_EQ(r.count("EXPORTER_IPV4_ADDRESS") ? r.at("EXPORTER_IPV4_ADDRESS") : "", "127.0.0.1");
  }
  EXPECT_EQ(fs.records, nf->records) << "flows: flowsec vs nfdump -I";
  EXPECT_EQ(fs.packets, nf->packets) << "packets: flowsec vs nfdump -I";
  EXPECT_EQ(fs.bytes, nf->bytes) << "bytes: flowsec vs nfdump -I";
  EXPECT_EQ(fs.records, exp.records) << "flows: flowsec vs softflowd's own count";
  // v5 has no options; softflowd's v9/IPFIX export sends one options record (its
  // sampling/interface information) per run, i.e. one per pcap.
  const std::size_t options = records.size() - fs.records;
  EXPECT_EQ(options, version == 5 ? 0u : kPcaps.size());
}

INSTANTIATE_TEST_SUITE_P(Versions, CollectorSoftflowd, ::testing::Values(5, 9, 10),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == 10 ? std::string("IPFIX")
                                                : "NetFlowV" + std::to_string(p.param);
                         });

}  // namespace
}  // namespace flowsec::test
