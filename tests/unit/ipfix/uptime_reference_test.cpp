// UptimeReference: IPFIX records with flowStart/EndSysUpTime (22/21) get absolute times
// from the exporter's systemInitTimeMilliseconds (160) options record.
#include "ipfix/uptime_reference.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ipfix/ipfix_file.hpp"
#include "ipfix/render.hpp"

namespace flowsec::ipfix {
namespace {

std::string data(const std::string& rel) {
  return std::string(FLOWSEC_TEST_DATA) + "/" + rel;
}

// softflowd's IPFIX export of nDPI's 1kxun.pcap (tests/data/README.md). `ipfixDump -i FILE`
// prints systemInitTimeMilliseconds 2026-11-26 14:07:56.777 (= 1795702076777 ms) and, for the
// first flow 192.168.5.16 → 68.233.253.133, flowStartSysUpTime 819813137 and
// flowEndSysUpTime 819836033: absolute (init + uptime) / 1000 = 1796521889 and 1796521912 s.
TEST(UptimeReference, SoftflowdTimesBecomeAbsoluteInEveryOutput) {
  std::string text;
  RecordRenderer renderer(RenderFormat::text);
  auto stats = read_ipfix_file(data("ipfix/softflowd_1kxun_tcp.ipfix"),
                               [&](RecordBatch& batch) { renderer.render(batch, text); });
  ASSERT_TRUE(stats) << stats.error().message();
  const auto line_at = text.find("IPV4_SRC_ADDR=192.168.5.16 IPV4_DST_ADDR=68.233.253.133");
  ASSERT_NE(line_at, std::string::npos);
  const std::string line = text.substr(line_at, text.find('\n', line_at) - line_at);
  EXPECT_NE(line.find("FIRST_SWITCHED=1796521889 "), std::string::npos) << line;
  EXPECT_NE(line.find("LAST_SWITCHED=1796521912 "), std::string::npos) << line;
}

TEST(UptimeReference, LeavesMessagesAloneWithoutAnInitTime) {
  RecordBatch batch;
  MessageMeta meta;
  meta.export_time = 1000;
  const auto mark = batch.mark();
  batch.add_message(meta);
  UptimeReference ref;
  ref.apply(batch, mark);
  EXPECT_EQ(batch.messages_from(0)[0].sys_uptime_ms, 0u);
  EXPECT_FALSE(batch.messages_from(0)[0].ipfix_uptime);
}

// An exporter that sends within the first second after its systemInitTimeMilliseconds gives
// messages an uptime of 0; their records still get absolute times (they rendered as raw
// uptimes, the first ~70 000 records of the probe's benchmark trace, before).
TEST(UptimeReference, AnUptimeOfZeroIsAnUptime) {
  RecordBatch batch;
  auto init = *Template::make(256, {{0, 149, 4}, {0, 160, 8}}, 1);
  auto flows = *Template::make(257, {{0, 8, 4}, {0, 22, 4}, {0, 21, 4}});
  MessageMeta meta;
  meta.export_time = 1'700'000'000;
  const auto mark = batch.mark();
  const auto m = batch.add_message(meta);
  std::vector<std::byte> bytes;
  ByteWriter w(bytes);
  w.u32(0);
  w.u64(1'700'000'000'000);  // the init time: the message's export time, to the ms
  batch.add(batch.store(bytes), 12, batch.use_template(init), m);
  bytes.clear();
  w.u32(0x0a000001);
  w.u32(87);    // flowStartSysUpTime
  w.u32(1500);  // flowEndSysUpTime
  batch.add(batch.store(bytes), 12, batch.use_template(flows), m);
  UptimeReference ref;
  ref.apply(batch, mark);
  EXPECT_EQ(batch.messages_from(0)[0].sys_uptime_ms, 0u);
  EXPECT_TRUE(batch.messages_from(0)[0].ipfix_uptime);
  std::string text;
  RecordRenderer(RenderFormat::text).render(batch, text);
  EXPECT_NE(text.find("FIRST_SWITCHED=1700000000 LAST_SWITCHED=1700000001"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace flowsec::ipfix
