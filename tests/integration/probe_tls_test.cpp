// TLS end to end, flowsec probe → flowsec collector, both the real binary (SPEC §3
// "Exporter side", §4 shutdown, §6 outputs):
//  1. collector with the CA-signed server certificate (server.pem: localhost, 127.0.0.1),
//     probe `-n tls://localhost:P --tls-ca ca.pem`: the probe exits 0 and the collector's
//     JSON records add up to the capture's IP packets and bytes as tshark counts them
//     (tests/support/probe_process.hpp tshark_truth(); whatsapp_login_chat.pcap: 93
//     packets, 28835 bytes, 12 directions).
//  2. collector with a self-signed certificate, probe with --tls-ca ca.pem
//     --shutdown-timeout 2: the probe refuses the certificate, its log names
//     "self-signed", nothing reaches the collector, and the probe gives up after the
//     shutdown timeout with exit status 1 and a line saying what was not delivered
//     (behaviour observed: it keeps retrying with backoff until shutdown, then
//     "shutdown timed out, 1 messages not delivered").
//  3. the same collector, probe with --tls-insecure: accepted (with the start-up warning),
//     exit 0, and the collector's totals now equal the capture's exactly once.
// Peers: tshark for the expected totals; certificates from scripts/make-test-certs.sh.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/probe_process.hpp"

namespace flowsec::test::probe {
namespace {

const char* const kTrace = "probe/whatsapp_login_chat.pcap";

class ProbeTls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(cert_path("ca.pem"))) {
      GTEST_SKIP() << "test certificates missing in " FLOWSEC_TEST_CERTS
                      " (run ctest's make_test_certs or scripts/make-test-certs.sh)";
    }
    if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed";
    ASSERT_FALSE(tmp_.path().empty());
    truth_ = tshark_truth(data_path(kTrace));
    ASSERT_TRUE(truth_.ok) << truth_.error;
  }

  // flowsec collector on tls://127.0.0.1:PORT writing JSON lines into `dir`.
  std::unique_ptr<ChildProcess> collector(const std::string& name, const std::string& cert,
                                          std::uint16_t& port, std::string& dir) {
    port = free_tcp_port();
    dir = tmp_.subdir(name);
    auto c = std::make_unique<ChildProcess>(
        std::vector<std::string>{flowsec_binary(), "-i", "none", "-n", "none", "-3",
                                 "tls://127.0.0.1:" + std::to_string(port), "--tls-cert",
                                 cert_path(cert + ".pem"), "--tls-priv-key",
                                 cert_path(cert + ".key"), "-P", dir, "-D", "j"},
        "", tmp_ / (name + ".log"));
    return c;
  }

  std::unique_ptr<ChildProcess> probe(const std::string& name, std::uint16_t port,
                                      std::vector<std::string> extra) {
    std::vector<std::string> argv{flowsec_binary(), "-i", data_path(kTrace), "-n",
                                  "tls://localhost:" + std::to_string(port)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<ChildProcess>(argv, "", tmp_ / (name + ".log"));
  }

  std::string log(const std::string& name) const { return slurp_file(tmp_ / (name + ".log")); }

  // SIGTERM to the collector `name`: it must exit 0 within 10 s.
  void stop_collector(ChildProcess& c, const std::string& name) const {
    EXPECT_TRUE(c.stop(SIGTERM, 10s)) << name;
    EXPECT_EQ(c.exit_code(), 0) << c.exit_description() << log(name);
  }

  TempDir tmp_{"probe-tls"};
  TsharkTruth truth_;
};

TEST_F(ProbeTls, VerifiedRefusedAndInsecure) {
  std::uint16_t good_port = 0, bad_port = 0;
  std::string good_dir, bad_dir;
  auto good = collector("collector-ca", "server", good_port, good_dir);
  auto bad = collector("collector-self", "self-signed", bad_port, bad_dir);
  ASSERT_TRUE(wait_bound(*good, false, good_port, 30s)) << log("collector-ca");
  ASSERT_TRUE(wait_bound(*bad, false, bad_port, 30s)) << log("collector-self");

  // 1 and 2 in parallel.
  auto verified = probe("probe-verified", good_port, {"--tls-ca", cert_path("ca.pem")});
  const auto refused_started = Clock::now();
  auto refused = probe("probe-refused", bad_port,
                       {"--tls-ca", cert_path("ca.pem"), "--shutdown-timeout", "2"});

  ASSERT_TRUE(verified->wait_ended(60s)) << "probe with a CA-signed collector still running\n"
                                         << log("probe-verified");
  EXPECT_EQ(verified->exit_code(), 0) << verified->exit_description() << "\n"
                                      << log("probe-verified");

  ASSERT_TRUE(refused->wait_ended(60s))
      << "probe facing a self-signed certificate did not give up\n"
      << log("probe-refused");
  const auto refused_took = Clock::now() - refused_started;
  const std::string refused_log = log("probe-refused");
  EXPECT_EQ(refused->exit_code(), 1) << refused->exit_description() << "\n" << refused_log;
  EXPECT_NE(refused_log.find("self-signed"), std::string::npos) << refused_log;
  EXPECT_NE(refused_log.find("not delivered"), std::string::npos) << refused_log;
  // The shutdown timeout (2 s) bounds the wait; start-up under sanitizers takes a few s.
  EXPECT_LT(refused_took, 30s);
  // Give the refused collector a moment: anything delivered would be written by now.
  std::this_thread::sleep_for(300ms);
  stop_collector(*bad, "collector-self");
  EXPECT_EQ(json_totals(bad_dir).records, 0u) << "a refused exporter delivered records";

  stop_collector(*good, "collector-ca");
  const Totals got = json_totals(good_dir);
  EXPECT_EQ(got.packets, truth_.all.packets);
  EXPECT_EQ(got.bytes, truth_.all.bytes);
  EXPECT_EQ(got.records, truth_.directions.size());
  const auto probe_said = probe_log_totals(log("probe-verified"));
  ASSERT_TRUE(probe_said.has_value()) << log("probe-verified");
  EXPECT_EQ(probe_said->packets, got.packets);
  EXPECT_EQ(probe_said->bytes, got.bytes);

  // 3: the self-signed collector again (fresh output dir), this time with --tls-insecure.
  std::uint16_t again_port = 0;
  std::string again_dir;
  auto again = collector("collector-self2", "self-signed", again_port, again_dir);
  ASSERT_TRUE(wait_bound(*again, false, again_port, 30s)) << log("collector-self2");
  auto insecure = probe("probe-insecure", again_port, {"--tls-insecure"});
  ASSERT_TRUE(insecure->wait_ended(60s)) << log("probe-insecure");
  EXPECT_EQ(insecure->exit_code(), 0) << insecure->exit_description() << "\n"
                                      << log("probe-insecure");
  EXPECT_NE(log("probe-insecure").find("--tls-insecure"), std::string::npos)
      << "no start-up warning";
  stop_collector(*again, "collector-self2");
  const Totals insecure_got = json_totals(again_dir);
  EXPECT_EQ(insecure_got.packets, truth_.all.packets);
  EXPECT_EQ(insecure_got.bytes, truth_.all.bytes);
  EXPECT_EQ(insecure_got.records, truth_.directions.size());
}

}  // namespace
}  // namespace flowsec::test::probe
