// Integration: TCP/TLS stream transport and plain UDP over loopback (SPEC §3, §4).
//
// Peers: plain sockets (what is on the wire: tcp:// is verbatim bytes, tls:// starts
// with a TLS ClientHello) and our own sender and listener. Checks that a collector
// stopped and restarted while an exporter sends loses no message (each numbered
// message arrives at least once, in order of first appearance; duplicates are
// reported), that templates come first on every connection (RFC 7011 §8), that a
// full queue drops the oldest and counts them (also while the collector is away),
// backoff and logging, shutdown, the session cap and the idle timeout; and for UDP:
// per-exporter pseudo-sessions, dual-stack listening, the session cap, idle expiry
// and kernel drop counting (SO_RXQ_OVFL). Certificates come from
// scripts/make-test-certs.sh (TLS cases skip loudly without them).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "transport/listener.hpp"
#include "transport/sender.hpp"
#include "transport/tls.hpp"

namespace flowsec::transport {

// gtest prints parameters with this (ADL, so outside the anonymous namespace).
void PrintTo(Scheme s, std::ostream* os) {
  *os << to_string(s);
}

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

[[maybe_unused]] std::string cert(const std::string& name) {
  return std::string(FLOWSEC_TEST_CERTS) + "/" + name;
}
[[maybe_unused]] std::string data_file(const std::string& name) {
  return std::string(FLOWSEC_TEST_DATA) + "/" + name;
}

[[maybe_unused]] bool have_openssl() {
  return std::system("command -v openssl >/dev/null 2>&1") == 0;
}
[[maybe_unused]] bool have_certs() {
  return std::filesystem::exists(cert("ca.pem"));
}

#define REQUIRE_CERTS()                                                                \
  do {                                                                                 \
    if (!have_certs())                                                                 \
      GTEST_SKIP() << "test certificates missing in " FLOWSEC_TEST_CERTS               \
                      " (run scripts/make-test-certs.sh, or ctest's make_test_certs)"; \
  } while (0)
#define REQUIRE_OPENSSL()                                                        \
  do {                                                                           \
    REQUIRE_CERTS();                                                             \
    if (!have_openssl()) GTEST_SKIP() << "the openssl command is not installed"; \
  } while (0)

// Runs the io_context until pred() holds or the timeout passes.
[[maybe_unused]] bool run_until(asio::io_context& io, const std::function<bool()>& pred,
                                std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    io.restart();
    if (io.run_for(2ms) == 0 && io.stopped()) std::this_thread::sleep_for(1ms);
  }
  return true;
}
[[maybe_unused]] void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  run_until(
      io, [] { return false; }, d);
}

[[maybe_unused]] std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

// An IPFIX-like message (RFC 7011 §3.1 header: version 10, length, export time,
// sequence number, observation domain) whose sequence field numbers it, with a payload
// derived from the number so corruption shows.
[[maybe_unused]] Message numbered(std::uint32_t seq, std::size_t payload = 48,
                                  std::uint32_t domain = 1) {
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
[[maybe_unused]] bool parse_stream(std::span<const std::byte> s, std::vector<Parsed>& out,
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
[[maybe_unused]] std::vector<Message> split_messages(const std::vector<std::byte>& s) {
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

[[maybe_unused]] std::uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  return a.local_endpoint().port();
}

// Waits until something LISTENs on the TCP port (from /proc/net/tcp{,6}, without
// connecting, so the peer sees no extra client).
[[maybe_unused]] bool wait_listening(std::uint16_t port, std::chrono::milliseconds timeout = 5s) {
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

[[maybe_unused]] std::string temp_dir(const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path() /
             ("flowsec-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

[[maybe_unused]] std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

[[maybe_unused]] Endpoint ep(Scheme scheme, std::string host, std::uint16_t port) {
  Endpoint e;
  e.scheme = scheme;
  e.host = std::move(host);
  e.port = port;
  e.text = std::string(to_string(scheme)) + "://" +
           (e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host) +
           (e.host.empty() ? "" : ":") + std::to_string(port);
  return e;
}

SenderOptions fast_sender(Scheme scheme = Scheme::tcp) {
  SenderOptions o;
  o.backoff_initial = 20ms;
  o.backoff_max = 100ms;
  o.connect_timeout = 2s;
  if (scheme == Scheme::tls) o.tls.ca_file = cert("ca.pem");
  return o;
}

ListenerOptions listener_options(Scheme scheme = Scheme::tcp) {
  ListenerOptions o;
  if (scheme == Scheme::tls) {
    o.tls.cert_file = cert("server.pem");
    o.tls.key_file = cert("server.key");
  }
  return o;
}

constexpr std::uint32_t kTemplateDomain = 0xffff;

// --- tcp:// is TCP, tls:// is TLS ----------------------------------------------------

TEST(StreamTransport, TcpIsPlainBytesAndTlsIsTls) {
  REQUIRE_CERTS();
  asio::io_context io;
  tcp::acceptor plain(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const auto port = plain.local_endpoint().port();

  // Our tcp sender: the messages, verbatim.
  {
    auto sender = make_sender(io, ep(Scheme::tcp, "127.0.0.1", port), fast_sender());
    ASSERT_TRUE(sender) << sender.error();
    (*sender)->send(numbered(1));
    (*sender)->send(numbered(2, 100));
    tcp::socket peer(io);
    bool accepted = false;
    plain.async_accept(peer, [&](const asio::error_code& ec) { accepted = !ec; });
    ASSERT_TRUE(run_until(io, [&] { return accepted; }));
    std::vector<std::byte> got(numbered(1).size() + numbered(2, 100).size());
    bool read = false;
    asio::async_read(peer, asio::buffer(got),
                     [&](const asio::error_code& ec, std::size_t) { read = !ec; });
    ASSERT_TRUE(run_until(io, [&] { return read; }));
    auto want = numbered(1);
    const auto second = numbered(2, 100);
    want.insert(want.end(), second.begin(), second.end());
    EXPECT_EQ(got, want);
  }

  // Our tls sender: a TLS record of type handshake (22), version 3.x, a ClientHello.
  {
    auto sender = make_sender(io, ep(Scheme::tls, "127.0.0.1", port), fast_sender(Scheme::tls));
    ASSERT_TRUE(sender) << sender.error();
    (*sender)->send(numbered(1));
    tcp::socket peer(io);
    bool accepted = false;
    plain.async_accept(peer, [&](const asio::error_code& ec) { accepted = !ec; });
    ASSERT_TRUE(run_until(io, [&] { return accepted; }));
    std::array<std::uint8_t, 6> head{};
    bool read = false;
    asio::async_read(peer, asio::buffer(head),
                     [&](const asio::error_code& ec, std::size_t) { read = !ec; });
    ASSERT_TRUE(run_until(io, [&] { return read; }));
    EXPECT_EQ(head[0], 0x16);
    EXPECT_EQ(head[1], 0x03);
    EXPECT_EQ(head[5], 0x01);  // handshake type client_hello
  }

  // A TLS listener refuses our tcp sender: not TLS.
  {
    Recorder rec;
    auto listener =
        make_listener(io, ep(Scheme::tls, "127.0.0.1", 0), listener_options(Scheme::tls), rec);
    ASSERT_TRUE(listener) << listener.error();
    auto sender =
        make_sender(io, ep(Scheme::tcp, "127.0.0.1", (*listener)->local_port()), fast_sender());
    ASSERT_TRUE(sender);
    (*sender)->send(numbered(1));
    EXPECT_TRUE(run_until(io, [&] {
      return (*listener)
                 ->stats()
                 .handshakes_refused[static_cast<std::size_t>(TlsRefusal::not_tls)] >= 1;
    }));
    EXPECT_EQ(rec.opened(), 0u);
    EXPECT_EQ((*listener)->stats().handshakes_ok, 0u);
  }
}

// --- collector stopped and restarted: nothing lost (SPEC §4, §9) -------------------

class CollectorRestart : public testing::TestWithParam<Scheme> {};

TEST_P(CollectorRestart, EveryMessageArrivesAtLeastOnceInOrder) {
  const Scheme scheme = GetParam();
  if (scheme == Scheme::tls) REQUIRE_CERTS();
  asio::io_context io;
  Recorder rec;
  auto listener = make_listener(io, ep(scheme, "127.0.0.1", 0), listener_options(scheme), rec);
  ASSERT_TRUE(listener) << listener.error();
  const auto port = (*listener)->local_port();
  auto made = make_sender(io, ep(scheme, "127.0.0.1", port), fast_sender(scheme));
  ASSERT_TRUE(made) << made.error();
  auto& sender = *made;
  std::uint32_t connection = 0;
  sender->set_on_connect(
      [&] { return std::vector<Message>{numbered(connection++, 16, kTemplateDomain)}; });

  constexpr std::uint32_t kTotal = 40000;
  std::uint32_t next = 0;
  auto send_until = [&](std::uint32_t upto, std::size_t per_round) {
    while (next < upto) {
      for (std::size_t i = 0; i < per_round && next < upto; ++i) {
        sender->send(numbered(next, 16 + next % 64));
        ++next;
      }
      run_for(io, 1ms);
    }
  };
  // Sending for longer than the sender's confirm window (500 ms), so that the resend
  // after the kill is trimmed by the kernel's unacked count rather than total.
  const auto t0 = Clock::now();
  while (Clock::now() - t0 < 700ms) send_until(next + 20, 20);
  send_until(next + 2000, 200);
  const std::uint32_t killed_at = next;
  // Kill the collector while data is in flight, keep sending while it is away...
  listener->reset();
  send_until(killed_at + 6000, 200);
  run_for(io, 150ms);
  EXPECT_FALSE(sender->stats().connected);
  // ... and start a new one on the same port.
  auto again = make_listener(io, ep(scheme, "127.0.0.1", port), listener_options(scheme), rec);
  ASSERT_TRUE(again) << again.error();
  send_until(kTotal, 200);
  std::optional<bool> done;
  sender->shutdown(10s, [&](bool ok) { done = ok; });
  ASSERT_TRUE(run_until(
      io, [&] { return done.has_value(); }, 12s));
  EXPECT_TRUE(*done);
  ASSERT_TRUE(run_until(io, [&] { return rec.closed_count() == rec.opened(); }));

  // Every session starts with its template (RFC 7011 §8), then data in order.
  std::vector<std::uint32_t> first_seen;
  std::set<std::uint32_t> seen;
  std::size_t duplicates = 0;
  for (const auto id : rec.order) {
    std::vector<Parsed> got;
    ASSERT_TRUE(parse_stream(rec.sessions[id].bytes, got, true)) << "session " << id;
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front().domain, kTemplateDomain) << "session " << id;
    for (std::size_t i = 1; i < got.size(); ++i) {
      EXPECT_NE(got[i].domain, kTemplateDomain);
      if (seen.insert(got[i].seq).second) {
        first_seen.push_back(got[i].seq);
      } else {
        ++duplicates;
      }
    }
  }
  ASSERT_EQ(seen.size(), kTotal) << "lost " << kTotal - seen.size() << " messages";
  for (std::uint32_t i = 0; i < kTotal; ++i) ASSERT_EQ(first_seen[i], i) << "out of order";
  const auto st = sender->stats();
  std::cout << "[ info ] " << to_string(scheme) << ": " << rec.opened() << " sessions, "
            << duplicates << " duplicates, " << st.messages_resent << " messages re-sent, "
            << st.connect_failures << " failed connects\n";
  RecordProperty("duplicates", static_cast<int>(duplicates));
  EXPECT_GE(rec.opened(), 2u);
  EXPECT_GE(st.connects, 2u);
  EXPECT_GE(st.connect_failures, 1u);
  EXPECT_EQ(st.messages_dropped, 0u);
  EXPECT_EQ(st.queue_messages, 0u);
}

// The collector stays away long enough for the queue to overflow: the oldest messages
// are dropped and counted, everything newer still arrives (SPEC §4).
TEST_P(CollectorRestart, OverflowWhileAwayDropsTheOldestOnly) {
  const Scheme scheme = GetParam();
  if (scheme == Scheme::tls) REQUIRE_CERTS();
  asio::io_context io;
  Recorder rec;
  auto listener = make_listener(io, ep(scheme, "127.0.0.1", 0), listener_options(scheme), rec);
  ASSERT_TRUE(listener) << listener.error();
  const auto port = (*listener)->local_port();
  constexpr std::size_t kQueued = 300;
  SenderOptions o = fast_sender(scheme);
  o.queue_limit_bytes = kQueued * numbered(0).size();
  testing::internal::CaptureStderr();
  auto made = make_sender(io, ep(scheme, "127.0.0.1", port), o);
  ASSERT_TRUE(made) << made.error();
  auto& sender = *made;
  std::uint32_t next = 0;
  auto send_until = [&](std::uint32_t upto) {
    while (next < upto) {
      for (int i = 0; i < 50 && next < upto; ++i) sender->send(numbered(next++));
      run_for(io, 1ms);
    }
  };
  const auto t0 = Clock::now();
  while (Clock::now() - t0 < 700ms) send_until(next + 10);  // past the confirm window
  listener->reset();
  send_until(next + 3000);  // ten times what the queue holds
  run_for(io, 100ms);
  const auto while_away = sender->stats();
  EXPECT_GT(while_away.messages_dropped, 0u);
  EXPECT_LE(while_away.queue_bytes, o.queue_limit_bytes);
  auto again = make_listener(io, ep(scheme, "127.0.0.1", port), listener_options(scheme), rec);
  ASSERT_TRUE(again) << again.error();
  ASSERT_TRUE(run_until(io, [&] {
    const auto st = sender->stats();
    return st.connected && st.queue_messages == 0;
  }));
  send_until(next + 500);
  std::optional<bool> done;
  sender->shutdown(10s, [&](bool ok) { done = ok; });
  ASSERT_TRUE(run_until(
      io, [&] { return done.has_value(); }, 12s));
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(*done);
  ASSERT_EQ(rec.opened(), 2u);

  std::set<std::uint32_t> before, after;
  for (std::size_t k = 0; k < 2; ++k) {
    std::vector<Parsed> got;
    ASSERT_TRUE(parse_stream(rec.sessions[rec.order[k]].bytes, got, true));
    for (const auto& p : got) (k == 0 ? before : after).insert(p.seq);
  }
  std::vector<std::uint32_t> missing;
  for (std::uint32_t i = 0; i < next; ++i) {
    if (before.count(i) == 0 && after.count(i) == 0) missing.push_back(i);
  }
  const auto st = sender->stats();
  ASSERT_FALSE(missing.empty());
  // Only the oldest went: everything missing is older than all that came after.
  EXPECT_LT(missing.back(), *after.begin());
  // Every missing message was counted as dropped (drops may also hit re-queued
  // messages that had in fact arrived: counted, not missing).
  EXPECT_LE(missing.size(), st.messages_dropped);
  EXPECT_EQ(st.messages_dropped, while_away.messages_dropped);
  // What the queue held at the end of the outage (its newest messages) and everything
  // sent after the reconnect arrived.
  for (std::uint32_t i = next - 500 - static_cast<std::uint32_t>(kQueued / 2); i < next; ++i) {
    ASSERT_EQ(after.count(i), 1u) << i;
  }
  EXPECT_NE(log.find("oldest message(s), the export queue is full"), std::string::npos) << log;
  std::cout << "[ info ] " << to_string(scheme) << ": " << missing.size() << " missing, "
            << st.messages_dropped << " dropped, " << st.messages_resent << " re-sent\n";
}

INSTANTIATE_TEST_SUITE_P(Schemes, CollectorRestart, testing::Values(Scheme::tcp, Scheme::tls),
                         [](const testing::TestParamInfo<Scheme>& p) {
                           return std::string(to_string(p.param));
                         });

// --- a full queue drops the oldest, counted and logged (SPEC §4) --------------------

TEST(StreamSender, FullQueueDropsTheOldestAndCountsThem) {
  asio::io_context io;
  const auto port = free_port();  // nobody listens yet
  SenderOptions o = fast_sender();
  o.queue_limit_bytes = 10 * numbered(0).size();
  testing::internal::CaptureStderr();
  auto sender = make_sender(io, ep(Scheme::tcp, "127.0.0.1", port), o);
  ASSERT_TRUE(sender) << sender.error();
  for (std::uint32_t i = 0; i < 100; ++i) (*sender)->send(numbered(i));
  auto st = (*sender)->stats();
  EXPECT_EQ(st.messages_dropped, 90u);
  EXPECT_EQ(st.bytes_dropped, 90 * numbered(0).size());
  EXPECT_EQ(st.queue_messages, 10u);
  EXPECT_EQ(st.queue_bytes, 10 * numbered(0).size());
  run_for(io, 50ms);
  Recorder rec;
  auto listener = make_listener(io, ep(Scheme::tcp, "127.0.0.1", port), listener_options(), rec);
  ASSERT_TRUE(listener) << listener.error();
  ASSERT_TRUE(run_until(io, [&] { return rec.total_bytes() == 10 * numbered(0).size(); }));
  run_for(io, 1100ms);  // the drop summary comes once a second
  const std::string log = testing::internal::GetCapturedStderr();
  std::vector<Parsed> got;
  ASSERT_TRUE(parse_stream(rec.sessions.begin()->second.bytes, got));
  ASSERT_EQ(got.size(), 10u);
  for (std::uint32_t i = 0; i < 10; ++i) EXPECT_EQ(got[i].seq, 90 + i);  // the newest ten
  // Counted and logged, but not one line per drop: the first at once, then a summary.
  EXPECT_EQ(count_of(log, "oldest message"), 2u) << log;
  EXPECT_NE(log.find("dropped 1 oldest message(s), the export queue is full (limit 640 bytes)"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("dropped 89 more oldest message(s)"), std::string::npos) << log;
  EXPECT_NE(log.find("90 dropped in total"), std::string::npos) << log;
}

// --- backoff, logging once per state change, shutdown timeout ------------------------

TEST(StreamSender, RetriesWithBackoffAndLogsOncePerStateChange) {
  asio::io_context io;
  const auto port = free_port();
  SenderOptions o = fast_sender();
  o.backoff_initial = 10ms;
  o.backoff_max = 80ms;
  testing::internal::CaptureStderr();
  auto sender = make_sender(io, ep(Scheme::tcp, "127.0.0.1", port), o);
  ASSERT_TRUE(sender);
  (*sender)->send(numbered(1));
  run_for(io, 500ms);
  const auto failures = (*sender)->stats().connect_failures;
  // 10+20+40+80+80+... ms: about 8 attempts in 500 ms; without backoff there would be hundreds.
  EXPECT_GE(failures, 4u);
  EXPECT_LE(failures, 12u);
  Recorder rec;
  auto listener = make_listener(io, ep(Scheme::tcp, "127.0.0.1", port), listener_options(), rec);
  ASSERT_TRUE(listener);
  ASSERT_TRUE(run_until(io, [&] { return rec.total_bytes() == numbered(1).size(); }));
  ASSERT_TRUE(run_until(io, [&] { return (*sender)->stats().connects == 1; }));
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count_of(log, "cannot connect"), 1u) << log;
  EXPECT_EQ(count_of(log, "connected after " + std::to_string(failures)), 1u) << log;
  EXPECT_EQ((*sender)->stats().connects, 1u);
}

TEST(StreamSender, ShutdownGivesUpAfterTheTimeoutAndCountsWhatWasNotDelivered) {
  asio::io_context io;
  testing::internal::CaptureStderr();
  auto sender = make_sender(io, ep(Scheme::tcp, "127.0.0.1", free_port()), fast_sender());
  ASSERT_TRUE(sender);
  for (std::uint32_t i = 0; i < 5; ++i) (*sender)->send(numbered(i));
  std::optional<bool> done;
  const auto t0 = Clock::now();
  (*sender)->shutdown(200ms, [&](bool ok) { done = ok; });
  ASSERT_TRUE(run_until(
      io, [&] { return done.has_value(); }, 3s));
  const auto took = Clock::now() - t0;
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(*done);
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 1s);
  EXPECT_NE(log.find("5 messages not delivered"), std::string::npos) << log;
  // After shutdown nothing is accepted silently.
  (*sender)->send(numbered(9));
  EXPECT_EQ((*sender)->stats().messages_dropped, 1u);
}

TEST(StreamSender, ShutdownWithNothingQueuedSucceedsAtOnce) {
  asio::io_context io;
  auto sender = make_sender(io, ep(Scheme::tcp, "127.0.0.1", free_port()), fast_sender());
  ASSERT_TRUE(sender);
  std::optional<bool> done;
  (*sender)->shutdown(5s, [&](bool ok) { done = ok; });
  ASSERT_TRUE(run_until(
      io, [&] { return done.has_value(); }, 1s));
  EXPECT_TRUE(*done);
}

// --- listener limits: session cap, idle timeout, handler closing ---------------------

TEST(StreamListener, SessionCapRefusesConnectionsBeyondIt) {
  asio::io_context io;
  Recorder rec;
  ListenerOptions lo = listener_options();
  lo.max_sessions = 2;
  testing::internal::CaptureStderr();
  auto listener = make_listener(io, ep(Scheme::tcp, "127.0.0.1", 0), lo, rec);
  ASSERT_TRUE(listener);
  const tcp::endpoint target(asio::ip::address_v4::loopback(), (*listener)->local_port());
  std::vector<std::unique_ptr<tcp::socket>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<tcp::socket>(io));
    clients.back()->connect(target);
    ASSERT_TRUE(run_until(io, [&] {
      const auto st = (*listener)->stats();
      return st.sessions_accepted + st.sessions_refused_cap == static_cast<std::uint64_t>(i + 1);
    }));
  }
  auto st = (*listener)->stats();
  EXPECT_EQ(st.sessions_active, 2u);
  EXPECT_EQ(st.sessions_refused_cap, 1u);
  EXPECT_EQ(rec.opened(), 2u);
  // The third was closed at once.
  std::array<char, 1> b{};
  asio::error_code ec;
  bool eof = false;
  clients[2]->async_read_some(asio::buffer(b), [&](const asio::error_code& e, std::size_t) {
    ec = e;
    eof = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return eof; }));
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  // A slot frees up: the next connection is served.
  clients[0]->close();
  ASSERT_TRUE(run_until(io, [&] { return (*listener)->stats().sessions_active == 1; }));
  clients.push_back(std::make_unique<tcp::socket>(io));
  clients.back()->connect(target);
  const auto msg = numbered(5);
  asio::write(*clients.back(), asio::buffer(msg));
  ASSERT_TRUE(run_until(io, [&] { return rec.total_bytes() == msg.size(); }));
  EXPECT_EQ(rec.opened(), 3u);
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count_of(log, "2 sessions already open"), 1u) << log;
}

TEST(StreamListener, IdleSessionsAreClosedActiveOnesStay) {
  asio::io_context io;
  Recorder rec;
  ListenerOptions lo = listener_options();
  lo.idle_timeout = 200ms;
  auto listener = make_listener(io, ep(Scheme::tcp, "127.0.0.1", 0), lo, rec);
  ASSERT_TRUE(listener);
  const tcp::endpoint target(asio::ip::address_v4::loopback(), (*listener)->local_port());
  tcp::socket silent(io);
  silent.connect(target);
  auto sender = make_sender(io, ep(Scheme::tcp, "127.0.0.1", target.port()), fast_sender());
  ASSERT_TRUE(sender);
  const auto t0 = Clock::now();
  std::uint32_t n = 0;
  while (Clock::now() - t0 < 600ms) {
    (*sender)->send(numbered(n++));
    run_for(io, 50ms);
  }
  EXPECT_EQ((*listener)->stats().sessions_idle_closed, 1u);
  EXPECT_EQ((*listener)->stats().sessions_active, 1u);
  ASSERT_EQ(rec.opened(), 2u);
  const auto& first = rec.sessions[rec.order[0]];
  const auto& second = rec.sessions[rec.order[1]];
  EXPECT_TRUE(first.closed);
  EXPECT_EQ(first.close_reason, "idle");
  EXPECT_TRUE(first.bytes.empty());
  EXPECT_FALSE(second.closed);
  EXPECT_EQ((*sender)->stats().connects, 1u);
}

TEST(StreamListener, HandlerReturningFalseClosesOnlyThatSession) {
  asio::io_context io;
  Recorder rec;
  rec.on_data_hook = [](const SessionInfo&, std::span<const std::byte> d) {
    return d.size() < 2 || d[0] != std::byte{0xff};  // "malformed": close
  };
  auto listener = make_listener(io, ep(Scheme::tcp, "127.0.0.1", 0), listener_options(), rec);
  ASSERT_TRUE(listener);
  const tcp::endpoint target(asio::ip::address_v4::loopback(), (*listener)->local_port());
  tcp::socket good(io), bad(io);
  good.connect(target);
  bad.connect(target);
  const std::array<std::uint8_t, 4> junk{0xff, 0xff, 0xff, 0xff};
  asio::write(bad, asio::buffer(junk));
  ASSERT_TRUE(run_until(io, [&] { return rec.closed_count() == 1; }));
  const auto msg = numbered(3);
  asio::write(good, asio::buffer(msg));
  ASSERT_TRUE(run_until(io, [&] { return rec.total_bytes() == junk.size() + msg.size(); }));
  EXPECT_EQ((*listener)->stats().sessions_active, 1u);
  (*listener)->close();
  EXPECT_EQ(rec.closed_count(), 2u);
  for (const auto& [id, s] : rec.sessions) {
    if (!s.bytes.empty() && s.bytes[0] == std::byte{0xff}) {
      EXPECT_EQ(s.close_reason, "closed by the collector");
    } else {
      EXPECT_EQ(s.close_reason, "listener closed");
    }
  }
}

// --- UDP -------------------------------------------------------------------------------

TEST(UdpTransport, OneDatagramPerMessageOneSessionPerExporter) {
  asio::io_context io;
  Recorder rec;
  auto listener = make_listener(io, ep(Scheme::udp, "127.0.0.1", 0), ListenerOptions{}, rec);
  ASSERT_TRUE(listener) << listener.error();
  const auto port = (*listener)->local_port();
  auto a = make_sender(io, ep(Scheme::udp, "127.0.0.1", port), SenderOptions{});
  ASSERT_TRUE(a) << a.error();
  (*a)->set_on_connect([] { return std::vector<Message>{numbered(0, 16, kTemplateDomain)}; });
  for (std::uint32_t i = 0; i < 300; ++i) (*a)->send(numbered(i, i % 1000));
  ASSERT_TRUE(run_until(io, [&] { return (*listener)->stats().datagrams == 301; }));
  ASSERT_EQ(rec.opened(), 1u);
  const auto& s = rec.sessions.begin()->second;
  EXPECT_EQ(s.info.scheme, Scheme::udp);
  EXPECT_EQ(s.info.peer_address.to_string(), "127.0.0.1");
  ASSERT_EQ(s.chunks.size(), 301u);
  EXPECT_EQ(s.chunks[0], numbered(0, 16, kTemplateDomain));
  for (std::uint32_t i = 0; i < 300; ++i) EXPECT_EQ(s.chunks[i + 1], numbered(i, i % 1000));
  EXPECT_EQ((*a)->stats().messages_sent, 301u);
  EXPECT_TRUE((*a)->stats().connected);

  // A second exporter (another source port) is another session.
  auto b = make_sender(io, ep(Scheme::udp, "localhost", port), SenderOptions{});
  ASSERT_TRUE(b);
  (*b)->send(numbered(1));
  ASSERT_TRUE(run_until(io, [&] { return rec.opened() == 2; }));
  EXPECT_EQ((*listener)->stats().sessions_active, 2u);
  EXPECT_EQ((*listener)->stats().sessions_accepted, 2u);

  std::optional<bool> done;
  (*a)->shutdown(1s, [&](bool ok) { done = ok; });
  ASSERT_TRUE(run_until(io, [&] { return done.has_value(); }));
  EXPECT_TRUE(*done);
  (*listener)->close();
  EXPECT_EQ(rec.closed_count(), 2u);
  EXPECT_EQ(rec.sessions.begin()->second.close_reason, "listener closed");
}

TEST(UdpTransport, AllAddressesMeansDualStack) {
  asio::io_context io;
  Recorder rec;
  auto listener = make_listener(io, ep(Scheme::udp, "", 0), ListenerOptions{}, rec);
  ASSERT_TRUE(listener) << listener.error();
  const auto port = (*listener)->local_port();
  auto v4 = make_sender(io, ep(Scheme::udp, "127.0.0.1", port), SenderOptions{});
  ASSERT_TRUE(v4);
  (*v4)->send(numbered(4));
  ASSERT_TRUE(run_until(io, [&] { return rec.opened() == 1; }));
  EXPECT_EQ(rec.sessions[rec.order[0]].info.peer_address.to_string(), "127.0.0.1");
  auto v6 = make_sender(io, ep(Scheme::udp, "::1", port), SenderOptions{});
  if (!v6) GTEST_SKIP() << "no IPv6 loopback here: " << v6.error();
  (*v6)->send(numbered(6));
  ASSERT_TRUE(run_until(io, [&] { return rec.opened() == 2; }));
  EXPECT_EQ(rec.sessions[rec.order[1]].info.peer_address.to_string(), "::1");
  EXPECT_TRUE(rec.sessions[rec.order[1]].info.peer_address.is_v6());
}

TEST(UdpTransport, SessionCapAndIdleExpiry) {
  asio::io_context io;
  Recorder rec;
  ListenerOptions lo;
  lo.max_sessions = 1;
  lo.idle_timeout = 150ms;
  auto listener = make_listener(io, ep(Scheme::udp, "127.0.0.1", 0), lo, rec);
  ASSERT_TRUE(listener);
  const auto port = (*listener)->local_port();
  auto a = make_sender(io, ep(Scheme::udp, "127.0.0.1", port), SenderOptions{});
  auto b = make_sender(io, ep(Scheme::udp, "127.0.0.1", port), SenderOptions{});
  ASSERT_TRUE(a && b);
  (*a)->send(numbered(1));
  ASSERT_TRUE(run_until(io, [&] { return rec.opened() == 1; }));
  for (std::uint32_t i = 0; i < 3; ++i) (*b)->send(numbered(i));
  ASSERT_TRUE(run_until(io, [&] { return (*listener)->stats().sessions_refused_cap == 3; }));
  EXPECT_EQ(rec.opened(), 1u);
  // a goes quiet: its session expires, then b gets in.
  ASSERT_TRUE(run_until(io, [&] { return rec.closed_count() == 1; }));
  EXPECT_EQ(rec.sessions[rec.order[0]].close_reason, "idle");
  EXPECT_EQ((*listener)->stats().sessions_idle_closed, 1u);
  (*b)->send(numbered(9));
  ASSERT_TRUE(run_until(io, [&] { return rec.opened() == 2; }));
  EXPECT_EQ(rec.sessions[rec.order[1]].chunks.at(0), numbered(9));
}

TEST(UdpTransport, KernelDropsAreCounted) {
  asio::io_context io;
  Recorder rec;
  ListenerOptions lo;
  lo.udp_receive_buffer = 8192;  // tiny on purpose
  testing::internal::CaptureStderr();
  auto listener = make_listener(io, ep(Scheme::udp, "127.0.0.1", 0), lo, rec);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(listener);
  asio::ip::udp::socket raw(io, asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), 0));
  const asio::ip::udp::endpoint target(asio::ip::address_v4::loopback(), (*listener)->local_port());
  const auto msg = numbered(1, 1000);
  // Nobody reads while these arrive: most overflow the receive buffer.
  constexpr std::uint64_t kBurst = 500;
  for (std::uint64_t i = 0; i < kBurst; ++i) raw.send_to(asio::buffer(msg), target);
  run_for(io, 50ms);
  // The drop counter rides on datagrams queued after the drops.
  raw.send_to(asio::buffer(msg), target);
  ASSERT_TRUE(run_until(io,
                        [&] {
                          const auto st = (*listener)->stats();
                          return st.kernel_drops > 0 &&
                                 st.datagrams + st.kernel_drops == kBurst + 1;
                        }))
      << "datagrams " << (*listener)->stats().datagrams << " drops "
      << (*listener)->stats().kernel_drops;
  EXPECT_LT((*listener)->stats().datagrams, kBurst);
}

TEST(UdpTransport, UnresolvableHostIsAStartupErrorNamingTheEndpoint) {
  asio::io_context io;
  auto e = ep(Scheme::udp, "no-such-host.invalid", 2055);
  auto sender = make_sender(io, e, SenderOptions{});
  ASSERT_FALSE(sender);
  EXPECT_NE(sender.error().find("udp://no-such-host.invalid:2055"), std::string::npos)
      << sender.error();
}

}  // namespace
}  // namespace flowsec::transport
