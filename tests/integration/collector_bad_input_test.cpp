// Integration: bad input moves counters and nothing else (SPEC §9, §6, §7), on the
// flowsec binary run as a collector with UDP (IPv4 and IPv6) and TCP listeners.
//
// One process receives, in order:
//  1. every seed of the decoders' fuzz corpora (tests/fuzz/corpus/{ipfix,netflow_v9,
//     netflow_v5,sflow}) as a UDP datagram, and its first half as another (the seeds
//     are mostly valid messages), one exporter socket per corpus;
//  2. three datagrams malformed by construction (IPFIX length beyond the datagram, a v9
//     flowset running past the end, 3 bytes): flowsec_decode_errors_total rises by 3;
//  3. data before its template (UDP): the data set is counted in
//     flowsec_unknown_template_sets_total (+1) and not written; the data after the
//     template is;
//  4. a template redefined mid-stream (TCP): the records after the redefinition are
//     decoded with the new template (SPEC §6: "a template redefinition replaces the old
//     one");
//  5. a TCP stream cut inside its second message: flowsec_streams_truncated_total = 1;
//  6. a TCP stream that is not IPFIX: a decode error, and flowsec closes that session;
//  7. a good exporter over IPv6: softflowd's IPFIX export
//     (tests/data/ipfix/softflowd_1kxun_udp_concat.ipfix), one message per datagram.
// Then: the process is still running; the good exporter's records are all there and
// intact — their number, packet and byte totals equal what `ipfixDump -i FILE` prints
// (data records; sum of packetDeltaCount and octetDeltaCount); SIGTERM exits 0.
// Skips with a printed reason when ipfixDump is missing (it gives the expected values).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "support/flowsec_process.hpp"
#include "support/transport_harness.hpp"

namespace flowsec::test {
namespace {

using namespace std::chrono_literals;
using Bytes8 = std::vector<std::byte>;

void put(Bytes8& b, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}

// An IPFIX message (RFC 7011 §3.1) holding `sets`.
Bytes8 ipfix_message(std::uint32_t seq, const std::vector<Bytes8>& sets, std::uint32_t domain = 7) {
  Bytes8 m;
  std::size_t len = 16;
  for (const auto& s : sets) len += s.size();
  put(m, 10, 2);
  put(m, len, 2);
  put(m, 1700000000, 4);
  put(m, seq, 4);
  put(m, domain, 4);
  for (const auto& s : sets) m.insert(m.end(), s.begin(), s.end());
  return m;
}
// Template set (id 2) with one template: (element id, length) pairs.
Bytes8 template_set(std::uint16_t id,
                    const std::vector<std::pair<std::uint16_t, std::uint16_t>>& f) {
  Bytes8 s;
  put(s, 2, 2);
  put(s, 4 + 4 + 4 * f.size(), 2);
  put(s, id, 2);
  put(s, f.size(), 2);
  for (const auto& [ie, len] : f) {
    put(s, ie, 2);
    put(s, len, 2);
  }
  return s;
}
// Data set: one record of a 4-byte IPv4 address and an 8-byte counter.
Bytes8 data_set(std::uint16_t id, std::uint32_t address, std::uint64_t counter) {
  Bytes8 s;
  put(s, id, 2);
  put(s, 4 + 12, 2);
  put(s, address, 4);
  put(s, counter, 8);
  return s;
}
constexpr std::uint32_t ip(int a, int b, int c, int d) {
  return (static_cast<std::uint32_t>(a) << 24) | (static_cast<std::uint32_t>(b) << 16) |
         (static_cast<std::uint32_t>(c) << 8) | static_cast<std::uint32_t>(d);
}

std::vector<Bytes8> corpus(const std::string& name) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(std::string(FLOWSEC_TEST_DATA) +
                                                           "/../fuzz/corpus/" + name)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Bytes8> out;
  for (const auto& f : files) {
    auto b = read_file(f.string());
    if (!b.empty() && b.size() <= 65507) out.push_back(std::move(b));  // fits a UDP datagram
  }
  return out;
}

// A TCP connection to 127.0.0.1:port.
struct Tcp {
  explicit Tcp(std::uint16_t port) : fd(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  }
  ~Tcp() { ::close(fd); }
  Tcp(const Tcp&) = delete;
  Tcp& operator=(const Tcp&) = delete;
  bool send(std::span<const std::byte> b) const {
    return ::send(fd, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size());
  }
  // True if the peer closes (EOF or reset) within `limit`.
  bool closed_by_peer(std::chrono::milliseconds limit) const {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return false;
    char c = 0;
    return ::recv(fd, &c, 1, 0) <= 0;
  }
  int fd;
  bool connected = false;
};

struct Expected {
  std::uint64_t records = 0;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

// ipfixDump -i FILE: data records, and the sums of their packet and octet counters.
std::optional<Expected> ipfix_dump_totals(const std::string& file, const TempDir& dir) {
  const auto r = run_command({"ipfixDump", "-i", file}, dir.path(), 20s);
  if (r.exit_code != 0) return std::nullopt;
  Expected e;
  static const std::regex record(R"(--- data record \d+ ---)");
  static const std::regex packets(R"(\(2\)\s+packetDeltaCount : (\d+))");
  static const std::regex bytes(R"(\(1\)\s+octetDeltaCount : (\d+))");
  const std::string& t = r.out;
  e.records = static_cast<std::uint64_t>(
      std::distance(std::sregex_iterator(t.begin(), t.end(), record), std::sregex_iterator()));
  for (std::sregex_iterator it(t.begin(), t.end(), packets), end; it != end; ++it) {
    e.packets += std::stoull((*it)[1].str());
  }
  for (std::sregex_iterator it(t.begin(), t.end(), bytes), end; it != end; ++it) {
    e.bytes += std::stoull((*it)[1].str());
  }
  return e;
}

const JsonRecord* find_by(const std::vector<JsonRecord>& records, const std::string& key,
                          const std::string& value) {
  for (const auto& r : records) {
    const auto it = r.find(key);
    if (it != r.end() && it->second == value) return &r;
  }
  return nullptr;
}

TEST(CollectorBadInput, CountersMoveGoodExporterIntactProcessSurvives) {
  if (!have_command("ipfixDump")) {
    GTEST_SKIP() << "ipfixDump is not installed (Debian: libfixbuf-tools); it gives the "
                    "good exporter's expected records";
  }
  TempDir dir("bad-input");
  const std::string good_file =
      std::string(FLOWSEC_TEST_DATA) + "/ipfix/softflowd_1kxun_udp_concat.ipfix";
  const auto expected = ipfix_dump_totals(good_file, dir);
  ASSERT_TRUE(expected);
  ASSERT_EQ(expected->records, 298u);  // tests/data/README.md
  ASSERT_GT(expected->bytes, 0u);

  const std::string out_dir = dir / "out";
  const std::uint16_t metrics_port = free_port();
  FlowsecProcess flowsec({"-i", "none", "-n", "none", "-3", "udp://127.0.0.1:0", "-3",
                          "udp://[::1]:0", "-3", "tcp://127.0.0.1:0", "-P", out_dir, "-D", "j",
                          "--metrics", "127.0.0.1:" + std::to_string(metrics_port)},
                         dir.path());
  const auto ports = flowsec.listen_ports(3);
  ASSERT_EQ(ports.size(), 3u) << flowsec.log();
  const std::uint16_t udp4 = ports[0];
  const std::uint16_t udp6 = ports[1];
  const std::uint16_t tcp_port = ports[2];

  std::string last;
  auto metric = [&](const std::string& family) {
    if (auto m = http_get(metrics_port)) last = *m;
    return metric_sum(last, family).value_or(0);
  };
  auto wait_metric = [&](const std::string& family, double want) {
    double got = -1;
    const bool ok = eventually(
        [&] {
          got = metric(family);
          return got == want;
        },
        15000ms);
    return ::testing::AssertionResult(ok) << family << " = " << got << ", want " << want << "\n"
                                          << last << flowsec.log();
  };
  double messages = 0;  // datagrams and framed stream messages sent so far

  // 1. The fuzz corpora, one exporter socket each.
  std::size_t seeds = 0;
  for (const char* name : {"ipfix", "netflow_v9", "netflow_v5", "sflow"}) {
    const auto inputs = corpus(name);
    ASSERT_FALSE(inputs.empty()) << name;
    UdpSender sender;
    for (const auto& d : inputs) {
      ASSERT_TRUE(sender.send(d, udp4));
      if (d.size() < 2) continue;
      // The seeds are mostly valid messages; cut in half they are not.
      ASSERT_TRUE(sender.send(std::span(d).first(d.size() / 2), udp4));
      ++seeds;
    }
    seeds += inputs.size();
  }
  messages += static_cast<double>(seeds);
  ASSERT_TRUE(wait_metric("flowsec_messages_received_total", messages));
  const double errors_after_corpus = metric("flowsec_decode_errors_total");
  EXPECT_GT(errors_after_corpus, 0) << "half messages are malformed";
  EXPECT_GT(metric("flowsec_unknown_template_sets_total"), 0);  // seeds without their templates

  // 2. Three malformed datagrams.
  {
    UdpSender sender;
    Bytes8 too_long = ipfix_message(1, {template_set(256, {{8, 4}, {1, 8}})});
    too_long[3] = static_cast<std::byte>(std::to_integer<unsigned>(too_long[3]) + 40);
    Bytes8 v9;  // header: version 9, count 1, uptime, secs, sequence, source id
    put(v9, 9, 2);
    put(v9, 1, 2);
    put(v9, 0, 4);
    put(v9, 1700000000, 4);
    put(v9, 1, 4);
    put(v9, 1, 4);
    put(v9, 256, 2);  // a flowset claiming 200 bytes, 8 present
    put(v9, 200, 2);
    put(v9, 0, 4);
    const Bytes8 tiny{std::byte{0}, std::byte{10}, std::byte{0}};
    for (const auto& d : {too_long, v9, tiny}) ASSERT_TRUE(sender.send(d, udp4));
    messages += 3;
    ASSERT_TRUE(wait_metric("flowsec_messages_received_total", messages));
    EXPECT_EQ(metric("flowsec_decode_errors_total"), errors_after_corpus + 3);
  }

  // 3. Data before its template (UDP).
  {
    UdpSender sender;
    const double unknown = metric("flowsec_unknown_template_sets_total");
    ASSERT_TRUE(sender.send(ipfix_message(0, {data_set(301, ip(192, 0, 2, 3), 3000)}), udp4));
    messages += 1;
    ASSERT_TRUE(wait_metric("flowsec_messages_received_total", messages));
    EXPECT_EQ(metric("flowsec_unknown_template_sets_total"), unknown + 1);
    ASSERT_TRUE(sender.send(ipfix_message(0, {template_set(301, {{8, 4}, {1, 8}}),
                                              data_set(301, ip(192, 0, 2, 4), 4000)}),
                            udp4));
    messages += 1;
    ASSERT_TRUE(wait_metric("flowsec_messages_received_total", messages));
  }

  // 4. A template redefined mid-stream (TCP).
  {
    Tcp tcp(tcp_port);
    ASSERT_TRUE(tcp.connected);
    ASSERT_TRUE(tcp.send(ipfix_message(
        0, {template_set(300, {{8, 4}, {1, 8}}), data_set(300, ip(192, 0, 2, 1), 1000)})));
    ASSERT_TRUE(tcp.send(ipfix_message(
        1, {template_set(300, {{12, 4}, {2, 8}}), data_set(300, ip(192, 0, 2, 2), 7)})));
    messages += 2;
    ASSERT_TRUE(wait_metric("flowsec_messages_received_total", messages));
  }

  // 5. A TCP stream cut inside its second message.
  {
    const auto stream =
        read_file(std::string(FLOWSEC_TEST_DATA) + "/ipfix/softflowd_1kxun_tcp.ipfix");
    const auto msgs = split_messages(stream);
    ASSERT_GE(msgs.size(), 2u);
    Tcp tcp(tcp_port);
    ASSERT_TRUE(tcp.connected);
    ASSERT_TRUE(tcp.send(std::span(stream).first(msgs[0].size() + msgs[1].size() / 2)));
    messages += 1;
    ASSERT_TRUE(wait_metric("flowsec_messages_received_total", messages));
  }  // closed here
  ASSERT_TRUE(wait_metric("flowsec_streams_truncated_total", 1));

  // 6. A TCP stream that is not IPFIX: a decode error; flowsec closes the session.
  {
    const double before = metric("flowsec_decode_errors_total");
    Tcp tcp(tcp_port);
    ASSERT_TRUE(tcp.connected);
    const std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_TRUE(tcp.send(std::as_bytes(std::span(http))));
    EXPECT_TRUE(tcp.closed_by_peer(10s));
    EXPECT_TRUE(wait_metric("flowsec_decode_errors_total", before + 1));
  }

  // 7. The good exporter, over IPv6.
  const auto good = split_messages(read_file(good_file));
  {
    UdpSender sender(true);
    for (const auto& m : good) ASSERT_TRUE(sender.send(m, udp6));
    messages += static_cast<double>(good.size());
    ASSERT_TRUE(wait_metric("flowsec_messages_received_total", messages));
  }

  ASSERT_TRUE(flowsec.running()) << flowsec.exit_description() << flowsec.log();
  const auto code = flowsec.terminate();
  ASSERT_EQ(code, 0) << flowsec.exit_description() << "\n" << flowsec.log();
  EXPECT_EQ(files_ending_in(out_dir, ".tmp"), 0u);
  EXPECT_EQ(flowsec.log().find("AddressSanitizer"), std::string::npos);

  std::size_t bad = 0;
  const auto records = json_records(out_dir, &bad);
  EXPECT_EQ(bad, 0u);

  // The good exporter's records, intact.
  Expected got;
  for (const auto& r : records) {
    const auto it = r.find("EXPORTER_IPV6_ADDRESS");
    if (it == r.end() || it->second != "::1") continue;
    ++got.records;
    if (r.count("IN_PKTS")) got.packets += std::stoull(r.at("IN_PKTS"));
    if (r.count("IN_BYTES")) got.bytes += std::stoull(r.at("IN_BYTES"));
  }
  EXPECT_EQ(got.records, expected->records) << "records: flowsec vs ipfixDump";
  EXPECT_EQ(got.packets, expected->packets) << "packets: flowsec vs ipfixDump";
  EXPECT_EQ(got.bytes, expected->bytes) << "bytes: flowsec vs ipfixDump";

  // Data before its template: dropped; the data after it: written.
  EXPECT_EQ(find_by(records, "IPV4_SRC_ADDR", "192.0.2.3"), nullptr);
  const JsonRecord* after = find_by(records, "IPV4_SRC_ADDR", "192.0.2.4");
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->at("IN_BYTES"), "4000");

  // The redefinition replaced the template.
  const JsonRecord* first = find_by(records, "IPV4_SRC_ADDR", "192.0.2.1");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->at("IN_BYTES"), "1000");
  const JsonRecord* second = find_by(records, "IPV4_DST_ADDR", "192.0.2.2");
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->count("IPV4_SRC_ADDR"), 0u);
  EXPECT_EQ(second->count("IN_BYTES"), 0u);
  EXPECT_EQ(second->count("IN_PKTS") ? second->at("IN_PKTS") : "", "7");
}

}  // namespace
}  // namespace flowsec::test
