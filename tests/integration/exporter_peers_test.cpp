// Peer check of the exporter (SPEC §4) in NetFlow v5, v9 and IPFIX:
//  (a) nfcapd (nfdump 1.7) receives our messages over real loopback UDP; `nfdump -I`
//      must count exactly the flows, packets and bytes we sent;
//  (b) tshark (Wireshark's independent dissector) reads the messages from a pcap written
//      with tests/support/pcap_writer.hpp: no malformed packet, no expert warning or error,
//      and the same record count, source addresses and byte totals.
// Flows come from FlowEncoder with nProbe's default template (no OUT_ fields: each flow
// is two records, SPEC §4). A missing peer skips the test with the reason printed.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "exporter/exporter.hpp"
#include "exporter/flow_encoder.hpp"
#include "support/flowsec_process.hpp"
#include "support/pcap_writer.hpp"
#include "transport/sender.hpp"

namespace flowsec::exporter {
namespace {

using test::CommandResult;

// A shell command (tests/support: sh -c, bounded); stderr joins stdout unless
// `with_stderr` is false.
CommandResult run(const std::string& cmd, bool with_stderr = true) {
  return test::run_shell(with_stderr ? cmd : cmd + " 2>/dev/null");
}

constexpr int kFlows = 150;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Totals {
  std::uint64_t records = 0, packets = 0, bytes = 0;
};

// kFlows TCP flows 10.0.1.x → 192.168.0.1:443 seen in the last minute; both directions.
std::vector<flow::FlowRecord> make_flows(std::int64_t now_ms, Totals& t) {
  std::vector<flow::FlowRecord> flows;
  for (int i = 0; i < kFlows; ++i) {
    flow::FlowRecord f;
    f.key.ip_version = 4;
    f.key.protocol = 6;
    f.key.src_addr = {10, 0, static_cast<std::uint8_t>(1 + i / 250),
                      static_cast<std::uint8_t>(1 + i % 250)};
    f.key.dst_addr = {192, 168, 0, 1};
    f.key.src_port = static_cast<std::uint16_t>(30000 + i);
    f.key.dst_port = 443;
    f.first_ns = (now_ms - 30'000 + i) * 1'000'000;
    f.last_ns = (now_ms - 1'000) * 1'000'000;
    f.in.packets = static_cast<std::uint64_t>(i + 1);
    f.in.bytes = static_cast<std::uint64_t>(100 * (i + 1));
    f.in.tcp_flags = 0x1b;
    f.out.packets = static_cast<std::uint64_t>(2 * i + 1);
    f.out.bytes = static_cast<std::uint64_t>(1000 * (i + 1));
    f.out.tcp_flags = 0x12;
    f.end_reason = flow::EndReason::end_of_flow;
    t.records += 2;
    t.packets += f.in.packets + f.out.packets;
    t.bytes += f.in.bytes + f.out.bytes;
    flows.push_back(f);
  }
  return flows;
}

// Runs the exporter over the given senders until shutdown reports delivery.
bool export_flows(asio::io_context& io, std::vector<std::unique_ptr<transport::Sender>> senders,
                  int version, std::int64_t start_ms, const std::vector<flow::FlowRecord>& flows) {
  ExporterOptions o;
  o.version = version;
  o.start_time_ms = start_ms;
  o.engine = {1, 7};
  Exporter exporter(io, std::move(senders), o);
  FlowEncoderOptions eo;
  eo.start_time_ms = exporter.start_time_ms();
  auto encoder = FlowEncoder::create(eo);
  if (!encoder) return false;
  // Several batches, as the probe hands them over.
  for (std::size_t at = 0; at < flows.size(); at += 40) {
    ipfix::RecordBatch batch;
    encoder->encode(std::span(flows).subspan(at, std::min<std::size_t>(40, flows.size() - at)),
                    batch);
    exporter.export_batch(batch);
  }
  std::promise<bool> done;
  exporter.shutdown(std::chrono::seconds(5), [&](bool ok) { done.set_value(ok); });
  auto f = done.get_future();
  if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return false;
  const bool ok = f.get();
  const auto st = exporter.stats();
  EXPECT_EQ(st.records_not_exportable, 0u);
  return ok;
}

std::uint16_t free_udp_port() {
  asio::io_context io;
  asio::ip::udp::socket s(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return s.local_endpoint().port();
}

// ---------------------------------------------------------------- nfcapd

class NfcapdPeer : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (!test::have_command("nfcapd") || !test::have_command("nfdump")) {
      GTEST_SKIP() << "SKIPPED: nfcapd/nfdump not installed (apt-get install nfdump)";
    }
    dir_ = std::filesystem::temp_directory_path() /
           ("flowsec_nfcapd_" + std::to_string(::getpid()) + "_" + std::to_string(GetParam()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "flows");
  }
  void TearDown() override {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  pid_t pid_ = 0;
};

TEST_P(NfcapdPeer, CountsEveryFlowPacketAndByte) {
  const int version = GetParam();
  const std::uint16_t port = free_udp_port();
  const std::string flows_dir = (dir_ / "flows").string();
  CommandResult start =
      run("nfcapd -w " + flows_dir + " -p " + std::to_string(port) +
          " -b 127.0.0.1 -B 33554432 > " + (dir_ / "nfcapd.log").string() + " 2>&1 & echo $!");
  pid_ = static_cast<pid_t>(std::stol(start.out));
  ASSERT_GT(pid_, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // let it bind
  ASSERT_EQ(::kill(pid_, 0), 0) << run("cat " + (dir_ / "nfcapd.log").string()).out;

  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  auto ep = transport::parse_export_endpoint("udp://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(ep);
  auto sender = transport::make_sender(io, *ep, {});
  ASSERT_TRUE(sender) << sender.error();
  std::vector<std::unique_ptr<transport::Sender>> senders;
  senders.push_back(std::move(*sender));
  const std::int64_t now = wall_ms();
  Totals sent;
  const auto flows = make_flows(now, sent);
  const bool delivered = export_flows(io, std::move(senders), version, now - 120'000, flows);
  guard.reset();
  io.stop();
  io_thread.join();
  EXPECT_TRUE(delivered);

  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ::kill(pid_, SIGTERM);  // nfcapd flushes and closes its file (PEERS.md)
  for (int i = 0; i < 100 && ::kill(pid_, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  pid_ = 0;
  CommandResult sum = run("nfdump -R " + flows_dir + " -I");
  ASSERT_TRUE(sum.ok()) << sum.out;
  auto value_of = [&](const std::string& key) -> std::uint64_t {
    std::istringstream in(sum.out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1));
    }
    ADD_FAILURE() << key << " missing in\n" << sum.out;
    return 0;
  };
  EXPECT_EQ(value_of("Flows"), sent.records) << sum.out;
  EXPECT_EQ(value_of("Packets"), sent.packets) << sum.out;
  EXPECT_EQ(value_of("Bytes"), sent.bytes) << sum.out;
  // And the records themselves: our source addresses, as nfdump prints them.
  CommandResult csv = run("nfdump -R " + flows_dir + " -o csv -q 'src net 10.0.0.0/8'", false);
  std::size_t lines = 0;
  std::istringstream in(csv.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("10.0.") != std::string::npos) ++lines;
  }
  EXPECT_EQ(lines, static_cast<std::size_t>(kFlows)) << csv.out.substr(0, 2000);
}

INSTANTIATE_TEST_SUITE_P(Versions, NfcapdPeer, ::testing::Values(5, 9, 10),
                         [](const auto& p) { return "v" + std::to_string(p.param); });

// ---------------------------------------------------------------- tshark

// Collects messages in memory (no socket): they go into a pcap for tshark.
class CapturingSender final : public transport::Sender {
 public:
  explicit CapturingSender(std::vector<transport::Message>& out) : out_(out) {
    endpoint_.scheme = transport::Scheme::udp;
    endpoint_.host = "127.0.0.1";
    endpoint_.port = 2055;
    endpoint_.text = "udp://127.0.0.1:2055";
  }
  const transport::Endpoint& endpoint() const override { return endpoint_; }
  void send(transport::Message m) override { out_.push_back(std::move(m)); }
  void set_on_connect(std::function<std::vector<transport::Message>()> hook) override {
    for (auto& m : hook()) out_.push_back(std::move(m));
  }
  void shutdown(std::chrono::milliseconds, std::function<void(bool)> done) override { done(true); }
  transport::SenderStats stats() const override {
    transport::SenderStats s;
    s.connected = true;
    return s;
  }

 private:
  std::vector<transport::Message>& out_;
  transport::Endpoint endpoint_;
};

class TsharkPeer : public ::testing::TestWithParam<int> {};

TEST_P(TsharkPeer, DissectsWithoutWarningsAndReadsOurValues) {
  if (!test::have_command("tshark"))
    GTEST_SKIP() << "SKIPPED: tshark is not installed (apt-get install tshark)";
  const int version = GetParam();
  std::vector<transport::Message> messages;
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  std::vector<std::unique_ptr<transport::Sender>> senders;
  senders.push_back(std::make_unique<CapturingSender>(messages));
  const std::int64_t now = wall_ms();
  Totals sent;
  const auto flows = make_flows(now, sent);
  EXPECT_TRUE(export_flows(io, std::move(senders), version, now - 120'000, flows));
  guard.reset();
  io.stop();
  io_thread.join();
  ASSERT_FALSE(messages.empty());

  const auto pcap = std::filesystem::temp_directory_path() /
                    ("flowsec_exporter_tshark_" + std::to_string(::getpid()) + "_v" +
                     std::to_string(version) + ".pcap");
  {
    test::PcapWriter w(pcap.string());
    for (const auto& m : messages) {
      w.write_udp(Bytes(m), 2055, static_cast<std::uint32_t>(now / 1000));
    }
  }
  const std::string tshark = "tshark -n -r " + pcap.string() + " -d udp.port==2055,cflow ";
  CommandResult v = run(tshark + "-V");
  ASSERT_TRUE(v.ok()) << v.out.substr(0, 2000);
  // On a finding, show where it is.
  auto around = [&](std::size_t at) {
    return at == std::string::npos ? std::string() : v.out.substr(at > 2500 ? at - 2500 : 0, 3000);
  };
  for (const char* bad : {"Malformed", "[Expert Info (Warning", "[Expert Info (Error"}) {
    const auto at = v.out.find(bad);
    EXPECT_EQ(at, std::string::npos) << bad << ":\n" << around(at);
  }
  CommandResult z = run(tshark + "-q -z expert,warn");
  EXPECT_EQ(z.out.find("Warnings ("), std::string::npos) << z.out;
  EXPECT_EQ(z.out.find("Errors ("), std::string::npos) << z.out;

  CommandResult f = run(tshark +
                            "-T fields -E occurrence=a -e cflow.srcaddr "
                            "-e cflow.octets -e cflow.packets",
                        false);
  ASSERT_TRUE(f.ok()) << f.out;
  // Each line is one packet: the addresses, then the octets, then the packets (comma lists).
  std::map<std::string, int> addresses;
  std::uint64_t records = 0, bytes = 0, packets = 0;
  std::istringstream lines(f.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream cols(line);
    std::string col[3];
    for (auto& c : col) std::getline(cols, c, '\t');
    auto each = [](const std::string& list, auto fn) {
      std::istringstream cells(list);
      std::string cell;
      while (std::getline(cells, cell, ',')) {
        if (!cell.empty()) fn(cell);
      }
    };
    each(col[0], [&](const std::string& a) {
      ++records;
      ++addresses[a];
    });
    each(col[1], [&](const std::string& o) { bytes += std::stoull(o); });
    each(col[2], [&](const std::string& p) { packets += std::stoull(p); });
  }
  EXPECT_EQ(records, sent.records) << f.out.substr(0, 2000);
  EXPECT_EQ(bytes, sent.bytes);
  EXPECT_EQ(packets, sent.packets);
  EXPECT_EQ(addresses["10.0.1.1"], 1);          // the first flow's client
  EXPECT_EQ(addresses["192.168.0.1"], kFlows);  // the reverse records' source
  std::filesystem::remove(pcap);
}

INSTANTIATE_TEST_SUITE_P(Versions, TsharkPeer, ::testing::Values(5, 9, 10),
                         [](const auto& p) { return "v" + std::to_string(p.param); });

}  // namespace
}  // namespace flowsec::exporter
