// Shared helpers for the transport integration tests (header-only, flowsec::test):
// certificate/data paths and skip macros (REQUIRE_CERTS, REQUIRE_OPENSSL); io_context
// loops (run_until, run_for) and a threaded Loop with eventually(); IPFIX-like message
// framing (numbered, parse_stream, split_messages, text_message); a recording
// ListenerHandler (Recorder); a child-process runner for real peers (Child); and port,
// endpoint helpers (free_port, wait_listening, count_of, ep).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "transport/endpoint.hpp"
#include "transport/listener.hpp"
#include "transport/sender.hpp"

namespace flowsec::test {

using transport::Endpoint;
using transport::ListenerHandler;
using transport::Message;
using transport::Scheme;
using transport::SessionInfo;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

inline std::string cert(const std::string& name) {
  return std::string(FLOWSEC_TEST_CERTS) + "/" + name;
}
inline std::string data_file(const std::string& name) {
  return std::string(FLOWSEC_TEST_DATA) + "/" + name;
}

inline bool have_openssl() {
  return std::system("command -v openssl >/dev/null 2>&1") == 0;
}
inline bool have_certs() {
  return std::filesystem::exists(cert("ca.pem"));
}

#define REQUIRE_CERTS()                                                                \
  do {                                                                                 \
    if (!::flowsec::test::have_certs())                                                \
      GTEST_SKIP() << "test certificates missing in " FLOWSEC_TEST_CERTS               \
                      " (run scripts/make-test-certs.sh, or ctest's make_test_certs)"; \
  } while (0)
#define REQUIRE_OPENSSL()                                                                         \
  do {                                                                                            \
    REQUIRE_CERTS();                                                                              \
    if (!::flowsec::test::have_openssl()) GTEST_SKIP() << "the openssl command is not installed"; \
  } while (0)

// Runs the io_context until pred() holds or the timeout passes.
inline bool run_until(asio::io_context& io, const std::function<bool()>& pred,
                      std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    io.restart();
    if (io.run_for(2ms) == 0 && io.stopped()) std::this_thread::sleep_for(1ms);
  }
  return true;
}
inline void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  run_until(
      io, [] { return false; }, d);
}

inline std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

// An IPFIX-like message (RFC 7011 §3.1 header: version 10, length, export time,
// sequence number, observation domain) whose sequence field numbers it, with a payload
// derived from the number so corruption shows.
inline Message numbered(std::uint32_t seq, std::size_t payload = 48, std::uint32_t domain = 1) {
  Message m(16 + payload);
  auto put = [&m](std::size_t at, std::uint32_t v, int n) {
    for (int i = 0; i < n; ++i) {
      m[at + static_cast<std::size_t>(i)] = static_cast<std::byte>(v >> (8 * (n - 1 - i)));
    }
  };
  put(0, 10, 2);
  put(2, static_cast<std::uint32_t>(m.size()), 2);
  put(8, seq, 4);
  put(12, domain, 4);
  for (std::size_t i = 0; i < payload; ++i) m[16 + i] = static_cast<std::byte>((seq + i) & 0xff);
  return m;
}

struct Parsed {
  std::uint32_t seq = 0;
  std::uint32_t domain = 0;
};
// Cuts a byte stream at the IPFIX length fields; false if it is not such a stream or
// a message's payload is not what numbered() made. `partial_tail`: a stream cut by a
// broken connection may end inside a message; that piece is ignored.
inline bool parse_stream(std::span<const std::byte> s, std::vector<Parsed>& out,
                         bool partial_tail = false) {
  auto get = [&s](std::size_t at, int n) {
    std::uint32_t v = 0;
    for (int i = 0; i < n; ++i)
      v = (v << 8) | std::to_integer<std::uint32_t>(s[at + static_cast<std::size_t>(i)]);
    return v;
  };
  std::size_t at = 0;
  while (at < s.size()) {
    if (s.size() - at < 16) return partial_tail;
    if (get(at, 2) != 10) return false;
    const std::size_t len = get(at + 2, 2);
    if (len < 16) return false;
    if (at + len > s.size()) return partial_tail;
    Parsed p{get(at + 8, 4), get(at + 12, 4)};
    for (std::size_t i = 16; i < len; ++i) {
      if (s[at + i] != static_cast<std::byte>((p.seq + (i - 16)) & 0xff)) return false;
    }
    out.push_back(p);
    at += len;
  }
  return true;
}

// Splits an IPFIX file/stream into its messages (RFC 7011 §10, RFC 5655).
inline std::vector<Message> split_messages(const std::vector<std::byte>& s) {
  std::vector<Message> out;
  std::size_t at = 0;
  while (at + 4 <= s.size()) {
    const std::size_t len =
        (std::to_integer<std::size_t>(s[at + 2]) << 8) | std::to_integer<std::size_t>(s[at + 3]);
    if (len < 16 || at + len > s.size()) break;
    out.emplace_back(s.begin() + static_cast<std::ptrdiff_t>(at),
                     s.begin() + static_cast<std::ptrdiff_t>(at + len));
    at += len;
  }
  return out;
}

// Records what a listener hands over, per session.
struct Recorder final : ListenerHandler {
  struct Session {
    SessionInfo info;
    std::vector<std::byte> bytes;
    std::vector<std::vector<std::byte>> chunks;
    bool open = false;
    bool closed = false;
    std::string close_reason;
  };
  std::map<std::uint64_t, Session> sessions;
  std::vector<std::uint64_t> order;  // session ids in the order they opened
  std::function<bool(const SessionInfo&, std::span<const std::byte>)> on_data_hook;

  void on_session_open(const SessionInfo& s) override {
    auto& r = sessions[s.id];
    r.info = s;
    r.open = true;
    order.push_back(s.id);
  }
  bool on_data(const SessionInfo& s, std::span<const std::byte> d) override {
    auto& r = sessions[s.id];
    r.bytes.insert(r.bytes.end(), d.begin(), d.end());
    r.chunks.emplace_back(d.begin(), d.end());
    return on_data_hook ? on_data_hook(s, d) : true;
  }
  void on_session_close(const SessionInfo& s, std::string_view reason) override {
    auto& r = sessions[s.id];
    r.closed = true;
    r.close_reason = std::string(reason);
  }
  std::size_t opened() const { return order.size(); }
  std::size_t closed_count() const {
    std::size_t n = 0;
    for (const auto& [id, s] : sessions) n += s.closed ? 1 : 0;
    return n;
  }
  std::size_t total_bytes() const {
    std::size_t n = 0;
    for (const auto& [id, s] : sessions) n += s.bytes.size();
    return n;
  }
};

// A child process (a real peer such as openssl s_server) with its stdin from a file or
// from a pipe kept open, stdout and stderr to files. Killed and reaped on destruction.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& stdin_path,
        const std::string& stdout_path, const std::string& stderr_path) {
    int pipe_fds[2] = {-1, -1};
    if (stdin_path.empty() && ::pipe(pipe_fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      int in = stdin_path.empty() ? pipe_fds[0] : ::open(stdin_path.c_str(), O_RDONLY);
      int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in < 0 || out < 0 || err < 0) ::_exit(127);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      if (pipe_fds[1] >= 0) ::close(pipe_fds[1]);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    if (pipe_fds[0] >= 0) ::close(pipe_fds[0]);
    stdin_fd_ = pipe_fds[1];
  }
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // True once the process has exited; `status` is its wait status.
  bool exited(int* status = nullptr) {
    if (pid_ <= 0) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      status_ = st;
    }
    if (status != nullptr) *status = status_;
    return pid_ <= 0;
  }
  void stop() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, &status_, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int status_ = 0;
};

inline std::uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  return a.local_endpoint().port();
}

// Waits until something LISTENs on the TCP port (from /proc/net/tcp{,6}, without
// connecting, so the peer sees no extra client).
inline bool wait_listening(std::uint16_t port, std::chrono::milliseconds timeout = 5s) {
  char hex[8];
  std::snprintf(hex, sizeof hex, ":%04X", port);
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    for (const char* f : {"/proc/net/tcp", "/proc/net/tcp6"}) {
      std::ifstream in(f);
      std::string line;
      while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string sl, local, remote, state;
        ls >> sl >> local >> remote >> state;
        if (state == "0A" && local.size() > 5 && local.substr(local.size() - 5) == hex) return true;
      }
    }
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

inline std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

inline Endpoint ep(Scheme scheme, std::string host, std::uint16_t port) {
  Endpoint e;
  e.scheme = scheme;
  e.host = std::move(host);
  e.port = port;
  e.text = std::string(to_string(scheme)) + "://" +
           (e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host) +
           (e.host.empty() ? "" : ":") + std::to_string(port);
  return e;
}

inline Message text_message(const std::string& s) {
  Message m;
  for (char c : s) m.push_back(static_cast<std::byte>(c));
  return m;
}

// An io_context run on its own thread; call() runs a function there and returns its result.
class Loop {
 public:
  Loop() : thread_([this] { io.run(); }) {}
  ~Loop() {
    guard_.reset();
    io.stop();
    thread_.join();
  }
  template <class Fn>
  auto call(Fn&& fn) {
    std::packaged_task<decltype(fn())()> task(std::forward<Fn>(fn));
    auto f = task.get_future();
    asio::post(io, [&task] { task(); });
    return f.get();
  }
  asio::io_context io;

 private:
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io.get_executor()};
  std::thread thread_;
};

// Polls pred() every 10 ms until it holds or the limit passes (then one last try).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

}  // namespace flowsec::test
