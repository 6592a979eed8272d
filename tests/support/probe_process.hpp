// Test support for the probe integration tests (tests/integration/probe_*_test.cpp),
// header-only, namespace flowsec::test::probe. Builds on flowsec_process.hpp (child
// processes, run_command/run_shell, TempDir, ports, waits, JSON lines, nfdump totals);
// only what the probe tests alone need is here:
//  - wait_bound(): waits for a child's socket to be bound, read from /proc/PID/net/*, so
//    it also works for a process inside another network namespace.
//  - Ground truth from tshark: per-packet IP totals and per-direction totals
//    (tshark_truth(), connection_count()); flowsec's own totals from its JSON lines
//    (json_totals()) and its end-of-input log line (probe_log_totals()).
// Expected values always come from a peer or the capture, never from flowsec itself.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "support/flowsec_process.hpp"

namespace flowsec::test::probe {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Waits until the child has a UDP socket bound to / a TCP socket listening on `port`
// (false if it died first or the time ran out).
inline bool wait_bound(ChildProcess& child, bool udp, std::uint16_t port,
                       std::chrono::milliseconds timeout = 15s) {
  const auto bound = [&] {
    return proc_net_socket("/proc/" + std::to_string(child.pid()) + "/net", udp, port,
                           udp ? "07" : "0A")
        .has_value();
  };
  return wait_for([&] { return !child.running() || bound(); }, timeout) && child.running();
}

// ---------------------------------------------------------------------------------------
// Totals

// A direction of traffic: source → destination, as tshark prints the addresses.
struct DirKey {
  std::string src, dst;
  std::uint32_t sport = 0, dport = 0, proto = 0;
  auto tie() const { return std::tie(src, dst, sport, dport, proto); }
  bool operator<(const DirKey& o) const { return tie() < o.tie(); }
  bool operator==(const DirKey& o) const { return tie() == o.tie(); }
};
inline std::ostream& operator<<(std::ostream& os, const DirKey& k) {
  return os << k.src << ":" << k.sport << " -> " << k.dst << ":" << k.dport << " proto " << k.proto;
}

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}
inline std::uint64_t to_u64(const std::string& s) {
  return s.empty() ? 0 : std::stoull(s);
}

// Every IP packet of the capture as tshark dissects it (outer header only):
//   tshark -r F -T fields -E occurrence=f -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst
//          -e ip.proto -e ipv6.nxt -e tcp.srcport -e tcp.dstport -e udp.srcport
//          -e udp.dstport -e ip.len -e ipv6.plen
// IP bytes: ip.len for IPv4, 40 + ipv6.plen for IPv6 (the fixed header is not in plen).
struct TsharkTruth {
  bool ok = false;
  std::string error;
  Totals all, v4, v6;
  std::uint64_t non_ip = 0;
  std::map<DirKey, Totals> directions;  // records = packets seen in that direction
};
inline TsharkTruth tshark_truth(const std::string& pcap) {
  TsharkTruth t;
  const auto r =
      run_shell("tshark -r " + shell_quote(pcap) +
                " -T fields -E occurrence=f -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e ip.proto"
                " -e ipv6.nxt -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e ip.len"
                " -e ipv6.plen 2>/dev/null");
  if (!r.ok()) {
    t.error = r.out;
    return t;
  }
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    const auto f = split(line, '\t');
    if (f.size() < 12) {
      t.error = "unexpected tshark line: " + line;
      return t;
    }
    const bool v4 = !f[10].empty();
    const bool v6 = !v4 && !f[11].empty();
    if (!v4 && !v6) {
      ++t.non_ip;
      continue;
    }
    const std::uint64_t bytes = v4 ? to_u64(f[10]) : 40 + to_u64(f[11]);
    Totals one{1, bytes, 0};
    t.all += one;
    (v4 ? t.v4 : t.v6) += one;
    DirKey k;
    k.src = v4 ? f[0] : f[2];
    k.dst = v4 ? f[1] : f[3];
    k.proto = static_cast<std::uint32_t>(to_u64(v4 ? f[4] : f[5]));
    k.sport = static_cast<std::uint32_t>(to_u64(!f[6].empty() ? f[6] : f[8]));
    k.dport = static_cast<std::uint32_t>(to_u64(!f[7].empty() ? f[7] : f[9]));
    auto& d = t.directions[k];
    d.packets += 1;
    d.bytes += bytes;
  }
  t.ok = true;
  return t;
}

// Connections: directions paired with their reverse (a one-way direction is one too).
inline std::size_t connection_count(const TsharkTruth& t) {
  std::set<std::pair<DirKey, DirKey>> c;
  for (const auto& [k, v] : t.directions) {
    const DirKey rev{k.dst, k.src, k.dport, k.sport, k.proto};
    c.insert(k < rev ? std::make_pair(k, rev) : std::make_pair(rev, k));
  }
  return c.size();
}

// flowsec's JSON lines (every finished file under a -P DIR -D j tree): records = lines
// with IN_PKTS or OUT_PKTS; packets/bytes = IN_ + OUT_ counters (options records, e.g.
// systemInitTimeMilliseconds, carry none).
inline Totals json_totals(const std::string& dir) {
  Totals t;
  for (const auto& r : json_records(dir)) {
    const auto number = [&r](const char* key) -> std::uint64_t {
      const auto it = r.find(key);
      return it == r.end() ? 0 : std::stoull(it->second);
    };
    if (r.count("IN_PKTS") == 0 && r.count("OUT_PKTS") == 0) continue;
    ++t.records;
    t.packets += number("IN_PKTS") + number("OUT_PKTS");
    t.bytes += number("IN_BYTES") + number("OUT_BYTES");
  }
  return t;
}

// flowsec's end-of-input log line "N packets, B bytes, F flows exported" (records = F,
// the bidirectional flows).
inline std::optional<Totals> probe_log_totals(const std::string& log) {
  static const std::regex kLine(R"((\d+) packets, (\d+) bytes, (\d+) flows exported)");
  std::smatch m;
  if (!std::regex_search(log, m, kLine)) return std::nullopt;
  return Totals{std::stoull(m[1]), std::stoull(m[2]), std::stoull(m[3])};
}

}  // namespace flowsec::test::probe
