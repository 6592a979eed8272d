// Integration: real vendors' export captures (tests/data/export/, see its README)
// replayed to the flowsec binary's UDP listeners; the number of records flowsec writes
// (-P DIR -D j) equals the number of data records tshark 4.0 decodes in the capture.
//
// Replay: the UDP payloads (tests/support/udp_datagrams.hpp), in capture order, each
// from a socket of its own per original exporter (source address and port), so the
// template state per exporter holds as it did on the wire and templates arrive before
// their data as in the capture. Exporters that spoke IPv6 are replayed over IPv6
// loopback to flowsec's [::1] listener (EXPORTER_IPV6_ADDRESS "::1"), the others over
// 127.0.0.1.
//
// tshark's count (the expected value), per kind of capture:
//  - NetFlow v5: sum of the header's record count,
//      tshark -r F -d udp.port==P,cflow -T fields -e cflow.count
//  - NetFlow v9 / IPFIX: sum of K over the data set lines "FlowSet N [id=T] (K flows)"
//    (v9) and "Set N [id=T] (K flows)" (IPFIX) — data and options data records —
//      tshark -r F -d udp.port==P,cflow -V
//  - sFlow v5: flow samples (sample type 1) and expanded flow samples (3); counter
//    samples (2, 4) are not flow records,
//      tshark -r F -d udp.port==6343,sflow -T fields -e sflow_245.sampletype
// Skips with a printed reason when tshark is missing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/flowsec_process.hpp"
#include "support/transport_harness.hpp"
#include "support/udp_datagrams.hpp"

namespace flowsec::test {
namespace {

using namespace std::chrono_literals;

enum class Kind { v5, sets, sflow };

struct Case {
  const char* name;  // gtest name
  const char* file;  // under tests/data/export/
  int port;          // UDP port the capture was sent to
  Kind kind;
  const char* what;
};

const Case kCases[] = {
    {"AkvoradoNetflowV5", "akvorado/netflow_nfv5.pcap", 9990, Kind::v5,
     "NetFlow v5, one datagram of 29 records"},
    {"PmacctV9TwoExporters", "pmacct/102-NFv9-CISCO-f2rd-pretag-sampling-reload_traffic-00.pcap",
     9991, Kind::sets, "Cisco NetFlow v9, two exporters (domains), two templates each"},
    {"AkvoradoV9OptionsTemplate",
     "akvorado-merged/netflow_multiplesamplingrates-options-template+data.pcap", 2055, Kind::sets,
     "NetFlow v9 options template then options data (sampling rates)"},
    {"PmacctIpfixIpv6OptionsReassignment",
     "pmacct/112-IPFIXv10-CISCO-options-map-reassignment_traffic-00.pcap", 9991, Kind::sets,
     "Cisco IPFIX over IPv6: options templates, template ids re-assigned mid-capture"},
    {"PmacctIpfixIpv6Sampling", "pmacct/104-IPFIXv10-IPv6-CISCO-sampling_option_traffic-00.pcap",
     9992, Kind::sets, "Cisco IPFIX over IPv6 with a sampling options record"},
    {"TcpdumpSflowIpv6", "tcpdump/sflow-print-v6.pcap", 6343, Kind::sflow,
     "sFlow v5 over IPv6, two exporters, flow and counter samples"},
    {"TcpdumpSflowExpanded", "tcpdump/sflow_expanded.pcap", 6343, Kind::sflow,
     "sFlow v5 expanded flow sample"},
};

// tshark's number of flow records in the capture (see the file comment); nullopt if
// tshark failed.
std::optional<std::uint64_t> tshark_records(const Case& c, const std::string& path,
                                            const TempDir& dir) {
  const std::string decode_as =
      "udp.port==" + std::to_string(c.port) + (c.kind == Kind::sflow ? ",sflow" : ",cflow");
  std::vector<std::string> argv{"tshark", "-r", path, "-d", decode_as};
  switch (c.kind) {
    case Kind::v5:
      argv.insert(argv.end(), {"-T", "fields", "-e", "cflow.count"});
      break;
    case Kind::sets:
      argv.emplace_back("-V");
      break;
    case Kind::sflow:
      argv.insert(argv.end(), {"-T", "fields", "-e", "sflow_245.sampletype"});
      break;
  }
  const auto r = run_command(argv, dir.path(), 30s);
  if (r.exit_code != 0) return std::nullopt;
  std::uint64_t n = 0;
  if (c.kind == Kind::sets) {
    static const std::regex set_line(R"((^|\n) +(Flow)?Set \d+ \[id=\d+\] \((\d+) flows\))");
    for (std::sregex_iterator it(r.out.begin(), r.out.end(), set_line), end; it != end; ++it) {
      n += std::stoull((*it)[3].str());
    }
    return n;
  }
  // One line per datagram; several values are comma-separated.
  std::string text = r.out;
  for (char& ch : text) ch = ch == ',' ? '\n' : ch;
  std::istringstream in(text);
  for (std::string v; std::getline(in, v);) {
    if (v.empty()) continue;
    if (c.kind == Kind::v5) {
      n += std::stoull(v);
    } else {
      n += (v == "1" || v == "3") ? 1 : 0;
    }
  }
  return n;
}

// gtest prints the case by name (ctest names stay readable).
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.file;
}

class CollectorCaptures : public ::testing::TestWithParam<Case> {};

TEST_P(CollectorCaptures, RecordsWrittenEqualTsharksCount) {
  if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed (Debian: tshark)";
  const Case& c = GetParam();
  const std::string path = std::string(FLOWSEC_TEST_DATA) + "/export/" + c.file;
  TempDir dir(std::string("captures-") + c.name);

  const auto expected = tshark_records(c, path, dir);
  ASSERT_TRUE(expected) << "tshark failed on " << path;
  ASSERT_GT(*expected, 0u) << "tshark decodes no record in " << path << ": not a useful case";

  const auto datagrams = read_udp_datagrams(path);
  ASSERT_FALSE(datagrams.empty());

  const std::string out_dir = dir / "out";
  const std::uint16_t metrics_port = free_port();
  FlowsecProcess flowsec(
      {"-i", "none", "-n", "none", "-3", "udp://127.0.0.1:0", "-3", "udp://[::1]:0", "-P", out_dir,
       "-D", "j", "--metrics", "127.0.0.1:" + std::to_string(metrics_port)},
      dir.path());
  const auto ports = flowsec.listen_ports(2);
  ASSERT_EQ(ports.size(), 2u) << flowsec.log();

  // One socket per original exporter (address and port), in order of appearance.
  std::map<std::pair<std::string, std::uint16_t>, std::unique_ptr<UdpSender>> senders;
  bool any_v6 = false;
  bool any_v4 = false;
  for (const auto& d : datagrams) {
    const bool v6 = d.src.is_v6();
    (v6 ? any_v6 : any_v4) = true;
    auto& sender = senders[{d.src.to_string(), d.src_port}];
    if (!sender) sender = std::make_unique<UdpSender>(v6);
    ASSERT_TRUE(sender->send(d.payload, ports[v6 ? 1 : 0]));
  }

  // Everything received (flowsec's own counter says when to stop it, nothing more).
  const double sent = static_cast<double>(datagrams.size());
  std::string last_metrics;
  ASSERT_TRUE(eventually(
      [&] {
        const auto m = http_get(metrics_port);
        if (m) last_metrics = *m;
        return m && metric_sum(*m, "flowsec_messages_received_total") == sent;
      },
      10000ms))
      << last_metrics << flowsec.log();
  // Nothing in these captures is malformed for tshark, nor for flowsec.
  EXPECT_EQ(metric_sum(last_metrics, "flowsec_decode_errors_total").value_or(0), 0) << last_metrics;

  const auto code = flowsec.terminate();
  ASSERT_EQ(code, 0) << flowsec.exit_description() << "\n" << flowsec.log();
  EXPECT_EQ(files_ending_in(out_dir, ".tmp"), 0u);

  std::size_t bad = 0;
  const auto records = json_records(out_dir, &bad);
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(records.size(), *expected) << c.file << " (" << c.what << "): flowsec vs tshark";
  std::size_t from_v6 = 0;
  std::size_t from_v4 = 0;
  for (const auto& r : records) {
    from_v6 += r.count("EXPORTER_IPV6_ADDRESS") && r.at("EXPORTER_IPV6_ADDRESS") == "::1";
    from_v4 += r.count("EXPORTER_IPV4_ADDRESS") && r.at("EXPORTER_IPV4_ADDRESS") == "127.0.0.1";
  }
  EXPECT_EQ(from_v6 + from_v4, records.size()) << "every record names its exporter";
  if (!any_v6) {
    EXPECT_EQ(from_v6, 0u);
  }
  if (!any_v4) {
    EXPECT_EQ(from_v4, 0u);
  }
  std::printf("%s: %zu datagrams from %zu exporters, tshark %llu records, flowsec %zu\n", c.file,
              datagrams.size(), senders.size(), static_cast<unsigned long long>(*expected),
              records.size());
}

INSTANTIATE_TEST_SUITE_P(Export, CollectorCaptures, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           return std::string(p.param.name);
                         });

}  // namespace
}  // namespace flowsec::test
