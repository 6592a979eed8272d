#include "common/log.hpp"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>

namespace flowsec::log {
namespace {
std::atomic<Level> g_level{Level::info};

std::string_view name(Level l) {
  switch (l) {
    case Level::debug:
      return "DEBUG";
    case Level::info:
      return "INFO";
    case Level::warning:
      return "WARNING";
    case Level::error:
      return "ERROR";
  }
  return "INFO";
}
}  // namespace

void set_level(Level level) {
  g_level = level;
}
Level level() {
  return g_level;
}

void write(Level level, std::string_view component, std::string_view text) {
  if (level < g_level.load()) return;
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line;
  line.reserve(text.size() + component.size() + 48);
  line += stamp;
  line += ' ';
  line += name(level);
  line += " [";
  line += component;
  line += "] ";
  line += text;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);  // one write: lines never interleave
}

bool RateLimiter::allow(std::uint64_t& suppressed) {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= interval_) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= burst_) {
    ++suppressed_;
    return false;
  }
  ++in_window_;
  suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace flowsec::log
