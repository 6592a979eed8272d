#include "common/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "common/log.hpp"

namespace flowsec {
namespace {

bool name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
bool name_char(char c, bool colon) {
  return name_start(c, colon) || (c >= '0' && c <= '9');
}

// Length of the valid UTF-8 sequence at s[at], or 0 if there is none (overlong
// forms, surrogates and code points above U+10FFFF are invalid, RFC 3629 §4).
std::size_t utf8_sequence(std::string_view s, std::size_t at) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[at + i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;  // overlong
    if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;  // overlong
    if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - at < n) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xbf) return 0;
  }
  return n;
}

// Label value escaping of the 0.0.4 text format: backslash, double quote, newline.
void append_label_value(std::string& out, std::string_view v) {
  for (std::size_t at = 0; at < v.size();) {
    const std::size_t n = utf8_sequence(v, at);
    if (n == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD: Prometheus refuses a scrape with invalid UTF-8
      ++at;
      continue;
    }
    if (n == 1) {
      const char c = v[at];
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    } else {
      out.append(v.substr(at, n));
    }
    at += n;
  }
}

// HELP text escaping: backslash and newline only (the format has no quotes there).
void append_help(std::string& out, std::string_view help) {
  for (std::size_t at = 0; at < help.size();) {
    const std::size_t n = utf8_sequence(help, at);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++at;
      continue;
    }
    if (n == 1 && help[at] == '\\') {
      out += "\\\\";
    } else if (n == 1 && help[at] == '\n') {
      out += "\\n";
    } else {
      out.append(help.substr(at, n));
    }
    at += n;
  }
}

void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  // Whole numbers (queue depths, session counts) in plain digits while a double holds
  // them exactly (2^53); anything else as the shortest text that reads back the same.
  const auto r = std::trunc(v) == v && std::fabs(v) <= 9007199254740992.0
                     ? std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v))
                     : std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

log::RateLimiter& reject_limiter() {
  static log::RateLimiter limiter(5, std::chrono::minutes(1));
  return limiter;
}

}  // namespace

bool valid_metric_name(std::string_view name) {
  if (name.empty() || !name_start(name[0], true)) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return name_char(c, true); });
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || !name_start(name[0], false)) return false;
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return name_char(c, false); });
}

void MetricWriter::reject(std::string_view metric, std::string_view why) {
  ++rejected_;
  std::uint64_t suppressed = 0;
  if (!reject_limiter().allow(suppressed)) return;
  std::string line = "sample of metric \"";
  line.append(metric.substr(0, 100));
  line += "\" dropped: ";
  line += why;
  if (suppressed > 0) line += " (" + std::to_string(suppressed) + " more not logged)";
  log::warning("metrics", line);
}

MetricWriter::Family* MetricWriter::family(std::string_view name, std::string_view help,
                                           MetricType type) {
  if (!valid_metric_name(name)) {
    reject(name, "invalid metric name");
    return nullptr;
  }
  auto it = families_.find(name);
  if (it == families_.end()) {
    Family f;
    f.type = type;
    f.help = std::string(help);
    it = families_.emplace(std::string(name), std::move(f)).first;
  } else if (it->second.type != type) {
    reject(name, type == MetricType::counter ? "written as a gauge before, now as a counter"
                                             : "written as a counter before, now as a gauge");
    return nullptr;
  }
  return &it->second;
}

bool MetricWriter::render_labels(std::string_view metric, MetricLabels labels, std::string& out) {
  out.clear();
  const auto given = labels.span();
  if (given.empty()) return true;
  std::vector<MetricLabel> sorted(given.begin(), given.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const MetricLabel& a, const MetricLabel& b) { return a.name < b.name; });
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (!valid_label_name(sorted[i].name)) {
      reject(metric, "invalid label name");
      return false;
    }
    if (i > 0 && sorted[i].name == sorted[i - 1].name) {
      reject(metric, "label name given twice");
      return false;
    }
  }
  out += '{';
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0) out += ',';
    out.append(sorted[i].name);
    out += "=\"";
    append_label_value(out, sorted[i].value);
    out += '"';
  }
  out += '}';
  return true;
}

void MetricWriter::counter(std::string_view name, std::string_view help, MetricLabels labels,
                           std::uint64_t value) {
  Family* f = family(name, help, MetricType::counter);
  if (f == nullptr) return;
  std::string key;
  if (!render_labels(name, labels, key)) return;
  f->counters[key] += value;
}

void MetricWriter::gauge(std::string_view name, std::string_view help, MetricLabels labels,
                         double value) {
  Family* f = family(name, help, MetricType::gauge);
  if (f == nullptr) return;
  std::string key;
  if (!render_labels(name, labels, key)) return;
  f->gauges[key] += value;
}

std::string MetricWriter::text() const {
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help(out, f.help);
    out += "\n# TYPE ";
    out += name;
    out += f.type == MetricType::counter ? " counter\n" : " gauge\n";
    for (const auto& [labels, value] : f.counters) {
      out += name;
      out += labels;
      out += ' ';
      out += std::to_string(value);
      out += '\n';
    }
    for (const auto& [labels, value] : f.gauges) {
      out += name;
      out += labels;
      out += ' ';
      append_double(out, value);
      out += '\n';
    }
  }
  return out;
}

MetricsRegistry::CollectorId MetricsRegistry::add_collector(Collector collector) {
  std::lock_guard lock(mutex_);
  const CollectorId id = next_id_++;
  collectors_.emplace_back(id, std::move(collector));
  return id;
}

void MetricsRegistry::remove_collector(CollectorId id) {
  std::lock_guard lock(mutex_);
  std::erase_if(collectors_, [id](const auto& c) { return c.first == id; });
}

void MetricsRegistry::collect(MetricWriter& writer) const {
  std::lock_guard lock(mutex_);
  const std::uint64_t before = writer.rejected();
  for (const auto& [id, collector] : collectors_) {
    if (collector) collector(writer);
  }
  rejected_ += writer.rejected() - before;
}

std::string MetricsRegistry::collect() const {
  MetricWriter writer;
  collect(writer);
  return writer.text();
}

std::uint64_t MetricsRegistry::rejected_samples() const {
  std::lock_guard lock(mutex_);
  return rejected_;
}

std::string StatsLine::format(std::span<const NamedValue> values,
                              std::chrono::steady_clock::time_point now) {
  const double seconds =
      have_previous_ ? std::chrono::duration<double>(now - previous_time_).count() : 0.0;
  std::string out;
  for (const auto& v : values) {
    if (!out.empty()) out += ' ';
    out.append(v.name);
    out += '=';
    out += std::to_string(v.value);
    const auto prev = previous_.find(v.name);
    if (seconds > 0 && prev != previous_.end() && v.value >= prev->second) {
      const double rate = static_cast<double>(v.value - prev->second) / seconds;
      char buf[48];
      // Whole numbers from 10/s up; one decimal below, so a trickle does not read as 0.
      const auto r = rate >= 10
                         ? std::to_chars(buf, buf + sizeof buf, std::llround(rate))
                         : std::to_chars(buf, buf + sizeof buf, rate, std::chars_format::fixed, 1);
      out += " (+";
      out.append(buf, r.ptr);
      out += "/s)";
    }
  }
  previous_.clear();
  for (const auto& v : values) previous_[std::string(v.name)] = v.value;
  previous_time_ = now;
  have_previous_ = true;
  return out;
}

}  // namespace flowsec
