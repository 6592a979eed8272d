// The ClickHouse output wired into the real flowsec binary (SPEC §6 `--clickhouse`),
// against a real clickhouse-server (tests/support/clickhouse_server.hpp):
//  - collector: `flowsec -i none -3 tcp://... --clickhouse http://HOST:PORT/netflow?table=T`
//    fed softflowd's IPFIX stream over TCP; after SIGTERM (exit 0) the table holds one row
//    per flow record and the octet and packet sums ipfixDump reads in that stream, each
//    row with the exporter's address;
//  - probe: `flowsec -i PCAP --clickhouse ...` exits 0 and the rows' IN + OUT packets and
//    bytes equal the capture's IP packets and bytes as tshark counts them;
//  - start-up: a database that does not exist is refused with one line naming the option
//    and the server's reason.
// Peers: clickhouse-server, ipfixDump, tshark — skipped with a printed reason if absent.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "support/clickhouse_server.hpp"
#include "support/ipfix_dump.hpp"
#include "support/probe_process.hpp"

namespace flowsec::test::probe {
namespace {

const char* const kTrace = "probe/whatsapp_login_chat.pcap";
const char* const kStream = "ipfix/softflowd_1kxun_tcp.ipfix";

// One server for the suite (start-up takes a second or so).
class AppClickHouse : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ClickHouseServer::unavailable_reason().empty()) return;
    server_ = std::make_unique<ClickHouseServer>();
    if (!server_->start() || !server_->query("CREATE DATABASE IF NOT EXISTS netflow").ok()) {
      start_error_ = server_->log_tail();
      server_.reset();
    }
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override {
    if (const auto why = ClickHouseServer::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(server_) << "clickhouse-server did not start: " << start_error_;
  }
  static std::unique_ptr<ClickHouseServer> server_;
  static std::string start_error_;
};
std::unique_ptr<ClickHouseServer> AppClickHouse::server_;
std::string AppClickHouse::start_error_;

TEST_F(AppClickHouse, CollectorInsertsEveryFlowOfTheStream) {
  if (!have_command("ipfixDump")) GTEST_SKIP() << "ipfixDump (libfixbuf-tools) is not installed";
  TempDir tmp("app-clickhouse-collector");
  const std::string stream = data_path(kStream);
  const auto truth = ipfix_dump(stream, tmp.path());
  ASSERT_TRUE(truth.has_value());

  FlowsecProcess flowsec({"-i", "none", "-3", "tcp://127.0.0.1:0", "--clickhouse",
                          server_->sink_url("netflow", "collected", "", "")},
                         tmp.path());
  const std::uint16_t port = flowsec.listen_port();
  ASSERT_NE(port, 0) << flowsec.log();
  ASSERT_TRUE(send_file_over_tcp(stream, port));
  // Everything decoded before the stop: the collector has seen the whole stream.
  ASSERT_TRUE(wait_for(
      [&] {
        return server_->scalar("SELECT count() FROM netflow.collected") ==
               std::to_string(truth->flow_records());
      },
      30s, 100ms))
      << server_->scalar("SELECT count() FROM netflow.collected") << "\n"
      << flowsec.log();
  EXPECT_EQ(flowsec.stop(), 0) << flowsec.log();

  // Options records describe the exporter, not flows: they are not rows.
  EXPECT_EQ(server_->scalar("SELECT count(), sum(IN_BYTES), sum(IN_PKTS), "
                            "uniqExact(EXPORTER_ADDRESS), any(EXPORTER_ADDRESS) "
                            "FROM netflow.collected FORMAT TSV"),
            std::to_string(truth->flow_records()) + "\t" + std::to_string(truth->octets) + "\t" +
                std::to_string(truth->packets) + "\t1\t127.0.0.1");
}

TEST_F(AppClickHouse, ProbeInsertsTheCapture) {
  if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed";
  TempDir tmp("app-clickhouse-probe");
  const std::string pcap = data_path(kTrace);
  const TsharkTruth truth = tshark_truth(pcap);
  ASSERT_TRUE(truth.ok) << truth.error;
  ChildProcess probe({flowsec_binary(), "-i", pcap, "--clickhouse",
                      server_->sink_url("netflow", "probed", "", "")},
                     "", tmp / "probe.log");
  ASSERT_TRUE(probe.wait_ended(60s)) << slurp_file(tmp / "probe.log");
  EXPECT_EQ(probe.exit_code(), 0) << slurp_file(tmp / "probe.log");
  EXPECT_EQ(server_->scalar("SELECT sum(IN_PKTS) + sum(OUT_PKTS), sum(IN_BYTES) + sum(OUT_BYTES) "
                            "FROM netflow.probed FORMAT TSV"),
            std::to_string(truth.all.packets) + "\t" + std::to_string(truth.all.bytes));
}

TEST_F(AppClickHouse, MissingDatabaseIsAStartUpError) {
  TempDir tmp("app-clickhouse-error");
  FlowsecProcess flowsec({"-i", "none", "-3", "udp://127.0.0.1:0", "--clickhouse",
                          server_->sink_url("no_such_database", "flows", "", "")},
                         tmp.path());
  const auto code = flowsec.wait(30s);
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  const std::string log = flowsec.log();
  EXPECT_NE(log.find("--clickhouse"), std::string::npos) << log;
  EXPECT_NE(log.find("no_such_database"), std::string::npos) << log;
}

}  // namespace
}  // namespace flowsec::test::probe
