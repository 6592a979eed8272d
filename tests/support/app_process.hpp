// Test support for the app_* integration tests (header-only, flowsec::test::app). Builds
// on flowsec_process.hpp (FlowsecProcess / ChildProcess, run_command, TempDir, ports,
// waits, http_get / metric_sum, UdpSender); only what the app tests alone need is here:
//  - json_values() / parse_json_lines(): the records of the JSON-lines files under a -P
//    dir (or of a text) as nlohmann::json values; as_u64(); json_totals() (records and
//    their IN_BYTES / IN_PKTS sums).
//  - start_flowsec(), have_server_certs(), expect_no_sanitizer_report().
//  - IpfixBuilder: IPFIX messages (RFC 7011) of a fixed, simple template whose every
//    record is distinct and known to the test, so expected values come from the input.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/flowsec_process.hpp"

namespace flowsec::test::app {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// flowsec with `args`, its log in DIR/NAME.log and its stdout in DIR/NAME.out (a
// pointer: tests replace a process, and keep one that may not be started).
inline std::unique_ptr<FlowsecProcess> start_flowsec(const std::vector<std::string>& args,
                                                     const std::string& dir,
                                                     const std::string& name) {
  return std::make_unique<FlowsecProcess>(args, dir, name);
}

// True once make_test_certs has made the CA and server certificates (transport_harness.hpp
// has a have_certs() of its own in flowsec::test that asks only for the CA).
inline bool have_server_certs() {
  return std::filesystem::exists(cert_path("ca.pem")) &&
         std::filesystem::exists(cert_path("server.pem"));
}

// JSON-lines text → values (lines that do not parse are returned as nulls so a test
// sees them).
inline std::vector<nlohmann::json> parse_json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  for (const auto& line : lines_of(text))
    out.push_back(nlohmann::json::parse(line, nullptr, false));
  return out;
}

// Records of every finished (*.json) file under a -P dir.
inline std::vector<nlohmann::json> json_values(const std::string& dir) {
  std::vector<nlohmann::json> out;
  for (const auto& f : files_under(dir)) {
    if (!ends_with(f, ".json")) continue;
    auto records = parse_json_lines(slurp_file(f));
    out.insert(out.end(), records.begin(), records.end());
  }
  return out;
}

// A JSON value as an unsigned number (numbers, or digits in a string); 0 otherwise.
inline std::uint64_t as_u64(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) return static_cast<std::uint64_t>(v.get<std::int64_t>());
  if (v.is_string()) {
    try {
      return std::stoull(v.get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

// The records, and the sums of their IN_BYTES and IN_PKTS.
inline Totals json_totals(const std::vector<nlohmann::json>& records) {
  Totals t;
  t.records = records.size();
  for (const auto& r : records) {
    if (!r.is_object()) continue;
    if (r.contains("IN_BYTES")) t.bytes += as_u64(r["IN_BYTES"]);
    if (r.contains("IN_PKTS")) t.packets += as_u64(r["IN_PKTS"]);
  }
  return t;
}

// This binary is built with ASan/UBSan when FLOWSEC_SANITIZE is on.
inline void expect_no_sanitizer_report(const std::string& log) {
  EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log;
  EXPECT_EQ(log.find("runtime error:"), std::string::npos) << log;
}

// IPFIX messages (RFC 7011 §3) with one template, id 256:
//   sourceIPv4Address(8) destinationIPv4Address(12) sourceTransportPort(7)
//   destinationTransportPort(11) protocolIdentifier(4) octetDeltaCount(1, 8 bytes)
//   packetDeltaCount(2, 8 bytes) flowStartMilliseconds(152) flowEndMilliseconds(153)
// Record i (0-based, counted over the builder's life) is 10.<i/65536>.<i/256>.<i%256>:
// (1000 + i%50000) → 192.0.2.1:443 TCP, i+1 packets, 100*(i+1) bytes: every record is
// distinct, and sums are known from i alone.
class IpfixBuilder {
 public:
  static constexpr std::size_t kRecordSize = 4 + 4 + 2 + 2 + 1 + 8 + 8 + 8 + 8;

  explicit IpfixBuilder(std::uint32_t domain = 1) : domain_(domain) {}

  // One message: the template set, then `records` data records.
  std::string message(std::size_t records) {
    std::string m(16, '\0');
    // Template set.
    std::string set;
    put16(set, 2);
    put16(set, 0);
    put16(set, 256);
    put16(set, 9);
    for (auto [ie, len] :
         {std::pair{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {1, 8}, {2, 8}, {152, 8}, {153, 8}}) {
      put16(set, static_cast<std::uint16_t>(ie));
      put16(set, static_cast<std::uint16_t>(len));
    }
    set_len(set);
    m += set;
    if (records > 0) {
      std::string data;
      put16(data, 256);
      put16(data, 0);
      for (std::size_t k = 0; k < records; ++k) {
        const std::uint64_t i = next_++;
        put32(data, (10u << 24) | static_cast<std::uint32_t>(i & 0xffffff));
        put32(data, 0xc0000201u);
        put16(data, static_cast<std::uint16_t>(1000 + i % 50000));
        put16(data, 443);
        data.push_back(6);
        put64(data, 100 * (i + 1));
        put64(data, i + 1);
        put64(data, 1'700'000'000'000ull + i);
        put64(data, 1'700'000'001'000ull + i);
      }
      set_len(data);
      m += data;
    }
    // Header: version 10, length, export time, sequence (data records before), domain.
    std::string h;
    put16(h, 10);
    put16(h, static_cast<std::uint16_t>(m.size()));
    put32(h, 1'700'000'100u);
    put32(h, sequence_);
    put32(h, domain_);
    m.replace(0, 16, h);
    sequence_ += static_cast<std::uint32_t>(records);
    return m;
  }

  [[nodiscard]] std::uint64_t records() const { return next_; }
  // Expected sums over records [0, n).
  static std::uint64_t packets_sum(std::uint64_t n) { return n * (n + 1) / 2; }
  static std::uint64_t bytes_sum(std::uint64_t n) { return 100 * packets_sum(n); }

 private:
  static void put16(std::string& s, std::uint16_t v) {
    s.push_back(static_cast<char>(v >> 8));
    s.push_back(static_cast<char>(v & 0xff));
  }
  static void put32(std::string& s, std::uint32_t v) {
    put16(s, static_cast<std::uint16_t>(v >> 16));
    put16(s, static_cast<std::uint16_t>(v & 0xffff));
  }
  static void put64(std::string& s, std::uint64_t v) {
    put32(s, static_cast<std::uint32_t>(v >> 32));
    put32(s, static_cast<std::uint32_t>(v & 0xffffffff));
  }
  static void set_len(std::string& set) {
    const auto n = static_cast<std::uint16_t>(set.size());
    set[2] = static_cast<char>(n >> 8);
    set[3] = static_cast<char>(n & 0xff);
  }

  std::uint32_t domain_;
  std::uint32_t sequence_ = 0;
  std::uint64_t next_ = 0;
};

}  // namespace flowsec::test::app
