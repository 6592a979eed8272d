// Offline capture sources (SPEC §2 -i FILE|DIR|-, -f, -s): files, directories and
// stdin through open_capture(). Fixtures are in tests/data/capture/ (README there);
// every expected count comes from capinfos or tshark, with the command above the test.
// No sockets: live capture is tested in tests/integration/capture_live_test.cpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "capture/capture_source.hpp"
#include "capture/pcap_file.hpp"
#include "support/temp_dir.hpp"

namespace flowsec::capture {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(FLOWSEC_TEST_DATA) + "/capture/";
const std::string kTrace = kData + "tcpreplay_test.pcap";

// Link types as libpcap's pcap_datalink() reports them on Linux.
constexpr int kDltNull = 0, kDltEthernet = 1, kDltRaw = 12, kDltLinuxSll = 113;

struct Frame {
  std::int64_t ts = 0;
  std::uint32_t wire = 0;
  std::uint32_t caplen = 0;
  int link = 0;
};

struct ReadAll {
  std::vector<Frame> frames;
  std::vector<std::size_t> batch_sizes;
  ReadStatus last = ReadStatus::packets;
};

ReadAll read_all(CaptureSource& src) {
  ReadAll r;
  PacketBatch batch;
  for (int guard = 0; guard < 100000; ++guard) {
    r.last = src.next_batch(batch);
    if (r.last != ReadStatus::packets) break;
    EXPECT_GT(batch.size, 0u);
    r.batch_sizes.push_back(batch.size);
    for (const RawPacket& p : batch.view()) {
      r.frames.push_back(
          {p.timestamp_ns, p.wire_length, static_cast<std::uint32_t>(p.data.size()), p.link_type});
    }
  }
  return r;
}

CaptureOptions options_for(const std::string& source, std::uint32_t snaplen = kDefaultSnaplen) {
  CaptureOptions opts;
  opts.interface = source;
  opts.snaplen = snaplen;
  return opts;
}

std::unique_ptr<CaptureSource> open_ok(CaptureOptions opts) {
  auto src = open_capture(opts);
  EXPECT_TRUE(src.has_value()) << (src ? "" : src.error());
  return src ? std::move(*src) : nullptr;
}

std::unique_ptr<CaptureSource> open_ok(const std::string& path) {
  return open_ok(options_for(path));
}

std::string open_error(CaptureOptions opts) {
  auto src = open_capture(opts);
  EXPECT_FALSE(src.has_value());
  return src ? std::string() : src.error();
}

using flowsec::test::TempDir;

void write_prefix(const std::string& from, const fs::path& to, std::size_t bytes) {
  std::ifstream in(from, std::ios::binary);
  std::vector<char> buf(bytes);
  in.read(buf.data(), static_cast<std::streamsize>(bytes));
  std::ofstream out(to, std::ios::binary);
  out.write(buf.data(), in.gcount());
}

// capinfos -c -E tcpreplay_test.pcap: 179 packets, ether
// tshark -r tcpreplay_test.pcap -T fields -e frame.time_epoch -e frame.len | sed -n '1p;179p'
//   1278472579.466743000  93
//   1278472582.723492000  144
// tshark ... -e frame.cap_len | awk '{s+=$1} END {print s}': 69000 (no frame is cut)
TEST(OfflineCapture, PcapFile) {
  auto src = open_ok(kTrace);
  ASSERT_TRUE(src);
  EXPECT_EQ(src->kind(), SourceKind::file);
  EXPECT_EQ(src->description(), "file '" + kTrace + "'");
  const ReadAll r = read_all(*src);
  EXPECT_EQ(r.last, ReadStatus::end);
  ASSERT_EQ(r.frames.size(), 179u);
  EXPECT_EQ(r.frames.front().ts, 1278472579466743000);
  EXPECT_EQ(r.frames.front().wire, 93u);
  EXPECT_EQ(r.frames.back().ts, 1278472582723492000);
  EXPECT_EQ(r.frames.back().wire, 144u);
  std::uint64_t captured = 0;
  for (const Frame& f : r.frames) {
    EXPECT_EQ(f.link, kDltEthernet);
    EXPECT_EQ(f.caplen, f.wire);
    captured += f.caplen;
  }
  EXPECT_EQ(captured, 69000u);
  EXPECT_EQ(src->stats().received, 179u);
  EXPECT_EQ(src->stats().filtered_out, 0u);
  EXPECT_FALSE(src->stats().kernel_drops.has_value());
  EXPECT_TRUE(src->error().empty());
  // The end is sticky.
  PacketBatch batch;
  EXPECT_EQ(src->next_batch(batch), ReadStatus::end);
  EXPECT_EQ(batch.size, 0u);
}

// The batch's bytes are the file's bytes: compare with PcapFile, which hands out
// libpcap's buffer directly.
TEST(OfflineCapture, BatchBytesEqualFileBytes) {
  auto file = PcapFile::open(kTrace);
  ASSERT_TRUE(file.has_value()) << file.error();
  std::vector<std::vector<std::byte>> expected;
  while (auto p = file->next()) expected.emplace_back(p->data.begin(), p->data.end());
  ASSERT_EQ(expected.size(), 179u);

  auto src = open_ok(kTrace);
  ASSERT_TRUE(src);
  PacketBatch batch;
  std::size_t i = 0;
  while (src->next_batch(batch) == ReadStatus::packets) {
    for (const RawPacket& p : batch.view()) {
      ASSERT_LT(i, expected.size());
      EXPECT_TRUE(std::equal(p.data.begin(), p.data.end(), expected[i].begin(), expected[i].end()))
          << "frame " << i + 1;
      ++i;
    }
  }
  EXPECT_EQ(i, expected.size());
}

// capinfos -c -E mixed/ah.pcapng: 6 packets, ether
// tshark -r mixed/ah.pcapng -T fields -e frame.time_epoch -e frame.len | head -2
//   1587338929.051893000 400 / 1587338929.058825000 400
TEST(OfflineCapture, Pcapng) {
  auto src = open_ok(kData + "mixed/ah.pcapng");
  ASSERT_TRUE(src);
  const ReadAll r = read_all(*src);
  EXPECT_EQ(r.last, ReadStatus::end);
  ASSERT_EQ(r.frames.size(), 6u);
  EXPECT_EQ(r.frames[0].ts, 1587338929051893000);
  EXPECT_EQ(r.frames[0].wire, 400u);
  EXPECT_EQ(r.frames[1].ts, 1587338929058825000);
  EXPECT_EQ(r.frames[0].link, kDltEthernet);
}

// tshark -r mixed/tcp-handshake-nano.pcap -T fields -e frame.time_epoch -e frame.len
//   1418145369.924505488 76 / 1418145370.052027262 76 / 1418145370.052115157 68
TEST(OfflineCapture, NanosecondPcapKeepsNanoseconds) {
  auto src = open_ok(kData + "mixed/tcp-handshake-nano.pcap");
  ASSERT_TRUE(src);
  const ReadAll r = read_all(*src);
  ASSERT_EQ(r.frames.size(), 3u);
  EXPECT_EQ(r.frames[0].ts, 1418145369924505488);
  EXPECT_EQ(r.frames[1].ts, 1418145370052027262);
  EXPECT_EQ(r.frames[2].ts, 1418145370052115157);
  EXPECT_EQ(r.frames[2].wire, 68u);
  EXPECT_EQ(r.frames[0].link, kDltLinuxSll);
}

// capinfos -c -E mixed/*: LINKTYPE_RAW_ipv6.pcap rawip 1, ah.pcapng ether 6,
// dns_udp.pcap ether 2, empty.pcapng ether 0, nats.pcap null 27,
// tcp-handshake-nano.pcap linux-sll 3; not_a_capture.txt is skipped. Name order is
// byte order, so the upper-case name comes first.
TEST(OfflineCapture, DirectoryInNameOrderWithMixedLinkTypes) {
  auto src = open_ok(kData + "mixed");
  ASSERT_TRUE(src);
  EXPECT_EQ(src->kind(), SourceKind::directory);
  const ReadAll r = read_all(*src);
  EXPECT_EQ(r.last, ReadStatus::end);
  std::vector<std::pair<int, int>> runs;  // (link type, packets) in reading order
  for (const Frame& f : r.frames) {
    if (runs.empty() || runs.back().first != f.link) runs.emplace_back(f.link, 0);
    ++runs.back().second;
  }
  const std::vector<std::pair<int, int>> expected = {
      {kDltRaw, 1}, {kDltEthernet, 6 + 2}, {kDltNull, 27}, {kDltLinuxSll, 3}};
  EXPECT_EQ(runs, expected);
  EXPECT_EQ(r.frames.size(), 39u);
  EXPECT_EQ(src->stats().received, 39u);
  EXPECT_EQ(src->stats().damaged_files, 0u);
  // The first nats.pcap frame follows the last of dns_udp.pcap: files are read whole, in order.
  ASSERT_TRUE(src->progress().has_value());
  EXPECT_EQ(src->progress()->file_count, 6u);
  // stat -c %s mixed/*.pcap*: 117 + 2072 + 420 + 48 + 2916 + 292
  EXPECT_EQ(src->progress()->bytes_total, 5865u);
  EXPECT_EQ(src->progress()->bytes_read, 5865u);
}

TEST(OfflineCapture, DirectoryWithoutCapturesIsAnError) {
  TempDir dir("capture");
  std::ofstream(dir / "notes.txt") << "nothing here\n";
  CaptureOptions opts;
  opts.interface = dir.path();
  EXPECT_EQ(open_error(opts), "directory '" + opts.interface + "': no pcap or pcapng files");
}

// head -c 1000 tcpreplay_test.pcap > t.pcap; capinfos -c t.pcap: 11 packets, then
// "cut short in the middle of a packet". A directory skips the damaged rest and goes
// on; a single file delivers the 11 and then reports the damage.
TEST(OfflineCapture, DamagedFileInDirectoryIsSkipped) {
  TempDir dir("capture");
  fs::copy_file(kData + "mixed/dns_udp.pcap", dir / "a.pcap");
  write_prefix(kTrace, dir / "b.pcap", 1000);
  fs::copy_file(kData + "mixed/dns_udp.pcap", dir / "c.pcap");
  auto src = open_ok(dir.path());
  ASSERT_TRUE(src);
  const ReadAll r = read_all(*src);
  EXPECT_EQ(r.last, ReadStatus::end);
  EXPECT_EQ(r.frames.size(), 2u + 11u + 2u);
  EXPECT_EQ(src->stats().damaged_files, 1u);
  EXPECT_NE(src->error().find("b.pcap"), std::string::npos) << src->error();
}

TEST(OfflineCapture, DamagedSingleFileEndsWithError) {
  TempDir dir("capture");
  const fs::path cut = dir / "cut.pcap";
  write_prefix(kTrace, cut, 1000);
  auto src = open_ok(cut.string());
  ASSERT_TRUE(src);
  const ReadAll r = read_all(*src);
  EXPECT_EQ(r.frames.size(), 11u);
  EXPECT_EQ(r.last, ReadStatus::error);
  EXPECT_EQ(src->error().rfind("file '" + cut.string() + "': ", 0), 0u) << src->error();
  PacketBatch batch;
  EXPECT_EQ(src->next_batch(batch), ReadStatus::error);
}

// A pipe on fd 0, fed by a thread: not seekable, as `cat x.pcap | flowsec -i -` is.
TEST(OfflineCapture, StandardInput) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const int saved_stdin = ::dup(STDIN_FILENO);
  ASSERT_GE(saved_stdin, 0);
  ASSERT_EQ(::dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
  ::close(fds[0]);
  std::thread writer([fd = fds[1]] {
    std::ifstream in(kTrace, std::ios::binary);
    std::vector<char> buf(4096);
    while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
      const char* p = buf.data();
      auto left = static_cast<std::size_t>(in.gcount());
      while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n <= 0) break;
        p += n;
        left -= static_cast<std::size_t>(n);
      }
    }
    ::close(fd);
  });
  auto src = open_capture(options_for("-"));
  // Put the real stdin back before any assertion can return early.
  ::dup2(saved_stdin, STDIN_FILENO);
  ::close(saved_stdin);
  ASSERT_TRUE(src.has_value()) << src.error();
  EXPECT_EQ((*src)->kind(), SourceKind::standard_input);
  EXPECT_FALSE((*src)->progress().has_value());
  const ReadAll r = read_all(**src);
  writer.join();
  EXPECT_EQ(r.last, ReadStatus::end);
  EXPECT_EQ(r.frames.size(), 179u);  // capinfos -c tcpreplay_test.pcap
  EXPECT_EQ(r.frames.front().ts, 1278472579466743000);
}

// tshark -r tcpreplay_test.pcap -Y "ip.addr==172.16.11.12 && !mpls && !vlan" | wc -l: 140
// (BPF "ip host X" looks at an IPv4 header right after the Ethernet header only)
TEST(OfflineCapture, BpfFilterOnFile) {
  CaptureOptions opts;
  opts.interface = kTrace;
  opts.bpf_filter = "ip host 172.16.11.12";
  auto src = open_ok(opts);
  ASSERT_TRUE(src);
  const ReadAll r = read_all(*src);
  EXPECT_EQ(r.frames.size(), 140u);
  EXPECT_EQ(src->stats().received, 140u);
  EXPECT_EQ(src->stats().filtered_out, 179u - 140u);
}

// The filter is compiled per file for that file's link type: "ip" works on Ethernet,
// raw IP, BSD loopback and Linux cooked alike.
// tshark -r F -Y "ip" | wc -l over mixed/: 0 + 6 + 2 + 0 + 27 + 3 (the raw file is IPv6)
TEST(OfflineCapture, BpfFilterOnMixedDirectory) {
  CaptureOptions opts;
  opts.interface = kData + "mixed";
  opts.bpf_filter = "ip";
  auto src = open_ok(opts);
  ASSERT_TRUE(src);
  const ReadAll r = read_all(*src);
  EXPECT_EQ(r.frames.size(), 38u);
  EXPECT_EQ(src->stats().filtered_out, 1u);
  EXPECT_EQ(src->stats().damaged_files, 0u);
}

TEST(OfflineCapture, BadFilterIsAStartUpErrorNamingTheExpression) {
  CaptureOptions opts;
  opts.interface = kTrace;
  opts.bpf_filter = "tcp prot 80";
  const std::string err = open_error(opts);
  EXPECT_EQ(err.rfind("file '" + kTrace + "': filter 'tcp prot 80': ", 0), 0u) << err;
  opts.interface = kData + "mixed";
  EXPECT_NE(open_error(opts).find("filter 'tcp prot 80'"), std::string::npos);
}

TEST(OfflineCapture, MissingFile) {
  CaptureOptions opts;
  opts.interface = "/nonexistent/flowsec/trace.pcap";
  EXPECT_EQ(open_error(opts), "file '/nonexistent/flowsec/trace.pcap': No such file or directory");
  // A bare name that reads like a capture file is a missing file, not a missing device.
  opts.interface = "no-such-trace.pcapng";
  EXPECT_EQ(open_error(opts), "file 'no-such-trace.pcapng': No such file or directory");
}

TEST(OfflineCapture, NotACaptureFile) {
  CaptureOptions opts;
  opts.interface = kData + "mixed/not_a_capture.txt";
  const std::string err = open_error(opts);
  EXPECT_EQ(err.rfind("file '" + opts.interface + "': ", 0), 0u) << err;
}

TEST(OfflineCapture, BadSnaplen) {
  EXPECT_NE(open_error(options_for(kTrace, 0)).find("snaplen 0"), std::string::npos);
  EXPECT_NE(open_error(options_for(kTrace, kMaxSnaplen + 1)).find("out of range"),
            std::string::npos);
  EXPECT_EQ(open_error(CaptureOptions{}), "no capture source given (-i)");
}

// tshark -r tcpreplay_test.pcap -T fields -e frame.cap_len
//   | awk '{t+=($1>100?100:$1)} END {print t}': 15105; frame.len sum 69000
TEST(OfflineCapture, SnaplenCutsFramesButKeepsWireLength) {
  auto src = open_ok(options_for(kTrace, 100));
  ASSERT_TRUE(src);
  const ReadAll r = read_all(*src);
  ASSERT_EQ(r.frames.size(), 179u);
  std::uint64_t captured = 0, wire = 0;
  for (const Frame& f : r.frames) {
    EXPECT_LE(f.caplen, 100u);
    captured += f.caplen;
    wire += f.wire;
  }
  EXPECT_EQ(captured, 15105u);
  EXPECT_EQ(wire, 69000u);
}

// Three copies of the 179-packet trace (71888 bytes each): 537 packets in batches of
// 256, 256 and 25, with progress growing to the total.
TEST(OfflineCapture, ProgressAcrossFiles) {
  TempDir dir("capture");
  for (const char* name : {"1.pcap", "2.pcap", "3.pcap"}) fs::copy_file(kTrace, dir / name);
  auto src = open_ok(dir.path());
  ASSERT_TRUE(src);
  auto p = src->progress();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->bytes_total, 3u * 71888u);
  EXPECT_EQ(p->file_count, 3u);
  EXPECT_EQ(p->file_index, 0u);
  EXPECT_LT(p->bytes_read, 71888u);

  PacketBatch batch;
  std::vector<std::uint64_t> read;
  std::vector<std::size_t> sizes;
  while (src->next_batch(batch) == ReadStatus::packets) {
    sizes.push_back(batch.size);
    read.push_back(src->progress()->bytes_read);
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{256, 256, 25}));
  ASSERT_EQ(read.size(), 3u);
  // 256 packets end inside the second file, 512 inside the third.
  EXPECT_GT(read[0], 71888u);
  EXPECT_LT(read[0], 2u * 71888u);
  EXPECT_GT(read[1], 2u * 71888u);
  EXPECT_LE(read[2], 3u * 71888u);
  EXPECT_EQ(src->progress()->bytes_read, 3u * 71888u);
  EXPECT_EQ(src->progress()->file_index, 2u);
}

TEST(OfflineCapture, StopEndsReading) {
  TempDir dir("capture");
  for (const char* name : {"1.pcap", "2.pcap"}) fs::copy_file(kTrace, dir / name);
  auto src = open_ok(dir.path());
  ASSERT_TRUE(src);
  PacketBatch batch;
  ASSERT_EQ(src->next_batch(batch), ReadStatus::packets);
  EXPECT_EQ(batch.size, 256u);
  std::thread([&] { src->stop(); }).join();
  EXPECT_EQ(src->next_batch(batch), ReadStatus::end);
  EXPECT_EQ(batch.size, 0u);
  EXPECT_EQ(src->next_batch(batch), ReadStatus::end);
  EXPECT_EQ(src->stats().received, 256u);
}

// The older one-file reader still works (app/decode_command.cpp uses it).
TEST(OfflineCapture, PcapFileReadsEveryFrame) {
  auto file = PcapFile::open(kData + "mixed/tcp-handshake-nano.pcap");
  ASSERT_TRUE(file.has_value()) << file.error();
  EXPECT_EQ(file->link_type(), kDltLinuxSll);
  int n = 0;
  while (auto p = file->next()) {
    if (n == 0) {
      EXPECT_EQ(p->timestamp_ns, 1418145369924505488);
    }
    ++n;
  }
  EXPECT_EQ(n, 3);
  EXPECT_TRUE(file->error().empty());
}

}  // namespace
}  // namespace flowsec::capture
