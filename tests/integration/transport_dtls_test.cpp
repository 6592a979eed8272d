// DTLS transport (SPEC §3 "DTLS over UDP, one IPFIX message per DTLS record, cookie
// exchange on") against a real peer and against itself:
//  - our sender → `openssl s_server -dtls` (OpenSSL's own DTLS server): the exact bytes of
//    every message, templates first; with -Verify, mutual DTLS with a client certificate;
//  - `openssl s_client -dtls` → our listener: each stdin read becomes one record and one
//    on_data call with the same bytes; with a client certificate its subject is reported;
//  - our sender ↔ our listener: certificate refusals named as SPEC §3 asks (expired,
//    not-yet-valid, self-signed, unknown CA, wrong name) and accepted with --tls-insecure;
//    mutual DTLS (no client certificate, unknown CA, allow-list); the stateless cookie
//    exchange of RFC 6347 §4.2.1 seen on the wire from a hand-driven OpenSSL client;
//    garbage datagrams; handshake and idle timeouts; max_sessions; oversize messages;
//    reconnection with templates first; shutdown with close_notify.
// Certificates: scripts/make-test-certs.sh (ctest fixture "test_certs") in
// FLOWSEC_TEST_CERTS. Tests that need the `openssl` command skip loudly without it.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "support/transport_harness.hpp"
#include "transport/endpoint.hpp"
#include "transport/listener.hpp"
#include "transport/sender.hpp"
#include "transport/tls.hpp"

extern char** environ;

namespace flowsec::transport {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using asio::ip::udp;

using test::cert;
using test::have_openssl;
using test::text_message;

#define SKIP_WITHOUT_OPENSSL()                                                       \
  do {                                                                               \
    if (!have_openssl()) {                                                           \
      std::fprintf(stderr,                                                           \
                   "SKIPPED: the openssl command is not installed (apt-get install " \
                   "openssl); the DTLS peer test cannot run\n");                     \
      GTEST_SKIP() << "SKIPPED: the openssl command is not installed";               \
    }                                                                                \
  } while (0)

Message make_message(int tag, std::size_t size) {
  Message m(size);
  for (std::size_t j = 0; j < size; ++j) {
    m[j] = static_cast<std::byte>((static_cast<std::size_t>(tag) * 31 + j * 7) & 0xff);
  }
  if (size >= 2) {
    m[0] = static_cast<std::byte>(tag >> 8);
    m[1] = static_cast<std::byte>(tag & 0xff);
  }
  return m;
}

std::string as_text(std::span<const std::byte> d) {
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

// A free UDP port on 127.0.0.1 (bound, then released) for a peer started by us.
std::uint16_t free_udp_port() {
  asio::io_context io;
  udp::socket s(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return s.local_endpoint().port();
}

// A child process running `sh -c CMD`, with its stdin on a pipe we hold.
class Child {
 public:
  explicit Child(const std::string& cmd) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    const std::string shell_cmd = "exec " + cmd;
    const char* argv[] = {"/bin/sh", "-c", shell_cmd.c_str(), nullptr};
    if (posix_spawn(&pid_, "/bin/sh", &actions, nullptr, const_cast<char* const*>(argv), environ) !=
        0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[0]);
    stdin_ = fds[1];
  }
  ~Child() {
    close_stdin();
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] bool started() const { return pid_ > 0; }
  void write_stdin(const std::string& s) {
    if (stdin_ >= 0) (void)!::write(stdin_, s.data(), s.size());
  }
  void close_stdin() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
  }
  // True when the process has exited (status in `status`).
  bool poll_exit(int& status) {
    if (exited_) {
      status = status_;
      return true;
    }
    if (pid_ > 0 && ::waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    status = status_;
    return exited_;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int status_ = 0;
  bool exited_ = false;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Record {
  std::uint64_t session = 0;
  std::string identity;
  Message data;
};

class Recorder : public ListenerHandler {
 public:
  void on_session_open(const SessionInfo& s) override { opened.push_back(s); }
  bool on_data(const SessionInfo& s, std::span<const std::byte> data) override {
    records.push_back({s.id, s.tls_identity, Message(data.begin(), data.end())});
    return true;
  }
  void on_session_close(const SessionInfo& s, std::string_view reason) override {
    closed.emplace_back(s, std::string(reason));
  }
  std::vector<SessionInfo> opened;
  std::vector<Record> records;
  std::vector<std::pair<SessionInfo, std::string>> closed;
};

// A DTLS client driven by hand with memory BIOs, to look at the wire (cookie exchange).
class RawDtlsClient {
 public:
  RawDtlsClient() {
    ctx_ = SSL_CTX_new(DTLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    ssl_ = SSL_new(ctx_);
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rbio_, -1);
    SSL_set_bio(ssl_, rbio_, wbio_);
    SSL_set_options(ssl_, SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(ssl_, 1400);
    SSL_set_connect_state(ssl_);
  }
  ~RawDtlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  RawDtlsClient(const RawDtlsClient&) = delete;
  RawDtlsClient& operator=(const RawDtlsClient&) = delete;

  // Feeds one datagram from the server (if any), runs the handshake, returns what the
  // client wrote (its next flight, records back to back).
  [[nodiscard]] bool finished() const { return SSL_is_init_finished(ssl_) == 1; }
  // One application record (after the handshake).
  Message seal(const std::string& text) {
    (void)SSL_write(ssl_, text.data(), static_cast<int>(text.size()));
    ERR_clear_error();
    return take();
  }

  Message step(std::span<const std::byte> from_server = {}) {
    if (!from_server.empty())
      BIO_write(rbio_, from_server.data(), static_cast<int>(from_server.size()));
    (void)SSL_do_handshake(ssl_);
    ERR_clear_error();
    return take();
  }

 private:
  Message take() {
    Message out(static_cast<std::size_t>(BIO_ctrl_pending(wbio_)));
    if (!out.empty()) BIO_read(wbio_, out.data(), static_cast<int>(out.size()));
    return out;
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;
  BIO* wbio_ = nullptr;
};

// DTLS record/handshake type at the start of a datagram (RFC 6347 §4.1, §4.2.2).
int content_type(const Message& d) {
  return d.empty() ? -1 : std::to_integer<int>(d[0]);
}
int handshake_type(const Message& d) {
  return d.size() < 14 ? -1 : std::to_integer<int>(d[13]);
}
constexpr int kHandshake = 22;
constexpr int kServerHello = 2;
constexpr int kHelloVerifyRequest = 3;

class DtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(cert("ca.pem")))
        << "test certificates missing in " << FLOWSEC_TEST_CERTS
        << ": run scripts/make-test-certs.sh there (ctest does it via the test_certs fixture)";
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');  // parameterized names hold a '/'
    tmp_ = fs::temp_directory_path() / ("flowsec-dtls-" + std::to_string(::getpid()) + "-" + name);
    fs::create_directories(tmp_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }

  static TlsSettings server_tls(const std::string& name = "server") {
    TlsSettings t;
    t.cert_file = cert(name + ".pem");
    t.key_file = cert(name + ".key");
    return t;
  }
  static TlsSettings client_tls(const std::string& client_cert = {}) {
    TlsSettings t;
    t.ca_file = cert("ca.pem");
    if (!client_cert.empty()) {
      t.cert_file = cert(client_cert + ".pem");
      t.key_file = cert(client_cert + ".key");
    }
    return t;
  }

  std::unique_ptr<Listener> listen(const TlsSettings& tls, ListenerOptions o = {},
                                   const std::string& url = "dtls://127.0.0.1:0") {
    o.tls = tls;
    auto ep = parse_listen_endpoint(url);
    EXPECT_TRUE(ep) << (ep ? "" : ep.error());
    if (!ep) return nullptr;
    auto l = make_listener(io_, *ep, o, handler_);
    EXPECT_TRUE(l) << (l ? "" : l.error());
    return l ? std::move(*l) : nullptr;
  }

  std::unique_ptr<Sender> sender(std::uint16_t port, const TlsSettings& tls,
                                 const std::string& host = "127.0.0.1") {
    SenderOptions o;
    o.tls = tls;
    o.backoff_initial = 50ms;
    o.backoff_max = 200ms;
    o.connect_timeout = 3000ms;
    auto ep = parse_export_endpoint("dtls://" + host + ":" + std::to_string(port));
    EXPECT_TRUE(ep) << (ep ? "" : ep.error());
    if (!ep) return nullptr;
    auto s = make_sender(io_, *ep, o);
    EXPECT_TRUE(s) << (s ? "" : s.error());
    return s ? std::move(*s) : nullptr;
  }

  // Runs the io_context until pred() or the timeout; false on timeout.
  bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      io_.restart();
      if (io_.run_for(5ms) == 0) std::this_thread::sleep_for(1ms);
    }
    return true;
  }
  void run_for(std::chrono::milliseconds d) {
    (void)run_until([] { return false; }, d);
  }

  // Sends templates (hook) and `n` messages, shuts down, returns what the sender reported.
  std::optional<bool> shutdown(Sender& s, std::chrono::milliseconds timeout = 3000ms) {
    std::optional<bool> done;
    s.shutdown(timeout, [&](bool ok) { done = ok; });
    EXPECT_TRUE(run_until([&] { return done.has_value(); }, timeout + 2000ms));
    return done;
  }

  // The next datagram on `s` (non-blocking), running the io_context meanwhile; empty on
  // timeout.
  Message receive_one(udp::socket& s, std::chrono::milliseconds timeout = 3000ms) {
    Message in(65536);
    std::size_t n = 0;
    const bool got = run_until(
        [&] {
          asio::error_code ec;
          n = s.receive(asio::buffer(in), 0, ec);
          return !ec;
        },
        timeout);
    in.resize(got ? n : 0);
    return in;
  }

  // A whole DTLS handshake of a hand-driven client from socket `s`.
  bool raw_handshake(RawDtlsClient& c, udp::socket& s, const udp::endpoint& server) {
    s.send_to(asio::buffer(c.step()), server);
    while (!c.finished()) {
      const Message in = receive_one(s);
      if (in.empty()) return false;
      const Message out = c.step(in);
      if (!out.empty()) s.send_to(asio::buffer(out), server);
    }
    return true;
  }

  std::size_t refused(const Listener& l, TlsRefusal r) const {
    return l.stats().handshakes_refused[static_cast<std::size_t>(r)];
  }

  asio::io_context io_;
  Recorder handler_;
  fs::path tmp_;
};

// ---------------------------------------------------------------------------------------
// Against OpenSSL's own DTLS peer

TEST_F(DtlsTest, SenderDeliversExactRecordsToOpensslServer) {
  SKIP_WITHOUT_OPENSSL();
  const std::uint16_t port = free_udp_port();
  const fs::path out = tmp_ / "server.out";
  Child server("openssl s_server -dtls -accept 127.0.0.1:" + std::to_string(port) + " -cert " +
               cert("server.pem") + " -key " + cert("server.key") + " -quiet >" + out.string() +
               " 2>" + (tmp_ / "server.err").string());
  ASSERT_TRUE(server.started());

  auto s = sender(port, client_tls());
  ASSERT_NE(s, nullptr);
  const Message templates = text_message("TEMPLATES-FIRST");
  s->set_on_connect([&] { return std::vector<Message>{templates}; });
  std::string expected = as_text(templates);
  for (int i = 0; i < 30; ++i) {
    const Message m = make_message(i, 40 + static_cast<std::size_t>(i) * 45);  // up to 1345 B
    expected += as_text(m);
    s->send(m);
  }
  // s_server prints each record's plaintext as it arrives.
  const bool all = run_until([&] { return read_file(out).size() >= expected.size(); }, 10000ms);
  EXPECT_TRUE(all) << "s_server printed " << read_file(out).size() << " of " << expected.size()
                   << " bytes; its stderr: " << read_file(tmp_ / "server.err");
  EXPECT_EQ(read_file(out), expected);
  const auto st = s->stats();
  EXPECT_EQ(st.connects, 1u);
  EXPECT_EQ(st.messages_sent, 31u);
  EXPECT_EQ(st.messages_dropped, 0u);
  EXPECT_EQ(shutdown(*s), std::optional<bool>(true));
}

TEST_F(DtlsTest, SenderPresentsClientCertificateToOpensslServer) {
  SKIP_WITHOUT_OPENSSL();
  const std::uint16_t port = free_udp_port();
  const fs::path out = tmp_ / "server.out";
  // -Verify 1: the client must present a certificate that chains to ca.pem.
  Child server("openssl s_server -dtls -accept 127.0.0.1:" + std::to_string(port) + " -cert " +
               cert("server.pem") + " -key " + cert("server.key") + " -Verify 1 -CAfile " +
               cert("ca.pem") + " -verify_return_error -quiet >" + out.string() + " 2>" +
               (tmp_ / "server.err").string());
  ASSERT_TRUE(server.started());
  auto s = sender(port, client_tls("exporter1"), "localhost");
  ASSERT_NE(s, nullptr);
  s->send(text_message("mutual-dtls-1"));
  s->send(text_message("mutual-dtls-2"));
  EXPECT_TRUE(run_until([&] { return read_file(out).size() >= 26; }, 10000ms))
      << "s_server stderr: " << read_file(tmp_ / "server.err");
  EXPECT_EQ(read_file(out), "mutual-dtls-1mutual-dtls-2");
  EXPECT_EQ(shutdown(*s), std::optional<bool>(true));
}

TEST_F(DtlsTest, OpensslClientRecordsReachListener) {
  SKIP_WITHOUT_OPENSSL();
  auto l = listen(server_tls());
  ASSERT_NE(l, nullptr);
  Child client("openssl s_client -dtls -connect 127.0.0.1:" + std::to_string(l->local_port()) +
               " -CAfile " + cert("ca.pem") +
               " -verify_return_error -quiet -no_ign_eof -nocommands >" +
               (tmp_ / "client.out").string() + " 2>" + (tmp_ / "client.err").string());
  ASSERT_TRUE(client.started());
  ASSERT_TRUE(run_until([&] { return handler_.opened.size() == 1; }, 10000ms))
      << "s_client stderr: " << read_file(tmp_ / "client.err");
  // One line per stdin read, one read per record: each line must arrive as one message.
  const std::vector<std::string> lines = {"first ipfix message\n", "second, a bit longer one\n",
                                          "third\n"};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    client.write_stdin(lines[i]);
    ASSERT_TRUE(run_until([&] { return handler_.records.size() == i + 1; }, 5000ms))
        << "record " << i << " did not arrive";
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(as_text(handler_.records[i].data), lines[i]);
    EXPECT_EQ(handler_.records[i].session, handler_.opened[0].id);
  }
  EXPECT_EQ(handler_.opened[0].scheme, Scheme::dtls);
  EXPECT_EQ(handler_.opened[0].peer_address.to_string(), "127.0.0.1");
  EXPECT_TRUE(handler_.opened[0].tls_identity.empty());  // no client certificate asked
  client.close_stdin();  // s_client -no_ign_eof: EOF → close_notify
  ASSERT_TRUE(run_until([&] { return handler_.closed.size() == 1; }, 5000ms));
  EXPECT_NE(handler_.closed[0].second.find("close_notify"), std::string::npos)
      << handler_.closed[0].second;
  const auto st = l->stats();
  EXPECT_EQ(st.handshakes_ok, 1u);
  EXPECT_EQ(st.datagrams, 3u);
  EXPECT_EQ(st.sessions_active, 0u);
}

TEST_F(DtlsTest, OpensslClientIdentityWithMutualDtls) {
  SKIP_WITHOUT_OPENSSL();
  TlsSettings tls = server_tls();
  tls.ca_file = cert("ca.pem");  // collector --tls-ca: client certificates required
  auto l = listen(tls);
  ASSERT_NE(l, nullptr);
  const std::string port = std::to_string(l->local_port());
  {
    Child client("openssl s_client -dtls -connect 127.0.0.1:" + port + " -CAfile " +
                 cert("ca.pem") + " -cert " + cert("exporter1.pem") + " -key " +
                 cert("exporter1.key") + " -quiet -no_ign_eof -nocommands >/dev/null 2>" +
                 (tmp_ / "client.err").string());
    ASSERT_TRUE(run_until([&] { return handler_.opened.size() == 1; }, 10000ms))
        << "s_client stderr: " << read_file(tmp_ / "client.err");
    client.write_stdin("with identity\n");
    ASSERT_TRUE(run_until([&] { return handler_.records.size() == 1; }, 5000ms));
    EXPECT_EQ(handler_.records[0].identity, "CN=exporter1.flowsec.test");
    EXPECT_EQ(handler_.opened[0].tls_identity, "CN=exporter1.flowsec.test");
    client.close_stdin();
    ASSERT_TRUE(run_until([&] { return handler_.closed.size() == 1; }, 5000ms));
  }
  // The same without a client certificate: refused, counted with the reason.
  Child anonymous("openssl s_client -dtls -connect 127.0.0.1:" + port + " -CAfile " +
                  cert("ca.pem") + " -quiet -no_ign_eof -nocommands >/dev/null 2>/dev/null");
  EXPECT_TRUE(
      run_until([&] { return refused(*l, TlsRefusal::no_client_certificate) >= 1; }, 10000ms));
  EXPECT_EQ(handler_.opened.size(), 1u);
}

// ---------------------------------------------------------------------------------------
// Our sender and our listener

TEST_F(DtlsTest, SenderToListenerTemplatesFirstThenCloseNotify) {
  auto l = listen(server_tls());
  ASSERT_NE(l, nullptr);
  auto s = sender(l->local_port(), client_tls(), "localhost");  // DNS SAN path
  ASSERT_NE(s, nullptr);
  s->set_on_connect([] { return std::vector<Message>{text_message("T1"), text_message("T2")}; });
  std::vector<Message> sent;
  for (int i = 0; i < 50; ++i) {
    sent.push_back(make_message(i, 100 + static_cast<std::size_t>(i) * 26));  // up to 1374 B
    s->send(sent.back());
  }
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 52; }));
  EXPECT_EQ(as_text(handler_.records[0].data), "T1");
  EXPECT_EQ(as_text(handler_.records[1].data), "T2");
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(handler_.records[i + 2].data, sent[i]);
  ASSERT_EQ(handler_.opened.size(), 1u);
  EXPECT_TRUE(handler_.opened[0].tls_identity.empty());
  EXPECT_EQ(shutdown(*s), std::optional<bool>(true));
  ASSERT_TRUE(run_until([&] { return handler_.closed.size() == 1; }));
  EXPECT_NE(handler_.closed[0].second.find("close_notify"), std::string::npos)
      << handler_.closed[0].second;
  EXPECT_EQ(s->stats().messages_sent, 52u);
  EXPECT_EQ(l->stats().datagrams, 52u);
}

struct RefusalCase {
  const char* server_cert;
  TlsRefusal reason;
};

void PrintTo(const RefusalCase& c, std::ostream* os) {
  *os << c.server_cert;
}

class DtlsRefusalTest : public DtlsTest, public ::testing::WithParamInterface<RefusalCase> {};

// SPEC §3 exporter 1: refused, and the log line names which of these it was.
TEST_P(DtlsRefusalTest, SenderRefusesAndNamesTheReason) {
  auto l = listen(server_tls(GetParam().server_cert));
  ASSERT_NE(l, nullptr);
  ::testing::internal::CaptureStderr();
  auto s = sender(l->local_port(), client_tls());
  ASSERT_NE(s, nullptr);
  s->send(text_message("must not arrive"));
  const bool failed = run_until([&] { return s->stats().handshake_failures >= 1; });
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(failed);
  EXPECT_EQ(s->stats().connects, 0u);
  EXPECT_TRUE(handler_.records.empty());
  const std::string words(describe(GetParam().reason));
  EXPECT_NE(log.find("refused: " + words), std::string::npos) << "log was:\n" << log;
  EXPECT_EQ(s->stats().queue_messages, 1u);  // kept for a later, acceptable collector
}

// --tls-insecure: the same certificate is accepted (still encrypted).
TEST_P(DtlsRefusalTest, InsecureSenderAccepts) {
  auto l = listen(server_tls(GetParam().server_cert));
  ASSERT_NE(l, nullptr);
  TlsSettings tls;
  tls.insecure = true;
  auto s = sender(l->local_port(), tls);
  ASSERT_NE(s, nullptr);
  s->send(text_message("accepted anyway"));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 1; }));
  EXPECT_EQ(as_text(handler_.records[0].data), "accepted anyway");
  EXPECT_EQ(s->stats().handshake_failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(Certificates, DtlsRefusalTest,
                         ::testing::Values(RefusalCase{"not-yet-valid", TlsRefusal::not_yet_valid},
                                           RefusalCase{"self-signed", TlsRefusal::self_signed},
                                           RefusalCase{"ca2-server", TlsRefusal::unknown_ca},
                                           RefusalCase{"other-name", TlsRefusal::name_mismatch},
                                           // 127.0.0.1 dialled, only DNS:localhost in the
                                           // certificate: an IP literal needs an IP SAN.
                                           RefusalCase{"no-ip-san", TlsRefusal::name_mismatch}),
                         [](const auto& param_info) {
                           std::string n = param_info.param.server_cert;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST_F(DtlsTest, MutualDtlsNeedsClientCertificate) {
  TlsSettings tls = server_tls();
  tls.ca_file = cert("ca.pem");
  auto l = listen(tls);
  ASSERT_NE(l, nullptr);
  ::testing::internal::CaptureStderr();
  auto anonymous = sender(l->local_port(), client_tls());
  ASSERT_NE(anonymous, nullptr);
  anonymous->send(text_message("no certificate"));
  const bool refused_seen = run_until([&] {
    return refused(*l, TlsRefusal::no_client_certificate) >= 1 &&
           anonymous->stats().handshake_failures >= 1;  // the alert reached the sender
  });
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(refused_seen);
  EXPECT_NE(log.find("refused DTLS handshake from 127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find(std::string(describe(TlsRefusal::no_client_certificate))), std::string::npos)
      << log;
  EXPECT_GE(anonymous->stats().handshake_failures, 1u);
  anonymous.reset();

  auto foreign = sender(l->local_port(), [] {
    TlsSettings t;
    t.ca_file = cert("ca.pem");
    t.cert_file = cert("ca2-client.pem");  // same name as exporter1, untrusted CA
    t.key_file = cert("ca2-client.key");
    return t;
  }());
  ASSERT_NE(foreign, nullptr);
  foreign->send(text_message("wrong CA"));
  EXPECT_TRUE(run_until([&] { return refused(*l, TlsRefusal::unknown_ca) >= 1; }));
  foreign.reset();

  auto good = sender(l->local_port(), client_tls("exporter1"));
  ASSERT_NE(good, nullptr);
  good->send(text_message("authenticated"));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 1; }));
  EXPECT_EQ(handler_.records[0].identity, "CN=exporter1.flowsec.test");
  EXPECT_TRUE(handler_.closed.empty());  // refusals never opened a session
  EXPECT_EQ(l->stats().handshakes_ok, 1u);
}

TEST_F(DtlsTest, AllowListRefusesOtherExporters) {
  TlsSettings tls = server_tls();
  tls.ca_file = cert("ca.pem");
  tls.peers = {"exporter2.flowsec.test"};  // --tls-peer
  auto l = listen(tls);
  ASSERT_NE(l, nullptr);
  auto one = sender(l->local_port(), client_tls("exporter1"));
  ASSERT_NE(one, nullptr);
  one->send(text_message("from exporter1"));
  ASSERT_TRUE(run_until([&] { return refused(*l, TlsRefusal::not_on_allow_list) >= 1; }));
  one.reset();
  auto two = sender(l->local_port(), client_tls("exporter2"));
  ASSERT_NE(two, nullptr);
  two->send(text_message("from exporter2"));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 1; }));
  EXPECT_EQ(as_text(handler_.records[0].data), "from exporter2");
  EXPECT_EQ(handler_.records[0].identity, "CN=exporter2.flowsec.test");
  ASSERT_EQ(handler_.opened.size(), 1u);  // exporter1 never got a session
}

// RFC 6347 §4.2.1: a ClientHello without a cookie gets a HelloVerifyRequest and creates no
// state; the cookie is bound to the client's address and port; only the ClientHello that
// echoes it starts a session.
TEST_F(DtlsTest, CookieExchangeBeforeAnyState) {
  auto l = listen(server_tls());
  ASSERT_NE(l, nullptr);
  const udp::endpoint server(asio::ip::make_address("127.0.0.1"), l->local_port());
  udp::socket a(io_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  udp::socket b(io_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  a.non_blocking(true);
  b.non_blocking(true);
  auto exchange = [&](udp::socket& s, const Message& out) {
    s.send_to(asio::buffer(out), server);
    return receive_one(s);
  };

  RawDtlsClient client;
  const Message hello = client.step();
  ASSERT_EQ(content_type(hello), kHandshake);
  for (int i = 0; i < 3; ++i) {  // repeated: still no state
    const Message hvr = exchange(a, hello);
    EXPECT_EQ(content_type(hvr), kHandshake);
    EXPECT_EQ(handshake_type(hvr), kHelloVerifyRequest);
  }
  EXPECT_EQ(l->stats().sessions_accepted, 0u);
  EXPECT_EQ(l->stats().sessions_active, 0u);

  const Message hvr = exchange(a, hello);
  const Message hello_with_cookie = client.step(hvr);
  ASSERT_GT(hello_with_cookie.size(), hello.size());  // the cookie is echoed
  // From another port the cookie is wrong: another HelloVerifyRequest, no state.
  EXPECT_EQ(handshake_type(exchange(b, hello_with_cookie)), kHelloVerifyRequest);
  EXPECT_EQ(l->stats().sessions_accepted, 0u);
  // From the address it was made for: the server's flight starts with ServerHello.
  const Message flight = exchange(a, hello_with_cookie);
  EXPECT_EQ(handshake_type(flight), kServerHello);
  EXPECT_EQ(l->stats().sessions_accepted, 1u);
  EXPECT_EQ(l->stats().sessions_active, 1u);
  EXPECT_TRUE(handler_.opened.empty());  // the handshake is not finished
}

// SPEC §3.4: a handshake must finish in time; the half-open association is then dropped.
TEST_F(DtlsTest, HandshakeTimeoutDropsHalfOpenAssociation) {
  ListenerOptions o;
  o.handshake_timeout = 300ms;
  auto l = listen(server_tls(), o);
  ASSERT_NE(l, nullptr);
  const udp::endpoint server(asio::ip::make_address("127.0.0.1"), l->local_port());
  udp::socket a(io_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  a.non_blocking(true);
  RawDtlsClient client;
  a.send_to(asio::buffer(client.step()), server);
  const Message hvr = receive_one(a);
  ASSERT_EQ(handshake_type(hvr), kHelloVerifyRequest);
  a.send_to(asio::buffer(client.step(hvr)), server);
  ASSERT_TRUE(run_until([&] { return l->stats().sessions_active == 1; }));
  // The client goes silent.
  ASSERT_TRUE(run_until([&] { return refused(*l, TlsRefusal::handshake_timeout) == 1; }, 3000ms));
  EXPECT_EQ(l->stats().sessions_active, 0u);
  EXPECT_TRUE(handler_.opened.empty());
}

// Datagrams that are not DTLS, or not from the session's peer, never disturb it.
TEST_F(DtlsTest, GarbageDatagramsDoNotDisturbAnAssociation) {
  auto l = listen(server_tls());
  ASSERT_NE(l, nullptr);
  auto s = sender(l->local_port(), client_tls());
  ASSERT_NE(s, nullptr);
  s->send(text_message("before"));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 1; }));

  const udp::endpoint server(asio::ip::make_address("127.0.0.1"), l->local_port());
  udp::socket g(io_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string plaintext = "plaintext IPFIX, not DTLS";
  g.send_to(asio::buffer(plaintext), server);
  std::vector<std::uint8_t> junk(300);
  for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<std::uint8_t>(i * 13 + 5);
  g.send_to(asio::buffer(junk), server);
  // Looks like DTLS: application data in epoch 1, and a truncated ClientHello.
  std::vector<std::uint8_t> fake_record = {23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 9, 0, 40};
  fake_record.resize(13 + 40, 0xAA);
  g.send_to(asio::buffer(fake_record), server);
  std::vector<std::uint8_t> short_hello = {22, 0xFE, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 90, 1, 0};
  g.send_to(asio::buffer(short_hello), server);
  std::vector<std::uint8_t> empty;
  g.send_to(asio::buffer(empty), server);

  for (int i = 0; i < 20; ++i) s->send(make_message(i, 500));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 21; }));
  EXPECT_EQ(handler_.opened.size(), 1u);
  EXPECT_TRUE(handler_.closed.empty());
  EXPECT_EQ(l->stats().sessions_active, 1u);
  EXPECT_EQ(refused(*l, TlsRefusal::not_tls), 2u);  // the plaintext and the junk
  EXPECT_EQ(s->stats().connects, 1u);
}

TEST_F(DtlsTest, IdleSessionIsClosed) {
  ListenerOptions o;
  o.idle_timeout = 300ms;
  auto l = listen(server_tls(), o);
  ASSERT_NE(l, nullptr);
  auto s = sender(l->local_port(), client_tls());
  ASSERT_NE(s, nullptr);
  s->send(text_message("then silence"));
  ASSERT_TRUE(run_until([&] { return handler_.closed.size() >= 1; }, 3000ms));
  EXPECT_EQ(handler_.closed[0].second, "idle timeout");
  EXPECT_GE(l->stats().sessions_idle_closed, 1u);
}

TEST_F(DtlsTest, MaxSessionsCapsAssociations) {
  ListenerOptions o;
  o.max_sessions = 1;
  auto l = listen(server_tls(), o);
  ASSERT_NE(l, nullptr);
  auto one = sender(l->local_port(), client_tls());
  ASSERT_NE(one, nullptr);
  one->send(text_message("one"));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 1; }));
  auto two = sender(l->local_port(), client_tls());
  ASSERT_NE(two, nullptr);
  two->send(text_message("two"));
  ASSERT_TRUE(run_until([&] { return l->stats().sessions_refused_cap >= 1; }));
  run_for(100ms);
  EXPECT_EQ(handler_.opened.size(), 1u);
  EXPECT_EQ(handler_.records.size(), 1u);
  EXPECT_EQ(two->stats().connects, 0u);
}

// One message, one record, one datagram: a message that cannot fit is refused and counted.
TEST_F(DtlsTest, OversizeMessageIsRefusedAndCounted) {
  auto l = listen(server_tls());
  ASSERT_NE(l, nullptr);
  auto s = sender(l->local_port(), client_tls());
  ASSERT_NE(s, nullptr);
  s->send(make_message(1, 1400));  // SPEC §3 default --max-message-size: fits
  s->send(make_message(2, 3000));  // cannot be one record in a 1452-byte datagram
  s->send(make_message(3, 10));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 2; }));
  run_for(50ms);
  EXPECT_EQ(handler_.records.size(), 2u);
  EXPECT_EQ(handler_.records[0].data, make_message(1, 1400));
  EXPECT_EQ(handler_.records[1].data, make_message(3, 10));
  EXPECT_EQ(s->stats().messages_dropped, 1u);
  EXPECT_EQ(s->stats().bytes_dropped, 3000u);
}

// SPEC §4: queued while the collector is away, delivered after the (re)connection, with
// the templates first in every new session (RFC 7011 §8).
TEST_F(DtlsTest, ReconnectsWithTemplatesFirst) {
  const std::uint16_t port = free_udp_port();
  auto s = sender(port, client_tls());
  ASSERT_NE(s, nullptr);
  int hook_calls = 0;
  s->set_on_connect([&] {
    ++hook_calls;
    return std::vector<Message>{text_message("TEMPLATE")};
  });
  s->send(text_message("queued-1"));
  s->send(text_message("queued-2"));
  ASSERT_TRUE(run_until([&] { return s->stats().connect_failures >= 2; }));  // ICMP refused
  EXPECT_EQ(s->stats().queue_messages, 2u);

  auto l = listen(server_tls(), {}, "dtls://127.0.0.1:" + std::to_string(port));
  ASSERT_NE(l, nullptr);
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 3; }));
  EXPECT_EQ(as_text(handler_.records[0].data), "TEMPLATE");
  EXPECT_EQ(as_text(handler_.records[1].data), "queued-1");
  EXPECT_EQ(as_text(handler_.records[2].data), "queued-2");

  // The collector goes away (close_notify) and comes back: a new session, templates first.
  l.reset();
  handler_ = Recorder{};
  l = listen(server_tls(), {}, "dtls://127.0.0.1:" + std::to_string(port));
  ASSERT_NE(l, nullptr);
  ASSERT_TRUE(run_until([&] { return s->stats().connects == 2; }));
  s->send(text_message("after"));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 2; }));
  EXPECT_EQ(as_text(handler_.records[0].data), "TEMPLATE");
  EXPECT_EQ(as_text(handler_.records[1].data), "after");
  EXPECT_EQ(hook_calls, 2);
}

TEST_F(DtlsTest, ShutdownReportsUndelivered) {
  auto s = sender(free_udp_port(), client_tls());
  ASSERT_NE(s, nullptr);
  s->send(text_message("nobody listens"));
  ::testing::internal::CaptureStderr();
  const auto done = shutdown(*s, 300ms);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(done, std::optional<bool>(false));
  EXPECT_NE(log.find("1 messages not delivered"), std::string::npos) << log;
}

// SPEC §3 exporter 1 with OpenSSL's server presenting an expired certificate (our own
// listener refuses to start with one): refused as "certificate expired"; accepted with
// --tls-insecure, and the bytes arrive.
TEST_F(DtlsTest, ExpiredCertificateFromOpensslServer) {
  SKIP_WITHOUT_OPENSSL();
  const std::uint16_t port = free_udp_port();
  const fs::path out = tmp_ / "server.out";
  Child server("openssl s_server -dtls -accept 127.0.0.1:" + std::to_string(port) + " -cert " +
               cert("expired.pem") + " -key " + cert("expired.key") + " -quiet >" + out.string() +
               " 2>" + (tmp_ / "server.err").string());
  ASSERT_TRUE(server.started());
  {
    ::testing::internal::CaptureStderr();
    auto s = sender(port, client_tls());
    ASSERT_NE(s, nullptr);
    s->send(text_message("must not arrive"));
    const bool failed = run_until([&] { return s->stats().handshake_failures >= 1; }, 10000ms);
    const std::string log = ::testing::internal::GetCapturedStderr();
    ASSERT_TRUE(failed) << log;
    EXPECT_NE(log.find("refused: " + std::string(describe(TlsRefusal::expired))), std::string::npos)
        << log;
    EXPECT_EQ(s->stats().connects, 0u);
  }
  TlsSettings insecure;
  insecure.insecure = true;
  auto s = sender(port, insecure);
  ASSERT_NE(s, nullptr);
  s->send(text_message("insecure but encrypted"));
  EXPECT_TRUE(run_until([&] { return read_file(out).size() >= 22; }, 10000ms))
      << "s_server stderr: " << read_file(tmp_ / "server.err");
  EXPECT_EQ(read_file(out), "insecure but encrypted");
  EXPECT_EQ(shutdown(*s), std::optional<bool>(true));
}

// Garbage from the association's own address and port is discarded by DTLS (RFC 6347
// §4.1.2.7); a new ClientHello from that address, once its cookie checks out, replaces
// the association (RFC 6347 §4.2.8: the peer restarted with the same port).
TEST_F(DtlsTest, SamePeerGarbageAndRestart) {
  auto l = listen(server_tls());
  ASSERT_NE(l, nullptr);
  const udp::endpoint server(asio::ip::make_address("127.0.0.1"), l->local_port());
  udp::socket a(io_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  a.non_blocking(true);
  auto first = std::make_unique<RawDtlsClient>();
  ASSERT_TRUE(raw_handshake(*first, a, server));
  a.send_to(asio::buffer(first->seal("one")), server);
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 1; }));

  const std::string plaintext = "not a record";
  a.send_to(asio::buffer(plaintext), server);
  Message forged = first->seal("two");  // a valid record, then one byte changed: bad MAC
  forged.back() ^= std::byte{0x5A};
  a.send_to(asio::buffer(forged), server);
  std::vector<std::uint8_t> fake = {23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 99, 0, 30};
  fake.resize(13 + 30, 0x11);
  a.send_to(asio::buffer(fake), server);
  a.send_to(asio::buffer(first->seal("three")), server);
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 2; }));
  EXPECT_EQ(as_text(handler_.records[1].data), "three");
  EXPECT_TRUE(handler_.closed.empty());
  EXPECT_EQ(refused(*l, TlsRefusal::not_tls), 0u);  // it went to the association

  // The exporter restarts on the same port.
  RawDtlsClient second;
  ASSERT_TRUE(raw_handshake(second, a, server));
  ASSERT_TRUE(run_until([&] { return handler_.opened.size() == 2; }));
  ASSERT_EQ(handler_.closed.size(), 1u);
  EXPECT_EQ(handler_.closed[0].first.id, handler_.opened[0].id);
  EXPECT_EQ(handler_.closed[0].second, "the peer started a new DTLS session");
  a.send_to(asio::buffer(second.seal("four")), server);
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 3; }));
  EXPECT_EQ(handler_.records[2].session, handler_.opened[1].id);
  EXPECT_EQ(l->stats().sessions_active, 1u);
}

// SPEC §3.5: reload swaps the files for new sessions, established ones go on.
TEST_F(DtlsTest, ReloadKeepsEstablishedSessions) {
  auto l = listen(server_tls());
  ASSERT_NE(l, nullptr);
  auto one = sender(l->local_port(), client_tls());
  ASSERT_NE(one, nullptr);
  one->send(text_message("before reload"));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 1; }));
  ASSERT_TRUE(l->reload_tls());
  one->send(text_message("after reload"));
  auto two = sender(l->local_port(), client_tls());
  ASSERT_NE(two, nullptr);
  two->send(text_message("new session"));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 3; }));
  EXPECT_EQ(handler_.opened.size(), 2u);
  EXPECT_TRUE(handler_.closed.empty());
  EXPECT_EQ(one->stats().connects, 1u);
}

// Listening on all addresses: one dual-stack socket; IPv4 exporters are reported as IPv4
// (not ::ffff:127.0.0.1), IPv6 ones as IPv6.
TEST_F(DtlsTest, DualStackListenerOnAllAddresses) {
  auto l = listen(server_tls(), {}, "dtls://0");
  ASSERT_NE(l, nullptr);
  auto v4 = sender(l->local_port(), client_tls());
  ASSERT_NE(v4, nullptr);
  v4->send(text_message("over IPv4"));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 1; }));
  ASSERT_EQ(handler_.opened.size(), 1u);
  EXPECT_EQ(handler_.opened[0].peer_address.to_string(), "127.0.0.1");
  asio::io_context probe;
  asio::error_code ec;
  udp::socket s6(probe);
  s6.open(udp::v6(), ec);
  if (!ec) s6.bind(udp::endpoint(asio::ip::make_address("::1"), 0), ec);
  if (ec) {
    std::fprintf(stderr, "NOTE: no IPv6 loopback here (%s); the IPv6 half was not run\n",
                 ec.message().c_str());
    return;
  }
  auto v6 = sender(l->local_port(), client_tls(), "[::1]");  // IP:::1 in the certificate
  ASSERT_NE(v6, nullptr);
  v6->send(text_message("over IPv6"));
  ASSERT_TRUE(run_until([&] { return handler_.records.size() == 2; }));
  ASSERT_EQ(handler_.opened.size(), 2u);
  EXPECT_EQ(handler_.opened[1].peer_address.to_string(), "::1");
  EXPECT_TRUE(handler_.opened[1].peer_address.is_v6());
}

TEST_F(DtlsTest, StartupErrorsNameTheFile) {
  TlsSettings tls;
  tls.cert_file = cert("missing.pem");
  tls.key_file = cert("server.key");
  ListenerOptions o;
  o.tls = tls;
  auto ep = parse_listen_endpoint("dtls://127.0.0.1:0");
  ASSERT_TRUE(ep);
  auto l = make_listener(io_, *ep, o, handler_);
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().find("missing.pem"), std::string::npos) << l.error();
}

}  // namespace
}  // namespace flowsec::transport
