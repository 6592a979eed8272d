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

TEST(IpNetwork, ParsesPrefixesAndSingleAddresses) {
  auto net = IpNetwork::parse("192.0.2.0/24");
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->contains(*IpAddress::parse("192.0.2.200")));
  EXPECT_FALSE(net->contains(*IpAddress::parse("192.0.3.1")));
  EXPECT_EQ(net->to_string(), "192.0.2.0/24");
  auto host = IpNetwork::parse("10.1.2.3");
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains(*IpAddress::parse("10.1.2.3")));
  EXPECT_FALSE(host->contains(*IpAddress::parse("10.1.2.4")));
  auto odd = IpNetwork::parse("10.0.0.0/9");  // a prefix inside a byte
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(*IpAddress::parse("10.127.255.255")));
  EXPECT_FALSE(odd->contains(*IpAddress::parse("10.128.0.0")));
  auto any = IpNetwork::parse("0.0.0.0/0");
  ASSERT_TRUE(any);
  EXPECT_TRUE(any->contains(*IpAddress::parse("203.0.113.9")));
}

TEST(IpNetwork, KeepsFamiliesApartAndRejectsBadText) {
  auto v6 = IpNetwork::parse("2001:db8::/33");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*IpAddress::parse("2001:db8:7fff::1")));
  EXPECT_FALSE(v6->contains(*IpAddress::parse("2001:db8:8000::1")));
  EXPECT_FALSE(v6->contains(*IpAddress::parse("32.1.13.184")));
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/x", "host/8"}) {
    EXPECT_FALSE(IpNetwork::parse(bad)) << bad;
  }
}

}  // namespace
}  // namespace flowsec
