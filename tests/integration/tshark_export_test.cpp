// Peer check: tshark (Wireshark's dissector, an independent implementation of
// RFC 7011 and RFC 3954) dissects IPFIX and NetFlow v9 messages built by our
// encoders without any malformed-packet or expert warning, and reads back the
// values we put in. Skips loudly when tshark is not installed.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "ipfix/message_builder.hpp"
#include "ipfix/netflow_v9_builder.hpp"
#include "support/flowsec_process.hpp"
#include "support/pcap_writer.hpp"

namespace flowsec::ipfix {
namespace {

using test::CommandResult;

// A shell command (tests/support: sh -c, bounded); stderr joins stdout unless
// `with_stderr` is false.
CommandResult run(const std::string& cmd, bool with_stderr = true) {
  return test::run_shell(with_stderr ? cmd : cmd + " 2>/dev/null");
}

constexpr int kRecords = 40;

// One IPv4 template with fixed, reduced-size, MAC, time, reverse (RFC 5103) and
// ntop enterprise elements plus a variable-length string; one IPv6 template; one
// options template.
std::vector<FieldSpec> v4_fields(bool with_reverse) {
  std::vector<FieldSpec> f = {
      {0, 8, 4},        // sourceIPv4Address
      {0, 12, 4},       // destinationIPv4Address
      {0, 7, 2},        // sourceTransportPort
      {0, 11, 2},       // destinationTransportPort
      {0, 4, 1},        // protocolIdentifier
      {0, 6, 2},        // tcpControlBits
      {0, 1, 8},        // octetDeltaCount
      {0, 2, 4},        // packetDeltaCount, reduced-size (RFC 7011 §6.2)
      {0, 152, 8},      // flowStartMilliseconds
      {0, 153, 8},      // flowEndMilliseconds
      {0, 56, 6},       // sourceMacAddress
      {0, 58, 2},       // vlanId
      {35632, 118, 2},  // ntop L7_PROTO
  };
  if (with_reverse) {
    f.push_back({kReversePen, 1, 8});       // reverseOctetDeltaCount
    f.push_back({kReversePen, 2, 8});       // reversePacketDeltaCount
    f.push_back({0, 96, kVariableLength});  // applicationName, variable length
  }
  return f;
}

std::vector<std::byte> v4_record(int i, bool with_reverse) {
  std::vector<std::byte> r;
  ByteWriter w(r);
  w.u32(0x0a000000u + static_cast<std::uint32_t>(i));  // 10.0.0.i
  w.u32(0xc0a80101u);                                  // 192.168.1.1
  w.u16(static_cast<std::uint16_t>(40000 + i));
  w.u16(443);
  w.u8(6);
  w.u16(0x1b);
  w.u64(1000ull * static_cast<std::uint64_t>(i + 1));
  w.u32(static_cast<std::uint32_t>(i + 1));
  w.u64(1700000000000ull + static_cast<std::uint64_t>(i));
  w.u64(1700000001000ull + static_cast<std::uint64_t>(i));
  w.u32(0x02000000);
  w.u16(static_cast<std::uint16_t>(i));
  w.u16(100);
  w.u16(7);
  if (with_reverse) {
    w.u64(500);
    w.u64(5);
    const std::string name = i % 2 ? "https" : "quic";
    w.u8(static_cast<std::uint8_t>(name.size()));
    w.bytes(as_bytes(name));
  }
  return r;
}

std::vector<std::byte> v6_record(int i) {
  std::vector<std::byte> r;
  ByteWriter w(r);
  w.u32(0x20010db8);
  w.u64(0);
  w.u32(static_cast<std::uint32_t>(i + 1));
  w.u32(0x20010db8);
  w.u64(0);
  w.u32(0xffff);
  w.u16(53);
  w.u16(static_cast<std::uint16_t>(5000 + i));
  w.u8(17);
  w.u64(80);
  w.u64(1);
  return r;
}

const std::vector<FieldSpec> kV6Fields = {{0, 27, 16}, {0, 28, 16}, {0, 7, 2}, {0, 11, 2},
                                          {0, 4, 1},   {0, 1, 8},   {0, 2, 8}};

std::vector<std::byte> options_record() {
  std::vector<std::byte> r;
  ByteWriter w(r);
  w.u32(1);    // observationDomainId (scope)
  w.u32(100);  // samplingPacketInterval
  return r;
}

std::string write_capture(const std::string& dir) {
  const std::string path = dir + "/our_export.pcap";
  test::PcapWriter pcap(path);
  auto v4 = *Template::make(256, v4_fields(true));
  auto v6 = *Template::make(257, kV6Fields);
  auto opt = *Template::make(258, {{0, 149, 4}, {0, 305, 4}}, 1);

  // IPFIX to 4739, in several messages bounded to 512 bytes.
  IpfixMessageBuilder b(1, 512);
  std::uint32_t seq = 0;
  b.begin(1700000000, seq);
  EXPECT_TRUE(b.add_template(*v4));
  EXPECT_TRUE(b.add_template(*v6));
  EXPECT_TRUE(b.add_template(*opt));
  EXPECT_TRUE(b.add_record(*opt, options_record()));
  auto flush = [&] {
    seq += b.data_records();
    auto m = b.finish();
    pcap.write_udp(m, 4739);
    b.begin(1700000000, seq);
  };
  for (int i = 0; i < kRecords; ++i) {
    auto r = v4_record(i, true);
    if (!b.add_record(*v4, r)) {
      flush();
      EXPECT_TRUE(b.add_record(*v4, r));
    }
    auto r6 = v6_record(i);
    if (!b.add_record(*v6, r6)) {
      flush();
      EXPECT_TRUE(b.add_record(*v6, r6));
    }
  }
  flush();

  // NetFlow v9 to 2055: same layouts without the reverse and variable-length fields.
  auto v4nf = *Template::make(256, v4_fields(false));
  NetflowV9MessageBuilder nb(7, 512);
  std::uint32_t packets = 0;
  nb.begin(360000, 1700000000, packets);
  EXPECT_TRUE(nb.add_template(*v4nf));
  EXPECT_TRUE(nb.add_template(*v6));
  EXPECT_TRUE(nb.add_options_template(*opt));
  EXPECT_TRUE(nb.add_record(*opt, options_record()));
  auto nflush = [&] {
    pcap.write_udp(nb.finish(), 2055);
    nb.begin(360000, 1700000000, ++packets);
  };
  for (int i = 0; i < kRecords; ++i) {
    auto r = v4_record(i, false);
    if (!nb.add_record(*v4nf, r)) {
      nflush();
      EXPECT_TRUE(nb.add_record(*v4nf, r));
    }
    auto r6 = v6_record(i);
    if (!nb.add_record(*v6, r6)) {
      nflush();
      EXPECT_TRUE(nb.add_record(*v6, r6));
    }
  }
  nflush();
  return path;
}

class TsharkPeer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_command("tshark"))
      GTEST_SKIP() << "SKIPPED: tshark is not installed (scripts/install-deps.sh)";
    dir_ =
        std::filesystem::temp_directory_path() / ("flowsec_tshark_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    capture_ = write_capture(dir_.string());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string tshark(const std::string& args) {
    return "tshark -n -r " + capture_ + " -d udp.port==4739,cflow -d udp.port==2055,cflow " + args;
  }
  std::filesystem::path dir_;
  std::string capture_;
};

TEST_F(TsharkPeer, NoMalformedPacketsOrExpertWarnings) {
  CommandResult v = run(tshark("-V"));
  ASSERT_TRUE(v.ok()) << v.out;
  EXPECT_EQ(v.out.find("Malformed"), std::string::npos) << v.out;
  EXPECT_EQ(v.out.find("[Expert Info (Warning"), std::string::npos) << v.out;
  EXPECT_EQ(v.out.find("[Expert Info (Error"), std::string::npos) << v.out;
  // The expert summary counts every note tshark raised; none may be a warning or an error.
  CommandResult z = run(tshark("-q -z expert,warn"));
  ASSERT_TRUE(z.ok()) << z.out;
  EXPECT_EQ(z.out.find("Warnings ("), std::string::npos) << z.out;
  EXPECT_EQ(z.out.find("Errors ("), std::string::npos) << z.out;
}

TEST_F(TsharkPeer, ReadsBackEveryRecordWeEncoded) {
  // Per version, tshark's source addresses of the IPv4 records: 10.0.0.0 .. 10.0.0.39.
  for (const char* version : {"10", "9"}) {
    CommandResult r = run(tshark(std::string("-Y cflow.version==") + version +
                                 " -T fields -E occurrence=a -E separator=, -e cflow.srcaddr"),
                          false);
    ASSERT_TRUE(r.ok()) << r.out;
    std::vector<std::string> seen;
    std::stringstream lines(r.out);
    std::string line;
    while (std::getline(lines, line)) {
      std::stringstream cells(line);
      std::string cell;
      while (std::getline(cells, cell, ',')) {
        if (!cell.empty()) seen.push_back(cell);
      }
    }
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(kRecords)) << "version " << version << "\n"
                                                               << r.out;
    for (int i = 0; i < kRecords; ++i) EXPECT_EQ(seen[i], "10.0.0." + std::to_string(i));
  }
  // The variable-length strings and the reverse counters survive too (IPFIX only).
  CommandResult names =
      run(tshark("-Y cflow.version==10 -T fields -E occurrence=a -e cflow.appl_name"), false);
  EXPECT_NE(names.out.find("https"), std::string::npos) << names.out;
  EXPECT_NE(names.out.find("quic"), std::string::npos) << names.out;
}

}  // namespace
}  // namespace flowsec::ipfix
