// NtopngSink pieces that need no socket: the 36-byte message header (ntopng
// include/ntop_typedefs.h struct zmq_msg_hdr_v4, laid out by hand here) and the
// start-up checks of check_ntopng_options (URL, CURVE key length and Z85 alphabet).
#include "sinks/ntopng_sink.hpp"

#include <array>
#include <cstdint>

#include <gtest/gtest.h>

namespace flowsec::sinks {
namespace {

using namespace std::chrono_literals;

std::array<std::uint8_t, kNtopngHeaderSize> raw(const std::array<std::byte, kNtopngHeaderSize>& b) {
  std::array<std::uint8_t, kNtopngHeaderSize> r{};
  for (std::size_t i = 0; i < b.size(); ++i) r[i] = static_cast<std::uint8_t>(b[i]);
  return r;
}

TEST(NtopngHeaderTest, LayoutOfZmqMsgHdrV4) {
  NtopngHeader h;
  h.topic = "flow";
  h.flags = kNtopngFlagCompressed;
  h.uncompressed_size = 0x01020304;
  h.payload_size = 0x0a0b0c0d;
  h.msg_id = 0x11223344;
  h.source_id = 7;
  const std::array<std::uint8_t, 36> expected{
      'f',  'l',  'o',  'w',  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // url[16], NUL-padded
      4,    0x04, 0,    0,                                         // version, flags, padding
      0x04, 0x03, 0x02, 0x01,                                      // uncompressed_size, LE
      0x0d, 0x0c, 0x0b, 0x0a,                                      // compressed_size, LE
      0x11, 0x22, 0x33, 0x44,                                      // msg_id, network order
      0,    0,    0,    7};                                        // source_id, network order
  EXPECT_EQ(raw(encode_ntopng_header(h)), expected);
}

TEST(NtopngHeaderTest, TopicIsCutToKeepTheTerminatingNul) {
  NtopngHeader h;
  h.topic = "counter";
  auto b = raw(encode_ntopng_header(h));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data())), "counter");
  EXPECT_EQ(b[16], kNtopngVersion);
  EXPECT_EQ(b[17], 0);
  h.topic = "a-topic-longer-than-16";
  b = raw(encode_ntopng_header(h));
  EXPECT_EQ(b[15], 0);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data())), "a-topic-longer-");
}

NtopngSinkOptions with(std::string endpoint, std::string key = {}, bool connect = false) {
  NtopngSinkOptions o;
  o.endpoint = std::move(endpoint);
  o.server_public_key = std::move(key);
  o.connect = connect;
  return o;
}

// ZeroMQ's own example server public key (zmq_curve(7)).
constexpr const char* kGoodKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

TEST(NtopngOptionsTest, AcceptsNprobeSpellings) {
  EXPECT_EQ(check_ntopng_options(with("zmq://*:5556")), "");
  EXPECT_EQ(check_ntopng_options(with("tcp://127.0.0.1:5556")), "");
  EXPECT_EQ(check_ntopng_options(with("zmq://[::1]:5556")), "");
  EXPECT_EQ(check_ntopng_options(with("zmq://127.0.0.1:0")), "");  // any free port
  EXPECT_EQ(check_ntopng_options(with("tcp://ntopng.example.org:5556", {}, true)), "");
  EXPECT_EQ(check_ntopng_options(with("zmq://*:5556", kGoodKey)), "");
}

TEST(NtopngOptionsTest, RefusesBadUrls) {
  EXPECT_NE(check_ntopng_options(with("udp://127.0.0.1:5556")), "");
  EXPECT_NE(check_ntopng_options(with("127.0.0.1:5556")), "");
  EXPECT_NE(check_ntopng_options(with("zmq://127.0.0.1")), "");
  EXPECT_NE(check_ntopng_options(with("zmq://127.0.0.1:70000")), "");
  EXPECT_NE(check_ntopng_options(with("zmq://127.0.0.1:x")), "");
  // Port 0 is fine to bind, meaningless to connect to.
  EXPECT_NE(check_ntopng_options(with("zmq://127.0.0.1:0", {}, true)), "");
}

TEST(NtopngOptionsTest, RefusesBadKeys) {
  const std::string good = kGoodKey;
  const std::string shorter = good.substr(0, 39);
  EXPECT_NE(check_ntopng_options(with("zmq://*:5556", shorter)).find("40"), std::string::npos);
  EXPECT_NE(check_ntopng_options(with("zmq://*:5556", good + "a")), "");
  std::string bad = good;
  bad[5] = ',';  // not in the Z85 alphabet
  EXPECT_NE(check_ntopng_options(with("zmq://*:5556", bad)).find("Z85"), std::string::npos);
  bad[5] = ' ';
  EXPECT_NE(check_ntopng_options(with("zmq://*:5556", bad)), "");
}

TEST(NtopngOptionsTest, RefusesBadSizes) {
  auto o = with("zmq://*:5556");
  o.max_payload_bytes = 0;
  EXPECT_NE(check_ntopng_options(o), "");
  o = with("zmq://*:5556");
  o.counters = [] { return NtopngInterfaceCounters{}; };
  o.counter_interval = 0s;
  EXPECT_NE(check_ntopng_options(o), "");
}

}  // namespace
}  // namespace flowsec::sinks
