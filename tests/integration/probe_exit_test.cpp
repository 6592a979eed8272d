// Exit behaviour of probe mode on a file (SPEC §1 "exits 0 when all flows are delivered",
// §4 shutdown, §5 progress), the real flowsec binary against a real flowsec collector
// over TCP:
//  - `flowsec -i F.pcap -n tcp://127.0.0.1:P` with a listening collector exits 0, and the
//    collector's JSON records hold the capture's IP packets and bytes as tshark counts
//    them (whatsapp_login_chat.pcap: 93 packets, 28835 bytes), once per run;
//  - run on a pseudo-terminal (`script -qec CMD /dev/null`), stderr shows the progress
//    line ("\r93 packets 100.0%  0 active flows  9 flows exported"); with stderr a file
//    there is none (no carriage return, no "active flows");
//  - with nothing listening, the probe does not claim success: after --shutdown-timeout
//    it exits 1 and says what was not delivered;
//  - a file whose flows all end at once, through an output queue far smaller than them
//    (--output-queue-size 1024), loses none: the reader waits for the queue (a live
//    capture would drop and count instead).
// Peers: tshark (expected totals), script (util-linux) for the pty part — skipped with a
// printed reason if absent.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/pcap_writer.hpp"
#include "support/probe_process.hpp"

namespace flowsec::test::probe {
namespace {

const char* const kTrace = "probe/whatsapp_login_chat.pcap";

// A flowsec collector on TCP writing JSON lines into tmp/collected (log: tmp/collector.log).
struct JsonCollector {
  std::uint16_t port = free_tcp_port();
  std::string dir;
  ChildProcess process;
  explicit JsonCollector(TempDir& tmp)
      : dir(tmp.subdir("collected")),
        process({flowsec_binary(), "-i", "none", "-n", "none", "-3", url(), "-P", dir, "-D", "j"},
                "", tmp / "collector.log") {}
  [[nodiscard]] std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port); }
  bool listening() { return wait_bound(process, false, port, 30s); }
};

TEST(ProbeExit, TcpDeliveryExitCodesAndProgressLine) {
  if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed";
  TempDir tmp("probe-exit");
  ASSERT_FALSE(tmp.path().empty());
  const std::string pcap = data_path(kTrace);
  const TsharkTruth truth = tshark_truth(pcap);
  ASSERT_TRUE(truth.ok) << truth.error;

  JsonCollector c(tmp);
  ASSERT_TRUE(c.listening()) << slurp_file(tmp / "collector.log");
  ChildProcess& collector = c.process;
  const std::string& dir = c.dir;
  const std::string url = c.url();
  // Nothing listens on `dead` (a port just released): delivery must fail, visibly.
  const std::uint16_t dead = free_tcp_port();
  ChildProcess plain({flowsec_binary(), "-i", pcap, "-n", url}, tmp / "plain.out",
                     tmp / "plain.err");
  ChildProcess undelivered({flowsec_binary(), "-i", pcap, "-n",
                            "tcp://127.0.0.1:" + std::to_string(dead), "--shutdown-timeout", "1"},
                           "", tmp / "undelivered.err");
  const bool have_script = have_command("script");
  std::unique_ptr<ChildProcess> on_pty;
  if (have_script) {
    // script -e returns the command's exit status; the pty's output goes to stdout.
    on_pty = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            "script", "-qec",
            shell_quote(flowsec_binary()) + " -i " + shell_quote(pcap) + " -n " + url, "/dev/null"},
        tmp / "pty.out", tmp / "pty.err");
  }

  ASSERT_TRUE(plain.wait_ended(60s)) << "still running after 60 s: " << plain.command();
  EXPECT_EQ(plain.exit_code(), 0) << plain.exit_description() << "\n" << plain.err();
  const std::string plain_err = plain.err();
  EXPECT_EQ(plain_err.find('\r'), std::string::npos) << "progress line without a terminal";
  EXPECT_EQ(plain_err.find("active flows"), std::string::npos) << plain_err;
  EXPECT_EQ(plain.out(), "");

  ASSERT_TRUE(undelivered.wait_ended(60s)) << "still running after 60 s: " << undelivered.command();
  EXPECT_EQ(undelivered.exit_code(), 1) << undelivered.exit_description() << "\n"
                                        << undelivered.err();
  EXPECT_NE(undelivered.err().find("not delivered"), std::string::npos) << undelivered.err();

  std::uint64_t runs = 1;
  if (on_pty) {
    ASSERT_TRUE(on_pty->wait_ended(60s)) << "still running after 60 s: " << on_pty->command();
    EXPECT_EQ(on_pty->exit_code(), 0) << on_pty->exit_description() << "\n" << on_pty->out();
    const std::string shown = on_pty->out();
    const std::string final_line = "\r" + std::to_string(truth.all.packets) +
                                   " packets 100.0%  0 active flows  " +
                                   std::to_string(connection_count(truth)) + " flows exported";
    EXPECT_NE(shown.find(final_line), std::string::npos) << shown;
    ++runs;
  }
  std::this_thread::sleep_for(300ms);  // the collector's 100 ms flush
  EXPECT_TRUE(collector.stop(SIGTERM, 10s));
  EXPECT_EQ(collector.exit_code(), 0)
      << collector.exit_description() << slurp_file(tmp / "collector.log");
  const Totals got = json_totals(dir);
  EXPECT_EQ(got.packets, runs * truth.all.packets);
  EXPECT_EQ(got.bytes, runs * truth.all.bytes);
  EXPECT_EQ(got.records, runs * truth.directions.size());
  if (!have_script) GTEST_SKIP() << "script (util-linux) not found: progress line not checked";
}

TEST(ProbeExit, AFileNeverLosesFlowsToAFullOutputQueue) {
  TempDir tmp("probe-queue");
  ASSERT_FALSE(tmp.path().empty());
  // 20000 one-packet UDP flows (one per destination port), all ended by the end of the
  // file at once: 20 batches of 1024 records for a queue that holds one.
  constexpr int kFlows = 20000;
  const std::string pcap = tmp / "many.pcap";
  {
    PcapWriter w(pcap);
    const std::vector<std::byte> payload(32, std::byte{0x5a});
    for (int i = 1; i <= kFlows; ++i) w.write_udp(payload, static_cast<std::uint16_t>(i));
  }
  JsonCollector c(tmp);
  ASSERT_TRUE(c.listening()) << slurp_file(tmp / "collector.log");
  ChildProcess probe(
      {flowsec_binary(), "-i", pcap, "-n", c.url(), "--no-l7", "--output-queue-size", "1024"}, "",
      tmp / "probe.err");
  ASSERT_TRUE(probe.wait_ended(60s)) << "still running after 60 s: " << probe.command();
  EXPECT_EQ(probe.exit_code(), 0) << probe.exit_description() << "\n" << probe.err();
  EXPECT_EQ(probe.err().find("dropped"), std::string::npos) << probe.err();
  std::this_thread::sleep_for(300ms);  // the collector's 100 ms flush
  EXPECT_TRUE(c.process.stop(SIGTERM, 10s));
  const Totals got = json_totals(c.dir);
  EXPECT_EQ(got.records, std::uint64_t{kFlows});
  EXPECT_EQ(got.packets, std::uint64_t{kFlows});
}

// A start-up error (here an unknown -T field) ends the process with its reason, at once:
// the export opened before it has nothing to deliver, so neither the shutdown deadline
// (30 s here) nor an undelivered-records report may follow. Before the fix both did, for
// UDP as for TCP outputs.
TEST(ProbeExit, AStartUpErrorExitsAtOnceWithItsReason) {
  TempDir tmp("probe-start-error");
  ASSERT_FALSE(tmp.path().empty());
  const std::string pcap = data_path(kTrace);
  const std::uint16_t dead = free_tcp_port();
  for (const std::string& url :
       {"udp://127.0.0.1:" + std::to_string(dead), "tcp://127.0.0.1:" + std::to_string(dead)}) {
    ChildProcess probe({flowsec_binary(), "-i", pcap, "-n", url, "--shutdown-timeout", "30", "-T",
                        "%IN_BYTES %NO_SUCH_FIELD"},
                       "", tmp / "probe.err");
    ASSERT_TRUE(probe.wait_ended(15s)) << url << ": still running after 15 s";
    EXPECT_EQ(probe.exit_code(), 1) << url << ": " << probe.exit_description();
    const std::string err = probe.err();
    EXPECT_NE(err.find("option -T: unknown template field 'NO_SUCH_FIELD'"), std::string::npos)
        << url << ": " << err;
    EXPECT_EQ(err.find("shutdown deadline"), std::string::npos) << url << ": " << err;
    EXPECT_EQ(err.find("not delivered"), std::string::npos) << url << ": " << err;
  }
}

}  // namespace
}  // namespace flowsec::test::probe
