#include "common/ip_address.hpp"

#include <gtest/gtest.h>

namespace flowsec {
namespace {

TEST(IpAddress, ParsesAndPrintsBothFamilies) {
  auto a = IpAddress::parse("192.0.2.10");
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(a->is_v6());
  EXPECT_EQ(a->v4_host_order(), 0xc000020au);
  EXPECT_EQ(a->to_string(), "192.0.2.10");
  auto b = IpAddress::parse("2001:db8::1");
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(b->is_v6());
  EXPECT_EQ(b->bytes().size(), 16u);
  EXPECT_EQ(b->to_string(), "2001:db8::1");
  EXPECT_FALSE(IpAddress::parse("[2001:db8::1]").has_value());
  EXPECT_FALSE(IpAddress::parse("300.1.1.1").has_value());
  EXPECT_FALSE(IpAddress::parse("localhost").has_value());
}

TEST(IpAddress, UnspecifiedAndOrdering) {
  EXPECT_TRUE(IpAddress().is_unspecified());
  EXPECT_TRUE(IpAddress::parse("::")->is_unspecified());
  EXPECT_FALSE(IpAddress::v4(1).is_unspecified());
  EXPECT_EQ(IpAddress::v4(0x7f000001), *IpAddress::parse("127.0.0.1"));
  EXPECT_NE(*IpAddress::parse("::ffff:127.0.0.1"), *IpAddress::parse("127.0.0.1"));
}

}  // namespace
}  // namespace flowsec
