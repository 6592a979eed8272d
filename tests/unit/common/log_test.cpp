#include "common/log.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace flowsec::log {
namespace {

TEST(RateLimiter, LetsABurstThroughThenCountsWhatItHoldsBack) {
  RateLimiter limiter(3, std::chrono::hours(1));
  std::uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.allow(suppressed));
    EXPECT_EQ(suppressed, 0u);
  }
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.allow(suppressed));
}

TEST(RateLimiter, ReportsHeldBackLinesWhenTheWindowReopens) {
  RateLimiter limiter(1, std::chrono::milliseconds(1));
  std::uint64_t suppressed = 0;
  ASSERT_TRUE(limiter.allow(suppressed));
  EXPECT_FALSE(limiter.allow(suppressed));
  EXPECT_FALSE(limiter.allow(suppressed));
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
  while (std::chrono::steady_clock::now() < until) {
  }
  ASSERT_TRUE(limiter.allow(suppressed));
  EXPECT_EQ(suppressed, 2u);
}

TEST(Log, LevelFiltersLines) {
  set_level(Level::error);
  testing::internal::CaptureStderr();
  warning("test", "hidden");
  error("test", "shown");
  const std::string out = testing::internal::GetCapturedStderr();
  set_level(Level::info);
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("ERROR [test] shown\n"), std::string::npos);
}

}  // namespace
}  // namespace flowsec::log
