// Test support for the probe integration tests (tests/integration/probe_*_test.cpp),
// header-only, namespace flowsec::test::probe:
//  - ChildProcess: runs a real program (flowsec, nfcapd, softflowd, ...) as a child with
//    stdout/stderr to files, keeps its pid, signals and reaps only that pid, with bounded
//    waits; the destructor stops it (SIGTERM, then SIGKILL) if the test did not.
//  - run_command(): a shell command with a time limit, output captured (tshark, nfdump).
//  - TempDir, free UDP/TCP ports, waits for a pid's socket to be bound (read from
//    /proc/PID/net/*, so it also works for a process inside another network namespace).
//  - Ground truth from peers: per-packet IP totals and per-direction totals from tshark,
//    totals from `nfdump -I`; and flowsec's own totals from its JSON lines and log line.
// Expected values always come from a peer or the capture, never from flowsec itself.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <netinet/in.h>

namespace flowsec::test::probe {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct CommandResult {
  int status = -1;  // wait status as from system()/pclose()
  std::string output;
  bool ok() const { return status == 0; }
};

// Runs `command` with sh -c under `timeout`, stdout and stderr together.
inline CommandResult run_command(const std::string& command, int timeout_s = 60) {
  CommandResult r;
  const std::string full =
      "timeout -k 2 " + std::to_string(timeout_s) + " sh -c " + shell_quote(command) + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  r.status = ::pclose(p);
  return r;
}

inline bool have_tool(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "exit 3", "signal 9": for failure messages.
inline std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}
// The exit code, or -1 when the process did not exit normally.
inline int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// One child process; only its own pid is ever signalled.
class ChildProcess {
 public:
  // stdout/stderr go to the files named (created or truncated); "" = /dev/null.
  ChildProcess(std::vector<std::string> argv, std::string stdout_path, std::string stderr_path)
      : argv_(std::move(argv)),
        stdout_path_(std::move(stdout_path)),
        stderr_path_(std::move(stderr_path)) {
    const std::string out = stdout_path_.empty() ? "/dev/null" : stdout_path_;
    const std::string err = stderr_path_.empty() ? "/dev/null" : stderr_path_;
    pid_ = ::fork();
    if (pid_ == 0) {
      const int in_fd = ::open("/dev/null", O_RDONLY);
      const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in_fd < 0 || out_fd < 0 || err_fd < 0) ::_exit(126);
      ::dup2(in_fd, 0);
      ::dup2(out_fd, 1);
      ::dup2(err_fd, 2);
      std::vector<char*> args;
      for (auto& a : argv_) args.push_back(a.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
  }
  ~ChildProcess() {
    if (running()) stop(SIGTERM, 5s);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0 || status_.has_value(); }
  pid_t pid() const { return pid_; }
  std::string command() const {
    std::string c;
    for (const auto& a : argv_) c += (c.empty() ? "" : " ") + a;
    return c;
  }
  std::string out() const { return stdout_path_.empty() ? "" : read_text(stdout_path_); }
  std::string err() const { return stderr_path_.empty() ? "" : read_text(stderr_path_); }

  // True while the child has not been reaped.
  bool running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = st;
      pid_ = -1;
      return false;
    }
    return true;
  }
  // The wait status once exited within `timeout`, else nullopt (still running).
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (running()) {
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
    return status_;
  }
  bool signal(int sig) { return pid_ > 0 && ::kill(pid_, sig) == 0; }
  // Sends `sig` and waits up to `grace`; then SIGKILL. Returns the wait status and
  // whether `sig` alone was enough.
  std::pair<int, bool> stop(int sig = SIGTERM, std::chrono::milliseconds grace = 10s) {
    if (!running()) return {status_.value_or(-1), true};
    signal(sig);
    if (auto st = wait(grace)) return {*st, true};
    signal(SIGKILL);
    const auto st = wait(5s);
    return {st.value_or(-1), false};
  }
  std::optional<int> status() const { return status_; }

 private:
  std::vector<std::string> argv_;
  std::string stdout_path_, stderr_path_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// A directory under /tmp, removed with everything in it at the end of the scope.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::string tmpl = (std::filesystem::temp_directory_path() / ("flowsec-" + tag + "-XXXXXX"));
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const {
    const std::string p = path_ + "/" + name;
    return p;
  }
  std::string subdir(const std::string& name) const {
    const std::string p = path_ + "/" + name;
    std::filesystem::create_directories(p);
    return p;
  }

 private:
  std::string path_;
};

// A port the kernel just handed out and released (a small race remains, as everywhere).
inline std::uint16_t free_port(int type) {
  const int fd = ::socket(AF_INET, type, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}
inline std::uint16_t free_udp_port() {
  return free_port(SOCK_DGRAM);
}
inline std::uint16_t free_tcp_port() {
  return free_port(SOCK_STREAM);
}

inline bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// True when /proc/PID/net/{udp,udp6} or {tcp,tcp6} (the network namespace of PID) has a
// socket on `port` in `state` (UDP bound: 07; TCP listening: 0A).
inline bool socket_in_proc(pid_t pid, bool udp, std::uint16_t port) {
  char hex[8];
  std::snprintf(hex, sizeof hex, ":%04X", port);
  const std::string base = "/proc/" + std::to_string(pid) + "/net/";
  for (const std::string f : {udp ? "udp" : "tcp", udp ? "udp6" : "tcp6"}) {
    std::ifstream in(base + f);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string sl, local, remote, state;
      ls >> sl >> local >> remote >> state;
      if (local.size() > 5 && local.substr(local.size() - 5) == hex &&
          state == (udp ? "07" : "0A")) {
        return true;
      }
    }
  }
  return false;
}
// Waits until the child has a UDP socket bound to / a TCP socket listening on `port`
// (false if it died first or the time ran out).
inline bool wait_bound(ChildProcess& child, bool udp, std::uint16_t port,
                       std::chrono::milliseconds timeout = 15s) {
  return wait_for([&] { return !child.running() || socket_in_proc(child.pid(), udp, port); },
                  timeout) &&
         child.running();
}

// ---------------------------------------------------------------------------------------
// Totals

struct Totals {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  std::uint64_t records = 0;  // flow records (nfdump "Flows", JSON lines with counters)
  Totals& operator+=(const Totals& o) {
    packets += o.packets;
    bytes += o.bytes;
    records += o.records;
    return *this;
  }
};

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
  const auto r = run_command(
      "tshark -r " + shell_quote(pcap) +
      " -T fields -E occurrence=f -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e ip.proto"
      " -e ipv6.nxt -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e ip.len"
      " -e ipv6.plen 2>/dev/null");
  if (!r.ok()) {
    t.error = r.output;
    return t;
  }
  std::istringstream in(r.output);
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

// `nfdump -R DIR -I` summary: "Flows: N", "Packets: N", "Bytes: N".
inline std::optional<Totals> nfdump_totals(const std::string& dir, std::string* raw = nullptr) {
  const auto r = run_command("nfdump -R " + shell_quote(dir) + " -I");
  if (raw != nullptr) *raw = r.output;
  if (!r.ok()) return std::nullopt;
  Totals t;
  std::smatch m;
  static const std::regex kFlows(R"((^|\n)Flows: (\d+))"), kPackets(R"((^|\n)Packets: (\d+))"),
      kBytes(R"((^|\n)Bytes: (\d+))");
  if (!std::regex_search(r.output, m, kFlows)) return std::nullopt;
  t.records = std::stoull(m[2]);
  if (!std::regex_search(r.output, m, kPackets)) return std::nullopt;
  t.packets = std::stoull(m[2]);
  if (!std::regex_search(r.output, m, kBytes)) return std::nullopt;
  t.bytes = std::stoull(m[2]);
  return t;
}

inline std::optional<std::uint64_t> json_number(const std::string& line, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const auto at = line.find(needle);
  if (at == std::string::npos) return std::nullopt;
  std::size_t i = at + needle.size();
  std::uint64_t v = 0;
  bool any = false;
  while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
    v = v * 10 + static_cast<std::uint64_t>(line[i++] - '0');
    any = true;
  }
  if (!any) return std::nullopt;
  return v;
}

// All JSON lines of the files under `path` (a flowsec -P DIR -D j tree, or one file).
inline std::vector<std::string> json_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::vector<std::string> files;
  if (std::filesystem::is_directory(path)) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(path)) {
      if (e.is_regular_file()) files.push_back(e.path().string());
    }
  } else if (std::filesystem::exists(path)) {
    files.push_back(path);
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::istringstream in(read_text(f));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) lines.push_back(line);
    }
  }
  return lines;
}

// flowsec's JSON lines: records = lines with IN_PKTS or OUT_PKTS; packets/bytes = IN_ +
// OUT_ counters (options records, e.g. systemInitTimeMilliseconds, carry none).
inline Totals json_totals(const std::string& path) {
  Totals t;
  for (const auto& line : json_lines(path)) {
    const auto in_p = json_number(line, "IN_PKTS");
    const auto out_p = json_number(line, "OUT_PKTS");
    if (!in_p && !out_p) continue;
    ++t.records;
    t.packets += in_p.value_or(0) + out_p.value_or(0);
    t.bytes +=
        json_number(line, "IN_BYTES").value_or(0) + json_number(line, "OUT_BYTES").value_or(0);
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

inline std::string data_path(const std::string& rel) {
  return std::string(FLOWSEC_TEST_DATA) + "/" + rel;
}
inline std::string cert_path(const std::string& name) {
  return std::string(FLOWSEC_TEST_CERTS) + "/" + name;
}
inline std::string flowsec_binary() {
  return FLOWSEC_BINARY;
}

}  // namespace flowsec::test::probe
