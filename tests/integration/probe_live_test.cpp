// Live probe end to end (SPEC §1 probe, §5 capture, §4 shutdown on SIGTERM): two network
// namespaces made for this run joined by a veth pair (as capture_live_test.cpp does).
// In namespace B run, each as the real binary via `ip netns exec`: a flowsec collector
// (`-i none -n none -3 udp://127.0.0.1:P -P DIR -D j`) and the flowsec probe capturing on
// B's veth end (`-i vethB -n udp://127.0.0.1:P`), so the export goes over B's loopback and
// never onto the captured link. tcpreplay sends whatsapp_login_chat.pcap from namespace A;
// then the probe gets SIGTERM, must flush every flow and exit 0.
// Checked: the packets exported (collector's JSON) equal the packets tcpreplay reports
// sent ("Successful packets: 93"); the bytes equal the capture's IP bytes as tshark counts
// them (28835: tshark -r F -T fields -E occurrence=f -e ip.len -e ipv6.plen, IPv6 = 40 +
// plen); every frame of that capture is IP, so nothing sent is legitimately uncounted.
// Needs root, iproute2, tcpreplay and tshark; skips with a printed reason otherwise.
// PEERS.md: replaying onto lo delivers nothing; veth MTU 65000.
//
// Also here, for the namespace: UDP export where the kernel refuses segmentation offload
// (namespace B's loopback MTU below the message size), so the sender's fallback to one
// datagram per message runs (transport/detail/udp.cpp).
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "support/pcap_writer.hpp"
#include "support/probe_process.hpp"

namespace flowsec::test::probe {
namespace {

const char* const kTrace = "probe/whatsapp_login_chat.pcap";

class ProbeLive : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces and raw sockets";
    if (!run_shell("ip -V").ok()) GTEST_SKIP() << "iproute2 (ip) not found";
    if (!run_shell("tcpreplay -V").ok()) GTEST_SKIP() << "tcpreplay not found";
    if (!have_command("tshark")) GTEST_SKIP() << "tshark not found";
    ASSERT_FALSE(tmp_.path().empty());
    const std::string pid = std::to_string(::getpid());
    ns_a_ = "flowsec_plive_" + pid + "_a";
    ns_b_ = "flowsec_plive_" + pid + "_b";
    veth_a_ = "fsp" + pid + "a";
    veth_b_ = "fsp" + pid + "b";
    auto made = run_shell("ip netns add " + ns_a_);
    if (!made.ok()) GTEST_SKIP() << "cannot create a network namespace: " << made.out;
    created_a_ = true;
    made = run_shell("ip netns add " + ns_b_);
    if (!made.ok()) GTEST_SKIP() << "cannot create a network namespace: " << made.out;
    created_b_ = true;
    for (const auto& ns : {ns_a_, ns_b_}) {
      // No IPv6 (no router solicitations or DAD on the wire): the probe sees only the
      // replayed packets.
      const auto r = run_shell("ip netns exec " + ns +
                               " sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
                               " net.ipv6.conf.default.disable_ipv6=1");
      ASSERT_TRUE(r.ok()) << r.out;
    }
    const std::string steps[] = {
        "ip -n " + ns_a_ + " link add " + veth_a_ + " type veth peer name " + veth_b_ + " netns " +
            ns_b_,
        "ip -n " + ns_a_ + " link set " + veth_a_ + " mtu 65000 up",
        "ip -n " + ns_b_ + " link set " + veth_b_ + " mtu 65000 up",
        "ip -n " + ns_b_ + " link set lo up",
    };
    for (const auto& step : steps) {
      const auto r = run_shell(step);
      ASSERT_TRUE(r.ok()) << step << ": " << r.out;
    }
  }

  void TearDown() override {
    // Children first (they live in ns_b_), then the namespaces (and with them the veths).
    probe_.reset();
    collector_.reset();
    if (created_a_) run_shell("ip netns del " + ns_a_);
    if (created_b_) run_shell("ip netns del " + ns_b_);
  }

  std::vector<std::string> in_b(std::vector<std::string> argv) const {
    std::vector<std::string> full{"ip", "netns", "exec", ns_b_};  // ip execs: same pid
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  }

  // A flowsec collector in namespace B: UDP on `port`, JSON lines under `dir`. True once
  // it listens.
  bool start_collector(std::uint16_t port, const std::string& dir, const std::string& log) {
    collector_ = std::make_unique<ChildProcess>(
        in_b({flowsec_binary(), "-i", "none", "-n", "none", "-3",
              "udp://127.0.0.1:" + std::to_string(port), "-P", dir, "-D", "j"}),
        "", log);
    return wait_bound(*collector_, true, port, 30s);
  }

  TempDir tmp_{"probe-live"};
  std::string ns_a_, ns_b_, veth_a_, veth_b_;
  bool created_a_ = false, created_b_ = false;
  std::unique_ptr<ChildProcess> collector_, probe_;
};

TEST_F(ProbeLive, ExportedPacketsEqualWhatTcpreplaySent) {
  const std::string pcap = data_path(kTrace);
  const TsharkTruth truth = tshark_truth(pcap);
  ASSERT_TRUE(truth.ok) << truth.error;
  ASSERT_EQ(truth.non_ip, 0u) << "the trace must be all IP for this comparison";

  const std::uint16_t port = 2055;  // namespace B is empty: any port is free there
  const std::string dir = tmp_.subdir("collected");
  const std::string collector_log = tmp_ / "collector.log";
  const std::string probe_log = tmp_ / "probe.log";
  ASSERT_TRUE(start_collector(port, dir, collector_log)) << slurp_file(collector_log);

  probe_ = std::make_unique<ChildProcess>(
      in_b({flowsec_binary(), "-i", veth_b_, "-n", "udp://127.0.0.1:" + std::to_string(port)}), "",
      probe_log);
  // The capture is open once the probe says so (and the exporter's socket exists).
  ASSERT_TRUE(wait_for(
      [&] {
        return !probe_->running() ||
               slurp_file(probe_log).find("capturing from") != std::string::npos;
      },
      30s))
      << slurp_file(probe_log);
  ASSERT_TRUE(probe_->running()) << slurp_file(probe_log);

  const auto replay =
      run_shell("ip netns exec " + ns_a_ + " tcpreplay -q -t -i " + veth_a_ + " " + pcap);
  ASSERT_TRUE(replay.ok()) << replay.out;
  std::smatch m;
  static const std::regex kSuccessful(R"(Successful packets:\s+(\d+))");
  ASSERT_TRUE(std::regex_search(replay.out, m, kSuccessful)) << replay.out;
  const std::uint64_t sent = std::stoull(m[1]);
  EXPECT_EQ(sent, truth.all.packets) << replay.out;

  // Let the ring hand over the last block (block timeout), then stop the probe.
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(probe_->stop(SIGTERM, 20s)) << "probe ignored SIGTERM\n" << slurp_file(probe_log);
  EXPECT_EQ(probe_->exit_code(), 0) << probe_->exit_description() << "\n" << slurp_file(probe_log);
  std::this_thread::sleep_for(300ms);  // the collector's 100 ms flush
  EXPECT_TRUE(collector_->stop(SIGTERM, 10s));
  EXPECT_EQ(collector_->exit_code(), 0)
      << collector_->exit_description() << slurp_file(collector_log);

  const Totals got = json_totals(dir);
  EXPECT_EQ(got.packets, sent) << slurp_file(probe_log);
  EXPECT_EQ(got.bytes, truth.all.bytes);
  const auto said = probe_log_totals(slurp_file(probe_log));
  ASSERT_TRUE(said.has_value()) << slurp_file(probe_log);
  EXPECT_EQ(said->packets, sent);
  EXPECT_EQ(said->bytes, truth.all.bytes);
}

// The exporter sends runs of equal-sized messages with UDP_SEGMENT. With B's loopback MTU
// at 1280 and the probe's 1388-byte messages the kernel refuses that (EINVAL: a segment
// larger than the MTU); the sender must say so, send each message as its own datagram
// (IP-fragmented, as any datagram above the MTU) and lose nothing.
TEST_F(ProbeLive, UdpExportWhereSegmentationIsRefusedLosesNothing) {
  const auto mtu = run_shell("ip -n " + ns_b_ + " link set lo mtu 1280");
  ASSERT_TRUE(mtu.ok()) << mtu.out;
  constexpr std::uint32_t kFlows = 2000;  // one UDP packet each: ~70 messages of one size
  const std::string pcap = tmp_ / "flows.pcap";
  {
    PcapWriter w(pcap);
    const std::vector<std::byte> payload(100, std::byte{0x5a});
    for (std::uint32_t i = 0; i < kFlows; ++i) {
      w.write_udp(payload, static_cast<std::uint16_t>(10000 + i));
    }
  }
  const std::uint16_t port = 2055;
  const std::string dir = tmp_.subdir("collected-mtu");
  const std::string collector_log = tmp_ / "collector-mtu.log";
  const std::string probe_log = tmp_ / "probe-mtu.log";
  ASSERT_TRUE(start_collector(port, dir, collector_log)) << slurp_file(collector_log);
  probe_ =
      std::make_unique<ChildProcess>(in_b({flowsec_binary(), "-i", pcap, "-n",
                                           "udp://127.0.0.1:" + std::to_string(port), "--no-l7"}),
                                     "", probe_log);
  ASSERT_TRUE(wait_for([&] { return !probe_->running(); }, 60s)) << slurp_file(probe_log);
  EXPECT_EQ(probe_->exit_code(), 0) << probe_->exit_description() << "\n" << slurp_file(probe_log);
  const std::string said = slurp_file(probe_log);
  EXPECT_NE(said.find("UDP segmentation offload refused"), std::string::npos) << said;
  std::this_thread::sleep_for(300ms);  // the collector's 100 ms flush
  EXPECT_TRUE(collector_->stop(SIGTERM, 10s));
  EXPECT_EQ(collector_->exit_code(), 0)
      << collector_->exit_description() << slurp_file(collector_log);

  const Totals got = json_totals(dir);
  EXPECT_EQ(got.records, kFlows) << said;
  EXPECT_EQ(got.packets, kFlows);
  EXPECT_EQ(got.bytes, kFlows * (20 + 8 + 100));
}

}  // namespace
}  // namespace flowsec::test::probe
