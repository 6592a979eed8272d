#pragma once
// Metrics registry, pull style (SPEC §7, --metrics). Components keep their own
// statistics (atomics, or a stats() snapshot such as ListenerStats) and never push;
// the app registers one collector callback per component that reads those numbers
// and writes them to a MetricWriter when the registry is collected (a Prometheus
// scrape, or the `-b 1` stats line).
//
// Ownership: the registry owns copies of the callbacks; what they capture by
// reference must outlive them, so a component's collector is removed
// (remove_collector) before the component goes away.
// Threads: add_collector, remove_collector and collect may be called from any
// thread. collect() runs the callbacks one at a time on the calling thread (the
// HTTP thread) while components keep updating their atomics; remove_collector
// returns only when its callback is not running and will not run again. A
// callback must not call back into the registry (it would deadlock).
// Errors: no exceptions. A sample with an invalid metric or label name, a
// duplicate label name, or a family written once as a counter and once as a gauge
// is dropped, counted (rejected_samples) and logged rate-limited: one bad
// callback never spoils a scrape.
//
// Exposition: Prometheus text format 0.0.4. Families are sorted by name, each
// with one # HELP (the first help text written wins) and one # TYPE line however
// many collectors write to it. Labels of a sample are sorted by name; samples of a
// family sorted by their label set. Writing the same family and label set twice
// (two sessions from one exporter, two listeners) adds the values: the exposition
// never holds a duplicate series. Label values are escaped (\\ \" \n) and invalid
// UTF-8 in them (a certificate subject from the network) becomes U+FFFD.
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flowsec {

struct MetricLabel {
  std::string_view name;
  std::string_view value;
};

// The labels of one sample: a braced list `{{"exporter", "10.0.0.1"}, {"reason", r}}`
// or a span built at run time. Views only: valid for the call it is passed to.
class MetricLabels {
 public:
  MetricLabels() = default;
  MetricLabels(std::initializer_list<MetricLabel> labels)
      : labels_(labels.begin(), labels.size()) {}
  template <std::size_t N>
  MetricLabels(std::span<const MetricLabel, N> labels) : labels_(labels) {}
  MetricLabels(const std::vector<MetricLabel>& labels) : labels_(labels) {}
  [[nodiscard]] std::span<const MetricLabel> span() const { return labels_; }

 private:
  std::span<const MetricLabel> labels_;
};

enum class MetricType : std::uint8_t { counter, gauge };

// Valid Prometheus names: metric [a-zA-Z_:][a-zA-Z0-9_:]*, label [a-zA-Z_][a-zA-Z0-9_]*
// and not starting with "__" (reserved for Prometheus itself).
[[nodiscard]] bool valid_metric_name(std::string_view name);
[[nodiscard]] bool valid_label_name(std::string_view name);

// Receives the samples of one collection. Made by MetricsRegistry::collect; a
// collector only writes to it. Not thread-safe (one collection, one thread).
class MetricWriter {
 public:
  // Monotonic count since start. By convention the name ends in _total.
  void counter(std::string_view name, std::string_view help, MetricLabels labels,
               std::uint64_t value);
  void counter(std::string_view name, std::string_view help, std::uint64_t value) {
    counter(name, help, {}, value);
  }
  // A value that goes up and down (queue depth, active sessions).
  void gauge(std::string_view name, std::string_view help, MetricLabels labels, double value);
  void gauge(std::string_view name, std::string_view help, double value) {
    gauge(name, help, {}, value);
  }

  // The exposition text of everything written so far.
  [[nodiscard]] std::string text() const;
  // Samples dropped in this collection (invalid names, type conflicts).
  [[nodiscard]] std::uint64_t rejected() const { return rejected_; }

 private:
  struct Family {
    MetricType type = MetricType::counter;
    std::string help;
    // Rendered label set ("" or `{a="x",b="y"}`) → value; sums repeated writes.
    std::map<std::string, std::uint64_t> counters;
    std::map<std::string, double> gauges;
  };
  Family* family(std::string_view name, std::string_view help, MetricType type);
  bool render_labels(std::string_view metric, MetricLabels labels, std::string& out);
  void reject(std::string_view metric, std::string_view why);

  std::map<std::string, Family, std::less<>> families_;
  std::uint64_t rejected_ = 0;
};

class MetricsRegistry {
 public:
  using Collector = std::function<void(MetricWriter&)>;
  using CollectorId = std::uint64_t;

  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Returns an id for remove_collector. Collectors run in the order they were added.
  CollectorId add_collector(Collector collector);
  // Unknown ids are ignored. Blocks while a collection is running.
  void remove_collector(CollectorId id);

  // Runs every collector and returns the exposition text (text/plain; version=0.0.4).
  [[nodiscard]] std::string collect() const;
  // Runs every collector into `writer` (to read single values, e.g. for the stats line).
  void collect(MetricWriter& writer) const;

  // Samples dropped by all collections so far.
  [[nodiscard]] std::uint64_t rejected_samples() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<CollectorId, Collector>> collectors_;
  CollectorId next_id_ = 1;
  mutable std::uint64_t rejected_ = 0;
};

// The one-line summary `-b 1` logs every 5 s: "name=total (+rate/s) ...", in the
// order given; the rate is against the previous format() call for the same name
// (omitted on the first call, for a new name, or when no time has passed). Pure:
// the caller passes the time, so tests need no clock. One thread at a time.
struct NamedValue {
  std::string_view name;
  std::uint64_t value = 0;
};

class StatsLine {
 public:
  [[nodiscard]] std::string format(std::span<const NamedValue> values,
                                   std::chrono::steady_clock::time_point now);
  [[nodiscard]] std::string format(std::initializer_list<NamedValue> values,
                                   std::chrono::steady_clock::time_point now) {
    return format(std::span<const NamedValue>(values.begin(), values.size()), now);
  }

 private:
  std::map<std::string, std::uint64_t, std::less<>> previous_;
  std::chrono::steady_clock::time_point previous_time_{};
  bool have_previous_ = false;
};

}  // namespace flowsec
