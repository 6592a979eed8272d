// Integration: the probe survives hostile input (SPEC §5, §9). `flowsec -i DIR` reads
// tests/data/probe_corpus/ (nDPI's fuzzed and malformed captures plus one well-formed
// capture, see its README) as one directory:
//  - it exits 0, with no sanitizer report (this binary is built with ASan/UBSan when
//    FLOWSEC_SANITIZE is on);
//  - every frame is accounted for: its final log line's "P packets ... N non-IP, M
//    malformed" adds up to the frames capinfos counts in the files, with M > 0;
//  - --metrics shows the malformed packets by reason (flowsec_probe_malformed_packets_total
//    {reason=...}), summing to the log line's M;
//  - the well-formed capture (whatsapp_login_chat.pcap) still yields exactly the flows that
//    tshark's `-z conv,tcp -z conv,udp` shows: one record per direction that carried
//    frames, with that direction's frame count.
// Skips with a printed reason when tshark/capinfos are missing.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "support/app_process.hpp"
#include "support/pcap_writer.hpp"

namespace flowsec::test::app {
namespace {

using nlohmann::json;

const std::string kCorpus = data_path("probe_corpus");
const std::string kWellFormed = kCorpus + "/whatsapp_login_chat.pcap";

std::vector<std::string> corpus_captures() {
  std::vector<std::string> out;
  for (const auto& f : files_under(kCorpus)) {
    if (!ends_with(f, ".md")) out.push_back(f);
  }
  return out;
}

// Frames per capinfos (it counts the packets it could read, even in a file cut short).
std::optional<std::uint64_t> capinfos_frames(const std::string& dir) {
  std::uint64_t total = 0;
  for (const auto& f : corpus_captures()) {
    auto r = run_command({"capinfos", "-c", "-M", f}, dir, 30s);
    std::smatch m;
    const std::string text = r.out + r.err;
    if (!std::regex_search(text, m, std::regex(R"(Number of packets:\s+(\d+))"))) {
      return std::nullopt;
    }
    total += std::stoull(m[1].str());
  }
  return total;
}

struct LogCounts {
  std::uint64_t packets = 0, non_ip = 0, malformed = 0;
};

std::optional<LogCounts> probe_log_counts(const std::string& err) {
  std::smatch m;
  if (!std::regex_search(
          err, m,
          std::regex(
              R"((\d+) packets, \d+ bytes, \d+ flows exported, (\d+) non-IP, (\d+) malformed)"))) {
    return std::nullopt;
  }
  return LogCounts{std::stoull(m[1].str()), std::stoull(m[2].str()), std::stoull(m[3].str())};
}

// One direction of a tshark conversation: (protocol, src, sport, dst, dport) → frames.
using DirKey = std::tuple<int, std::string, int, std::string, int>;

std::optional<std::map<DirKey, std::uint64_t>> tshark_directions(const std::string& file,
                                                                 const std::string& dir) {
  auto r = run_command({"tshark", "-r", file, "-q", "-z", "conv,tcp", "-z", "conv,udp"}, dir, 30s);
  if (r.exit_code != 0) return std::nullopt;
  std::map<DirKey, std::uint64_t> out;
  int protocol = 0;
  // "A:pa <-> B:pb   <-frames <-bytes unit   ->frames ->bytes unit   total ..." where "->"
  // is A to B.
  static const std::regex conv(
      R"(^(\S+):(\d+)\s+<->\s+(\S+):(\d+)\s+(\d+)\s+\d+\s+\S+\s+(\d+)\s+\d+\s+\S+)");
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.find("TCP Conversations") != std::string::npos) protocol = 6;
    if (line.find("UDP Conversations") != std::string::npos) protocol = 17;
    std::smatch m;
    if (!std::regex_search(line, m, conv)) continue;
    const std::string a = m[1].str();
    const std::string b = m[3].str();
    const int pa = std::stoi(m[2].str());
    const int pb = std::stoi(m[4].str());
    const auto b_to_a = std::stoull(m[5].str());
    const auto a_to_b = std::stoull(m[6].str());
    if (a_to_b > 0) out[{protocol, a, pa, b, pb}] += a_to_b;
    if (b_to_a > 0) out[{protocol, b, pb, a, pa}] += b_to_a;
  }
  return out;
}

// First and last packet times (epoch seconds) of a capture, per tshark.
std::optional<std::pair<std::int64_t, std::int64_t>> capture_span(const std::string& file,
                                                                  const std::string& dir) {
  auto r = run_command({"tshark", "-r", file, "-T", "fields", "-e", "frame.time_epoch"}, dir, 30s);
  if (r.exit_code != 0) return std::nullopt;
  std::int64_t first = 0;
  std::int64_t last = 0;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto t = static_cast<std::int64_t>(std::stod(line));
    if (first == 0 || t < first) first = t;
    last = std::max(last, t);
  }
  return std::pair{first, last};
}

// Both address families; absent ones are 0.0.0.0 / "::".
const std::string kTemplate =
    "%IPV4_SRC_ADDR %IPV4_DST_ADDR %IPV6_SRC_ADDR %IPV6_DST_ADDR %L4_SRC_PORT %L4_DST_PORT "
    "%PROTOCOL %IN_PKTS %IN_BYTES %FLOW_START_MILLISECONDS %FLOW_END_MILLISECONDS "
    "%FIRST_SWITCHED %LAST_SWITCHED";

TEST(AppProbeCorpus, HostileDirectoryIsSurvivedAndCounted) {
  if (!have_command("tshark") || !have_command("capinfos")) {
    GTEST_SKIP() << "tshark/capinfos are not installed (Debian: tshark)";
  }
  TempDir dir("corpus");
  const auto frames = capinfos_frames(dir.path());
  ASSERT_TRUE(frames) << "capinfos failed";
  const auto expected = tshark_directions(kWellFormed, dir.path());
  ASSERT_TRUE(expected) << "tshark failed";
  ASSERT_FALSE(expected->empty());
  const auto span = capture_span(kWellFormed, dir.path());
  ASSERT_TRUE(span);

  // The default template's FIRST_SWITCHED is sysUpTime-based and cannot place these flows
  // (see FlowTimesStayRightWhenTheDirectoryGoesBackInTime): -T adds the absolute times.
  auto probe =
      start_flowsec({"-i", kCorpus, "-P", "-", "-D", "j", "-T", kTemplate}, dir.path(), "probe");
  EXPECT_EQ(probe->wait(30s), 0) << probe->log();
  const std::string err = probe->log();
  expect_no_sanitizer_report(err);
  const auto counts = probe_log_counts(err);
  ASSERT_TRUE(counts) << "no final probe line:\n" << err;
  EXPECT_GT(counts->malformed, 0u) << err;
  EXPECT_EQ(counts->packets + counts->non_ip + counts->malformed, *frames)
      << "every frame capinfos counts is accounted for (IP, non-IP or malformed)";

  // The well-formed capture's flows: records inside its time span with its endpoints.
  std::map<DirKey, std::uint64_t> got;
  std::map<DirKey, int> records_per_direction;
  for (const auto& r : parse_json_lines(probe->out())) {
    ASSERT_TRUE(r.is_object());
    const auto first =
        static_cast<std::int64_t>(as_u64(r.value("FLOW_START_MILLISECONDS", json(0)))) / 1000;
    if (first < span->first || first > span->second) continue;
    const bool v6 = r.value("IPV6_SRC_ADDR", std::string("::")) != "::";
    DirKey key{static_cast<int>(as_u64(r.value("PROTOCOL", json(0)))),
               r.value(v6 ? "IPV6_SRC_ADDR" : "IPV4_SRC_ADDR", std::string()),
               static_cast<int>(as_u64(r.value("L4_SRC_PORT", json(0)))),
               r.value(v6 ? "IPV6_DST_ADDR" : "IPV4_DST_ADDR", std::string()),
               static_cast<int>(as_u64(r.value("L4_DST_PORT", json(0))))};
    got[key] += as_u64(r.value("IN_PKTS", json(0)));
    ++records_per_direction[key];
  }
  std::string seen;
  for (const auto& [key, n] : got) {
    const auto& [proto, src, sport, dst, dport] = key;
    seen += std::to_string(proto) + " " + src + ":" + std::to_string(sport) + " -> " + dst + ":" +
            std::to_string(dport) + " " + std::to_string(n) + "\n";
  }
  for (const auto& [key, n] : *expected) {
    const auto& [proto, src, sport, dst, dport] = key;
    const std::string name = std::to_string(proto) + " " + src + ":" + std::to_string(sport) +
                             " -> " + dst + ":" + std::to_string(dport);
    EXPECT_EQ(records_per_direction[key], 1) << name << "\nflowsec's flows:\n" << seen;
    EXPECT_EQ(got[key], n) << name << " frames";
  }
  EXPECT_EQ(got.size(), expected->size()) << "flowsec's flows in the capture's time span:\n"
                                          << seen;
  std::printf(
      "corpus: %llu frames (capinfos); flowsec %llu IP, %llu non-IP, %llu malformed; "
      "well-formed capture: %zu directions, tshark %zu\n",
      static_cast<unsigned long long>(*frames), static_cast<unsigned long long>(counts->packets),
      static_cast<unsigned long long>(counts->non_ip),
      static_cast<unsigned long long>(counts->malformed), got.size(), expected->size());
}

// FIRST_SWITCHED/LAST_SWITCHED (nProbe's default template; IE 22/21, sysUpTime-based)
// rendered by the JSON output must be the flow's first/last packet time, whatever other
// files of the directory came before: the well-formed capture's flows (found by their
// FLOW_START_MILLISECONDS inside its tshark time span) must have FIRST_SWITCHED and
// LAST_SWITCHED inside that span too. The corpus' files are not in time order (2010,
// 2005, 2002, 2018, ..., 2015), as directories of captures often are not.
TEST(AppProbeCorpus, FlowTimesStayRightWhenTheDirectoryGoesBackInTime) {
  if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed (Debian: tshark)";
  TempDir dir("corpus-times");
  const auto span = capture_span(kWellFormed, dir.path());
  ASSERT_TRUE(span);
  auto probe = start_flowsec({"-i", kCorpus, "--no-l7", "-P", "-", "-D", "j", "-T", kTemplate},
                             dir.path(), "probe");
  EXPECT_EQ(probe->wait(30s), 0) << probe->log();
  int flows = 0;
  int wrong = 0;
  std::string example;
  for (const auto& r : parse_json_lines(probe->out())) {
    const auto start_ms = as_u64(r.value("FLOW_START_MILLISECONDS", json(0)));
    const auto first = static_cast<std::int64_t>(start_ms / 1000);
    if (first < span->first || first > span->second) continue;
    ++flows;
    const auto first_switched =
        static_cast<std::int64_t>(as_u64(r.value("FIRST_SWITCHED", json(0))));
    const auto last_switched = static_cast<std::int64_t>(as_u64(r.value("LAST_SWITCHED", json(0))));
    if (first_switched < span->first || first_switched > span->second ||
        last_switched < span->first || last_switched > span->second) {
      if (++wrong == 1) example = r.dump();
    }
  }
  EXPECT_GT(flows, 0);
  EXPECT_EQ(wrong, 0) << wrong << " of " << flows
                      << " flows have FIRST/LAST_SWITCHED outside the capture's time span ["
                      << span->first << ", " << span->second << "], e.g. " << example;
}

// Per connection (its two endpoints, in either order), the whole seconds of its first and
// last packet as tshark reads the capture (frame.time_epoch, cut at the decimal point):
// what the flow's FIRST_SWITCHED and LAST_SWITCHED must say.
std::map<std::string, std::pair<std::int64_t, std::int64_t>> connection_seconds(
    const std::string& file, const std::string& dir) {
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> out;
  auto r = run_command(
      {"tshark",      "-r", file,          "-T", "fields",          "-E", "occurrence=f", "-e",
       "ip.src",      "-e", "ip.dst",      "-e", "tcp.srcport",     "-e", "udp.srcport",  "-e",
       "tcp.dstport", "-e", "udp.dstport", "-e", "frame.time_epoch"},
      dir, 30s);
  if (r.exit_code != 0) return out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string v; std::getline(fields, v, '\t');) f.push_back(v);
    if (f.size() != 7 || f[0].empty()) continue;  // not IPv4
    const std::string a = f[0] + ":" + (f[2].empty() ? f[3] : f[2]);
    const std::string b = f[1] + ":" + (f[4].empty() ? f[5] : f[4]);
    const std::int64_t sec = std::stoll(f[6].substr(0, f[6].find('.')));
    auto [it, fresh] = out.try_emplace(a < b ? a + " " + b : b + " " + a, sec, sec);
    it->second.first = std::min(it->second.first, sec);
    it->second.second = std::max(it->second.second, sec);
  }
  return out;
}

// FIRST_SWITCHED/LAST_SWITCHED in the probe's JSON output (nProbe's default template,
// sysUpTime-based, rendered as epoch seconds) are the seconds of the flow's first and last
// packet, as tshark reads them, for every record: in the well-formed capture, and in one
// written here whose flows start in the last 50 ms of a second and end in the first 50 ms
// of the next, exported seconds later. Rendering once truncated the uptime difference and
// put such flows a second late.
TEST(AppProbeCorpus, FlowTimesAreTheSecondsOfTheirPacketsAsTsharkReadsThem) {
  if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed (Debian: tshark)";
  TempDir dir("probe-times");
  const std::string straddling = dir.path() + "/straddling.pcap";
  {
    PcapWriter w(straddling);
    const std::vector<std::byte> payload(16, std::byte{0x42});
    for (std::uint16_t port = 1000; port < 1020; ++port) {
      w.write_udp_at(payload, port, 1700000000, 950000 + port);
      w.write_udp_at(payload, port, 1700000001, 10000 + port);
    }
    w.write_udp_at(payload, 999, 1700000004, 500000);  // a later flow: export time moves on
  }
  for (const std::string& file : {kWellFormed, straddling}) {
    const auto truth = connection_seconds(file, dir.path());
    ASSERT_FALSE(truth.empty()) << file << ": tshark read no IPv4 packet";
    auto probe = start_flowsec({"-i", file, "--no-l7", "-P", "-", "-D", "j"}, dir.path(), "probe");
    EXPECT_EQ(probe->wait(30s), 0) << probe->log();
    int records = 0;
    for (const auto& r : parse_json_lines(probe->out())) {
      const std::string a = r.value("IPV4_SRC_ADDR", std::string()) + ":" +
                            std::to_string(as_u64(r.value("L4_SRC_PORT", json(0))));
      const std::string b = r.value("IPV4_DST_ADDR", std::string()) + ":" +
                            std::to_string(as_u64(r.value("L4_DST_PORT", json(0))));
      const auto it = truth.find(a < b ? a + " " + b : b + " " + a);
      if (it == truth.end()) continue;  // not a connection tshark sees with ports (ICMP)
      ++records;
      EXPECT_EQ(as_u64(r.value("FIRST_SWITCHED", json(0))),
                static_cast<std::uint64_t>(it->second.first))
          << file << ": " << r.dump();
      EXPECT_EQ(as_u64(r.value("LAST_SWITCHED", json(0))),
                static_cast<std::uint64_t>(it->second.second))
          << file << ": " << r.dump();
    }
    EXPECT_GT(records, 0) << file << ":\n" << probe->out();
  }
}

// The malformed packets by reason, on --metrics. The probe stays up after its input ends
// while its export waits for a collector (SPEC §4: shutdown delivers everything), which
// gives the scrape a window; then a collector appears and the probe exits 0.
TEST(AppProbeCorpus, MetricsCountMalformedPacketsByReason) {
  if (!have_command("capinfos")) GTEST_SKIP() << "capinfos is not installed (Debian: tshark)";
  TempDir dir("corpus-metrics");
  const auto frames = capinfos_frames(dir.path());
  ASSERT_TRUE(frames) << "capinfos failed";
  const auto metrics = free_tcp_port();
  const auto export_port = free_tcp_port();
  auto probe = start_flowsec(
      {"-i", kCorpus, "--no-l7", "-n", "tcp://127.0.0.1:" + std::to_string(export_port),
       "--shutdown-timeout", "25", "--metrics", "127.0.0.1:" + std::to_string(metrics)},
      dir.path(), "probe");
  std::string text;
  auto accounted = [&] {
    text = http_get(metrics).value_or("");
    return metric_sum(text, "flowsec_probe_packets_total").value_or(0) +
           metric_sum(text, "flowsec_probe_non_ip_packets_total").value_or(0) +
           metric_sum(text, "flowsec_probe_malformed_packets_total").value_or(0);
  };
  EXPECT_TRUE(wait_for([&] { return accounted() >= static_cast<double>(*frames); }, 20s, 200ms))
      << text << probe->log();
  // flowsec_probe_malformed_packets_total{reason="R"} N
  const std::regex sample(
      "(^|\n)flowsec_probe_malformed_packets_total[{]reason=\"([a-z0-9_]+)\"[}] ([0-9]+)");
  std::map<std::string, std::uint64_t> by_reason;
  for (std::sregex_iterator it(text.begin(), text.end(), sample), end; it != end; ++it) {
    by_reason[(*it)[2].str()] += std::stoull((*it)[3].str());
  }
  EXPECT_FALSE(by_reason.empty()) << text;

  // A collector for the export; the probe delivers and exits 0.
  auto collector =
      start_flowsec({"-i", "none", "-3", "tcp://127.0.0.1:" + std::to_string(export_port), "-P",
                     dir / "out", "-D", "j", "-F", "1"},
                    dir.path(), "collector");
  ASSERT_GT(collector->listen_port(), 0) << collector->log();
  EXPECT_EQ(probe->wait(35s), 0) << probe->log();
  EXPECT_EQ(collector->stop(), 0) << collector->log();
  EXPECT_FALSE(json_values(dir / "out").empty());
  expect_no_sanitizer_report(probe->log());

  const auto counts = probe_log_counts(probe->log());
  ASSERT_TRUE(counts) << probe->log();
  std::uint64_t sum = 0;
  std::string reasons;
  for (const auto& [reason, n] : by_reason) {
    sum += n;
    reasons += reason + "=" + std::to_string(n) + " ";
  }
  EXPECT_EQ(sum, counts->malformed) << "metrics by reason vs the log line";
  std::printf("malformed by reason: %s\n", reasons.c_str());
}

}  // namespace
}  // namespace flowsec::test::app
