// StreamFramer: IPFIX messages cut out of a byte stream (RFC 7011 §10) under every
// chunking, failure on a header that cannot be IPFIX, and the no-copy fast path.
#include "ipfix/stream_framer.hpp"

#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace flowsec::ipfix {
namespace {

using Buf = std::vector<std::byte>;

// A message of `length` bytes: a valid header (RFC 7011 §3.1) and a recognisable body.
Buf message(std::size_t length, std::uint8_t tag) {
  Buf b;
  ByteWriter w(b);
  w.u16(10);
  w.u16(static_cast<std::uint16_t>(length));
  w.u32(1700000000);
  w.u32(tag);
  w.u32(1);
  for (std::size_t i = 16; i < length; ++i) b.push_back(static_cast<std::byte>(tag + i));
  return b;
}

struct Stream {
  Buf bytes;
  std::vector<Buf> messages;
  void add(Buf m) {
    bytes.insert(bytes.end(), m.begin(), m.end());
    messages.push_back(std::move(m));
  }
};

Stream sample_stream() {
  Stream s;
  s.add(message(16, 1));
  s.add(message(17, 2));
  s.add(message(300, 3));
  s.add(message(16, 4));
  s.add(message(1500, 5));
  return s;
}

// Feeds `data` cut at the given chunk sizes (cycled) and collects the messages.
std::vector<Buf> feed_chunked(StreamFramer& f, const Buf& data,
                              const std::vector<std::size_t>& sizes, Result<void>* last = nullptr) {
  std::vector<Buf> got;
  std::size_t at = 0, k = 0;
  while (at < data.size()) {
    const std::size_t n = std::min(sizes[k++ % sizes.size()], data.size() - at);
    auto r =
        f.feed(Bytes(data).subspan(at, n), [&](Bytes m) { got.emplace_back(m.begin(), m.end()); });
    EXPECT_LE(f.buffered(), limits::kMaxStreamBuffer);
    at += n;
    if (!r) {
      if (last) *last = r;
      break;
    }
  }
  return got;
}

TEST(StreamFramer, AllAtOnce) {
  const Stream s = sample_stream();
  StreamFramer f;
  EXPECT_EQ(feed_chunked(f, s.bytes, {s.bytes.size()}), s.messages);
  EXPECT_EQ(f.buffered(), 0u);
  EXPECT_EQ(f.stream_offset(), s.bytes.size());
  EXPECT_TRUE(f.finish());
}

TEST(StreamFramer, ByteAtATime) {
  const Stream s = sample_stream();
  StreamFramer f;
  EXPECT_EQ(feed_chunked(f, s.bytes, {1}), s.messages);
  EXPECT_TRUE(f.finish());
  EXPECT_EQ(f.stream_offset(), s.bytes.size());
}

TEST(StreamFramer, EverySplitPointOfTwoChunks) {
  const Stream s = sample_stream();
  for (std::size_t cut = 0; cut <= s.bytes.size(); ++cut) {
    StreamFramer f;
    std::vector<Buf> got;
    auto on = [&](Bytes m) { got.emplace_back(m.begin(), m.end()); };
    ASSERT_TRUE(f.feed(Bytes(s.bytes).first(cut), on));
    ASSERT_TRUE(f.feed(Bytes(s.bytes).subspan(cut), on));
    EXPECT_EQ(got, s.messages) << "cut at " << cut;
    EXPECT_TRUE(f.finish());
  }
}

TEST(StreamFramer, SplitHeadersAndRandomChunks) {
  const Stream s = sample_stream();
  // Cuts inside the 4-byte version/length prefix and inside the rest of the header.
  for (std::size_t a : {1u, 2u, 3u, 5u, 15u, 16u, 17u}) {
    StreamFramer f;
    EXPECT_EQ(feed_chunked(f, s.bytes, {a, 3}), s.messages) << a;
  }
  std::mt19937 rng(12345);  // fixed seed: the test is deterministic
  for (int round = 0; round < 50; ++round) {
    std::vector<std::size_t> sizes;
    sizes.reserve(20);
    for (int i = 0; i < 20; ++i) sizes.push_back(1 + rng() % 700);
    StreamFramer f;
    EXPECT_EQ(feed_chunked(f, s.bytes, sizes), s.messages) << round;
    EXPECT_TRUE(f.finish());
  }
}

TEST(StreamFramer, EmptyChunksAreHarmless) {
  const Stream s = sample_stream();
  StreamFramer f;
  int calls = 0;
  auto on = [&](Bytes) { ++calls; };
  ASSERT_TRUE(f.feed(Bytes{}, on));
  ASSERT_TRUE(f.feed(Bytes(s.bytes).first(2), on));
  ASSERT_TRUE(f.feed(Bytes{}, on));
  ASSERT_TRUE(f.feed(Bytes(s.bytes).subspan(2), on));
  EXPECT_EQ(calls, 5);
}

TEST(StreamFramer, LargestMessage) {
  Stream s;
  s.add(message(65535, 9));
  s.add(message(16, 10));
  StreamFramer f;
  EXPECT_EQ(feed_chunked(f, s.bytes, {1000}), s.messages);
  StreamFramer g;
  EXPECT_EQ(feed_chunked(g, s.bytes, {1}), s.messages);
  EXPECT_TRUE(g.finish());
}

TEST(StreamFramer, WholeMessagesAreNotCopied) {
  const Stream s = sample_stream();
  StreamFramer f;
  std::vector<const std::byte*> starts;
  // The first 10 bytes end mid-message; the rest arrives in one chunk.
  ASSERT_TRUE(f.feed(Bytes(s.bytes).first(10), [&](Bytes m) { starts.push_back(m.data()); }));
  const Bytes rest = Bytes(s.bytes).subspan(10);
  ASSERT_TRUE(f.feed(rest, [&](Bytes m) { starts.push_back(m.data()); }));
  ASSERT_EQ(starts.size(), 5u);
  // The first came from the framer's buffer; the other four point into the chunk itself.
  EXPECT_TRUE(starts[0] < rest.data() || starts[0] >= rest.data() + rest.size());
  std::size_t at = 16;
  for (std::size_t i = 1; i < 5; ++i) {
    EXPECT_EQ(starts[i], s.bytes.data() + at) << i;
    at += s.messages[i].size();
  }
}

TEST(StreamFramer, BadVersionFailsForGood) {
  Stream s = sample_stream();
  Buf bad = message(40, 6);
  bad[1] = std::byte{9};  // a NetFlow v9 header in an IPFIX stream
  const std::size_t bad_at = s.bytes.size();
  s.add(bad);
  s.add(message(16, 7));
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, s.bytes.size()}) {
    StreamFramer f;
    Result<void> last;
    const auto got = feed_chunked(f, s.bytes, {chunk}, &last);
    EXPECT_EQ(got.size(), 5u) << chunk;  // everything before the bad header
    ASSERT_FALSE(last);
    EXPECT_EQ(last.error().code, Errc::stream_bad_version);
    EXPECT_EQ(last.error().offset, bad_at);
    EXPECT_EQ(f.stream_offset(), bad_at);
    // It stays failed: the session has to be closed.
    int calls = 0;
    auto again = f.feed(Bytes(message(16, 8)), [&](Bytes) { ++calls; });
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), last.error());
    EXPECT_EQ(calls, 0);
    ASSERT_FALSE(f.finish());
    EXPECT_EQ(f.finish().error(), last.error());
  }
}

TEST(StreamFramer, LengthsBelowSixteenAreRefused) {
  // 16-bit Length cannot exceed 65535; every value under the 16-byte header is impossible.
  for (std::uint16_t len = 0; len < 16; ++len) {
    Buf data = message(100, 1);
    Buf bad = message(16, 2);
    ByteWriter(bad).patch_u16(2, len);
    data.insert(data.end(), bad.begin(), bad.end());
    for (std::size_t chunk : {std::size_t{1}, data.size()}) {
      StreamFramer f;
      Result<void> last;
      const auto got = feed_chunked(f, data, {chunk}, &last);
      EXPECT_EQ(got.size(), 1u);
      ASSERT_FALSE(last) << len;
      EXPECT_EQ(last.error().code, Errc::stream_bad_length) << len;
      EXPECT_EQ(last.error().offset, 100u);
    }
  }
}

TEST(StreamFramer, BadHeaderIsSeenBeforeTheBodyArrives) {
  StreamFramer f;
  Buf bad = message(16, 1);
  ByteWriter(bad).patch_u16(2, 3);
  auto on = [](Bytes) { ADD_FAILURE() << "no message expected"; };
  ASSERT_TRUE(f.feed(Bytes(bad).first(3), on));
  auto r = f.feed(Bytes(bad).subspan(3, 1), on);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{Errc::stream_bad_length, 0}));
}

TEST(StreamFramer, FinishWithPartialMessage) {
  const Stream s = sample_stream();
  // Stop 1 byte short, and stop 2 bytes into the last message's header.
  const std::size_t last_at = s.bytes.size() - s.messages.back().size();
  for (std::size_t keep : {s.bytes.size() - 1, last_at + 2}) {
    StreamFramer f;
    int calls = 0;
    ASSERT_TRUE(f.feed(Bytes(s.bytes).first(keep), [&](Bytes) { ++calls; }));
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(f.buffered(), keep - last_at);
    EXPECT_EQ(f.stream_offset(), last_at);
    auto r = f.finish();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), (Error{Errc::stream_truncated, static_cast<std::uint32_t>(last_at)}));
  }
  StreamFramer empty;
  EXPECT_TRUE(empty.finish());
}

}  // namespace
}  // namespace flowsec::ipfix
