// Integration: the ClickHouse output (sinks/clickhouse_sink.hpp, SPEC §6 "--clickhouse",
// SPEC §9 "output down (ClickHouse stopped)") against a real clickhouse-server (Debian
// 12: 18.16) started privately on loopback (support/clickhouse_server.hpp), once for the
// suite. Expected values come from libfixbuf's ipfixDump reading the same IPFIX files
// (tests/data/ipfix, see tests/data/README.md), never from flowsec:
//  - every flow of ipfixcol2's example file (3979 records, IPv4 and IPv6) is inserted
//    into a table the sink creates: count(), sum(IN_BYTES), sum(IN_PKTS) equal ipfixDump's
//    record count and octet/packet sums; sampled records have ipfixDump's addresses
//    (IPv4NumToString / IPv6NumToString), ports, protocol and times;
//  - softflowd's file (NetFlow-style uptimes over IPFIX with systemInitTimeMilliseconds
//    in an options record): the options record is not a row, FLOW_START_MILLISECONDS =
//    ipfixDump's systemInitTimeMilliseconds + flowStartSysUpTime, and the exporter
//    columns (address, TLS identity with a TAB in it) read back as written;
//  - an existing table with an extra column is reused; one lacking a column is refused
//    by open() with a line naming the column;
//  - server stopped after some batches, more written while it is down (pending, none
//    dropped), server started again: after close() the totals are the file's;
//  - max_pending_rows smaller than what is written while the server is down: exactly
//    the excess is counted in records_failed, and the rows kept are the first ones (their
//    ipfixDump octet sum is in the table);
//  - a wrong database and bad credentials fail open() with one clear line; a good user
//    with a percent-encoded password works; an unreachable server is not an open() error
//    and close() counts what it could not insert.
// Skips with a printed reason when clickhouse-server or ipfixDump is missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "ipfix/ipfix_file.hpp"
#include "sinks/clickhouse_sink.hpp"
#include "support/clickhouse_server.hpp"
#include "support/ipfix_dump.hpp"

namespace flowsec::test {
namespace {

using namespace std::chrono_literals;
using sinks::BatchPtr;
using sinks::ClickHouseSink;
using sinks::ClickHouseSinkOptions;

const std::string kIpfixcol2 = "ipfix/ipfixcol2_example_flows.ipfix";
const std::string kSoftflowd = "ipfix/softflowd_1kxun_tcp.ipfix";
const std::string kDatabase = "netflow";
const ClickHouseUser kUser{"flowsec", "s3cr:t@x"};
const std::string kUserUrlPassword = "s3cr%3At%40x";

// The records of an IPFIX file in batches of at most `per_batch` records (the file reader
// hands on 256 KiB at a time: the whole of a small file), in file order, with the given
// exporter — as a collector hands them on, message by message.
std::vector<BatchPtr> file_batches(const std::string& rel, const std::string& exporter = "",
                                   const std::string& identity = "", std::size_t per_batch = 200) {
  std::vector<BatchPtr> out;
  std::unique_ptr<ipfix::RecordBatch> cur;
  auto r = ipfix::read_ipfix_file(data_path(rel), [&](ipfix::RecordBatch& in) {
    const auto templates = in.templates();
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (!cur) {
        cur = std::make_unique<ipfix::RecordBatch>();
        if (!exporter.empty()) cur->exporter.address = *IpAddress::parse(exporter);
        cur->exporter.tls_identity = identity;
      }
      const ipfix::RecordView rec = in[i];
      const auto t = std::find_if(templates.begin(), templates.end(),
                                  [&](const auto& p) { return p.get() == &rec.record_template(); });
      ASSERT_NE(t, templates.end());
      const auto ti = cur->use_template(*t);
      const auto mi = cur->add_message(rec.message());
      const auto off = cur->store(rec.bytes());
      cur->add(off, static_cast<std::uint16_t>(rec.bytes().size()), ti, mi);
      if (cur->size() == per_batch) out.push_back(std::move(cur));
    }
  });
  if (cur) out.push_back(std::move(cur));
  EXPECT_TRUE(r) << rel;
  return out;
}

// An IPv6 address in text → its 16 bytes as uppercase hex (ClickHouse's hex()).
std::string v6_hex(const std::string& text) {
  unsigned char b[16] = {};
  EXPECT_EQ(::inet_pton(AF_INET6, text.c_str(), b), 1) << text;
  std::string out;
  char buf[3];
  for (unsigned char c : b) {
    std::snprintf(buf, sizeof buf, "%02X", c);
    out += buf;
  }
  return out;
}

long long ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0)
      .count();
}

class ClickHouseSinkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ClickHouseServer::unavailable_reason().empty()) return;
    server_ = new ClickHouseServer({kUser});
    const auto t0 = std::chrono::steady_clock::now();
    started_ = server_->start();
    startup_ms_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    if (started_) {
      const auto r = server_->query("CREATE DATABASE IF NOT EXISTS " + kDatabase);
      started_ = r.ok();
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (const auto why = ClickHouseServer::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    if (!have_command("ipfixDump")) {
      GTEST_SKIP() << "ipfixDump is not installed (Debian: libfixbuf-tools)";
    }
    ASSERT_TRUE(started_) << server_->error();
    // A test that stopped the server leaves it running again for the next one.
    if (!server_->running()) {
      ASSERT_TRUE(server_->start()) << server_->error();
    }
    std::cout << "clickhouse-server on port " << server_->http_port() << " (started in "
              << startup_ms_ << " ms)\n";
  }

  static ClickHouseSinkOptions options(const std::string& table) {
    auto target = sinks::parse_clickhouse_url(server_->sink_url(kDatabase, table));
    EXPECT_TRUE(target) << target.error();
    ClickHouseSinkOptions o;
    o.target = *target;
    o.flush_interval = 0ms;
    o.retry_min = 50ms;
    o.retry_max = 200ms;
    o.linger = 20s;
    return o;
  }
  static std::unique_ptr<ClickHouseSink> open(const ClickHouseSinkOptions& o) {
    auto sink = ClickHouseSink::open(o);
    EXPECT_TRUE(sink) << sink.error();
    return sink ? std::move(*sink) : nullptr;
  }
  static IpfixDump dump_of(const std::string& rel, const TempDir& dir) {
    auto d = ipfix_dump(data_path(rel), dir.path());
    EXPECT_TRUE(d) << "ipfixDump failed on " << rel;
    return d ? *d : IpfixDump{};
  }
  // "count sum(IN_BYTES) sum(IN_PKTS)" of a table.
  static std::string totals(const std::string& table) {
    return server_->scalar("SELECT count(), sum(IN_BYTES), sum(IN_PKTS) FROM " + kDatabase + "." +
                           table + " FORMAT TSV");
  }
  static std::string expected_totals(std::uint64_t n, std::uint64_t octets, std::uint64_t packets) {
    return std::to_string(n) + "\t" + std::to_string(octets) + "\t" + std::to_string(packets);
  }

  static ClickHouseServer* server_;
  static bool started_;
  static long long startup_ms_;
};
ClickHouseServer* ClickHouseSinkTest::server_ = nullptr;
bool ClickHouseSinkTest::started_ = false;
long long ClickHouseSinkTest::startup_ms_ = 0;

TEST_F(ClickHouseSinkTest, CreatesTheTableAndInsertsEveryFlowWithIpfixDumpValues) {
  TempDir dir("ch-ipfixcol2");
  const IpfixDump expected = dump_of(kIpfixcol2, dir);
  ASSERT_EQ(expected.data_records, 3979u);
  ASSERT_EQ(expected.options_records, 0u);
  ASSERT_EQ(server_->scalar("EXISTS TABLE netflow.ipfixcol2"), "0");

  const auto batches = file_batches(kIpfixcol2);
  auto sink = open(options("ipfixcol2"));
  ASSERT_TRUE(sink);
  EXPECT_EQ(server_->scalar("EXISTS TABLE netflow.ipfixcol2"), "1") << "created by open()";
  for (const auto& b : batches) sink->write(*b);
  sink->close();
  EXPECT_TRUE(sink->delivered());
  EXPECT_EQ(sink->stats().records_written, 3979u);
  EXPECT_EQ(sink->stats().records_failed, 0u);
  EXPECT_EQ(sink->pending_rows(), 0u);
  EXPECT_EQ(totals("ipfixcol2"), expected_totals(3979, expected.octets, expected.packets));

  // Sampled records, IPv4 and IPv6: ipfixDump's values are in one row.
  std::vector<std::size_t> picks = {0, 1, 500, 1847, 1848, 3000, 3978};
  for (std::size_t i = 0, v6 = 0; i < expected.records.size() && v6 < 3; ++i) {
    if (expected.records[i].fields.contains("sourceIPv6Address")) {
      picks.push_back(i);
      ++v6;
    }
  }
  std::size_t v6_checked = 0;
  for (const std::size_t i : picks) {
    const auto& f = expected.records[i].fields;
    const bool v6 = f.contains("sourceIPv6Address");
    v6_checked += v6;
    const auto start = ipfix_dump_time_ms(f.at("flowStartMilliseconds"));
    const auto end = ipfix_dump_time_ms(f.at("flowEndMilliseconds"));
    ASSERT_TRUE(start && end) << f.at("flowStartMilliseconds");
    const auto get = [&](const char* name) {
      auto it = f.find(name);
      return it == f.end() ? std::string("0") : it->second;
    };
    // IPv4 as text; IPv6 as the 16 bytes in hex (ipfixDump prints every group in full,
    // IPv6NumToString compresses: compared through inet_pton instead of text).
    const std::string addr = v6 ? "hex(IPV6_SRC_ADDR), hex(IPV6_DST_ADDR)"
                                : "IPv4NumToString(IPV4_SRC_ADDR), IPv4NumToString(IPV4_DST_ADDR)";
    const std::string sql =
        "SELECT " + addr +
        ", L4_SRC_PORT, L4_DST_PORT, IP_PROTOCOL_VERSION FROM "
        "netflow.ipfixcol2 WHERE FLOW_START_MILLISECONDS = " +
        std::to_string(*start) + " AND FLOW_END_MILLISECONDS = " + std::to_string(*end) +
        " AND FIRST_SWITCHED = " + std::to_string(*start / 1000) +
        " AND IN_BYTES = " + get("octetDeltaCount") + " AND IN_PKTS = " + get("packetDeltaCount") +
        " AND PROTOCOL = " + get("protocolIdentifier") +
        " AND INPUT_SNMP = " + get("ingressInterface") + " FORMAT TSV";
    const auto rows = server_->query(sql);
    ASSERT_TRUE(rows.ok()) << rows.body;
    const std::string want =
        (v6 ? v6_hex(f.at("sourceIPv6Address")) : f.at("sourceIPv4Address")) + "\t" +
        (v6 ? v6_hex(f.at("destinationIPv6Address")) : f.at("destinationIPv4Address")) + "\t" +
        get("sourceTransportPort") + "\t" + get("destinationTransportPort") + "\t" +
        (v6 ? "6" : "4") + "\n";
    EXPECT_NE(rows.body.find(want), std::string::npos)
        << "record " << i << ": want " << want << "got\n"
        << rows.body;
  }
  EXPECT_EQ(v6_checked, 3u) << "the file has IPv6 flows";
}

TEST_F(ClickHouseSinkTest, SoftflowdUptimesBecomeAbsoluteAndOptionsAreNotRows) {
  TempDir dir("ch-softflowd");
  const IpfixDump expected = dump_of(kSoftflowd, dir);
  ASSERT_EQ(expected.data_records, 298u);
  ASSERT_EQ(expected.options_records, 1u);
  const std::string identity = "CN=softflowd,O=Test\tLab \\ 1";
  const auto batches = file_batches(kSoftflowd, "192.0.2.10", identity);
  auto sink = open(options("softflowd"));
  ASSERT_TRUE(sink);
  for (const auto& b : batches) sink->write(*b);
  sink->close();
  EXPECT_TRUE(sink->delivered());
  EXPECT_EQ(totals("softflowd"), expected_totals(297, expected.octets, expected.packets));

  // systemInitTimeMilliseconds (160) from the options record + flowStartSysUpTime (22).
  std::optional<std::uint64_t> init;
  for (const auto& r : expected.records) {
    if (auto it = r.fields.find("systemInitTimeMilliseconds"); it != r.fields.end()) {
      init = ipfix_dump_time_ms(it->second);
    }
  }
  ASSERT_TRUE(init);
  const auto& first = expected.records.at(1).fields;  // record 0 is the options record
  const std::uint64_t start = *init + std::stoull(first.at("flowStartSysUpTime"));
  const std::uint64_t end = *init + std::stoull(first.at("flowEndSysUpTime"));
  const std::string where = " FROM netflow.softflowd WHERE IPv4NumToString(IPV4_SRC_ADDR) = '" +
                            first.at("sourceIPv4Address") +
                            "' AND L4_SRC_PORT = " + first.at("sourceTransportPort") +
                            " AND L4_DST_PORT = " + first.at("destinationTransportPort") +
                            " AND IN_BYTES = " + first.at("octetDeltaCount") +
                            " AND IN_PKTS = " + first.at("packetDeltaCount") + " FORMAT TSV";
  EXPECT_EQ(server_->scalar("SELECT FLOW_START_MILLISECONDS, FLOW_END_MILLISECONDS, "
                            "toUnixTimestamp(LAST_SWITCHED), FLOW_END_REASON" +
                            where),
            std::to_string(start) + "\t" + std::to_string(end) + "\t" + std::to_string(end / 1000) +
                "\t" + first.at("flowEndReason"));
  // TSV output escapes TAB and backslash again: compare through length() and a replace.
  EXPECT_EQ(
      server_->scalar("SELECT EXPORTER_ADDRESS, length(EXPORTER_TLS_IDENTITY), "
                      "replaceAll(EXPORTER_TLS_IDENTITY, '\\t', '<TAB>')" +
                      where),
      "192.0.2.10\t" + std::to_string(identity.size()) + "\tCN=softflowd,O=Test<TAB>Lab \\\\ 1");
}

TEST_F(ClickHouseSinkTest, ExistingTableIsReusedAndOneLackingAColumnIsRefused) {
  TempDir dir("ch-existing");
  const IpfixDump expected = dump_of(kSoftflowd, dir);
  // Made by an operator beforehand: another engine order, one extra column with a default.
  std::string cols;
  for (const auto& c : sinks::clickhouse_columns()) {
    cols += std::string(c.name) + " " + std::string(c.type) + ", ";
  }
  auto r = server_->query("CREATE TABLE netflow.existing (INSERTED_AT DateTime DEFAULT now(), " +
                          cols + "NOTE String DEFAULT 'x') ENGINE = MergeTree ORDER BY tuple()");
  ASSERT_TRUE(r.ok()) << r.body;
  auto sink = open(options("existing"));
  ASSERT_TRUE(sink);
  for (const auto& b : file_batches(kSoftflowd)) sink->write(*b);
  sink->close();
  EXPECT_TRUE(sink->delivered());
  EXPECT_EQ(totals("existing"), expected_totals(297, expected.octets, expected.packets));
  EXPECT_EQ(server_->scalar("SELECT uniqExact(NOTE) FROM netflow.existing"), "1");

  r = server_->query(
      "CREATE TABLE netflow.lacking (FIRST_SWITCHED DateTime, IN_BYTES UInt64) "
      "ENGINE = MergeTree ORDER BY FIRST_SWITCHED");
  ASSERT_TRUE(r.ok()) << r.body;
  auto refused = ClickHouseSink::open(options("lacking"));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("exists without the columns flowsec inserts: EXPORTER_ADDRESS"),
            std::string::npos)
      << refused.error();
  EXPECT_EQ(refused.error().find('\n'), std::string::npos) << refused.error();
}

TEST_F(ClickHouseSinkTest, ServerStoppedMidRunLosesNothing) {
  TempDir dir("ch-restart");
  const IpfixDump expected = dump_of(kIpfixcol2, dir);
  const auto batches = file_batches(kIpfixcol2);
  ASSERT_GE(batches.size(), 3u);
  auto o = options("restart");
  o.batch_rows = 500;
  auto sink = open(o);
  ASSERT_TRUE(sink);
  const std::size_t third = batches.size() / 3;
  std::size_t i = 0;
  for (; i < third; ++i) sink->write(*batches[i]);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(server_->stop()) << "clickhouse-server did not stop on SIGTERM";
  std::cout << "server stopped in " << ms_since(t0) << " ms\n";

  std::uint64_t while_down = 0;
  for (; i < 2 * third; ++i) {
    sink->write(*batches[i]);
    while_down += batches[i]->size();
  }
  sink->tick(std::chrono::system_clock::now());
  EXPECT_GE(sink->pending_rows(), while_down) << "rows written while down wait";
  EXPECT_EQ(sink->stats().records_failed, 0u) << "none dropped within the bound";
  EXPECT_GT(sink->stats().errors, 0u) << "failed inserts are counted";

  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(server_->start()) << server_->error();
  std::cout << "server started again in " << ms_since(t0) << " ms\n";
  for (; i < batches.size(); ++i) sink->write(*batches[i]);
  sink->close();
  EXPECT_TRUE(sink->delivered());
  EXPECT_EQ(sink->stats().records_failed, 0u);
  EXPECT_EQ(sink->stats().records_written, expected.flow_records());
  EXPECT_EQ(totals("restart"),
            expected_totals(expected.flow_records(), expected.octets, expected.packets));
}

TEST_F(ClickHouseSinkTest, PendingBoundDropsExactlyTheExcess) {
  TempDir dir("ch-bound");
  const IpfixDump expected = dump_of(kIpfixcol2, dir);
  const auto batches = file_batches(kIpfixcol2);
  constexpr std::size_t kBound = 1000;
  auto o = options("bounded");
  o.batch_rows = 300;
  o.max_pending_rows = kBound;
  auto sink = open(o);  // creates the table while the server is up
  ASSERT_TRUE(sink);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(server_->stop());
  std::cout << "server stopped in " << ms_since(t0) << " ms\n";
  std::uint64_t written = 0;
  for (const auto& b : batches) {
    sink->write(*b);
    written += b->size();
  }
  ASSERT_GT(written, kBound);
  EXPECT_EQ(sink->pending_rows(), kBound);
  EXPECT_EQ(sink->stats().records_failed, written - kBound);
  ASSERT_TRUE(server_->start()) << server_->error();
  sink->close();
  EXPECT_FALSE(sink->delivered()) << "some rows were dropped";
  EXPECT_EQ(sink->stats().records_failed, written - kBound) << "close() lost nothing more";
  EXPECT_EQ(sink->stats().records_written, kBound);
  // The rows kept are the first kBound of the file (new rows are the ones dropped).
  std::uint64_t octets = 0, packets = 0;
  for (std::size_t k = 0; k < kBound; ++k) {
    octets += std::stoull(expected.records[k].fields.at("octetDeltaCount"));
    packets += std::stoull(expected.records[k].fields.at("packetDeltaCount"));
  }
  EXPECT_EQ(totals("bounded"), expected_totals(kBound, octets, packets));
}

TEST_F(ClickHouseSinkTest, OpenFailsClearlyOnWrongDatabaseOrCredentials) {
  auto o = options("x");
  o.target.database = "no_such_db";
  auto r = ClickHouseSink::open(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("cannot create table `no_such_db`.`x`"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("no_such_db"), std::string::npos) << r.error();
  EXPECT_EQ(r.error().find('\n'), std::string::npos) << r.error();
  std::cout << "wrong database: " << r.error() << "\n";

  auto bad = sinks::parse_clickhouse_url(server_->sink_url(kDatabase, "auth", kUser.name, "nope"));
  ASSERT_TRUE(bad);
  o.target = *bad;
  r = ClickHouseSink::open(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("HTTP 401"), std::string::npos) << r.error();
  EXPECT_EQ(r.error().find("nope"), std::string::npos) << "no password in messages";
  std::cout << "bad password: " << r.error() << "\n";

  // The right password, percent-encoded in the URL (':' and '@' in it).
  auto good = sinks::parse_clickhouse_url(
      server_->sink_url(kDatabase, "auth", kUser.name, kUserUrlPassword));
  ASSERT_TRUE(good) << good.error();
  o.target = *good;
  auto sink = open(o);
  ASSERT_TRUE(sink);
  for (const auto& b : file_batches(kSoftflowd)) sink->write(*b);
  sink->close();
  EXPECT_TRUE(sink->delivered());
  EXPECT_EQ(server_->scalar("SELECT count() FROM netflow.auth"), "297");
}

TEST_F(ClickHouseSinkTest, UnreachableServerIsNotAnOpenErrorAndCloseCountsTheRest) {
  auto target = sinks::parse_clickhouse_url("http://127.0.0.1:" + std::to_string(free_tcp_port()) +
                                            "/netflow");
  ASSERT_TRUE(target);
  ClickHouseSinkOptions o;
  o.target = *target;
  o.flush_interval = 0ms;
  o.retry_min = 50ms;
  o.retry_max = 100ms;
  o.linger = 300ms;
  auto sink = ClickHouseSink::open(o);
  ASSERT_TRUE(sink) << sink.error();
  const auto batches = file_batches(kSoftflowd);
  for (const auto& b : batches) (*sink)->write(*b);
  EXPECT_EQ((*sink)->pending_rows(), 297u);
  const auto t0 = std::chrono::steady_clock::now();
  (*sink)->close();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s) << "linger bounds close()";
  EXPECT_FALSE((*sink)->delivered());
  EXPECT_EQ((*sink)->stats().records_failed, 297u);
  EXPECT_EQ((*sink)->stats().records_written, 0u);
  EXPECT_EQ((*sink)->pending_rows(), 0u);
}

}  // namespace
}  // namespace flowsec::test
