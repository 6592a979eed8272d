// Integration: flowsec in proxy mode (SPEC §1, §4), the real binary end to end.
//
//   exporter datagrams → flowsec -i none --collector-port udp://127.0.0.1:P1 -n URL
//                      → a second flowsec collector (-3 tls://..., -P DIR -D j) or nfcapd
//
// Inputs and where the expected values come from (never from flowsec's output):
//  - pmacct's Cisco NetFlow v9 and IPFIX captures (tests/data/export/pmacct/, see its
//    README), replayed from one socket per original exporter (udp_datagrams.hpp). tshark
//    4.0 gives the number of flow records (sum of "(Flow)Set N [id=T] (K flows)" in
//    `tshark -V -d udp.port==9991,cflow`) and the sums of IN_BYTES / IN_PKTS
//    (`-T fields -e cflow.octets -e cflow.packets`).
//  - -V 9 over UDP to nfcapd 1.7.1: `nfdump -R DIR -I` totals (flows, bytes, packets) equal
//    tshark's figures for the input.
//  - Reliability (SPEC §4, §9: a collector restart loses nothing over TLS): synthetic IPFIX
//    records, each distinct and known to the test (IpfixBuilder), so "every record arrived"
//    is checked record by record.
// The proxy's IPFIX output carries one record of its own, per session, that no input has:
// the options record with its systemInitTimeMilliseconds (IE 160, see exporter.hpp); the
// tests leave those out when they count.
// Skips with a printed reason when tshark, nfcapd/nfdump or the test certificates are
// missing.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/app_process.hpp"
#include "support/udp_datagrams.hpp"

namespace flowsec::test::app {
namespace {

using nlohmann::json;

// tshark's view of NetFlow v9 / IPFIX captures sent to UDP 9991.
std::optional<Totals> tshark_expected_uncached(const std::vector<std::string>& files,
                                               const std::string& dir) {
  Totals e;
  static const std::regex set_line(R"((^|\n) +(Flow)?Set \d+ \[id=\d+\] \((\d+) flows\))");
  for (const auto& f : files) {
    auto v = run_command({"tshark", "-r", f, "-d", "udp.port==9991,cflow", "-V"}, dir, 30s);
    if (v.exit_code != 0) return std::nullopt;
    for (std::sregex_iterator it(v.out.begin(), v.out.end(), set_line), end; it != end; ++it) {
      e.records += std::stoull((*it)[3].str());
    }
    auto fields = run_command({"tshark", "-r", f, "-d", "udp.port==9991,cflow", "-T", "fields",
                               "-E", "separator=;", "-e", "cflow.octets", "-e", "cflow.packets"},
                              dir, 30s);
    if (fields.exit_code != 0) return std::nullopt;
    std::istringstream in(fields.out);
    for (std::string line; std::getline(in, line);) {
      const auto semi = line.find(';');
      if (semi == std::string::npos) continue;
      auto add = [](const std::string& list, std::uint64_t& sum) {
        std::istringstream items(list);
        for (std::string item; std::getline(items, item, ',');) {
          if (!item.empty()) sum += std::stoull(item);
        }
      };
      add(line.substr(0, semi), e.bytes);
      add(line.substr(semi + 1), e.packets);
    }
  }
  return e;
}

// The same, remembered per list of files (tshark is the slow part of these tests).
std::optional<Totals> tshark_expected(const std::vector<std::string>& files,
                                      const std::string& dir) {
  static std::map<std::vector<std::string>, Totals> cache;
  if (auto it = cache.find(files); it != cache.end()) return it->second;
  auto e = tshark_expected_uncached(files, dir);
  if (e) cache[files] = *e;
  return e;
}

// Replays the UDP payloads of the captures to 127.0.0.1:port, one socket per original
// exporter (address and port), in capture order. Returns the number of datagrams.
std::size_t replay(const std::vector<std::string>& files, std::uint16_t port) {
  std::map<std::string, std::unique_ptr<UdpSender>> senders;
  std::size_t n = 0;
  for (const auto& f : files) {
    for (const auto& d : test::read_udp_datagrams(f)) {
      auto& s = senders[d.src.to_string() + "/" + std::to_string(d.src_port)];
      if (!s) s = std::make_unique<UdpSender>();
      EXPECT_TRUE(s->send(d.payload, port));
      if (++n % 32 == 0) std::this_thread::sleep_for(5ms);  // no kernel drops on loopback
    }
  }
  return n;
}

bool is_proxy_metadata(const json& r) {
  return r.is_object() && r.contains("systemInitTimeMilliseconds");
}

// Flow records under a -P dir, without the proxy's own metadata records.
std::vector<json> flow_records(const std::string& dir) {
  std::vector<json> out;
  for (auto& r : json_values(dir)) {
    if (!is_proxy_metadata(r)) out.push_back(std::move(r));
  }
  return out;
}

class AppProxy : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_server_certs()) {
      GTEST_SKIP() << "test certificates missing in " FLOWSEC_TEST_CERTS
                      " (ctest's make_test_certs makes them)";
    }
  }

  // The final collector: TLS listener, JSON lines rotated every second.
  std::unique_ptr<FlowsecProcess> start_collector(const std::string& out_dir, int port,
                                                  const std::string& name) {
    return start_flowsec({"-i", "none", "-3", "tls://127.0.0.1:" + std::to_string(port),
                          "--tls-cert", cert_path("server.pem"), "--tls-priv-key",
                          cert_path("server.key"), "-P", out_dir, "-D", "j", "-F", "1"},
                         dir_.path(), name);
  }
  std::unique_ptr<FlowsecProcess> start_proxy(const std::vector<std::string>& export_args) {
    std::vector<std::string> args{"-i", "none", "--collector-port", "udp://127.0.0.1:0"};
    args.insert(args.end(), export_args.begin(), export_args.end());
    return start_flowsec(args, dir_.path(), "proxy");
  }

  TempDir dir_{"proxy"};
  const std::vector<std::string> captures_{
      data_path("export/pmacct/100-IPFIXv10-CISCO_traffic-00.pcap"),
      data_path("export/pmacct/101-NFv9-CISCO-cust_primitives_traffic-00.pcap"),
      data_path("export/pmacct/102-NFv9-CISCO-f2rd-pretag-sampling-reload_traffic-00.pcap")};
};

// -n tls://localhost:P2 --tls-ca ca.pem -V 10: every record of v9 and IPFIX input reaches
// the final collector with its counters.
TEST_F(AppProxy, TlsRelayCarriesEveryRecordOfPmacctCaptures) {
  if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed (Debian: tshark)";
  const auto expected = tshark_expected(captures_, dir_.path());
  ASSERT_TRUE(expected) << "tshark failed";
  ASSERT_GT(expected->records, 0u);

  const std::string out = dir_ / "out";
  auto collector = start_collector(out, 0, "collector");
  const auto p2 = collector->listen_port();
  ASSERT_GT(p2, 0) << collector->log();
  auto proxy = start_proxy(
      {"-n", "tls://localhost:" + std::to_string(p2), "--tls-ca", cert_path("ca.pem"), "-V", "10"});
  const auto p1 = proxy->listen_port();
  ASSERT_GT(p1, 0) << proxy->log();

  replay(captures_, p1);
  EXPECT_TRUE(wait_for([&] { return flow_records(out).size() >= expected->records; }, 20s))
      << flow_records(out).size() << " of " << expected->records << "\nproxy:\n"
      << proxy->log();
  EXPECT_EQ(proxy->stop(), 0) << proxy->log();
  EXPECT_EQ(collector->stop(), 0) << collector->log();

  const auto got = json_totals(flow_records(out));
  EXPECT_EQ(got.records, expected->records) << "flowsec proxy+collector vs tshark";
  EXPECT_EQ(got.bytes, expected->bytes) << "IN_BYTES sum vs tshark's cflow.octets";
  EXPECT_EQ(got.packets, expected->packets) << "IN_PKTS sum vs tshark's cflow.packets";
  EXPECT_TRUE(std::regex_search(proxy->log(), std::regex("connected \\(TLSv1\\.[23]\\)")))
      << proxy->log();
  std::printf("tshark: %llu records, %llu bytes, %llu packets; final collector: %llu/%llu/%llu\n",
              static_cast<unsigned long long>(expected->records),
              static_cast<unsigned long long>(expected->bytes),
              static_cast<unsigned long long>(expected->packets),
              static_cast<unsigned long long>(got.records),
              static_cast<unsigned long long>(got.bytes),
              static_cast<unsigned long long>(got.packets));
}

// -V 9 over UDP to nfcapd: nfdump's totals equal tshark's for the input.
TEST_F(AppProxy, V9OverUdpToNfcapdKeepsTotals) {
  if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed (Debian: tshark)";
  if (!have_command("nfcapd") || !have_command("nfdump")) {
    GTEST_SKIP() << "nfcapd/nfdump are not installed (Debian: nfdump)";
  }
  const auto expected = tshark_expected(captures_, dir_.path());
  ASSERT_TRUE(expected) << "tshark failed";

  const std::string nf_dir = dir_ / "nfcapd";
  std::filesystem::create_directories(nf_dir);
  const auto p3 = free_udp_port();
  ChildProcess nfcapd(
      {"nfcapd", "-w", nf_dir, "-p", std::to_string(p3), "-b", "127.0.0.1", "-B", "33554432"},
      dir_ / "nfcapd.out", dir_ / "nfcapd.out");
  ASSERT_TRUE(wait_for([&] { return udp_bound(p3); }, 10s)) << nfcapd.out();

  auto proxy = start_proxy({"-n", "udp://127.0.0.1:" + std::to_string(p3), "-V", "9"});
  const auto p1 = proxy->listen_port();
  ASSERT_GT(p1, 0) << proxy->log();
  replay(captures_, p1);
  // The proxy exports within ~100 ms of receiving; its clean exit means all was sent.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(proxy->stop(), 0) << proxy->log();
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(nfcapd.stop(SIGTERM, 10s)) << "nfcapd did not stop on SIGTERM";

  std::string summary;
  const auto nf = nfdump_totals(nf_dir, &summary, 30s);
  ASSERT_TRUE(nf) << summary;
  EXPECT_EQ(nf->records, expected->records) << summary << proxy->log();
  EXPECT_EQ(nf->bytes, expected->bytes) << summary;
  EXPECT_EQ(nf->packets, expected->packets) << summary;
}

// softflowd 1.1.0 (-v 9) reading a capture exports through the proxy (-V 9) to nfcapd; the
// nfdump totals equal those of the same softflowd run straight into a second nfcapd.
TEST_F(AppProxy, SoftflowdThroughTheProxyEqualsSoftflowdDirect) {
  if (!have_command("softflowd")) GTEST_SKIP() << "softflowd is not installed (Debian: softflowd)";
  if (!have_command("nfcapd") || !have_command("nfdump")) {
    GTEST_SKIP() << "nfcapd/nfdump are not installed (Debian: nfdump)";
  }
  const std::string pcap = data_path("probe/whatsapp_login_chat.pcap");
  // Runs softflowd into 127.0.0.1:port, optionally through a proxy, into a fresh nfcapd.
  auto one_run = [&](const std::string& name, bool through_proxy) {
    const std::string nf_dir = dir_ / name;
    std::filesystem::create_directories(nf_dir);
    const auto nf_port = free_udp_port();
    ChildProcess nfcapd({"nfcapd", "-w", nf_dir, "-p", std::to_string(nf_port), "-b", "127.0.0.1"},
                        dir_ / (name + ".nfcapd.out"), dir_ / (name + ".nfcapd.out"));
    EXPECT_TRUE(wait_for([&] { return udp_bound(nf_port); }, 10s)) << nfcapd.out();
    std::unique_ptr<FlowsecProcess> proxy;
    int target = nf_port;
    if (through_proxy) {
      proxy = start_proxy({"-n", "udp://127.0.0.1:" + std::to_string(nf_port), "-V", "9"});
      target = proxy->listen_port();
      EXPECT_GT(target, 0) << proxy->log();
    }
    auto sf = run_command(
        {"softflowd", "-r", pcap, "-n", "127.0.0.1:" + std::to_string(target), "-v", "9"},
        dir_.path(), 30s);
    EXPECT_EQ(sf.exit_code, 0) << sf.err;
    std::this_thread::sleep_for(500ms);
    if (proxy) {
      EXPECT_EQ(proxy->stop(), 0) << proxy->log();
    }
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(nfcapd.stop(SIGTERM, 10s));
    return nfdump_totals(nf_dir, nullptr, 30s).value_or(Totals{});
  };
  const Totals direct = one_run("direct", false);
  ASSERT_GT(direct.records, 0u) << "softflowd → nfcapd gave no flows";
  const Totals proxied = one_run("proxied", true);
  EXPECT_EQ(proxied.records, direct.records);
  EXPECT_EQ(proxied.bytes, direct.bytes);
  EXPECT_EQ(proxied.packets, direct.packets);
  std::printf(
      "softflowd direct: %llu flows %llu bytes %llu packets; through flowsec: %llu/%llu/%llu\n",
      static_cast<unsigned long long>(direct.records),
      static_cast<unsigned long long>(direct.bytes),
      static_cast<unsigned long long>(direct.packets),
      static_cast<unsigned long long>(proxied.records),
      static_cast<unsigned long long>(proxied.bytes),
      static_cast<unsigned long long>(proxied.packets));
}

// -T "%IPV4_SRC_ADDR %IPV4_DST_ADDR %IN_BYTES %IN_PKTS": every relayed record has exactly
// those fields (plus the collector's EXPORTER_* metadata), with the input's counters.
TEST_F(AppProxy, TemplateMapsRecordsOntoTheGivenFields) {
  if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed (Debian: tshark)";
  // IPv4 flows only, and no options records (which -T does not map).
  const std::vector<std::string> inputs{captures_[0], captures_[1]};
  const auto expected = tshark_expected(inputs, dir_.path());
  ASSERT_TRUE(expected) << "tshark failed";

  const std::string out = dir_ / "out";
  auto collector = start_collector(out, 0, "collector");
  const auto p2 = collector->listen_port();
  ASSERT_GT(p2, 0) << collector->log();
  auto proxy =
      start_proxy({"-n", "tls://localhost:" + std::to_string(p2), "--tls-ca", cert_path("ca.pem"),
                   "-T", "%IPV4_SRC_ADDR %IPV4_DST_ADDR %IN_BYTES %IN_PKTS"});
  const auto p1 = proxy->listen_port();
  ASSERT_GT(p1, 0) << proxy->log();
  replay(inputs, p1);
  EXPECT_TRUE(wait_for([&] { return flow_records(out).size() >= expected->records; }, 20s))
      << proxy->log();
  EXPECT_EQ(proxy->stop(), 0) << proxy->log();
  EXPECT_EQ(collector->stop(), 0) << collector->log();

  const auto records = flow_records(out);
  const std::set<std::string> wanted{"IPV4_SRC_ADDR", "IPV4_DST_ADDR", "IN_BYTES", "IN_PKTS"};
  for (const auto& r : records) {
    ASSERT_TRUE(r.is_object());
    std::set<std::string> keys;
    for (const auto& [k, v] : r.items()) {
      if (k.rfind("EXPORTER_", 0) != 0) keys.insert(k);
    }
    ASSERT_EQ(keys, wanted) << r.dump();
    EXPECT_TRUE(std::regex_match(r["IPV4_SRC_ADDR"].get<std::string>(),
                                 std::regex(R"(\d+\.\d+\.\d+\.\d+)")))
        << r.dump();
  }
  const auto got = json_totals(records);
  EXPECT_EQ(got.records, expected->records);
  EXPECT_EQ(got.bytes, expected->bytes);
  EXPECT_EQ(got.packets, expected->packets);
}

// SPEC §4 / §9: the final collector is SIGKILLed and restarted on the same port while the
// proxy keeps receiving; afterwards every record has arrived.
TEST_F(AppProxy, FinalCollectorKilledAndRestartedLosesNothing) {
  const std::string out1 = dir_ / "out1";
  const std::string out2 = dir_ / "out2";
  auto collector = start_collector(out1, 0, "collector1");
  const auto p2 = collector->listen_port();
  ASSERT_GT(p2, 0) << collector->log();
  auto proxy =
      start_proxy({"-n", "tls://localhost:" + std::to_string(p2), "--tls-ca", cert_path("ca.pem")});
  const auto p1 = proxy->listen_port();
  ASSERT_GT(p1, 0) << proxy->log();

  IpfixBuilder ipfix;
  UdpSender exporter;
  auto send_records = [&](int messages, std::size_t per_message) {
    for (int m = 0; m < messages; ++m) {
      ASSERT_TRUE(exporter.send(ipfix.message(per_message), p1));
      std::this_thread::sleep_for(10ms);
    }
  };
  auto all_records = [&] {
    auto a = flow_records(out1);
    auto b = flow_records(out2);
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };

  // A: delivered and written before the kill.
  send_records(20, 10);
  const std::uint64_t before_kill = ipfix.records();
  ASSERT_TRUE(wait_for([&] { return flow_records(out1).size() >= before_kill; }, 15s))
      << flow_records(out1).size() << " of " << before_kill;
  collector->kill_now();

  // B: while the collector is down (the proxy finds the session dead and queues).
  send_records(20, 10);
  std::this_thread::sleep_for(500ms);
  collector = start_collector(out2, p2, "collector2");
  ASSERT_EQ(collector->listen_port(), p2) << collector->log();

  // C: after the restart.
  send_records(20, 10);
  const std::uint64_t total = ipfix.records();
  const bool complete = wait_for(
      [&] {
        std::set<std::uint64_t> ids;
        for (const auto& r : all_records()) ids.insert(as_u64(r["IN_PKTS"]));
        return ids.size() >= total;
      },
      25s, 200ms);
  EXPECT_EQ(proxy->stop(), 0) << proxy->log();
  EXPECT_EQ(collector->stop(), 0) << collector->log();

  // Record i has IN_PKTS i+1 and IN_BYTES 100*(i+1) (IpfixBuilder).
  std::map<std::uint64_t, int> seen;
  for (const auto& r : all_records()) {
    const auto pkts = as_u64(r["IN_PKTS"]);
    EXPECT_EQ(as_u64(r["IN_BYTES"]), 100 * pkts) << r.dump();
    ++seen[pkts];
  }
  std::vector<std::uint64_t> missing;
  std::uint64_t duplicates = 0;
  for (std::uint64_t i = 1; i <= total; ++i) {
    if (seen.count(i) == 0) missing.push_back(i - 1);
  }
  for (const auto& [id, n] : seen) duplicates += static_cast<std::uint64_t>(n - 1);
  std::string first_missing;
  for (std::size_t k = 0; k < missing.size() && k < 20; ++k) {
    first_missing += std::to_string(missing[k]) + " ";
  }
  EXPECT_TRUE(complete);
  // The kill was seen: the proxy connected twice (else this test proved nothing).
  const std::string log = proxy->log();
  const std::regex connected("connected( after [0-9]+ failed attempts)? \\(TLS");
  EXPECT_GE(std::distance(std::sregex_iterator(log.begin(), log.end(), connected),
                          std::sregex_iterator()),
            2)
      << log;
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << total
                               << " records lost across the collector restart; first: "
                               << first_missing << "\nproxy log:\n"
                               << proxy->log();
  std::printf("restart: %llu records sent, %zu lost, %llu duplicates\n",
              static_cast<unsigned long long>(total), missing.size(),
              static_cast<unsigned long long>(duplicates));
}

}  // namespace
}  // namespace flowsec::test::app
