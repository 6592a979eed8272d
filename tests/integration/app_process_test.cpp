// Integration: flowsec as a process (SPEC §2 options, §3 collector TLS, §7 metrics and the
// -b stats line, the conventions' "start-up problems fail fast with one clear line").
//
//  - Start-up errors: one line naming the offending argument, non-zero exit, nothing else.
//  - Configuration file as the only positional argument; the command line overrides it.
//  - -g pid file (the child's PID, removed at exit); -u nobody (every thread's
//    /proc/PID/task/T/status Uid is 65534 while the listener still delivers).
//  - SIGINT and SIGTERM: records received before the signal are in the files, exit 0.
//  - SIGHUP after the certificate files were replaced: a new TLS session gets the new
//    certificate (openssl s_client -showcerts: subject), an established one keeps working.
//  - --collector-allow 10.0.0.0/8 ignores a 127.0.0.1 exporter: nothing written, and
//    flowsec_exporters_not_allowed_total moves (GET --metrics).
//  - -b 1 prints a stats line within ~6 s, with the number of records sent.
// Expected values come from the input (IpfixBuilder: records known to the test), from the
// certificates (made by scripts/make-test-certs.sh) and from /proc.
// Skips with a printed reason when openssl or the test certificates are missing.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/app_process.hpp"

namespace flowsec::test::app {
namespace {

// A record-sending exporter for a UDP listener.
std::uint64_t send_records(std::uint16_t port, int messages, std::size_t per_message,
                           IpfixBuilder& ipfix) {
  UdpSender exporter;
  for (int m = 0; m < messages; ++m) {
    EXPECT_TRUE(exporter.send(ipfix.message(per_message), port));
  }
  return ipfix.records();
}

// ---------------------------------------------------------------- start-up errors

struct BadStart {
  const char* name;
  std::vector<std::string> args;  // "@CERTS/" and "@DIR/" are replaced
  const char* names;              // the error line must contain this
};

// gtest (and so ctest) shows the case by its name, not as bytes.
void PrintTo(const BadStart& c, std::ostream* os) {
  *os << c.name;
}

class AppStartupError : public ::testing::TestWithParam<BadStart> {};

TEST_P(AppStartupError, OneLineNamingTheArgumentAndNonZeroExit) {
  const BadStart& c = GetParam();
  if (!have_server_certs()) GTEST_SKIP() << "test certificates missing in " FLOWSEC_TEST_CERTS;
  TempDir dir("startup");
  { std::ofstream(dir / "garbage.pem") << "this is not a certificate\n"; }
  std::vector<std::string> args;
  for (std::string a : c.args) {
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"@CERTS/", cert_path("")}, {"@DIR/", dir / ""}}) {
      if (a.rfind(from, 0) == 0) a = to + a.substr(from.size());
    }
    args.push_back(a);
  }
  auto p = start_flowsec(args, dir.path(), "flowsec");
  const auto code = p->wait(15s);
  ASSERT_TRUE(code.has_value()) << c.name << ": still running";
  EXPECT_NE(*code, 0);
  std::vector<std::string> lines;
  for (auto& l : lines_of(p->log())) {
    if (l != "(flowsec --help lists the options)") lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 1u) << p->log();
  EXPECT_EQ(lines[0].rfind("flowsec: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(c.names), std::string::npos)
      << "error line does not name '" << c.names << "': " << lines[0];
  EXPECT_TRUE(p->out().empty()) << p->out();
}

const std::vector<std::string> kOut = {"-P", "@DIR/out"};
std::vector<std::string> with_out(std::vector<std::string> args) {
  args.insert(args.end(), kOut.begin(), kOut.end());
  return args;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AppStartupError,
    ::testing::Values(
        BadStart{"BadListenUrl", with_out({"-i", "none", "-3", "foo://1"}), "foo://1"},
        BadStart{"ExportUrlWithoutPort",
                 with_out({"-i", "none", "-3", "udp://127.0.0.1:0", "-n", "tcp://host"}),
                 "tcp://host"},
        BadStart{"V9OverTcp",
                 {"-i", "none", "-3", "udp://127.0.0.1:0", "-n", "tcp://127.0.0.1:9", "-V", "9"},
                 "-V 10"},
        BadStart{"TlsListenerWithoutCert", with_out({"-i", "none", "-3", "tls://127.0.0.1:0"}),
                 "--tls-cert"},
        BadStart{"MissingCertFile",
                 with_out({"-i", "none", "-3", "tls://127.0.0.1:0", "--tls-cert",
                           "@DIR/nonexistent.pem", "--tls-priv-key", "@CERTS/server.key"}),
                 "nonexistent.pem"},
        BadStart{"UnreadableCertFile",
                 with_out({"-i", "none", "-3", "tls://127.0.0.1:0", "--tls-cert",
                           "@DIR/garbage.pem", "--tls-priv-key", "@CERTS/server.key"}),
                 "garbage.pem"},
        BadStart{"UnknownOption", with_out({"-i", "none", "-3", "udp://127.0.0.1:0", "--bogus"}),
                 "--bogus"},
        BadStart{"BadTemplateField",
                 {"-i", "none", "-3", "udp://127.0.0.1:0", "-n", "udp://127.0.0.1:9", "-T",
                  "%NOT_A_FIELD %IN_BYTES"},
                 "NOT_A_FIELD"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(AppProcess, PortInUseIsAStartupErrorNamingTheEndpoint) {
  TempDir dir("inuse");
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string url = "udp://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  auto p = start_flowsec({"-i", "none", "-3", url, "-P", dir / "out"}, dir.path(), "flowsec");
  const auto code = p->wait(15s);
  ::close(fd);
  ASSERT_TRUE(code.has_value()) << "flowsec started on a port in use";
  EXPECT_NE(*code, 0);
  const auto lines = lines_of(p->log());
  ASSERT_EQ(lines.size(), 1u) << p->log();
  EXPECT_NE(lines[0].find(url), std::string::npos) << lines[0];
}

// ---------------------------------------------------------------- configuration file

TEST(AppProcess, ConfigFileAsOnlyArgumentWithCommandLineOverride) {
  TempDir dir("config");
  const std::string conf = dir / "flowsec.conf";
  {
    std::ofstream f(conf);
    f << "# flowsec test configuration\n"
      << "--interface=none\n"
      << "\n"
      << "--collector-port=udp://127.0.0.1:0\n"
      << "-P=" << (dir / "from-file") << "\n"
      << "-D j\n"
      << "--dump-frequency=1\n";
  }
  auto p = start_flowsec({conf, "-P", dir / "from-cli"}, dir.path(), "flowsec");
  const auto port = p->listen_port();
  ASSERT_GT(port, 0) << "the listen endpoint of the file is not used: " << p->log();
  IpfixBuilder ipfix;
  const auto sent = send_records(port, 3, 10, ipfix);
  EXPECT_TRUE(wait_for([&] { return json_values(dir / "from-cli").size() >= sent; }, 10s))
      << p->log();
  EXPECT_EQ(p->stop(), 0) << p->log();
  EXPECT_EQ(json_values(dir / "from-cli").size(), sent) << "-D j and -F 1 of the file apply";
  EXPECT_TRUE(files_under(dir / "from-file").empty()) << "-P of the command line overrides";
}

// ---------------------------------------------------------------- -g, -u

TEST(AppProcess, PidFileHoldsThePidAndIsRemovedAtExit) {
  TempDir dir("pid");
  const std::string pid_file = dir / "flowsec.pid";
  auto p =
      start_flowsec({"-i", "none", "-3", "udp://127.0.0.1:0", "-P", dir / "out", "-g", pid_file},
                    dir.path(), "flowsec");
  ASSERT_GT(p->listen_port(), 0) << p->log();
  ASSERT_TRUE(wait_for([&] { return !slurp_file(pid_file).empty(); }, 10s)) << p->log();
  EXPECT_EQ(slurp_file(pid_file), std::to_string(p->pid()) + "\n");
  EXPECT_EQ(p->stop(), 0) << p->log();
  EXPECT_FALSE(std::filesystem::exists(pid_file)) << "pid file left after exit";
}

TEST(AppProcess, UserOptionDropsPrivilegesAndTheListenerStillWorks) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop privileges to 'nobody'";
  TempDir dir("user");
  const std::string out = dir / "out";
  // The output directory must be writable by the unprivileged user.
  std::filesystem::create_directories(out);
  ASSERT_EQ(::chmod(out.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  auto p = start_flowsec(
      {"-i", "none", "-3", "udp://127.0.0.1:0", "-P", out, "-D", "j", "-F", "1", "-u", "nobody"},
      dir.path(), "flowsec");
  const auto port = p->listen_port();
  ASSERT_GT(port, 0) << p->log();
  const std::string task_dir = "/proc/" + std::to_string(p->pid()) + "/task";
  auto all_threads_nobody = [&] {
    std::error_code ec;
    int threads = 0;
    for (const auto& t : std::filesystem::directory_iterator(task_dir, ec)) {
      const std::string status = slurp_file(t.path().string() + "/status");
      std::smatch m;
      if (!std::regex_search(status, m, std::regex(R"(\nUid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+))"))) {
        return false;
      }
      for (int k = 1; k <= 4; ++k) {
        if (m[k].str() != "65534") return false;
      }
      ++threads;
    }
    return threads > 0;
  };
  EXPECT_TRUE(wait_for(all_threads_nobody, 10s))
      << slurp_file("/proc/" + std::to_string(p->pid()) + "/status");
  IpfixBuilder ipfix;
  const auto sent = send_records(port, 4, 10, ipfix);
  EXPECT_TRUE(wait_for([&] { return json_values(out).size() >= sent; }, 10s)) << p->log();
  EXPECT_EQ(p->stop(), 0) << p->log();
  EXPECT_EQ(json_values(out).size(), sent);
}

// ---------------------------------------------------------------- signals

class AppStopSignal : public ::testing::TestWithParam<int> {};

TEST_P(AppStopSignal, RecordsReceivedBeforeTheSignalAreWrittenAndExitIsZero) {
  TempDir dir("signal");
  const std::string out = dir / "out";
  const auto metrics = free_tcp_port();
  // Default -F 60: the records are still in the open file when the signal comes.
  auto p = start_flowsec({"-i", "none", "-3", "udp://127.0.0.1:0", "-P", out, "-D", "j",
                          "--metrics", "127.0.0.1:" + std::to_string(metrics)},
                         dir.path(), "flowsec");
  const auto port = p->listen_port();
  ASSERT_GT(port, 0) << p->log();
  IpfixBuilder ipfix;
  const auto sent = send_records(port, 10, 10, ipfix);
  // Received (counted by the collector) before the signal.
  ASSERT_TRUE(wait_for(
      [&] {
        return metric_sum(http_get(metrics).value_or(""), "flowsec_records_received_total")
                   .value_or(0) >= static_cast<double>(sent);
      },
      10s, 100ms))
      << p->log();
  EXPECT_EQ(p->stop(15s, GetParam()), 0) << p->log();
  EXPECT_EQ(json_values(out).size(), sent);
  for (const auto& f : files_under(out)) EXPECT_FALSE(ends_with(f, ".tmp")) << f;
  expect_no_sanitizer_report(p->log());
}

INSTANTIATE_TEST_SUITE_P(Signals, AppStopSignal, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& param_info) {
                           return std::string(param_info.param == SIGINT ? "SIGINT" : "SIGTERM");
                         });

// The subject of the certificate a new TLS session to 127.0.0.1:port is shown.
std::string server_subject(int port, const std::string& dir) {
  auto r = run_command(
      {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-showcerts"}, dir,
      10s);
  std::smatch m;
  if (std::regex_search(r.out, m, std::regex(R"(\n\s*0 s:([^\n]*))"))) return m[1].str();
  return {};
}

TEST(AppProcess, SighupReloadsCertificateWithoutDroppingSessions) {
  if (!have_server_certs()) GTEST_SKIP() << "test certificates missing in " FLOWSEC_TEST_CERTS;
  if (!have_command("openssl")) GTEST_SKIP() << "the openssl command is not installed";
  TempDir dir("sighup");
  const std::string cert = dir / "cert.pem";
  const std::string key = dir / "key.pem";
  auto install = [&](const std::string& name) {
    for (const auto& [from, to] :
         {std::pair{cert_path(name + ".pem"), cert}, {cert_path(name + ".key"), key}}) {
      const std::string tmp = to + ".new";
      std::filesystem::copy_file(from, tmp, std::filesystem::copy_options::overwrite_existing);
      ::chmod(tmp.c_str(), 0600);
      std::filesystem::rename(tmp, to);
    }
  };
  install("server");  // CN=localhost
  const std::string out = dir / "out";
  auto collector = start_flowsec({"-i", "none", "-3", "tls://127.0.0.1:0", "--tls-cert", cert,
                                  "--tls-priv-key", key, "-P", out, "-D", "j", "-F", "1"},
                                 dir.path(), "collector");
  const auto tls_port = collector->listen_port();
  ASSERT_GT(tls_port, 0) << collector->log();
  // The established session: a proxy relaying UDP to the collector over TLS.
  auto proxy = start_flowsec(
      {"-i", "none", "-3", "udp://127.0.0.1:0", "-n", "tls://localhost:" + std::to_string(tls_port),
       "--tls-ca", cert_path("ca.pem")},
      dir.path(), "proxy");
  const auto udp_port = proxy->listen_port();
  ASSERT_GT(udp_port, 0) << proxy->log();
  IpfixBuilder ipfix;
  auto before = send_records(udp_port, 5, 10, ipfix);
  ASSERT_TRUE(wait_for([&] { return json_values(out).size() >= before; }, 15s))
      << proxy->log() << collector->log();
  const std::string old_subject = server_subject(tls_port, dir.path());
  EXPECT_NE(old_subject.find("CN = localhost"), std::string::npos) << old_subject;

  install("other-name");  // CN=other.example, same CA
  collector->signal(SIGHUP);
  std::string new_subject;
  EXPECT_TRUE(wait_for(
      [&] {
        new_subject = server_subject(tls_port, dir.path());
        return new_subject.find("other.example") != std::string::npos;
      },
      10s, 200ms))
      << "a new session after SIGHUP still sees: " << new_subject << "\n"
      << collector->log();

  // The proxy's session is the one made before SIGHUP: a reconnect would now fail (the new
  // certificate does not name localhost), so these records arrive only over the old one.
  const auto total = send_records(udp_port, 5, 10, ipfix);
  EXPECT_TRUE(wait_for([&] { return json_values(out).size() >= total; }, 15s))
      << "records after SIGHUP did not arrive\n"
      << proxy->log() << collector->log();
  EXPECT_TRUE(collector->running()) << collector->log();
  EXPECT_EQ(proxy->stop(), 0) << proxy->log();
  EXPECT_EQ(collector->stop(), 0) << collector->log();
  EXPECT_EQ(json_values(out).size(), total);
  const std::string log = proxy->log();
  const std::regex connected("connected( after [0-9]+ failed attempts)? \\(TLS");
  const auto connects = std::distance(std::sregex_iterator(log.begin(), log.end(), connected),
                                      std::sregex_iterator());
  EXPECT_EQ(connects, 1) << "the proxy's TLS session was re-made:\n" << log;
}

// ---------------------------------------------------------------- --collector-allow

TEST(AppProcess, CollectorAllowIgnoresOtherExporters) {
  TempDir dir("allow");
  const std::string out = dir / "out";
  const auto metrics = free_tcp_port();
  auto p = start_flowsec(
      {"-i", "none", "-3", "udp://127.0.0.1:0", "-P", out, "-D", "j", "-F", "1",
       "--collector-allow", "10.0.0.0/8", "--metrics", "127.0.0.1:" + std::to_string(metrics)},
      dir.path(), "flowsec");
  const auto port = p->listen_port();
  ASSERT_GT(port, 0) << p->log();
  IpfixBuilder ipfix;
  send_records(port, 5, 10, ipfix);
  std::string text;
  EXPECT_TRUE(wait_for(
      [&] {
        text = http_get(metrics).value_or("");
        return metric_sum(text, "flowsec_exporters_not_allowed_total").value_or(0) > 0;
      },
      10s, 100ms))
      << text;
  std::this_thread::sleep_for(1200ms);  // a -F 1 period passes: anything written would show
  EXPECT_EQ(p->stop(), 0) << p->log();
  EXPECT_TRUE(json_values(out).empty());
  EXPECT_EQ(metric_sum(text, "flowsec_records_received_total").value_or(0), 0) << text;
}

// ---------------------------------------------------------------- -b 1

TEST(AppProcess, VerboseOnePrintsAStatsLine) {
  TempDir dir("stats");
  auto p = start_flowsec({"-i", "none", "-3", "udp://127.0.0.1:0", "-P", dir / "out", "-b", "1"},
                         dir.path(), "flowsec");
  const auto port = p->listen_port();
  ASSERT_GT(port, 0) << p->log();
  IpfixBuilder ipfix;
  const auto sent = send_records(port, 3, 10, ipfix);
  const auto start = Clock::now();
  EXPECT_TRUE(p->wait_for_log("records=" + std::to_string(sent) + "\\b", 7s)) << p->log();
  std::printf(
      "stats line after %lld ms\n",
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()));
  EXPECT_EQ(p->stop(), 0) << p->log();
}

}  // namespace
}  // namespace flowsec::test::app
