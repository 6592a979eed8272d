#include "common/bytes.hpp"

#include <gtest/gtest.h>

#include <array>

namespace flowsec {
namespace {

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int x : v) out.push_back(static_cast<std::byte>(x));
  return out;
}

TEST(ByteReader, ReadsBigEndianAndStopsAtTheEnd) {
  auto data = bytes_of({0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07});
  ByteReader r(data, 100);
  EXPECT_EQ(r.u16(), 0x0102);
  EXPECT_EQ(r.u32(), 0x03040506u);
  EXPECT_EQ(r.offset(), 106u);
  // One byte left: a u16 read fails and leaves the cursor where it was.
  EXPECT_FALSE(r.u16().has_value());
  EXPECT_EQ(r.remaining(), 1u);
  EXPECT_EQ(r.u8(), 0x07);
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.take(1).has_value());
  EXPECT_FALSE(r.skip(1));
}

TEST(ByteReader, TakeReturnsSubspan) {
  auto data = bytes_of({1, 2, 3, 4});
  ByteReader r(data);
  auto s = r.take(3);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->size(), 3u);
  EXPECT_EQ(r.rest().size(), 1u);
  EXPECT_FALSE(r.take(2).has_value());
  EXPECT_EQ(r.position(), 3u);
}

TEST(ByteWriter, WritesBigEndianAndReducedSize) {
  std::vector<std::byte> out;
  ByteWriter w(out);
  w.u16(0xabcd);
  w.u32(0x01020304);
  w.uint_n(0x0a0b0c, 3);
  w.uint_n(0x1, 9);  // wider than 8: leading zero
  w.patch_u16(0, 0x1111);
  EXPECT_EQ(out, bytes_of({0x11, 0x11, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(load_be_var(Bytes(out).subspan(6, 3)), 0x0a0b0cu);
}

TEST(ByteOrder, RoundTripsEveryWidth) {
  std::array<std::byte, 8> buf{};
  store_be<std::uint64_t>(buf.data(), 0x0102030405060708ull);
  EXPECT_EQ(static_cast<int>(buf[0]), 1);
  EXPECT_EQ(load_be<std::uint64_t>(buf.data()), 0x0102030405060708ull);
  store_be<std::uint16_t>(buf.data(), 0xfffe);
  EXPECT_EQ(load_be<std::uint16_t>(buf.data()), 0xfffe);
  store_be<std::uint8_t>(buf.data(), 7);
  EXPECT_EQ(load_be<std::uint8_t>(buf.data()), 7);
}

}  // namespace
}  // namespace flowsec
