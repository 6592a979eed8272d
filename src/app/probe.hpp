#pragma once
// Probe: the capture path of SPEC §1 and §5 —
//   capture source → packet parser → flow cache (+ nDPI) → FlowEncoder → outputs.
//
// Lifecycle: open() does the start-up work (opens the capture, compiles the
// filter, starts nDPI) and, for file inputs, reads the first packets so that
// first_packet_ms() can serve as the export clock's origin; start() then binds
// the probe to the outputs with that origin. run() is the capture loop, on the
// caller's thread; it returns at the end of a file input (every flow expired and
// handed to the outputs) or after stop().
//
// Time (SPEC §5): flows are timed by packet timestamps. For file inputs the
// export clock is the packet clock too (packet_clock_ms()), so a pcap gives the
// same export on every run; live captures export in wall-clock time.
//
// Threads: run() on one thread; stop() from any thread; write_metrics() and
// stats_values() read atomics from any thread.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/options.hpp"
#include "common/metrics.hpp"
#include "common/result.hpp"
#include "sinks/fanout.hpp"

namespace flowsec::app {

class Probe {
 public:
  static Expected<std::unique_ptr<Probe>, std::string> open(const Options& options);
  ~Probe();
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  // File inputs: the input's packet clock; live captures: nothing (wall clock).
  [[nodiscard]] bool offline() const;
  [[nodiscard]] std::int64_t first_packet_ms() const;
  [[nodiscard]] std::function<std::int64_t()> packet_clock_ms() const;

  // Binds the probe to its outputs. `start_time_ms` is the sysUpTime origin of the export
  // (the Exporter's start_time_ms()). Errors: a -T list the encoder refuses.
  Expected<void, std::string> start(sinks::Fanout& outputs, std::int64_t start_time_ms);

  void run();
  void stop();

  void write_metrics(MetricWriter& w) const;
  void stats_values(std::vector<NamedValue>& out) const;

  // Totals of the capture input (ntopng's interface counters).
  struct InputTotals {
    std::uint64_t packets = 0, bytes = 0;
    std::uint64_t errors = 0;  // kernel drops + malformed packets
  };
  [[nodiscard]] InputTotals input_totals() const;

  struct Impl;

 private:
  explicit Probe(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowsec::app
