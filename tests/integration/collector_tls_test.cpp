// Integration: TLS and DTLS collection by the flowsec binary (SPEC §3 collector side)
// from a real TLS client, `openssl s_client` (OpenSSL 3.0), sending a real IPFIX
// stream: tests/data/ipfix/softflowd_1kxun_tcp.ipfix (softflowd 1.1.0 over TCP).
//
// Expected values come from the peers:
//  - messages and data records in the stream: `ipfixDump -i FILE -s` ("*** File Stats:
//    10 Messages, 298 Data Records, ...") — every one must be written (-P DIR -D j);
//  - the exporter identity every record carries (EXPORTER_TLS_IDENTITY) is the client
//    certificate's subject as `openssl x509 -noout -subject -nameopt RFC2253` prints it;
//  - refusals: one refused handshake per refused client, counted in
//    flowsec_tls_handshakes_total{result="refused",reason=...} and logged with the peer
//    address; the session that follows a refused one still works.
// DTLS: s_client -dtls reads standard input in chunks of at most 8 KiB and sends each
// read as one DTLS record, so a file holding exactly one IPFIX message of less than
// 8 KiB arrives as one message per record (SPEC §3). Each s_client is a new DTLS session
// (new template state, RFC 7011 §8), so each message is rebuilt here to carry the
// stream's template sets before its own data sets; ipfixDump checks the rebuilt
// messages still hold the 298 data records.
// Skips with a printed reason when openssl or ipfixDump is missing.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "support/flowsec_process.hpp"
#include "support/transport_harness.hpp"

namespace flowsec::test {
namespace {

using namespace std::chrono_literals;

const std::string kStream = std::string(FLOWSEC_TEST_DATA) + "/ipfix/softflowd_1kxun_tcp.ipfix";

#define REQUIRE_PEERS()                                                                      \
  do {                                                                                       \
    REQUIRE_OPENSSL();                                                                       \
    if (!have_command("ipfixDump"))                                                          \
      GTEST_SKIP() << "ipfixDump is not installed (Debian: libfixbuf-tools); it counts the " \
                      "records to expect";                                                   \
  } while (0)

struct FileStats {
  std::uint64_t messages = 0;
  std::uint64_t records = 0;
};

// ipfixDump -i FILE -s: "*** File Stats: M Messages, R Data Records, ...".
std::optional<FileStats> ipfix_dump_stats(const std::string& file, const TempDir& dir) {
  const auto r = run_command({"ipfixDump", "-i", file, "-s"}, dir.path(), 20s);
  static const std::regex stats(R"(File Stats: (\d+) Messages, (\d+) Data Records)");
  std::smatch m;
  const std::string text = r.out + r.err;
  if (r.exit_code != 0 || !std::regex_search(text, m, stats)) return std::nullopt;
  return FileStats{std::stoull(m[1].str()), std::stoull(m[2].str())};
}

// The subject of a certificate as OpenSSL prints it in RFC 2253 form ("CN=...").
std::string subject_of(const std::string& pem, const TempDir& dir) {
  const auto r =
      run_command({"openssl", "x509", "-in", pem, "-noout", "-subject", "-nameopt", "RFC2253"},
                  dir.path(), 10s);
  std::string s = r.out;
  if (s.rfind("subject=", 0) == 0) s = s.substr(8);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> s_client(std::uint16_t port, const std::string& exporter, bool dtls) {
  std::vector<std::string> argv{"openssl", "s_client"};
  if (dtls) argv.emplace_back("-dtls");
  argv.insert(argv.end(), {"-connect", "127.0.0.1:" + std::to_string(port), "-quiet", "-no_ign_eof",
                           "-CAfile", cert("ca.pem")});
  if (!exporter.empty()) {
    argv.insert(argv.end(), {"-cert", cert(exporter + ".pem"), "-key", cert(exporter + ".key")});
  }
  return argv;
}

// A collector with a TLS (or DTLS) listener, JSON output and metrics.
struct Collector {
  Collector(const TempDir& dir, const std::string& scheme, const std::vector<std::string>& extra)
      : out_dir(dir / "out"), metrics_port(free_port()) {
    std::vector<std::string> args{"-i",
                                  "none",
                                  "-n",
                                  "none",
                                  "-3",
                                  scheme + "://127.0.0.1:0",
                                  "--tls-cert",
                                  cert("server.pem"),
                                  "--tls-priv-key",
                                  cert("server.key"),
                                  "-P",
                                  out_dir,
                                  "-D",
                                  "j",
                                  "--metrics",
                                  "127.0.0.1:" + std::to_string(metrics_port)};
    args.insert(args.end(), extra.begin(), extra.end());
    process = std::make_unique<FlowsecProcess>(args, dir.path());
    const auto ports = process->listen_ports(1);
    port = ports.empty() ? 0 : ports[0];
  }
  std::string metrics() const { return http_get(metrics_port).value_or(""); }
  double metric(const std::string& family, const std::vector<std::string>& labels = {}) const {
    return metric_sum(metrics(), family, labels).value_or(0);
  }
  // Polls until the metric equals `want`.
  ::testing::AssertionResult wait_metric(const std::string& family, double want,
                                         const std::vector<std::string>& labels = {}) const {
    double last = -1;
    if (eventually(
            [&] {
              last = metric(family, labels);
              return last == want;
            },
            15000ms)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << family << " = " << last << ", want " << want << "\n"
                                         << metrics() << process->log();
  }

  std::string out_dir;
  std::uint16_t metrics_port;
  std::unique_ptr<FlowsecProcess> process;
  std::uint16_t port = 0;
};

// Runs s_client with `input` on standard input; its exit code.
std::optional<int> send_with_s_client(std::uint16_t port, const std::string& exporter,
                                      const std::string& input, const TempDir& dir,
                                      bool dtls = false) {
  return run_command(s_client(port, exporter, dtls), dir.path(), 20s, input).exit_code;
}

// Records per EXPORTER_TLS_IDENTITY value ("" when absent).
std::map<std::string, std::size_t> by_identity(const std::vector<JsonRecord>& records) {
  std::map<std::string, std::size_t> n;
  for (const auto& r : records) {
    const auto it = r.find("EXPORTER_TLS_IDENTITY");
    ++n[it == r.end() ? "" : it->second];
  }
  return n;
}

TEST(CollectorTls, MutualTlsRecordsCarryIdentityAndRefusalsAreCountedNotFatal) {
  REQUIRE_PEERS();
  TempDir dir("tls-mutual");
  const auto stats = ipfix_dump_stats(kStream, dir);
  ASSERT_TRUE(stats);
  ASSERT_EQ(stats->records, 298u);  // tests/data/README.md
  const std::string id1 = subject_of(cert("exporter1.pem"), dir);
  const std::string id2 = subject_of(cert("exporter2.pem"), dir);
  ASSERT_FALSE(id1.empty());
  ASSERT_NE(id1, id2);

  Collector c(dir, "tls", {"--tls-ca", cert("ca.pem")});
  ASSERT_NE(c.port, 0) << c.process->log();

  // 1. exporter1, mutual TLS: every message and record arrives.
  ASSERT_EQ(send_with_s_client(c.port, "exporter1", kStream, dir), 0);
  ASSERT_TRUE(
      c.wait_metric("flowsec_messages_received_total", static_cast<double>(stats->messages)));

  // 2. No client certificate under --tls-ca: refused, counted once, logged.
  (void)send_with_s_client(c.port, "", kStream, dir);  // TLS 1.3: s_client learns late
  EXPECT_TRUE(c.wait_metric("flowsec_tls_handshakes_total", 1,
                            {"result=\"refused\"", "reason=\"no client certificate\""}));

  // 3. Plain TCP carrying the IPFIX stream to the TLS port: refused, counted.
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(c.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
    const std::string bytes = slurp_file(kStream);
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);  // may be cut by the refusal
    ::shutdown(fd, SHUT_WR);
    EXPECT_TRUE(c.wait_metric("flowsec_tls_handshakes_total", 1,
                              {"result=\"refused\"", "reason=\"not TLS\""}));
    ::close(fd);
  }

  // 4. A valid client right after: works.
  ASSERT_EQ(send_with_s_client(c.port, "exporter2", kStream, dir), 0);
  ASSERT_TRUE(
      c.wait_metric("flowsec_messages_received_total", static_cast<double>(2 * stats->messages)));
  EXPECT_EQ(c.metric("flowsec_tls_handshakes_total", {"result=\"ok\""}), 2);
  EXPECT_EQ(c.metric("flowsec_tls_handshakes_total", {"result=\"refused\""}), 2);
  EXPECT_EQ(c.metric("flowsec_decode_errors_total"), 0);  // refusals are not decode errors

  ASSERT_EQ(c.process->terminate(), 0) << c.process->exit_description() << c.process->log();
  const std::string log = c.process->log();
  EXPECT_NE(log.find("refused TLS session from 127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("no client certificate"), std::string::npos) << log;
  EXPECT_NE(log.find("not TLS"), std::string::npos) << log;

  std::size_t bad = 0;
  const auto records = json_records(c.out_dir, &bad);
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(records.size(), 2 * stats->records);
  const auto ids = by_identity(records);
  EXPECT_EQ(ids.size(), 2u);  // nothing without an identity, nothing from the refused ones
  EXPECT_EQ(ids.count(id1) ? ids.at(id1) : 0, stats->records) << id1;
  EXPECT_EQ(ids.count(id2) ? ids.at(id2) : 0, stats->records) << id2;
  EXPECT_EQ(files_ending_in(c.out_dir, ".tmp"), 0u);
}

TEST(CollectorTls, TlsPeerAllowListRefusesOtherNames) {
  REQUIRE_PEERS();
  TempDir dir("tls-peer");
  const auto stats = ipfix_dump_stats(kStream, dir);
  ASSERT_TRUE(stats);
  const std::string id2 = subject_of(cert("exporter2.pem"), dir);

  Collector c(dir, "tls", {"--tls-ca", cert("ca.pem"), "--tls-peer", "exporter2.flowsec.test"});
  ASSERT_NE(c.port, 0) << c.process->log();

  (void)send_with_s_client(c.port, "exporter1", kStream, dir);  // CA-valid, not on the list
  EXPECT_TRUE(c.wait_metric("flowsec_tls_handshakes_total", 1,
                            {"result=\"refused\"", "reason=\"not on the allow-list\""}));
  ASSERT_EQ(send_with_s_client(c.port, "exporter2", kStream, dir), 0);
  ASSERT_TRUE(
      c.wait_metric("flowsec_messages_received_total", static_cast<double>(stats->messages)));
  EXPECT_EQ(c.metric("flowsec_tls_handshakes_total", {"result=\"ok\""}), 1);

  ASSERT_EQ(c.process->terminate(), 0) << c.process->exit_description() << c.process->log();
  const std::string log = c.process->log();
  EXPECT_NE(log.find("refused TLS session from 127.0.0.1:"), std::string::npos) << log;
  const auto records = json_records(c.out_dir);
  EXPECT_EQ(records.size(), stats->records);
  const auto ids = by_identity(records);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids.begin()->first, id2);
}

// The stream's messages, each rebuilt to carry every template set of the stream
// before its own data sets (see the file comment).
std::vector<std::vector<std::byte>> self_contained_messages(const std::vector<std::byte>& stream) {
  const auto messages = split_messages(stream);
  auto u16 = [](const std::vector<std::byte>& b, std::size_t at) {
    return static_cast<std::size_t>((std::to_integer<unsigned>(b[at]) << 8) |
                                    std::to_integer<unsigned>(b[at + 1]));
  };
  std::vector<std::byte> templates;
  std::vector<std::vector<std::byte>> data(messages.size());
  for (std::size_t k = 0; k < messages.size(); ++k) {
    const auto& m = messages[k];
    for (std::size_t at = 16; at + 4 <= m.size();) {
      const std::size_t id = u16(m, at);
      const std::size_t len = u16(m, at + 2);
      if (len < 4 || at + len > m.size()) break;
      auto& to = id == 2 || id == 3 ? templates : data[k];
      to.insert(to.end(), m.begin() + static_cast<std::ptrdiff_t>(at),
                m.begin() + static_cast<std::ptrdiff_t>(at + len));
      at += len;
    }
  }
  std::vector<std::vector<std::byte>> out;
  for (std::size_t k = 0; k < messages.size(); ++k) {
    std::vector<std::byte> m(messages[k].begin(), messages[k].begin() + 16);
    m.insert(m.end(), templates.begin(), templates.end());
    m.insert(m.end(), data[k].begin(), data[k].end());
    m[2] = static_cast<std::byte>(m.size() >> 8);
    m[3] = static_cast<std::byte>(m.size() & 0xff);
    out.push_back(std::move(m));
  }
  return out;
}

TEST(CollectorTls, DtlsOneIpfixMessagePerRecordFromSClient) {
  REQUIRE_PEERS();
  TempDir dir("dtls");
  const auto messages = self_contained_messages(read_file(kStream));
  ASSERT_FALSE(messages.empty());
  {
    std::ofstream all(dir / "all.ipfix", std::ios::binary);
    for (std::size_t k = 0; k < messages.size(); ++k) {
      ASSERT_LT(messages[k].size(), 8192u) << "s_client would cut it";
      std::ofstream one(dir / ("m" + std::to_string(k) + ".ipfix"), std::ios::binary);
      one.write(reinterpret_cast<const char*>(messages[k].data()),
                static_cast<std::streamsize>(messages[k].size()));
      all.write(reinterpret_cast<const char*>(messages[k].data()),
                static_cast<std::streamsize>(messages[k].size()));
    }
  }
  const auto stats = ipfix_dump_stats(dir / "all.ipfix", dir);
  ASSERT_TRUE(stats);
  ASSERT_EQ(stats->records, 298u) << "rebuilt messages lost records";
  ASSERT_EQ(stats->messages, messages.size());
  const std::string id1 = subject_of(cert("exporter1.pem"), dir);

  Collector c(dir, "dtls", {"--tls-ca", cert("ca.pem")});
  ASSERT_NE(c.port, 0) << c.process->log();

  // All sessions at once (each s_client is one DTLS session carrying one message).
  std::vector<std::unique_ptr<ChildProcess>> clients;
  for (std::size_t k = 0; k < messages.size(); ++k) {
    const std::string tag = dir / ("s_client" + std::to_string(k));
    clients.push_back(std::make_unique<ChildProcess>(s_client(c.port, "exporter1", true),
                                                     tag + ".out", tag + ".err",
                                                     dir / ("m" + std::to_string(k) + ".ipfix")));
  }
  for (auto& client : clients) {
    EXPECT_EQ(client->wait_exit(20s), 0) << client->exit_description() << client->err();
  }
  ASSERT_TRUE(
      c.wait_metric("flowsec_messages_received_total", static_cast<double>(stats->messages)));
  EXPECT_EQ(c.metric("flowsec_tls_handshakes_total", {"result=\"ok\""}),
            static_cast<double>(messages.size()));

  ASSERT_EQ(c.process->terminate(), 0) << c.process->exit_description() << c.process->log();
  const auto records = json_records(c.out_dir);
  EXPECT_EQ(records.size(), stats->records);
  const auto ids = by_identity(records);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids.begin()->first, id1);
}

}  // namespace
}  // namespace flowsec::test
