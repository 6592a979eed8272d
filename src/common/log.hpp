#pragma once
// Logging for operators: one line per event on stderr, "LEVEL [component] text".
// Thread-safe (one write per line). RateLimiter keeps repetitive data-path
// messages (malformed input, refused handshakes from a scanner) from flooding
// the log: at most `burst` lines per `interval`, the rest counted and reported
// in the next line that is let through.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>

namespace flowsec::log {

enum class Level : std::uint8_t { debug, info, warning, error };

// Minimum level written; -b/--verbose sets it at start-up.
void set_level(Level level);
[[nodiscard]] Level level();

void write(Level level, std::string_view component, std::string_view text);
inline void info(std::string_view component, std::string_view text) {
  write(Level::info, component, text);
}
inline void warning(std::string_view component, std::string_view text) {
  write(Level::warning, component, text);
}
inline void error(std::string_view component, std::string_view text) {
  write(Level::error, component, text);
}

class RateLimiter {
 public:
  explicit RateLimiter(std::uint32_t burst = 10,
                       std::chrono::steady_clock::duration interval = std::chrono::seconds(10))
      : burst_(burst), interval_(interval) {}
  // True if a line may be written now; `suppressed` receives how many were held back
  // since the last line that was let through.
  bool allow(std::uint64_t& suppressed);

 private:
  std::mutex mutex_;
  std::uint32_t burst_;
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point window_start_{};
  std::uint32_t in_window_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace flowsec::log
