// Test support for the app_* integration tests (header-only, flowsec::apptest): the
// real flowsec binary, and its peers, as child processes.
//
//  - AppProcess: fork/exec of a program (FLOWSEC_BINARY by default) with stdin from a
//    file (or a pipe the test writes), stdout and stderr captured to files; keeps the
//    PID and sends signals to that PID only; wait() is bounded and returns the exit
//    code (128 + N when killed by signal N); the destructor SIGKILLs and reaps a child
//    that is still running (that PID only), so a failed assertion leaks nothing.
//    listen_port() reads the port flowsec logs for its N-th -3 listener
//    ("listening on URL (port P)"), so tests pass port 0 and never race for a port.
//  - run(): a peer (tshark, nfdump, ipfixDump, openssl, curl ...) to completion, with a
//    time limit, its output captured.
//  - TempDir, free_port(), udp_port_bound(), eventually(), files_under(),
//    json_records() (the records of the JSON-lines files under a -P dir),
//    metric_sum() (Prometheus text), UdpSender.
//  - IpfixBuilder: IPFIX messages (RFC 7011) of a fixed, simple template whose every
//    record is distinct and known to the test, so expected values come from the input.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace flowsec::apptest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline bool have_command(const std::string& command) {
  return std::system(("command -v " + command + " >/dev/null 2>&1").c_str()) == 0;
}

inline std::string cert_path(const std::string& name) {
  return std::string(FLOWSEC_TEST_CERTS) + "/" + name;
}
inline bool have_certs() {
  return std::filesystem::exists(cert_path("ca.pem")) &&
         std::filesystem::exists(cert_path("server.pem"));
}
inline std::string source_data(const std::string& relative) {
  // FLOWSEC_TEST_DATA is tests/data of the source tree.
  return std::string(FLOWSEC_TEST_DATA) + "/" + relative;
}

// Polls pred every `step` until it holds or `limit` passes; true if it held.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit,
                       std::chrono::milliseconds step = 50ms) {
  const auto deadline = Clock::now() + limit;
  while (true) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

// A fresh directory, removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("flowsec-app-" + tag + "-" + std::to_string(::getpid()) + "-" +
              std::to_string(++counter)))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class AppProcess {
 public:
  struct Io {
    std::string stdout_path;  // required
    std::string stderr_path;  // required
    std::string stdin_path = "/dev/null";
    bool stdin_pipe = false;  // stdin is a pipe the test writes (write_stdin)
  };

  AppProcess(std::vector<std::string> argv, Io io) : argv_(std::move(argv)), io_(std::move(io)) {
    int pipe_fds[2] = {-1, -1};
    if (io_.stdin_pipe && ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    // Everything the child needs is prepared before fork (only async-signal-safe calls
    // after it).
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    const int out = ::open(io_.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err =
        io_.stderr_path == io_.stdout_path
            ? -1
            : ::open(io_.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int in =
        io_.stdin_pipe ? pipe_fds[0] : ::open(io_.stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0 || (err < 0 && io_.stderr_path != io_.stdout_path)) {
      throw std::runtime_error("cannot open the child's stdio files");
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err < 0 ? out : err, 2);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    ::close(out);
    if (err >= 0) ::close(err);
    ::close(in);
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (io_.stdin_pipe) stdin_fd_ = pipe_fds[1];
  }

  // flowsec with stdout/stderr in DIR/NAME.out and DIR/NAME.err.
  static std::unique_ptr<AppProcess> flowsec(const std::vector<std::string>& args,
                                             const std::string& dir, const std::string& name,
                                             bool stdin_pipe = false) {
    std::vector<std::string> argv{FLOWSEC_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    Io io{dir + "/" + name + ".out", dir + "/" + name + ".err", "/dev/null", stdin_pipe};
    return std::make_unique<AppProcess>(std::move(argv), std::move(io));
  }

  ~AppProcess() {
    close_stdin();
    if (!exit_code_ && pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  AppProcess(const AppProcess&) = delete;
  AppProcess& operator=(const AppProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  void signal(int signo) const {
    if (!exit_code_ && pid_ > 0) ::kill(pid_, signo);
  }
  bool write_stdin(const std::string& bytes) const {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const auto n = ::write(stdin_fd_, bytes.data() + done, bytes.size() - done);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  void close_stdin() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
  }

  // Non-blocking: the exit code if the child has ended.
  std::optional<int> poll() {
    if (exit_code_) return exit_code_;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return exit_code_;
  }
  [[nodiscard]] bool running() { return !poll(); }

  // Waits at most `limit`; nullopt if still running.
  std::optional<int> wait(std::chrono::milliseconds limit) {
    eventually([&] { return poll().has_value(); }, limit, 20ms);
    return poll();
  }
  // SIGTERM (or `signo`) then wait.
  std::optional<int> stop(std::chrono::milliseconds limit = 15s, int signo = SIGTERM) {
    signal(signo);
    return wait(limit);
  }
  // SIGKILL and reap.
  void kill_now() {
    signal(SIGKILL);
    wait(5s);
  }

  [[nodiscard]] std::string out() const { return slurp(io_.stdout_path); }
  [[nodiscard]] std::string err() const { return slurp(io_.stderr_path); }
  [[nodiscard]] const std::string& stdout_path() const { return io_.stdout_path; }

  // True once stderr matches `pattern`.
  bool wait_for_log(const std::string& pattern, std::chrono::milliseconds limit) {
    const std::regex re(pattern);
    bool matched = false;
    eventually(
        [&] {
          matched = std::regex_search(err(), re);
          return matched || poll().has_value();
        },
        limit);
    return matched;
  }

  // The port of the n-th listener ("listening on URL (port P)"); 0 on time-out or exit.
  int listen_port(std::size_t n = 0, std::chrono::milliseconds limit = 15s) {
    static const std::regex re(R"(listening on \S+ \(port (\d+)\))");
    int port = 0;
    eventually(
        [&] {
          const std::string text = err();
          std::size_t i = 0;
          for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it, ++i) {
            if (i == n) {
              port = std::stoi((*it)[1].str());
              return true;
            }
          }
          return poll().has_value();
        },
        limit);
    return port;
  }

 private:
  std::vector<std::string> argv_;
  Io io_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::optional<int> exit_code_;
};

struct RunResult {
  int exit_code = -1;  // -1: did not finish in time (killed)
  std::string out;
  std::string err;
};

// Runs argv to completion (at most `limit`) with stdout/stderr captured under `dir`.
inline RunResult run(const std::vector<std::string>& argv, const std::string& dir,
                     std::chrono::milliseconds limit = 30s,
                     const std::string& stdin_path = "/dev/null") {
  static int counter = 0;
  const std::string base = dir + "/run-" + std::to_string(++counter);
  AppProcess p(argv, {base + ".out", base + ".err", stdin_path, false});
  RunResult r;
  if (auto code = p.wait(limit)) r.exit_code = *code;
  r.out = p.out();
  r.err = p.err();
  return r;
}

// A port that was free a moment ago (for peers that cannot be given port 0).
inline int free_port(int type = SOCK_DGRAM) {
  const int fd = ::socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// True if some UDP socket is bound to `port` (/proc/net/udp and udp6).
inline bool udp_port_bound(int port) {
  char hex[8];
  std::snprintf(hex, sizeof hex, ":%04X ", port);
  for (const char* f : {"/proc/net/udp", "/proc/net/udp6"}) {
    std::istringstream in(slurp(f));
    for (std::string line; std::getline(in, line);) {
      // "  sl  local_address rem_address ..." : the local address is the 2nd column.
      std::istringstream cols(line);
      std::string sl;
      std::string local;
      cols >> sl >> local;
      if (local.size() > 5 && (local + " ").find(hex) != std::string::npos) return true;
    }
  }
  return false;
}

// Regular files under dir (recursive), sorted.
inline std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return out;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec)) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// JSON-lines text → objects (lines that do not parse are returned as nulls so a test
// sees them).
inline std::vector<nlohmann::json> parse_json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    out.push_back(nlohmann::json::parse(line, nullptr, false));
  }
  return out;
}

// Records of every finished (*.json) file under a -P dir.
inline std::vector<nlohmann::json> json_records(const std::string& dir) {
  std::vector<nlohmann::json> out;
  for (const auto& f : files_under(dir)) {
    if (!ends_with(f, ".json")) continue;
    auto records = parse_json_lines(slurp(f));
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

// Sum of the samples of metric `name` (Prometheus text format) whose label set
// contains `label` (e.g. reason="truncated_ip"; empty: any); nullopt if no sample.
inline std::optional<double> metric_sum(const std::string& text, const std::string& name,
                                        const std::string& label = "") {
  std::optional<double> sum;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, name.size(), name) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    const auto space = line.rfind(' ');
    if (!label.empty() && line.substr(0, space).find(label) == std::string::npos) continue;
    sum = sum.value_or(0) + std::stod(line.substr(space + 1));
  }
  return sum;
}

// GET http://127.0.0.1:PORT/metrics with curl; "" on failure.
inline std::string scrape(int port, const std::string& dir) {
  auto r = run(
      {"curl", "-s", "--max-time", "3", "http://127.0.0.1:" + std::to_string(port) + "/metrics"},
      dir, 5s);
  return r.exit_code == 0 ? r.out : std::string();
}

// Sends datagrams to 127.0.0.1:port (or [::1]) from one socket.
class UdpSender {
 public:
  explicit UdpSender(int port, bool ipv6 = false) : ipv6_(ipv6) {
    fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    if (ipv6) {
      to6_.sin6_family = AF_INET6;
      to6_.sin6_addr = in6addr_loopback;
      to6_.sin6_port = htons(static_cast<std::uint16_t>(port));
    } else {
      to4_.sin_family = AF_INET;
      to4_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      to4_.sin_port = htons(static_cast<std::uint16_t>(port));
    }
  }
  ~UdpSender() { ::close(fd_); }
  UdpSender(const UdpSender&) = delete;
  UdpSender& operator=(const UdpSender&) = delete;
  bool send(const void* data, std::size_t size) const {
    const auto n =
        ipv6_ ? ::sendto(fd_, data, size, 0, reinterpret_cast<const sockaddr*>(&to6_), sizeof to6_)
              : ::sendto(fd_, data, size, 0, reinterpret_cast<const sockaddr*>(&to4_), sizeof to4_);
    return n == static_cast<ssize_t>(size);
  }
  template <class Bytes>
  bool send(const Bytes& bytes) const {
    return send(bytes.data(), bytes.size());
  }

 private:
  bool ipv6_;
  int fd_ = -1;
  sockaddr_in to4_{};
  sockaddr_in6 to6_{};
};

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

}  // namespace flowsec::apptest
