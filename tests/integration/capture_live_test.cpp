// Live capture (SPEC §5 "Capture") against a real sender: tcpreplay replays
// tests/data/capture/tcpreplay_test.pcap (179 packets, capinfos -c) into one end of a
// veth pair; flowsec's capture listens on the other end. The pair lives in two network
// namespaces made for this run (names carry the pid) and removed at the end, so no
// traffic touches the host's interfaces. Checked, for the AF_PACKET TPACKET_V3 ring
// and for the libpcap fallback: every packet tcpreplay reports as sent arrives once,
// byte for byte and in order, and a BPF filter keeps exactly what tshark counts.
// Needs root (namespaces, raw sockets), iproute2 and tcpreplay; skips with a printed
// reason otherwise. PEERS.md: replaying onto lo delivers nothing; veth MTU 65000.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "capture/capture_source.hpp"
#include "capture/pcap_file.hpp"

namespace flowsec::capture {
namespace {

using namespace std::chrono_literals;

const std::string kTrace = std::string(FLOWSEC_TEST_DATA) + "/capture/tcpreplay_test.pcap";
constexpr std::size_t kTracePackets = 179;  // capinfos -c tcpreplay_test.pcap
// tshark -r tcpreplay_test.pcap -Y "ip.addr==172.16.11.12 && !mpls && !vlan" | wc -l
constexpr std::size_t kFilteredPackets = 140;
constexpr const char* kFilter = "ip host 172.16.11.12";

struct CommandResult {
  int status = -1;
  std::string output;
};

CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) r.output += buf;
  r.status = ::pclose(p);
  return r;
}

std::vector<std::vector<std::byte>> trace_frames(const std::string& path = kTrace) {
  std::vector<std::vector<std::byte>> frames;
  auto file = PcapFile::open(path);
  if (!file) return frames;
  while (auto p = file->next()) frames.emplace_back(p->data.begin(), p->data.end());
  return frames;
}

struct Captured {
  std::vector<std::vector<std::byte>> frames;
  std::vector<std::int64_t> timestamps;
  std::vector<int> link_types;
  int idle_batches = 0;
  ReadStatus last = ReadStatus::packets;
};

// Two namespaces joined by a veth pair: sender end in ns_a_, capture end in ns_b_.
class LiveCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces and raw sockets";
    if (run("ip -V").status != 0) GTEST_SKIP() << "iproute2 (ip) not found";
    if (run("tcpreplay -V").status != 0) GTEST_SKIP() << "tcpreplay not found";
    const std::string pid = std::to_string(::getpid());
    ns_a_ = "flowsec_cap_" + pid + "_a";
    ns_b_ = "flowsec_cap_" + pid + "_b";
    veth_a_ = "fsc" + pid + "a";
    veth_b_ = "fsc" + pid + "b";
    auto made = run("ip netns add " + ns_a_);
    if (made.status != 0) GTEST_SKIP() << "cannot create a network namespace: " << made.output;
    created_a_ = true;
    made = run("ip netns add " + ns_b_);
    if (made.status != 0) GTEST_SKIP() << "cannot create a network namespace: " << made.output;
    created_b_ = true;
    // No IPv6 in either namespace: no router solicitations or DAD probes on the wire,
    // so the capture sees the replayed packets and nothing else.
    for (const auto& ns : {ns_a_, ns_b_}) {
      ASSERT_EQ(0, run("ip netns exec " + ns +
                       " sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
                       " net.ipv6.conf.default.disable_ipv6=1")
                       .status);
    }
    const std::string steps[] = {
        "ip -n " + ns_a_ + " link add " + veth_a_ + " type veth peer name " + veth_b_ + " netns " +
            ns_b_,
        "ip -n " + ns_a_ + " link set " + veth_a_ + " mtu 65000 up",
        "ip -n " + ns_b_ + " link set " + veth_b_ + " mtu 65000 up",
    };
    for (const auto& step : steps) {
      const auto r = run(step);
      ASSERT_EQ(r.status, 0) << step << ": " << r.output;
    }
  }

  void TearDown() override {
    // Deleting a namespace destroys the veth end inside it, and with it the pair.
    if (created_a_) run("ip netns del " + ns_a_);
    if (created_b_) run("ip netns del " + ns_b_);
  }

  // open_capture() from a thread that has joined ns_b_; the socket stays in ns_b_.
  Expected<std::unique_ptr<CaptureSource>, std::string> open_in_b(CaptureOptions opts) {
    Expected<std::unique_ptr<CaptureSource>, std::string> result =
        unexpected(std::string("not run"));
    std::thread t([&] {
      const int fd = ::open(("/var/run/netns/" + ns_b_).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
        result = unexpected("setns into " + ns_b_ + " failed");
        if (fd >= 0) ::close(fd);
        return;
      }
      ::close(fd);
      result = open_capture(opts);
    });
    t.join();
    return result;
  }

  // Reads in a thread while tcpreplay sends; stops once `expected` packets have come
  // and a further 500 ms brought nothing more (or after 10 s).
  Captured capture_replay(CaptureSource& src, std::size_t expected, std::string& replay_output,
                          int& replay_status, const std::string& trace = kTrace) {
    Captured c;
    std::atomic<std::size_t> count{0};
    std::thread reader([&] {
      PacketBatch batch;
      for (;;) {
        c.last = src.next_batch(batch);
        if (c.last == ReadStatus::idle) {
          ++c.idle_batches;
          continue;
        }
        if (c.last != ReadStatus::packets) break;
        for (const RawPacket& p : batch.view()) {
          c.frames.emplace_back(p.data.begin(), p.data.end());
          c.timestamps.push_back(p.timestamp_ns);
          c.link_types.push_back(p.link_type);
        }
        count.store(c.frames.size());
      }
    });
    const auto replay =
        run("ip netns exec " + ns_a_ + " tcpreplay -q -t -i " + veth_a_ + " " + trace);
    replay_output = replay.output;
    replay_status = replay.status;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (count.load() < expected && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    std::this_thread::sleep_for(500ms);  // anything extra would show up by now
    src.stop();
    reader.join();
    return c;
  }

  static std::size_t packets_sent(const std::string& tcpreplay_output) {
    // "Actual: 179 packets (69000 bytes) sent in ..." and "Successful packets: 179"
    std::smatch m;
    static const std::regex kSuccessful(R"(Successful packets:\s+(\d+))");
    if (std::regex_search(tcpreplay_output, m, kSuccessful)) return std::stoul(m[1]);
    return 0;
  }

  void expect_whole_trace(CaptureSource& src, LiveBackend backend) {
    std::string out;
    int status = -1;
    const Captured c = capture_replay(src, kTracePackets, out, status);
    ASSERT_EQ(status, 0) << out;
    const std::size_t sent = packets_sent(out);
    EXPECT_EQ(sent, kTracePackets) << out;
    EXPECT_EQ(c.last, ReadStatus::end) << src.error();
    ASSERT_EQ(c.frames.size(), sent);
    const auto expected = trace_frames();
    ASSERT_EQ(expected.size(), kTracePackets);
    for (std::size_t i = 0; i < c.frames.size(); ++i) {
      EXPECT_EQ(c.frames[i], expected[i]) << "frame " << i + 1;
      EXPECT_EQ(c.link_types[i], 1);                          // DLT_EN10MB on a veth
      EXPECT_GT(c.timestamps[i], 1'600'000'000'000'000'000);  // the capture's own clock, in ns
      if (i > 0) {
        EXPECT_GE(c.timestamps[i], c.timestamps[i - 1]);
      }
    }
    const CaptureStats st = src.stats();
    EXPECT_EQ(st.received, sent);
    ASSERT_TRUE(st.kernel_drops.has_value());
    EXPECT_EQ(*st.kernel_drops, 0u);
    EXPECT_EQ(src.kind(),
              backend == LiveBackend::libpcap ? SourceKind::libpcap_live : SourceKind::af_packet);
  }

  void expect_filtered(CaptureSource& src) {
    std::string out;
    int status = -1;
    const Captured c = capture_replay(src, kFilteredPackets, out, status);
    ASSERT_EQ(status, 0) << out;
    EXPECT_EQ(packets_sent(out), kTracePackets) << out;
    EXPECT_EQ(c.frames.size(), kFilteredPackets);
    EXPECT_EQ(src.stats().received, kFilteredPackets);
  }

  CaptureOptions options(LiveBackend backend, std::string filter = {}) const {
    CaptureOptions o;
    o.interface = veth_b_;
    o.bpf_filter = std::move(filter);
    o.live_backend = backend;
    o.snaplen = 65535;  // the trace's frames are compared whole
    return o;
  }

  std::string ns_a_, ns_b_, veth_a_, veth_b_;
  bool created_a_ = false, created_b_ = false;
};

TEST_F(LiveCapture, AfPacketRingCapturesEveryReplayedPacket) {
  auto src = open_in_b(options(LiveBackend::af_packet));
  ASSERT_TRUE(src.has_value()) << src.error();
  EXPECT_NE((*src)->description().find("AF_PACKET TPACKET_V3"), std::string::npos);
  expect_whole_trace(**src, LiveBackend::af_packet);
}

TEST_F(LiveCapture, AutomaticBackendPicksTheRing) {
  auto src = open_in_b(options(LiveBackend::automatic));
  ASSERT_TRUE(src.has_value()) << src.error();
  EXPECT_EQ((*src)->kind(), SourceKind::af_packet);
}

TEST_F(LiveCapture, AfPacketRingWithBpfFilter) {
  auto src = open_in_b(options(LiveBackend::af_packet, kFilter));
  ASSERT_TRUE(src.has_value()) << src.error();
  expect_filtered(**src);
}

TEST_F(LiveCapture, AfPacketRingAppliesSnaplen) {
  CaptureOptions o = options(LiveBackend::af_packet);
  o.snaplen = 100;
  auto src = open_in_b(o);
  ASSERT_TRUE(src.has_value()) << src.error();
  std::string out;
  int status = -1;
  const Captured c = capture_replay(**src, kTracePackets, out, status);
  ASSERT_EQ(c.frames.size(), kTracePackets) << out;
  std::size_t bytes = 0;
  for (const auto& f : c.frames) bytes += f.size();
  // tshark -r tcpreplay_test.pcap -T fields -e frame.cap_len
  //   | awk '{t+=($1>100?100:$1)} END {print t}'
  EXPECT_EQ(bytes, 15105u);
}

// The receiving kernel moves the outer VLAN tag into packet metadata before any packet
// socket sees the frame; the capture must put it back. capinfos -c: 802.1ad_QinQ.pcap
// 2 frames (S-tag 0x88a8 200 + C-tag 2001), dns.pcap 5 frames (2 of them 802.1Q 421,785
// + PPPoE); tests/data/README.md.
TEST_F(LiveCapture, VlanTagsArriveIntact) {
  for (LiveBackend backend : {LiveBackend::af_packet, LiveBackend::libpcap}) {
    for (const char* name : {"802.1ad_QinQ.pcap", "dns.pcap"}) {
      const std::string trace = std::string(FLOWSEC_TEST_DATA) + "/packets/" + name;
      const auto expected = trace_frames(trace);
      ASSERT_FALSE(expected.empty()) << trace;
      auto src = open_in_b(options(backend));
      ASSERT_TRUE(src.has_value()) << src.error();
      std::string out;
      int status = -1;
      const Captured c = capture_replay(**src, expected.size(), out, status, trace);
      ASSERT_EQ(status, 0) << out;
      EXPECT_EQ(packets_sent(out), expected.size()) << out;
      EXPECT_EQ(c.frames, expected) << name << " backend " << static_cast<int>(backend);
    }
  }
}

TEST_F(LiveCapture, LibpcapFallbackCapturesEveryReplayedPacket) {
  auto src = open_in_b(options(LiveBackend::libpcap));
  ASSERT_TRUE(src.has_value()) << src.error();
  EXPECT_NE((*src)->description().find("libpcap"), std::string::npos);
  expect_whole_trace(**src, LiveBackend::libpcap);
}

TEST_F(LiveCapture, LibpcapFallbackWithBpfFilter) {
  auto src = open_in_b(options(LiveBackend::libpcap, kFilter));
  ASSERT_TRUE(src.has_value()) << src.error();
  expect_filtered(**src);
}

// With no traffic the reader returns idle about every block timeout, and stop() from
// another thread ends a reader blocked in poll() at once.
TEST_F(LiveCapture, StopWakesABlockedReader) {
  for (LiveBackend backend : {LiveBackend::af_packet, LiveBackend::libpcap}) {
    CaptureOptions o = options(backend);
    o.block_timeout_ms = 5000;  // a reader that is not woken would sit here for seconds
    auto src = open_in_b(o);
    ASSERT_TRUE(src.has_value()) << src.error();
    std::atomic<bool> ended{false};
    std::chrono::steady_clock::time_point ended_at;
    std::thread reader([&] {
      PacketBatch batch;
      ReadStatus s;
      while ((s = (*src)->next_batch(batch)) == ReadStatus::idle || s == ReadStatus::packets) {
      }
      ended_at = std::chrono::steady_clock::now();
      ended = true;
    });
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(ended.load());
    const auto stopped_at = std::chrono::steady_clock::now();
    (*src)->stop();
    reader.join();
    EXPECT_LT(ended_at - stopped_at, 2s) << "backend " << static_cast<int>(backend);
  }
}

TEST_F(LiveCapture, IdleWhenNothingArrives) {
  CaptureOptions o = options(LiveBackend::af_packet);
  o.block_timeout_ms = 50;
  auto src = open_in_b(o);
  ASSERT_TRUE(src.has_value()) << src.error();
  PacketBatch batch;
  EXPECT_EQ((*src)->next_batch(batch), ReadStatus::idle);
  EXPECT_EQ(batch.size, 0u);
}

TEST_F(LiveCapture, MissingInterfaceAndBadFilterAreStartUpErrors) {
  const std::string name = "fsnodev" + std::to_string(::getpid());
  for (LiveBackend backend :
       {LiveBackend::automatic, LiveBackend::af_packet, LiveBackend::libpcap}) {
    CaptureOptions o;
    o.interface = name;
    o.live_backend = backend;
    auto src = open_in_b(o);
    ASSERT_FALSE(src.has_value());
    EXPECT_EQ(src.error(), "interface '" + name + "': No such device");
  }
  for (LiveBackend backend : {LiveBackend::af_packet, LiveBackend::libpcap}) {
    auto src = open_in_b(options(backend, "tcp prot 80"));
    ASSERT_FALSE(src.has_value());
    EXPECT_EQ(src.error().rfind("interface '" + veth_b_ + "': filter 'tcp prot 80': ", 0), 0u)
        << src.error();
  }
}

}  // namespace
}  // namespace flowsec::capture
