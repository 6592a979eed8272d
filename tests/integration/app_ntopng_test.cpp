// The ntopng output wired into the real flowsec binary (SPEC §6 `--ntopng`), in the three
// modes, against a subscriber that reads messages as ntopng does
// (tests/support/ntopng_subscriber.hpp: header v4, zlib, JSON, message ids):
//  - probe, nProbe's NAT set-up: the subscriber binds as a CURVE server (ntopng
//    `-i tcp://*:PORT c` with its secret key); `flowsec -i PCAP -T @NTOPNG@ --ntopng
//    zmq://127.0.0.1:PORT --zmq-probe-mode --zmq-encryption-key PUBLIC` connects out, exits
//    0, and the flows' IN/OUT packets and bytes add up to the capture's IP packets and bytes
//    as tshark counts them, one flow per connection;
//  - the same probe with another key pair's public key: the subscriber gets nothing and
//    flowsec says, and exits 1, that the flows were not delivered;
//  - collector and proxy in one: `-3 tcp://... -n udp://... --zmq tcp://127.0.0.1:PORT`
//    (nProbe's alias; flowsec binds, the subscriber connects); softflowd's IPFIX stream sent over
//    TCP → the subscriber's flows equal ipfixDump's reading of that stream (records, octets,
//    packets), the re-export still reaches its UDP collector, and "counter" messages
//    report the collector's input: the stream's bytes;
//  - start-up errors: a key that is not 40 Z85 characters, --zmq-* without --ntopng.
// Peers: tshark, ipfixDump (libfixbuf-tools) — skipped with a printed reason if absent.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/ipfix_dump.hpp"
#include "support/ntopng_subscriber.hpp"
#include "support/probe_process.hpp"

namespace flowsec::test::probe {
namespace {

const char* const kTrace = "probe/whatsapp_login_chat.pcap";
const char* const kStream = "ipfix/softflowd_1kxun_tcp.ipfix";

std::uint64_t number(const nlohmann::json& flow, const char* key) {
  const auto it = flow.find(key);
  return it != flow.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

// IN + OUT packets and bytes of every flow (ntopng keys: 1 IN_BYTES, 2 IN_PKTS,
// 23 OUT_BYTES, 24 OUT_PKTS).
Totals flow_totals(const std::vector<nlohmann::json>& flows) {
  Totals t;
  for (const auto& f : flows) {
    t.records += 1;
    t.bytes += number(f, "1") + number(f, "23");
    t.packets += number(f, "2") + number(f, "24");
  }
  return t;
}

TEST(AppNtopng, ProbeConnectsWithCurveAndDeliversTheCapture) {
  if (!have_command("tshark")) GTEST_SKIP() << "tshark is not installed";
  TempDir tmp("app-ntopng-probe");
  const std::string pcap = data_path(kTrace);
  const TsharkTruth truth = tshark_truth(pcap);
  ASSERT_TRUE(truth.ok) << truth.error;

  const CurveKeyPair ntopng_keys = curve_keypair();
  NtopngSubscriber ntopng(
      NtopngSubscriberOptions::bind_to("tcp://127.0.0.1:*", ntopng_keys.secret_key));
  ASSERT_NE(ntopng.port(), 0);
  ChildProcess probe({flowsec_binary(), "-i", pcap, "-T", "@NTOPNG@", "--ntopng",
                      "zmq://127.0.0.1:" + std::to_string(ntopng.port()), "--zmq-probe-mode",
                      "--zmq-encryption-key", ntopng_keys.public_key},
                     "", tmp / "probe.log");

  const std::size_t flows = connection_count(truth);
  EXPECT_TRUE(ntopng.wait_for_flows(flows, 60s)) << ntopng.flows().size() << " of " << flows;
  ASSERT_TRUE(probe.wait_ended(60s)) << slurp_file(tmp / "probe.log");
  EXPECT_EQ(probe.exit_code(), 0) << probe.exit_description() << "\n"
                                  << slurp_file(tmp / "probe.log");
  ntopng.receive_for(300ms);  // nothing more may come

  EXPECT_TRUE(ntopng.problems().empty()) << ntopng.problems().front();
  const Totals got = flow_totals(ntopng.flows());
  EXPECT_EQ(got.records, flows);
  EXPECT_EQ(got.packets, truth.all.packets);
  EXPECT_EQ(got.bytes, truth.all.bytes);
  for (const auto& f : ntopng.flows()) {
    // What ntopng needs at least (shared/data/README.md): ports, protocol, version, times.
    for (const char* key : {"7", "11", "4", "60", "22", "21"}) {
      EXPECT_TRUE(f.contains(key)) << "flow without field " << key << ": " << f.dump();
    }
    EXPECT_TRUE(f.contains("57590")) << "no L7_PROTO: " << f.dump();
  }
  ASSERT_FALSE(ntopng.messages().empty());
  EXPECT_EQ(ntopng.messages().front().flags & 0x04, 0x04) << "zlib by default";
}

TEST(AppNtopng, WrongCurveKeyDeliversNothingAndSaysSo) {
  TempDir tmp("app-ntopng-wrong-key");
  const CurveKeyPair ntopng_keys = curve_keypair();
  const CurveKeyPair other = curve_keypair();
  NtopngSubscriber ntopng(
      NtopngSubscriberOptions::bind_to("tcp://127.0.0.1:*", ntopng_keys.secret_key));
  ChildProcess probe({flowsec_binary(), "-i", data_path(kTrace), "--ntopng",
                      "zmq://127.0.0.1:" + std::to_string(ntopng.port()), "--zmq-probe-mode",
                      "--zmq-encryption-key", other.public_key, "--shutdown-timeout", "2"},
                     "", tmp / "probe.log");
  ntopng.wait_until([&] { return !probe.running(); }, 60s);
  ASSERT_TRUE(probe.wait_ended(30s));
  ntopng.receive_for(300ms);
  EXPECT_TRUE(ntopng.messages().empty()) << ntopng.messages().size() << " messages got through";
  EXPECT_EQ(probe.exit_code(), 1) << probe.exit_description();
  EXPECT_NE(slurp_file(tmp / "probe.log").find("not delivered"), std::string::npos)
      << slurp_file(tmp / "probe.log");
}

TEST(AppNtopng, CollectorAndProxyPublishWhatTheyReceive) {
  if (!have_command("ipfixDump")) GTEST_SKIP() << "ipfixDump (libfixbuf-tools) is not installed";
  TempDir tmp("app-ntopng-collector");
  const std::string stream = data_path(kStream);
  const auto truth = ipfix_dump(stream, tmp.path());
  ASSERT_TRUE(truth.has_value());

  UdpReceiver reexport;
  const std::uint16_t zmq_port = free_tcp_port();
  FlowsecProcess flowsec({"-i", "none", "-3", "tcp://127.0.0.1:0", "-n",
                          "udp://127.0.0.1:" + std::to_string(reexport.port()), "--zmq",
                          "tcp://127.0.0.1:" + std::to_string(zmq_port)},
                         tmp.path());
  const std::uint16_t port = flowsec.listen_port();
  ASSERT_NE(port, 0) << flowsec.log();
  NtopngSubscriber ntopng(
      NtopngSubscriberOptions::connect_to("tcp://127.0.0.1:" + std::to_string(zmq_port)));
  ASSERT_TRUE(send_file_over_tcp(stream, port));

  EXPECT_TRUE(ntopng.wait_for_flows(truth->data_records, 30s))
      << ntopng.flows().size() << " of " << truth->data_records << "\n"
      << flowsec.log();
  // The counter topic reports the collector's input: every byte of the stream.
  const auto stream_bytes = std::filesystem::file_size(stream);
  EXPECT_TRUE(ntopng.wait_until(
      [&] {
        return !ntopng.counters().empty() &&
               number(ntopng.counters().back(), "ifInOctets") == stream_bytes;
      },
      15s))
      << (ntopng.counters().empty() ? "no counter message" : ntopng.counters().back().dump());
  EXPECT_EQ(flowsec.stop(), 0) << flowsec.log();

  EXPECT_TRUE(ntopng.problems().empty()) << ntopng.problems().front();
  const Totals got = flow_totals(ntopng.flows());
  EXPECT_EQ(got.records, truth->data_records);
  EXPECT_EQ(got.bytes, truth->octets);
  EXPECT_EQ(got.packets, truth->packets);
  ASSERT_FALSE(ntopng.counters().empty());
  EXPECT_EQ(ntopng.counters().back().value("ifName", ""), "collector");
  EXPECT_FALSE(reexport.drain().empty()) << "the re-export got nothing";
}

TEST(AppNtopng, StartUpErrorsNameTheOption) {
  TempDir tmp("app-ntopng-errors");
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"-i", "none", "-3", "udp://0", "--ntopng", "zmq://127.0.0.1:5556", "--zmq-encryption-key",
        "short"},
       "--zmq-encryption-key"},
      {{"-i", "none", "-3", "udp://0", "--ntopng", "udp://127.0.0.1:5556"}, "--ntopng"},
      {{"-i", "none", "-3", "udp://0", "-P", "-", "--zmq-probe-mode"}, "--ntopng"},
  };
  int n = 0;
  for (const auto& c : cases) {
    FlowsecProcess p(c.args, tmp.path(), "case" + std::to_string(n++));
    const auto code = p.wait(20s);
    ASSERT_TRUE(code.has_value());
    EXPECT_NE(*code, 0);
    EXPECT_NE(p.log().find(c.expected), std::string::npos) << p.log();
  }
}

}  // namespace
}  // namespace flowsec::test::probe
