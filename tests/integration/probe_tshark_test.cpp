// Probe mode export checked by an independent decoder (SPEC §2 -V/-T, §4, §5): the real
// flowsec binary reads a pcap and exports NetFlow v9 / IPFIX over UDP to a socket in this
// test; the datagrams are written into a pcap (tests/support/pcap_writer.hpp) and tshark
// 4.0 dissects them:
//   tshark -r out.pcap -d udp.port==P,cflow -V          → no "Malformed", no expert
//                                                          warning/error in any record
//   tshark -r out.pcap -d udp.port==P,cflow -q -z expert → no "Warns (N)"/"Errors (N)"
//                                                          section
// and the values tshark reads from every flow record (SrcAddr, DstAddr, SrcPort, DstPort,
// Protocol, Packets, Octets and, with OUT_ fields, Post Packets/Post Octets) add up, per
// direction, to what tshark itself counts in the input capture:
//   tshark -r in.pcap -T fields -E occurrence=f -e ip.src ... -e ip.len -e ipv6.plen
// (IP bytes: ip.len, or 40 + ipv6.plen). Templates: nProbe's default (one record per
// direction), @NTOPNG@ (biflow records with OUT_ counters, IPv4 and IPv6 in one template,
// ntop enterprise fields) over v9 and IPFIX, and ntop enterprise fields L7_PROTO,
// CLIENT_NW_LATENCY_MS, SERVER_NW_LATENCY_MS over IPFIX, whose values are checked against
// nDPI's published result and the handshake times tshark reads from the capture.
// Peer: tshark; the test skips with a printed reason without it.
#include <gtest/gtest.h>

#include <cmath>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/pcap_writer.hpp"
#include "support/probe_process.hpp"

namespace flowsec::test::probe {
namespace {

// One flow record as tshark -V prints it ("Flow N" and the lines indented below it).
struct TsharkRecord {
  std::map<std::string, std::string> fields;  // first occurrence of each label
  std::string src4, dst4, src6, dst6;         // SrcAddr/DstAddr, IPv4 and IPv6 elements
  std::string src, dst;                       // the pair IPVersion (or presence) selects
  std::string get(const std::string& k) const {
    auto it = fields.find(k);
    return it == fields.end() ? std::string() : it->second;
  }
  std::uint64_t num(const std::string& k) const {
    const std::string v = get(k);
    return v.empty() ? 0 : std::stoull(v);
  }
};

std::size_t indent_of(const std::string& line) {
  return line.find_first_not_of(' ');
}

std::vector<TsharkRecord> parse_records(const std::string& text) {
  std::vector<TsharkRecord> out;
  static const std::regex kFlow(R"(^ +Flow \d+$)");
  std::istringstream in(text);
  std::string line;
  TsharkRecord* cur = nullptr;
  std::size_t flow_indent = 0;
  while (std::getline(in, line)) {
    if (std::regex_match(line, kFlow)) {
      out.emplace_back();
      cur = &out.back();
      flow_indent = indent_of(line);
      continue;
    }
    if (cur == nullptr) continue;
    if (line.empty() || indent_of(line) <= flow_indent) {
      cur = nullptr;
      continue;
    }
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(indent_of(line), colon - indent_of(line));
    const std::string value = line.substr(colon + 2);
    if (key == "SrcAddr" || key == "DstAddr") {
      const bool v6 = value.find(':') != std::string::npos;
      std::string& slot =
          key == "SrcAddr" ? (v6 ? cur->src6 : cur->src4) : (v6 ? cur->dst6 : cur->dst4);
      if (slot.empty()) slot = value;
      continue;
    }
    cur->fields.emplace(key, value);
  }
  for (auto& r : out) {
    const std::string version = r.get("IPVersion");
    const bool v6 = version == "6" || (version.empty() && r.src4.empty());
    r.src = v6 ? r.src6 : r.src4;
    r.dst = v6 ? r.dst6 : r.dst4;
  }
  return out;
}

// "TCP (6)" → 6
std::uint32_t protocol_number(const std::string& v) {
  const auto open = v.rfind('(');
  return open == std::string::npos ? 0 : static_cast<std::uint32_t>(std::stoul(v.substr(open + 1)));
}

struct Export {
  std::string pcap;               // input
  std::vector<std::string> args;  // extra flowsec arguments
  TsharkTruth truth;
  std::unique_ptr<UdpReceiver> rx;
  std::unique_ptr<ChildProcess> flowsec;
  std::string log;
  std::string dissected;              // tshark -V
  std::string expert;                 // tshark -z expert
  std::vector<TsharkRecord> records;  // every record, options records included
  std::vector<TsharkRecord> flows;    // the records with ports: the flow records
  std::size_t datagrams = 0;
  std::size_t netflow_pdus = 0;
};

class ProbeTshark : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed (apt-get install tshark)";
    ASSERT_FALSE(tmp_.path().empty());
  }

  // Runs every export in parallel, then has tshark dissect what each sent.
  void run_all(std::vector<Export>& exports) {
    for (std::size_t i = 0; i < exports.size(); ++i) {
      Export& e = exports[i];
      e.truth = truth_of(e.pcap);
      ASSERT_TRUE(e.truth.ok) << e.pcap << ": " << e.truth.error;
      e.rx = std::make_unique<UdpReceiver>(16 << 20, true);  // 16 MiB, root may exceed rmem_max
      ASSERT_NE(e.rx->port(), 0);
      e.log = tmp_ / ("flowsec" + std::to_string(i) + ".log");
      std::vector<std::string> argv{flowsec_binary(), "-i", e.pcap, "-n",
                                    "udp://127.0.0.1:" + std::to_string(e.rx->port())};
      argv.insert(argv.end(), e.args.begin(), e.args.end());
      e.flowsec = std::make_unique<ChildProcess>(argv, "", e.log);
    }
    std::vector<std::future<CommandResult>> dissections;
    for (std::size_t i = 0; i < exports.size(); ++i) {
      Export& e = exports[i];
      ASSERT_TRUE(e.flowsec->wait_ended(60s))
          << e.flowsec->command() << ": still running after 60 s";
      EXPECT_EQ(e.flowsec->exit_code(), 0)
          << e.flowsec->command() << ": " << e.flowsec->exit_description() << "\n"
          << slurp_file(e.log);
      const auto datagrams = e.rx->drain();
      e.datagrams = datagrams.size();
      ASSERT_GT(e.datagrams, 0u) << e.flowsec->command() << " sent nothing\n" << slurp_file(e.log);
      const std::string out = tmp_ / ("export" + std::to_string(i) + ".pcap");
      {
        PcapWriter w(out);
        for (const auto& d : datagrams) w.write_udp(Bytes(d.data(), d.size()), e.rx->port());
      }
      const std::string decode = " -d udp.port==" + std::to_string(e.rx->port()) + ",cflow";
      dissections.push_back(std::async(std::launch::async, [out, decode] {
        return run_shell("tshark -r " + shell_quote(out) + decode + " -V 2>/dev/null");
      }));
      dissections.push_back(std::async(std::launch::async, [out, decode] {
        return run_shell("tshark -r " + shell_quote(out) + decode + " -q -z expert 2>/dev/null");
      }));
    }
    // tshark runs in parallel (its start-up dominates); then the results, in order.
    for (std::size_t i = 0; i < exports.size(); ++i) {
      Export& e = exports[i];
      const auto v = dissections[2 * i].get();
      ASSERT_TRUE(v.ok()) << v.out;
      e.dissected = v.out;
      const auto x = dissections[2 * i + 1].get();
      ASSERT_TRUE(x.ok()) << x.out;
      e.expert = x.out;
      e.records = parse_records(e.dissected);
      for (const auto& r : e.records) {
        if (!r.get("SrcPort").empty()) e.flows.push_back(r);
      }
      e.netflow_pdus = count(e.dissected, "Cisco NetFlow/IPFIX\n");
    }
  }

  // tshark_truth(), once per input file.
  const TsharkTruth& truth_of(const std::string& pcap) {
    auto it = truths_.find(pcap);
    if (it == truths_.end()) it = truths_.emplace(pcap, tshark_truth(pcap)).first;
    return it->second;
  }

  static std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  // What every dissection must show, whatever the template.
  static void expect_clean(const Export& e, int version) {
    SCOPED_TRACE(e.flowsec->command());
    EXPECT_EQ(e.dissected.find("Malformed"), std::string::npos) << e.dissected;
    EXPECT_EQ(e.dissected.find("[Expert Info (Warning"), std::string::npos) << e.dissected;
    EXPECT_EQ(e.dissected.find("[Expert Info (Error"), std::string::npos) << e.dissected;
    EXPECT_EQ(e.expert.find("Errors ("), std::string::npos) << e.expert;
    EXPECT_EQ(e.expert.find("Warns ("), std::string::npos) << e.expert;
    EXPECT_EQ(e.netflow_pdus, e.datagrams) << "every datagram is one NetFlow/IPFIX message";
    EXPECT_EQ(count(e.dissected, "    Version: " + std::to_string(version) + "\n"), e.datagrams);
    // Sequence numbers as tshark reads them: v9 counts export packets (RFC 3954 §5.1),
    // IPFIX counts the data records sent before this message, options records included
    // (RFC 7011 §3.1). Messages are in send order (one exporter socket, loopback).
    static const std::regex kSeq(R"(\n    FlowSequence: (\d+)\n)");
    static const std::regex kFlow(R"(\n +Flow \d+\n)");
    std::uint64_t expected_seq = 0;
    std::size_t messages = 0;
    std::size_t at = e.dissected.find("Cisco NetFlow/IPFIX\n");
    while (at != std::string::npos) {
      const std::size_t next = e.dissected.find("Cisco NetFlow/IPFIX\n", at + 1);
      const std::string msg = e.dissected.substr(at, next == std::string::npos ? next : next - at);
      std::smatch m;
      ASSERT_TRUE(std::regex_search(msg, m, kSeq)) << msg;
      EXPECT_EQ(std::stoull(m[1]), expected_seq) << "message " << messages + 1;
      const auto records = static_cast<std::uint64_t>(std::distance(
          std::sregex_iterator(msg.begin(), msg.end(), kFlow), std::sregex_iterator()));
      expected_seq += version == 9 ? 1 : records;
      ++messages;
      at = next;
    }
    EXPECT_EQ(messages, e.datagrams);
  }

  // Adds the records up per direction, as tshark read them, and compares with tshark's
  // own per-direction counts of the input. `biflow`: records carry Post (OUT_) counters
  // for the server → client direction.
  static void expect_directions(const Export& e, bool biflow) {
    SCOPED_TRACE(e.flowsec->command());
    std::map<DirKey, Totals> got;
    std::size_t flow_records = 0;
    for (const auto& r : e.flows) {
      ++flow_records;
      DirKey k{r.src, r.dst, static_cast<std::uint32_t>(r.num("SrcPort")),
               static_cast<std::uint32_t>(r.num("DstPort")), protocol_number(r.get("Protocol"))};
      got[k].packets += r.num("Packets");
      got[k].bytes += r.num("Octets");
      if (biflow) {
        EXPECT_NE(r.get("Post Packets"), "") << "no OUT_PKTS in a biflow record";
        if (r.num("Post Packets") > 0) {
          DirKey rev{k.dst, k.src, k.dport, k.sport, k.proto};
          got[rev].packets += r.num("Post Packets");
          got[rev].bytes += r.num("Post Octets");
        }
      } else {
        EXPECT_EQ(r.get("Post Packets"), "");
      }
    }
    std::map<DirKey, Totals> expected = e.truth.directions;
    for (auto& [k, v] : expected) v.records = 0;
    ASSERT_EQ(got.size(), expected.size());
    for (const auto& [k, v] : expected) {
      auto it = got.find(k);
      ASSERT_NE(it, got.end()) << "no record for " << k;
      EXPECT_EQ(it->second.packets, v.packets) << k;
      EXPECT_EQ(it->second.bytes, v.bytes) << k;
    }
    // Biflow: one record per connection; split: one per direction.
    EXPECT_EQ(flow_records, biflow ? connection_count(e.truth) : expected.size());
  }

  TempDir tmp_{"probe-tshark"};
  std::map<std::string, TsharkTruth> truths_;
};

// IPv4 and IPv6 UDP; IPv4 TCP and UDP (incl. 0.0.0.0 → broadcast DHCP) and one IPv6 mDNS.
// google_ssl.pcap and http.pcapng (TCP) are in NtopEnterpriseFieldsOverIpfix.
const char* const kInputs[] = {"flow/dns-google-nsid.pcapng", "probe/whatsapp_login_chat.pcap"};

TEST_F(ProbeTshark, DefaultTemplateV9AndIpfix) {
  std::vector<Export> exports;
  for (const char* version : {"9", "10"}) {
    for (const char* in : kInputs) {
      Export e;
      e.pcap = data_path(in);
      e.args = {"-V", version};
      exports.push_back(std::move(e));
    }
  }
  run_all(exports);
  if (HasFatalFailure()) return;
  for (std::size_t i = 0; i < exports.size(); ++i) {
    const int version = i < std::size(kInputs) ? 9 : 10;
    expect_clean(exports[i], version);
    expect_directions(exports[i], false);
  }
}

// @NTOPNG@ names IPv4 and IPv6 addresses, OUT_ counters and ntop enterprise fields
// (IPFIX: PEN 35632; v9: nProbe's ids 57472 + n).
TEST_F(ProbeTshark, NtopngMacroV9AndIpfix) {
  std::vector<Export> exports;
  for (const char* version : {"9", "10"}) {
    Export e;
    e.pcap = data_path("flow/dns-google-nsid.pcapng");  // IPv4 and IPv6 in one template
    e.args = {"-V", version, "-T", "@NTOPNG@"};
    exports.push_back(std::move(e));
  }
  run_all(exports);
  if (HasFatalFailure()) return;
  for (std::size_t i = 0; i < exports.size(); ++i) {
    expect_clean(exports[i], i == 0 ? 9 : 10);
    expect_directions(exports[i], true);
    for (const auto& r : exports[i].flows) {
      // IPVersion follows the addresses tshark read.
      EXPECT_EQ(r.get("IPVersion"), r.src.find(':') == std::string::npos ? "4" : "6") << r.src;
      EXPECT_NE(r.get("Layer 7 protocol (numeric)"), "") << "L7_PROTO missing";
    }
  }
}

// ntop enterprise fields over IPFIX. Expected values, from peers:
//  - L7_PROTO: nDPI's result for http.pcapng is 7.126/HTTP.Google (tests/data/flow/README.md)
//    → application 126; for google_ssl.pcap nDPI's result file says proto 91/TLS with
//    126/Google by IP, so 126 (the application nDPI names TLS.Google) or 91 (TLS).
//  - CLIENT_NW_LATENCY_MS = (ACK − SYN-ACK)/2, SERVER_NW_LATENCY_MS = (SYN-ACK − SYN)/2,
//    from the first three frames' times (tshark -T fields -e frame.time_epoch), in ms,
//    truncated. google_ssl.pcap: 133.422 ms / 2 → 66, 33.732 ms / 2 → 16.
TEST_F(ProbeTshark, NtopEnterpriseFieldsOverIpfix) {
  const std::string templ =
      "%IPV4_SRC_ADDR %IPV4_DST_ADDR %L4_SRC_PORT %L4_DST_PORT %PROTOCOL %IN_PKTS %IN_BYTES "
      "%OUT_PKTS %OUT_BYTES %L7_PROTO %CLIENT_NW_LATENCY_MS %SERVER_NW_LATENCY_MS";
  std::vector<Export> exports;
  for (const char* in : {"flow/http.pcapng", "flow/google_ssl.pcap"}) {
    Export e;
    e.pcap = data_path(in);
    e.args = {"-V", "10", "-T", templ};
    exports.push_back(std::move(e));
  }
  run_all(exports);
  if (HasFatalFailure()) return;
  const std::set<std::uint64_t> l7_expected[] = {{126}, {91, 126}};
  for (std::size_t i = 0; i < exports.size(); ++i) {
    const Export& e = exports[i];
    expect_clean(e, 10);
    expect_directions(e, true);
    // The handshake, as tshark reads it from the input.
    const auto hs = run_shell("tshark -r " + shell_quote(e.pcap) +
                              " -c 3 -T fields -e frame.time_epoch -e tcp.flags.syn"
                              " -e tcp.flags.ack 2>/dev/null");
    ASSERT_TRUE(hs.ok()) << hs.out;
    std::istringstream in(hs.out);
    std::vector<std::int64_t> us;
    std::string line;
    while (std::getline(in, line)) {
      const auto f = split(line, '\t');
      ASSERT_EQ(f.size(), 3u) << line;
      const auto dot = f[0].find('.');
      us.push_back(std::stoll(f[0].substr(0, dot)) * 1'000'000 +
                   std::stoll(f[0].substr(dot + 1, 6)));
    }
    ASSERT_EQ(us.size(), 3u) << hs.out;
    const std::uint64_t client_ms = static_cast<std::uint64_t>((us[2] - us[1]) / 2 / 1000);
    const std::uint64_t server_ms = static_cast<std::uint64_t>((us[1] - us[0]) / 2 / 1000);
    ASSERT_EQ(e.flows.size(), 1u) << e.dissected;
    const TsharkRecord& r = e.flows[0];
    SCOPED_TRACE(e.pcap);
    EXPECT_EQ(l7_expected[i].count(r.num("Layer 7 protocol (numeric)")), 1u)
        << r.get("Layer 7 protocol (numeric)");
    EXPECT_EQ(r.get("Network RTT/2 client <-> nprobe"), std::to_string(client_ms) + "ms");
    EXPECT_EQ(r.get("Network RTT/2 nprobe <-> server"), std::to_string(server_ms) + "ms");
    // And the enterprise elements are announced as PEN 35632 (ntop) in the template.
    EXPECT_NE(e.dissected.find("PEN: ntop (35632)"), std::string::npos);
  }
}

}  // namespace
}  // namespace flowsec::test::probe
