// Test support (header-only, flowsec::test): the generic helpers every process-level
// integration test uses; test-family headers (probe_process.hpp, ...) build on this one.
// Contract: children are only ever signalled by their own PID (never a group, never by
// name), every wait is bounded, temp dirs are removed, expected values are never taken
// from flowsec itself.
//
//  - ChildProcess: posix_spawnp of any program with stdout and stderr to files ("" =
//    /dev/null); keeps the PID, signals only that PID, bounded waits (wait_ended,
//    wait_exit, terminate, stop); the destructor SIGKILLs it (that PID only) if a test
//    bailed out. FlowsecProcess: FLOWSEC_BINARY likewise; listen_ports() reads the ports
//    flowsec logs for its -3 listeners ("listening on URL (port N)").
//  - run_command() (argv) / run_shell() (sh -c, stdout and stderr together): a peer
//    (softflowd, nfdump, tshark, ...) run to completion with a time limit, output captured.
//  - TempDir and unique_path() (temp_dir.hpp, included here), free_udp_port() /
//    free_tcp_port(), wait_for(), have_command(), slurp_file(), data_path() / cert_path() /
//    flowsec_binary().
//  - http_get() / metric_sum(): read --metrics and sum the samples of a family whose
//    labels include the given ones (Prometheus text format).
//  - json_records(): the records of every finished JSON-lines file under a -P dir
//    (flat objects: string, number and boolean values, kept as text).
//  - Totals and nfdump_totals() / parse_nfdump_info(): `nfdump -R DIR -I` totals.
//  - send_file_over_tcp(): a file's bytes as one TCP stream (IPFIX files are streams).
//  - UdpSender, UdpReceiver, udp_rx_queue(), udp_bound(), proc_net_socket(): send and
//    receive datagrams; watch /proc/net/{udp,tcp}{,6} (or another PID's namespace).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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
#include <optional>
#include <regex>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "support/temp_dir.hpp"

extern char** environ;

namespace flowsec::test {

inline std::string slurp_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// True if `command` is on PATH (peers missing → GTEST_SKIP with a reason).
inline bool have_command(const std::string& command) {
  return std::system(("command -v " + command + " >/dev/null 2>&1").c_str()) == 0;
}

inline std::string flowsec_binary() {
  return FLOWSEC_BINARY;
}
// A file under tests/data, and a certificate made by make_test_certs.
inline std::string data_path(const std::string& rel) {
  return std::string(FLOWSEC_TEST_DATA) + "/" + rel;
}
inline std::string cert_path(const std::string& name) {
  return std::string(FLOWSEC_TEST_CERTS) + "/" + name;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
// The non-empty lines of `text`.
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Polls pred() every `step` (10 ms) until it holds (true) or `limit` passes (false).
inline bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit,
                     std::chrono::milliseconds step = std::chrono::milliseconds(10)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(step);
  }
  return true;
}

// A child process started with posix_spawnp; stdin from /dev/null (or a file),
// stdout and stderr to files (the same file if the paths are equal; "" = /dev/null).
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, const std::string& stdout_path,
               const std::string& stderr_path, const std::string& stdin_path = "/dev/null")
      : argv_(std::move(argv)), stdout_path_(stdout_path), stderr_path_(stderr_path) {
    const std::string out = stdout_path.empty() ? "/dev/null" : stdout_path;
    const std::string err = stderr_path.empty() ? "/dev/null" : stderr_path;
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                       0644);
    if (stderr_path == stdout_path) {
      ::posix_spawn_file_actions_adddup2(&actions, 1, 2);
    } else {
      ::posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
    }
    // The child gets default signal handling (the test runner may block or ignore some).
    posix_spawnattr_t attr;
    ::posix_spawnattr_init(&attr);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    ::posix_spawnattr_setsigmask(&attr, &none);
    ::posix_spawnattr_setsigdefault(&attr, &all);
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> args;
    for (const auto& a : argv_) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = ::posix_spawnp(&pid_, args[0], &actions, &attr, args.data(), environ);
    if (rc != 0) {
      pid_ = -1;
      spawn_error_ = std::strerror(rc);
    }
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  }
  ~ChildProcess() { kill_now(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool started() const { return pid_ > 0 || reaped_; }
  [[nodiscard]] const std::string& spawn_error() const { return spawn_error_; }
  // The command line, for failure messages.
  [[nodiscard]] std::string command() const {
    std::string c;
    for (const auto& a : argv_) c += (c.empty() ? "" : " ") + a;
    return c;
  }

  // True while the process has not exited (reaps it when it has).
  bool running() {
    if (pid_ <= 0) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = st;
      reaped_ = true;
      pid_ = -1;
      return false;
    }
    return r == 0;
  }

  // Waits up to `limit` for the process to end by itself (exit or signal); true if it has
  // (exit_code() and exit_description() then say how), false if it is still running or
  // never started.
  bool wait_ended(std::chrono::milliseconds limit) {
    wait_for([&] { return !running(); }, limit);
    return reaped_;
  }
  // Its exit code once it has exited normally; nullopt while running or if a signal
  // ended it.
  [[nodiscard]] std::optional<int> exit_code() const {
    if (reaped_ && WIFEXITED(status_)) return WEXITSTATUS(status_);
    return std::nullopt;
  }

  // Waits up to `limit` for the process to exit by itself; its exit code, or
  // nullopt if it is still running or died of a signal (exit_description() says which).
  std::optional<int> wait_exit(std::chrono::milliseconds limit) {
    wait_ended(limit);
    return exit_code();
  }
  // As a shell reports it: the exit code, or 128 + N if signal N ended it; nullopt while
  // running.
  [[nodiscard]] std::optional<int> status_code() const {
    if (!reaped_) return std::nullopt;
    if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
    return exit_code();
  }

  // `sig` to this process (by its PID); false if it is not running.
  bool signal(int sig) { return running() && ::kill(pid_, sig) == 0; }

  // SIGTERM to this process (by its PID) and wait up to `limit` for it to exit.
  std::optional<int> terminate(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    signal(SIGTERM);
    return wait_exit(limit);
  }
  // SIGINT likewise (nfacctd-like peers that ignore SIGTERM).
  std::optional<int> interrupt(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    signal(SIGINT);
    return wait_exit(limit);
  }
  // `sig` and up to `grace` to end; then SIGKILL (this PID) and reap. True if it ended
  // without the SIGKILL (exit_code()/exit_description() say how).
  bool stop(int sig = SIGTERM, std::chrono::milliseconds grace = std::chrono::seconds(10)) {
    signal(sig);
    if (wait_ended(grace)) return true;
    kill_now();
    return false;
  }

  [[nodiscard]] std::string exit_description() const {
    if (!reaped_) return pid_ > 0 ? "still running" : "not started: " + spawn_error_;
    if (WIFEXITED(status_)) return "exit code " + std::to_string(WEXITSTATUS(status_));
    if (WIFSIGNALED(status_)) return "killed by signal " + std::to_string(WTERMSIG(status_));
    return "wait status " + std::to_string(status_);
  }

  [[nodiscard]] std::string out() const { return slurp_file(stdout_path_); }
  [[nodiscard]] std::string err() const { return slurp_file(stderr_path_); }

  // SIGKILL (this PID only) and reap; for tests that bail out early.
  void kill_now() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
      reaped_ = true;
      pid_ = -1;
    }
  }

 private:
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  std::string spawn_error_;
  std::string stdout_path_;
  std::string stderr_path_;
};

// A command run to completion (at most its limit, then SIGKILL to its PID): its exit
// code (nullopt on timeout or signal) and its output.
struct CommandResult {
  std::optional<int> exit_code;
  std::string out;
  std::string err;
  [[nodiscard]] bool ok() const { return exit_code == 0; }
};
inline CommandResult run_captured(const std::vector<std::string>& argv, const std::string& base,
                                  bool merged, std::chrono::milliseconds limit,
                                  const std::string& stdin_path) {
  const std::string out_path = base + ".out";
  const std::string err_path = merged ? out_path : base + ".err";
  CommandResult r;
  {
    ChildProcess child(argv, out_path, err_path, stdin_path);
    r.exit_code = child.wait_exit(limit);
    child.kill_now();
  }
  r.out = slurp_file(out_path);
  std::filesystem::remove(out_path);
  if (!merged) {
    r.err = slurp_file(err_path);
    std::filesystem::remove(err_path);
  }
  return r;
}
// argv (no shell); stdout in .out, stderr in .err; scratch files in `work_dir`.
inline CommandResult run_command(const std::vector<std::string>& argv, const std::string& work_dir,
                                 std::chrono::milliseconds limit = std::chrono::seconds(30),
                                 const std::string& stdin_path = "/dev/null") {
  return run_captured(argv, unique_path(work_dir, "cmd"), false, limit, stdin_path);
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
// `sh -c command`; stdout and stderr together in .out (quote arguments with shell_quote()).
inline CommandResult run_shell(const std::string& command,
                               std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  return run_captured({"sh", "-c", command},
                      unique_path(std::filesystem::temp_directory_path().string(), "flowsec-sh"),
                      true, limit, "/dev/null");
}

// flowsec itself: FLOWSEC_BINARY with `args`; stderr (its log) to <dir>/<tag>.log,
// stdout to <dir>/<tag>.out (`-P -` writes records there).
class FlowsecProcess {
 public:
  FlowsecProcess(const std::vector<std::string>& args, const std::string& dir,
                 const std::string& tag = "flowsec")
      : log_path_(dir + "/" + tag + ".log"),
        out_path_(dir + "/" + tag + ".out"),
        child_(with_binary(args), out_path_, log_path_) {}

  [[nodiscard]] pid_t pid() const { return child_.pid(); }
  bool running() { return child_.running(); }
  [[nodiscard]] std::string log() const { return slurp_file(log_path_); }
  [[nodiscard]] std::string out() const { return slurp_file(out_path_); }
  [[nodiscard]] std::string exit_description() const { return child_.exit_description(); }
  std::optional<int> terminate(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    return child_.terminate(limit);
  }
  ChildProcess& child() { return child_; }
  bool signal(int sig) { return child_.signal(sig); }
  void kill_now() { child_.kill_now(); }
  // Waits up to `limit` for it to end; its status_code() (128 + N if signal N ended it),
  // nullopt if it is still running.
  std::optional<int> wait(std::chrono::milliseconds limit) {
    child_.wait_ended(limit);
    return child_.status_code();
  }
  // `sig` (by its PID) and wait(limit); if it is still running then, the destructor
  // SIGKILLs it.
  std::optional<int> stop(std::chrono::milliseconds limit = std::chrono::seconds(15),
                          int sig = SIGTERM) {
    signal(sig);
    return wait(limit);
  }

  // True once the log matches `pattern` (false if the process ended first or `limit`
  // passed).
  bool wait_for_log(const std::string& pattern, std::chrono::milliseconds limit) {
    const std::regex re(pattern);
    bool matched = false;
    wait_for(
        [&] {
          matched = std::regex_search(log(), re);
          return matched || !running();
        },
        limit, std::chrono::milliseconds(50));
    return matched;
  }

  // The ports of the first `count` listeners, from flowsec's "listening on URL (port N)"
  // log lines, in -3 order; empty if they did not all appear within `limit` (or the
  // process exited). Once they appear, SIGTERM is handled (the handler is installed first).
  std::vector<std::uint16_t> listen_ports(
      std::size_t count, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    static const std::regex line(R"(listening on \S+ \(port (\d+)\))");
    while (true) {
      std::vector<std::uint16_t> ports;
      const std::string text = log();
      for (std::sregex_iterator it(text.begin(), text.end(), line), end; it != end; ++it) {
        ports.push_back(static_cast<std::uint16_t>(std::stoi((*it)[1].str())));
      }
      if (ports.size() >= count) {
        ports.resize(count);
        return ports;
      }
      if (!running() || std::chrono::steady_clock::now() >= until) return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  // The port of the n-th listener (0-based); 0 if it did not appear within `limit`.
  std::uint16_t listen_port(std::size_t n = 0,
                            std::chrono::milliseconds limit = std::chrono::seconds(15)) {
    const auto ports = listen_ports(n + 1, limit);
    return ports.empty() ? 0 : ports[n];
  }

 private:
  static std::vector<std::string> with_binary(const std::vector<std::string>& args) {
    std::vector<std::string> argv{FLOWSEC_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  std::string log_path_;
  std::string out_path_;
  ChildProcess child_;
};

// ---- HTTP and Prometheus text -------------------------------------------------------

// GET http://127.0.0.1:port/path; the body of a 200 answer, nullopt otherwise.
inline std::optional<std::string> http_get(
    std::uint16_t port, const std::string& path = "/metrics",
    std::chrono::milliseconds limit = std::chrono::seconds(3)) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string received;
  bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  if (ok) {
    const std::string request =
        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    ok = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(request.size());
  }
  const auto until = std::chrono::steady_clock::now() + limit;
  while (ok) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ok = false;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      ok = false;
      break;
    }
    char buf[8192];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) ok = false;
    if (n <= 0) break;
    received.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!ok || received.rfind("HTTP/1.1 200", 0) != 0) return std::nullopt;
  const auto body = received.find("\r\n\r\n");
  if (body == std::string::npos) return std::nullopt;
  return received.substr(body + 4);
}

// Sum of the samples of `family` (exact metric name) whose labels include every
// name="value" of `labels` (given as `name="value"` strings); nullopt if none matches.
inline std::optional<double> metric_sum(const std::string& exposition, const std::string& family,
                                        const std::vector<std::string>& labels = {}) {
  std::optional<double> sum;
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, family.size(), family) != 0) continue;
    const char next = line.size() > family.size() ? line[family.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    const auto space = line.rfind(' ');
    const std::string label_text =
        next == '{' ? line.substr(family.size(), line.rfind('}') - family.size() + 1) : "";
    bool match = true;
    for (const auto& l : labels) {
      const auto at = label_text.find(l);
      // A label pair starts after '{' or ',' and ends before ',' or '}'.
      if (at == std::string::npos || (label_text[at - 1] != '{' && label_text[at - 1] != ',') ||
          (label_text[at + l.size()] != ',' && label_text[at + l.size()] != '}')) {
        match = false;
        break;
      }
    }
    if (!match) continue;
    sum = sum.value_or(0) + std::strtod(line.c_str() + space + 1, nullptr);
  }
  return sum;
}

// ---- JSON-lines output -------------------------------------------------------------

using JsonRecord = std::map<std::string, std::string>;  // key → value (strings unquoted)

// Parses one flat JSON object; nullopt if it is not one.
inline std::optional<JsonRecord> parse_flat_json(const std::string& line) {
  JsonRecord r;
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
  };
  auto string = [&]() -> std::optional<std::string> {
    if (i >= line.size() || line[i] != '"') return std::nullopt;
    std::string s;
    for (++i; i < line.size(); ++i) {
      char c = line[i];
      if (c == '"') {
        ++i;
        return s;
      }
      if (c == '\\') {
        if (++i >= line.size()) return std::nullopt;
        c = line[i];
        switch (c) {
          case 'n':
            s += '\n';
            break;
          case 't':
            s += '\t';
            break;
          case 'r':
            s += '\r';
            break;
          case 'b':
            s += '\b';
            break;
          case 'f':
            s += '\f';
            break;
          case 'u':
            if (i + 4 >= line.size()) return std::nullopt;
            s += "\\u" + line.substr(i + 1, 4);  // kept escaped: tests compare ASCII only
            i += 4;
            break;
          default:
            s += c;
        }
        continue;
      }
      s += c;
    }
    return std::nullopt;
  };
  skip_ws();
  if (i >= line.size() || line[i++] != '{') return std::nullopt;
  skip_ws();
  if (i < line.size() && line[i] == '}') return r;
  while (i < line.size()) {
    skip_ws();
    auto key = string();
    if (!key) return std::nullopt;
    skip_ws();
    if (i >= line.size() || line[i++] != ':') return std::nullopt;
    skip_ws();
    std::string value;
    if (i < line.size() && line[i] == '"') {
      auto s = string();
      if (!s) return std::nullopt;
      value = *s;
    } else {
      const auto end = line.find_first_of(",}", i);
      if (end == std::string::npos) return std::nullopt;
      value = line.substr(i, end - i);
      while (!value.empty() && value.back() == ' ') value.pop_back();
      i = end;
    }
    r[*key] = value;
    skip_ws();
    if (i >= line.size()) return std::nullopt;
    if (line[i] == '}') return r;
    if (line[i++] != ',') return std::nullopt;
  }
  return std::nullopt;
}

// Every record of the JSON-lines text; a line that is not a flat object is a
// test failure reported by the caller through `bad_lines`.
inline std::vector<JsonRecord> json_lines(const std::string& text,
                                          std::size_t* bad_lines = nullptr) {
  std::vector<JsonRecord> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (auto r = parse_flat_json(line)) {
      out.push_back(std::move(*r));
    } else if (bad_lines != nullptr) {
      ++*bad_lines;
    }
  }
  return out;
}

// The records of every finished (renamed, not .tmp) *.json file under `dir`.
inline std::vector<JsonRecord> json_records(const std::string& dir,
                                            std::size_t* bad_lines = nullptr) {
  std::vector<JsonRecord> out;
  if (!std::filesystem::exists(dir)) return out;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto part = json_lines(slurp_file(f.string()), bad_lines);
    out.insert(out.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }
  return out;
}

// Files under `dir` whose name ends in `suffix` (e.g. ".tmp": none may remain after exit).
inline std::size_t files_ending_in(const std::string& dir, const std::string& suffix) {
  std::size_t n = 0;
  if (!std::filesystem::exists(dir)) return 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    n += ends_with(e.path().filename().string(), suffix);
  }
  return n;
}

// The regular files under `dir` (recursive), sorted by path.
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

// ---- TCP ---------------------------------------------------------------------------

// Sends the bytes of `file` over one TCP connection to 127.0.0.1:port and closes it (an
// IPFIX file is exactly what an IPFIX-over-TCP stream carries). False if anything failed.
inline bool send_file_over_tcp(const std::string& file, std::uint16_t port) {
  const std::string bytes = slurp_file(file);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  for (std::size_t off = 0; ok && off < bytes.size();) {
    const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    ok = n > 0;
    if (ok) off += static_cast<std::size_t>(n);
  }
  if (fd >= 0) ::close(fd);
  return ok && !bytes.empty();
}

// ---- UDP ---------------------------------------------------------------------------

// One UDP socket (IPv4 or IPv6 loopback, ephemeral source port) sending datagrams.
class UdpSender {
 public:
  explicit UdpSender(bool v6 = false) : v6_(v6) {
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }
  ~UdpSender() {
    if (fd_ >= 0) ::close(fd_);
  }
  UdpSender(const UdpSender&) = delete;
  UdpSender& operator=(const UdpSender&) = delete;
  UdpSender(UdpSender&& o) noexcept : fd_(std::exchange(o.fd_, -1)), v6_(o.v6_) {}

  bool send(std::span<const std::byte> payload, std::uint16_t port) const {
    ssize_t n = -1;
    if (v6_) {
      sockaddr_in6 sa{};
      sa.sin6_family = AF_INET6;
      sa.sin6_port = htons(port);
      sa.sin6_addr = in6addr_loopback;
      n = ::sendto(fd_, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&sa),
                   sizeof sa);
    } else {
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(port);
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      n = ::sendto(fd_, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&sa),
                   sizeof sa);
    }
    return n == static_cast<ssize_t>(payload.size());
  }
  bool send(std::string_view payload, std::uint16_t port) const {
    return send(std::as_bytes(std::span(payload.data(), payload.size())), port);
  }
  [[nodiscard]] int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool v6_ = false;
};

// A UDP socket bound to 127.0.0.1 (ephemeral port) that records what arrives: stands
// in for a collector so a real exporter's datagrams can be replayed identically to
// several collectors (and so the exporter never sees ICMP port-unreachable).
// `rcvbuf`: the receive buffer asked for; `force`: also SO_RCVBUFFORCE first (root may
// exceed net.core.rmem_max).
class UdpReceiver {
 public:
  explicit UdpReceiver(int rcvbuf = 8 << 20, bool force = false) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (force) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
      port_ = ntohs(sa.sin_port);
    }
  }
  ~UdpReceiver() {
    if (fd_ >= 0) ::close(fd_);
  }
  UdpReceiver(const UdpReceiver&) = delete;
  UdpReceiver& operator=(const UdpReceiver&) = delete;
  [[nodiscard]] std::uint16_t port() const { return port_; }

  // Every datagram that arrives until none has come for `idle`.
  std::vector<std::vector<std::byte>> drain(
      std::chrono::milliseconds idle = std::chrono::milliseconds(300)) const {
    std::vector<std::vector<std::byte>> out;
    std::vector<std::byte> buf(65536);
    while (true) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(idle.count())) <= 0) break;
      const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n < 0) break;
      out.emplace_back(buf.begin(), buf.begin() + n);
    }
    return out;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// The row of /proc/<net_dir>/{udp,udp6} (or {tcp,tcp6}) for local `port`, optionally only
// in `state` (UDP bound: "07", TCP listening: "0A"): its state and rx_queue; nullopt if
// there is none. `net_dir` "/proc/PID/net" reads that process's network namespace.
struct ProcSocket {
  std::string state;
  std::uint64_t rx_queue = 0;
};
inline std::optional<ProcSocket> proc_net_socket(const std::string& net_dir, bool udp,
                                                 std::uint16_t port,
                                                 const std::string& state = "") {
  char hex[8];
  std::snprintf(hex, sizeof hex, ":%04X", port);
  for (const std::string f : {udp ? "udp" : "tcp", udp ? "udp6" : "tcp6"}) {
    std::ifstream in(net_dir + "/" + f);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string sl, local, remote, st, queues;
      ls >> sl >> local >> remote >> st >> queues;  // queues: tx:rx in hex
      if (local.size() > 5 && local.substr(local.size() - 5) == hex &&
          (state.empty() || st == state)) {
        const auto colon = queues.find(':');
        if (colon == std::string::npos) return std::nullopt;
        return ProcSocket{st, std::stoull(queues.substr(colon + 1), nullptr, 16)};
      }
    }
  }
  return std::nullopt;
}

// The rx_queue of the UDP socket bound to local `port` (/proc/net/udp{,6}); nullopt if
// no socket is bound to it.
inline std::optional<std::uint64_t> udp_rx_queue(std::uint16_t port) {
  const auto s = proc_net_socket("/proc/net", true, port);
  if (!s) return std::nullopt;
  return s->rx_queue;
}
inline bool udp_bound(std::uint16_t port) {
  return udp_rx_queue(port).has_value();
}

// A port no socket is bound to right now (bind to 0, read it, close; a small race remains).
inline std::uint16_t free_loopback_port(int type) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    port = ntohs(sa.sin_port);
  }
  ::close(fd);
  return port;
}
inline std::uint16_t free_udp_port() {
  return free_loopback_port(SOCK_DGRAM);
}
inline std::uint16_t free_tcp_port() {
  return free_loopback_port(SOCK_STREAM);
}

// ---- nfdump ------------------------------------------------------------------------

// Packets, bytes and flow records, as a peer or flowsec counts them.
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

// "Flows: N", "Packets: N", "Bytes: N" of `nfdump -I` (records = Flows); nullopt if one
// is missing.
inline std::optional<Totals> parse_nfdump_info(const std::string& text) {
  Totals t;
  std::smatch m;
  static const std::regex kFlows(R"((^|\n)Flows: (\d+))"), kPackets(R"((^|\n)Packets: (\d+))"),
      kBytes(R"((^|\n)Bytes: (\d+))");
  if (!std::regex_search(text, m, kFlows)) return std::nullopt;
  t.records = std::stoull(m[2]);
  if (!std::regex_search(text, m, kPackets)) return std::nullopt;
  t.packets = std::stoull(m[2]);
  if (!std::regex_search(text, m, kBytes)) return std::nullopt;
  t.bytes = std::stoull(m[2]);
  return t;
}
// `nfdump -R DIR -I` run (time limit `limit`) and parsed; nullopt if nfdump failed or
// printed no totals. `raw`: what it printed (stdout and stderr), for failure messages.
inline std::optional<Totals> nfdump_totals(
    const std::string& dir, std::string* raw = nullptr,
    std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  const auto r = run_shell("nfdump -R " + shell_quote(dir) + " -I", limit);
  if (raw != nullptr) *raw = r.out;
  if (!r.ok()) return std::nullopt;
  return parse_nfdump_info(r.out);
}

}  // namespace flowsec::test
