#pragma once
// Injectable clocks. Code that expires state (template lifetimes, timeouts)
// takes a `const Clock&` so unit tests drive time with ManualClock instead of
// sleeping. Both clocks are safe to read from several threads; ManualClock's
// setters are for the single test thread that owns it.
#include <atomic>
#include <chrono>

namespace flowsec {

class Clock {
 public:
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<std::chrono::steady_clock, duration>;
  virtual ~Clock() = default;
  [[nodiscard]] virtual time_point now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  [[nodiscard]] time_point now() const override {
    return std::chrono::time_point_cast<duration>(std::chrono::steady_clock::now());
  }
  static const SteadyClock& instance() {
    static const SteadyClock clock;
    return clock;
  }
};

class ManualClock final : public Clock {
 public:
  [[nodiscard]] time_point now() const override { return time_point(duration(ns_.load())); }
  void advance(duration d) { ns_ += d.count(); }
  void set(duration since_start) { ns_ = since_start.count(); }

 private:
  std::atomic<long long> ns_{0};
};

}  // namespace flowsec
