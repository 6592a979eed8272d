// Peer check for the ntopng output (NtopngSink, SPEC §6 `--ntopng`): softflowd's IPFIX
// export (tests/data/ipfix/softflowd_1kxun_tcp.ipfix, 298 records) is read with our IPFIX
// file reader, written into an NtopngSink and received by a ZeroMQ subscriber that reads
// messages as ntopng does (support/ntopng_subscriber.hpp: 36-byte zmq_msg_hdr_v4, zlib,
// consecutive ids, JSON). What arrives is compared with what ipfixDump (libfixbuf-tools,
// an independent IPFIX reader, parsed by support/ipfix_dump.hpp) prints for the same
// file: record count and octet/packet totals, and per flow (addresses, ports, protocol,
// octets "1", packets "2") as a multiset. Covers: bind and connect
// (--zmq-probe-mode), compression on and off, CURVE with the right and a wrong server
// key, flows held until a subscriber comes, counter messages, and max_payload_bytes.
// Skips loudly when ipfixDump is missing.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ipfix/ipfix_file.hpp"
#include "sinks/ntopng_sink.hpp"
#include "support/flowsec_process.hpp"
#include "support/ipfix_dump.hpp"
#include "support/ntopng_subscriber.hpp"

namespace flowsec::sinks {
namespace {

using namespace std::chrono_literals;
using test::NtopngSubscriber;

constexpr const char* kFile = "ipfix/softflowd_1kxun_tcp.ipfix";
constexpr std::size_t kRecords = 298;  // tests/data/README.md, ipfixDump agrees

std::vector<BatchPtr> file_batches() {
  std::vector<BatchPtr> out;
  auto r = ipfix::read_ipfix_file(test::data_path(kFile), [&](ipfix::RecordBatch& b) {
    out.push_back(std::make_shared<const ipfix::RecordBatch>(std::move(b)));
  });
  EXPECT_TRUE(r);
  return out;
}

// One flow as "src|dst|sport|dport|proto|octets|packets" (missing fields empty).
using FlowKey = std::string;

// ipfixDump prints IPv6 addresses with leading zeros ("ff02::0001"): both sides go
// through inet_pton/inet_ntop (RFC 5952 text) before comparing.
std::string canonical(const std::string& addr) {
  std::array<unsigned char, 16> raw{};
  std::array<char, INET6_ADDRSTRLEN> text{};
  const int family = addr.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(family, addr.c_str(), raw.data()) != 1) return addr;
  return inet_ntop(family, raw.data(), text.data(), text.size()) != nullptr ? text.data() : addr;
}

// ipfixDump's data records (support/ipfix_dump.hpp), by IANA element name.
std::vector<FlowKey> ipfixdump_flows(const test::IpfixDump& dump) {
  std::vector<FlowKey> flows;
  for (const auto& r : dump.records) {
    auto get = [&](const char* a, const char* b = nullptr) {
      auto it = r.fields.find(a);
      if (it == r.fields.end() && b != nullptr) it = r.fields.find(b);
      return it == r.fields.end() ? std::string() : it->second;
    };
    flows.push_back(canonical(get("sourceIPv4Address", "sourceIPv6Address")) + "|" +
                    canonical(get("destinationIPv4Address", "destinationIPv6Address")) + "|" +
                    get("sourceTransportPort") + "|" + get("destinationTransportPort") + "|" +
                    get("protocolIdentifier") + "|" + get("octetDeltaCount") + "|" +
                    get("packetDeltaCount"));
  }
  std::sort(flows.begin(), flows.end());
  return flows;
}

std::string field(const nlohmann::json& f, const char* a, const char* b = nullptr) {
  const nlohmann::json* v = nullptr;
  if (f.contains(a)) {
    v = &f.at(a);
  } else if (b != nullptr && f.contains(b)) {
    v = &f.at(b);
  }
  if (v == nullptr) return {};
  return v->is_string() ? v->get<std::string>() : v->dump();
}

std::vector<FlowKey> received_flows(const NtopngSubscriber& sub) {
  std::vector<FlowKey> flows;
  for (const auto& f : sub.flows()) {
    flows.push_back(canonical(field(f, "8", "27")) + "|" + canonical(field(f, "12", "28")) + "|" +
                    field(f, "7") + "|" + field(f, "11") + "|" + field(f, "4") + "|" +
                    field(f, "1") + "|" + field(f, "2"));
  }
  std::sort(flows.begin(), flows.end());
  return flows;
}

std::string problems(const NtopngSubscriber& sub) {
  std::string s;
  for (const auto& p : sub.problems()) s += p + "\n";
  return s;
}

std::string loopback(std::uint16_t port) {
  return "tcp://127.0.0.1:" + std::to_string(port);
}

NtopngSinkOptions sink_options(std::string endpoint) {
  NtopngSinkOptions o;
  o.endpoint = std::move(endpoint);
  return o;
}

test::NtopngSubscriberOptions connect_to(std::uint16_t port, std::string secret = {}) {
  return test::NtopngSubscriberOptions::connect_to(loopback(port), std::move(secret));
}
test::NtopngSubscriberOptions bind_any(std::string secret = {}) {
  return test::NtopngSubscriberOptions::bind_to("tcp://127.0.0.1:*", std::move(secret));
}

std::unique_ptr<NtopngSink> open_sink(NtopngSinkOptions o) {
  auto s = NtopngSink::open(std::move(o));
  EXPECT_TRUE(s) << (s ? std::string() : s.error());
  return s ? std::move(*s) : nullptr;
}

class NtopngSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_command("ipfixDump")) {
      GTEST_SKIP() << "ipfixDump (libfixbuf-tools) not installed: no independent reading of "
                   << kFile << " to compare with";
    }
    test::TempDir dir("ntopng-ipfixdump");
    const auto dump = test::ipfix_dump(test::data_path(kFile), dir.path());
    ASSERT_TRUE(dump) << "ipfixDump failed on " << kFile;
    ASSERT_EQ(dump->data_records, kRecords);
    totals_ = dump->totals();
    expected_ = ipfixdump_flows(*dump);
    ASSERT_EQ(expected_.size(), kRecords);
    batches_ = file_batches();
  }

  void write_all(NtopngSink& sink) const {
    for (const BatchPtr& b : batches_) sink.write(*b);
  }

  // Writes the file (unless already written), receives until every flow arrived (ticking the sink
  // meanwhile), closes the sink, and checks what ntopng would have seen.
  void deliver_and_check(NtopngSink& sink, NtopngSubscriber& sub, bool write = true) const {
    if (write) write_all(sink);
    EXPECT_TRUE(
        sub.wait_for_flows(kRecords, 15s, [&] { sink.tick(std::chrono::system_clock::now()); }))
        << sub.flows().size() << " flows received";
    sink.close();
    sub.receive_for(200ms);  // nothing more may come
    EXPECT_TRUE(sink.delivered());
    EXPECT_EQ(sink.stats().records_written, kRecords);
    EXPECT_EQ(sink.stats().records_failed, 0u);
    EXPECT_EQ(sink.stats().errors, 0u);
    EXPECT_EQ(problems(sub), "");
    ASSERT_FALSE(sub.messages().empty());
    test::Totals got_totals;
    for (const auto& f : sub.flows()) {
      got_totals.records += 1;
      got_totals.bytes += f.value("1", std::uint64_t{0});
      got_totals.packets += f.value("2", std::uint64_t{0});
    }
    EXPECT_EQ(got_totals.records, totals_.records);
    EXPECT_EQ(got_totals.bytes, totals_.bytes);
    EXPECT_EQ(got_totals.packets, totals_.packets);
    EXPECT_EQ(sub.messages().front().msg_id, 1u);
    const auto got = received_flows(sub);
    std::vector<FlowKey> missing;
    std::vector<FlowKey> extra;
    std::set_difference(expected_.begin(), expected_.end(), got.begin(), got.end(),
                        std::back_inserter(missing));
    std::set_difference(got.begin(), got.end(), expected_.begin(), expected_.end(),
                        std::back_inserter(extra));
    EXPECT_TRUE(missing.empty() && extra.empty())
        << "ipfixDump has, not received: " << ::testing::PrintToString(missing)
        << "\nreceived, not in ipfixDump: " << ::testing::PrintToString(extra);
  }

  std::vector<FlowKey> expected_;
  test::Totals totals_;
  std::vector<BatchPtr> batches_;
};

// (a) The default: the sink binds, ntopng connects; compressed JSON, every flow as
// ipfixDump reads it; port 0 binds a free port reported by local_port().
TEST_F(NtopngSinkTest, BindCompressedAllFlowsMatchIpfixDump) {
  auto o = sink_options("zmq://127.0.0.1:0");
  o.source_id = 7;
  auto sink = open_sink(o);
  ASSERT_TRUE(sink);
  ASSERT_NE(sink->local_port(), 0);
  NtopngSubscriber sub(connect_to(sink->local_port()));
  deliver_and_check(*sink, sub);
  for (const auto& m : sub.messages()) {
    EXPECT_EQ(m.topic, "flow");
    EXPECT_EQ(m.flags, 0x04) << "compressed";
    EXPECT_EQ(m.source_id, 7u);
    EXPECT_LT(m.compressed_size, m.uncompressed_size);
  }
}

// (b) --zmq-disable-compression: flags 0, the payload is the JSON text itself.
TEST_F(NtopngSinkTest, BindUncompressed) {
  auto o = sink_options(loopback(test::free_tcp_port()));
  o.compress = false;
  auto sink = open_sink(o);
  ASSERT_TRUE(sink);
  NtopngSubscriber sub(connect_to(sink->local_port()));
  deliver_and_check(*sink, sub);
  for (const auto& m : sub.messages()) {
    EXPECT_EQ(m.flags, 0);
    EXPECT_EQ(m.compressed_size, m.uncompressed_size);
  }
}

// (c) --zmq-probe-mode: ntopng binds ("-i tcp://*:PORT c"), the sink connects out.
TEST_F(NtopngSinkTest, ProbeModeConnects) {
  NtopngSubscriber sub(bind_any());
  auto o = sink_options("zmq://127.0.0.1:" + std::to_string(sub.port()));
  o.connect = true;
  auto sink = open_sink(o);
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->local_port(), 0);
  deliver_and_check(*sink, sub);
}

// (d) CURVE: ntopng is the server with its secret key; the sink has its public key.
TEST_F(NtopngSinkTest, CurveWithServerKey) {
  const auto server = test::curve_keypair();
  auto o = sink_options(loopback(test::free_tcp_port()));
  o.server_public_key = server.public_key;
  auto sink = open_sink(o);
  ASSERT_TRUE(sink);
  NtopngSubscriber sub(connect_to(sink->local_port(), server.secret_key));
  deliver_and_check(*sink, sub);
}

// (d') CURVE in probe mode: the CURVE roles do not follow bind/connect.
TEST_F(NtopngSinkTest, CurveProbeMode) {
  const auto server = test::curve_keypair();
  NtopngSubscriber sub(bind_any(server.secret_key));
  auto o = sink_options(loopback(sub.port()));
  o.connect = true;
  o.server_public_key = server.public_key;
  auto sink = open_sink(o);
  ASSERT_TRUE(sink);
  deliver_and_check(*sink, sub);
}

// (e) CURVE with another key pair's public key: the handshake fails, nothing arrives,
// and close() (short linger) reports the records as not delivered.
TEST_F(NtopngSinkTest, CurveWithWrongKeyDeliversNothing) {
  const auto server = test::curve_keypair();
  const auto other = test::curve_keypair();
  auto o = sink_options(loopback(test::free_tcp_port()));
  o.server_public_key = other.public_key;
  o.linger = 500ms;
  auto sink = open_sink(o);
  ASSERT_TRUE(sink);
  NtopngSubscriber sub(connect_to(sink->local_port(), server.secret_key));
  write_all(*sink);
  sub.receive_for(3s, [&] { sink->tick(std::chrono::system_clock::now()); });
  sink->close();
  sub.receive_for(200ms);
  EXPECT_TRUE(sub.messages().empty());
  EXPECT_TRUE(sub.flows().empty());
  EXPECT_FALSE(sink->delivered());
  EXPECT_EQ(sink->stats().records_written, 0u);
  EXPECT_EQ(sink->stats().records_failed, kRecords);
}

// (f) Flows written while nobody subscribes are held, then arrive when ntopng connects.
TEST_F(NtopngSinkTest, FlowsHeldUntilSubscriber) {
  auto sink = open_sink(sink_options(loopback(test::free_tcp_port())));
  ASSERT_TRUE(sink);
  write_all(*sink);
  for (int i = 0; i < 5; ++i) {
    sink->tick(std::chrono::system_clock::now());
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(sink->stats().records_written, 0u) << "nobody subscribed yet";
  EXPECT_EQ(sink->stats().records_failed, 0u);
  NtopngSubscriber sub(connect_to(sink->local_port()));
  deliver_and_check(*sink, sub, /*write=*/false);
}

// (h) max_payload_bytes cuts the flows into several messages with consecutive ids, none
// over the limit unless it holds one record.
TEST_F(NtopngSinkTest, MaxPayloadSplitsMessages) {
  constexpr std::size_t kMax = 2000;
  auto o = sink_options(loopback(test::free_tcp_port()));
  o.max_payload_bytes = kMax;
  auto sink = open_sink(o);
  ASSERT_TRUE(sink);
  NtopngSubscriber sub(connect_to(sink->local_port()));
  deliver_and_check(*sink, sub);
  std::uint32_t id = 0;
  std::size_t records = 0;
  std::size_t bytes = 0;
  for (const auto& m : sub.messages()) {
    EXPECT_EQ(m.msg_id, ++id);
    EXPECT_TRUE(m.uncompressed_size <= kMax || m.records == 1) << m.uncompressed_size;
    records += m.records;
    bytes += m.uncompressed_size;
  }
  EXPECT_EQ(records, kRecords);
  // Cut, and not much finer than needed: at most one message per batch beyond the
  // bytes / kMax that the limit forces.
  EXPECT_GE(sub.messages().size(), bytes / kMax);
  EXPECT_GT(sub.messages().size(), 1u);
  EXPECT_LE(sub.messages().size(), 2 * (bytes / kMax) + batches_.size());
}

// (g) Counter messages, one per counter_interval from tick(), with what counters() says.
// Needs no ipfixDump.
TEST(NtopngSinkCounters, CounterEveryInterval) {
  int calls = 0;
  NtopngSinkOptions o;
  o.endpoint = loopback(test::free_tcp_port());
  o.counter_interval = 1s;
  o.counters = [&] {
    ++calls;
    NtopngInterfaceCounters c;
    c.name = "eth\"0";
    c.device = *IpAddress::parse("192.0.2.1");
    c.if_index = 3;
    c.in_packets = 100u * static_cast<unsigned>(calls);
    c.in_bytes = 1000u * static_cast<unsigned>(calls);
    c.in_errors = static_cast<unsigned>(calls);
    return c;
  };
  auto sink = open_sink(std::move(o));
  ASSERT_TRUE(sink);
  NtopngSubscriber sub(connect_to(sink->local_port()));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(sub.wait_for_counters(3, 8s, [&] { sink->tick(std::chrono::system_clock::now()); }));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // Ticks came every ~50 ms; one counter per second means the third after >= 2 s.
  EXPECT_GE(elapsed, 1900ms);
  sink->close();
  sub.receive_for(200ms);
  EXPECT_EQ(problems(sub), "");
  ASSERT_EQ(sub.counters().size(), static_cast<std::size_t>(calls));
  for (std::size_t i = 0; i < sub.counters().size(); ++i) {
    const auto& c = sub.counters()[i];
    const auto k = static_cast<std::uint64_t>(i + 1);
    EXPECT_EQ(c.value("deviceIP", ""), "192.0.2.1");
    EXPECT_EQ(c.value("ifName", ""), "eth\"0");
    EXPECT_EQ(c.value("ifIndex", 0), 3);
    EXPECT_EQ(c.value("ifInPackets", std::uint64_t{0}), 100 * k);
    EXPECT_EQ(c.value("ifInOctets", std::uint64_t{0}), 1000 * k);
    EXPECT_EQ(c.value("ifInErrors", std::uint64_t{0}), k);
    EXPECT_EQ(c.value("ifOutOctets", std::uint64_t{99}), 0u);
    EXPECT_EQ(c.value("ifOutPackets", std::uint64_t{99}), 0u);
  }
  for (const auto& m : sub.messages()) EXPECT_EQ(m.topic, "counter");
}

}  // namespace
}  // namespace flowsec::sinks
