// Integration: TLS transport against real peers over loopback (SPEC §3).
//
// Peers: `openssl s_server` (receives what our TLS sender sends; -quiet writes the
// decrypted bytes to stdout, compared byte for byte), `openssl s_client` (sends an
// IPFIX file to our TLS listener), and our own sender and listener. Checks the
// certificate rules of SPEC §3 end to end (expired, not yet valid, self-signed,
// unknown CA, wrong name, IP literal without IP SAN; --tls-insecure; mutual TLS with
// missing, foreign and not-allowed client certificates), that hostile or broken
// clients (plaintext, half a handshake, silence) touch no other session, and that a
// reload (SIGHUP) changes the certificate for new sessions only. Certificates come
// from scripts/make-test-certs.sh; the IPFIX stream from tests/data/ipfix (README).
// Skips loudly when the certificates or the openssl command are missing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/transport_harness.hpp"
#include "transport/listener.hpp"
#include "transport/sender.hpp"
#include "transport/tls.hpp"

namespace flowsec::transport {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

using namespace flowsec::test;

SenderOptions fast_sender() {
  SenderOptions o;
  o.backoff_initial = 20ms;
  o.backoff_max = 100ms;
  o.connect_timeout = 2s;
  return o;
}

ListenerOptions tls_listener_options(const std::string& name = "server") {
  ListenerOptions o;
  o.tls.cert_file = cert(name + ".pem");
  o.tls.key_file = cert(name + ".key");
  return o;
}

std::size_t refused(const ListenerStats& s, TlsRefusal r) {
  return s.handshakes_refused[static_cast<std::size_t>(r)];
}

std::vector<std::string> s_server_argv(std::uint16_t port, const std::string& name, bool mutual) {
  std::vector<std::string> argv = {
      "openssl", "s_server",          "-accept", "127.0.0.1:" + std::to_string(port),
      "-cert",   cert(name + ".pem"), "-key",    cert(name + ".key"),
      "-quiet"};
  if (mutual) {
    for (const char* a : {"-Verify", "1", "-CAfile"}) argv.emplace_back(a);
    argv.push_back(cert("ca.pem"));
  }
  return argv;
}

// --- our sender → openssl s_server: the exact bytes arrive --------------------------

void sender_to_s_server(bool mutual) {
  const auto port = free_port();
  const TempDir tmp(mutual ? "s_server_mutual" : "s_server");
  const std::string& dir = tmp.path();
  Child server(s_server_argv(port, "server", mutual), "", dir + "/out.bin", dir + "/err.txt");
  ASSERT_TRUE(wait_listening(port)) << "openssl s_server did not start";

  asio::io_context io;
  SenderOptions o = fast_sender();
  o.tls.ca_file = cert("ca.pem");
  if (mutual) {
    o.tls.cert_file = cert("exporter1.pem");
    o.tls.key_file = cert("exporter1.key");
  }
  auto sender = make_sender(io, ep(Scheme::tls, "localhost", port), o);
  ASSERT_TRUE(sender) << sender.error();

  const auto file = read_file(data_file("ipfix/softflowd_1kxun_tcp.ipfix"));
  const auto messages = split_messages(file);
  ASSERT_EQ(messages.size(), 10u);
  for (const auto& m : messages) (*sender)->send(m);
  std::optional<bool> done;
  (*sender)->shutdown(5s, [&](bool ok) { done = ok; });
  ASSERT_TRUE(run_until(
      io, [&] { return done.has_value(); }, 8s));
  EXPECT_TRUE(*done);
  const auto st = (*sender)->stats();
  EXPECT_EQ(st.messages_sent, 10u);
  EXPECT_EQ(st.bytes_sent, file.size());
  EXPECT_EQ(st.connects, 1u);
  EXPECT_EQ(st.handshake_failures, 0u);
  EXPECT_EQ(st.messages_dropped, 0u);

  // s_server writes what it decrypts as it arrives.
  const auto deadline = Clock::now() + 3s;
  while (Clock::now() < deadline && std::filesystem::file_size(dir + "/out.bin") < file.size()) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(read_file(dir + "/out.bin"), file) << "s_server stderr: " << [&] {
    auto e = read_file(dir + "/err.txt");
    return std::string(reinterpret_cast<const char*>(e.data()), e.size());
  }();
}

TEST(TlsPeers, SenderDeliversExactBytesToOpensslServer) {
  REQUIRE_OPENSSL();
  sender_to_s_server(false);
}

TEST(TlsPeers, SenderWithClientCertificateToOpensslServerRequiringOne) {
  REQUIRE_OPENSSL();
  sender_to_s_server(true);
}

// --- openssl s_client → our listener: the file's bytes, the client's identity -------

void s_client_to_listener(bool mutual) {
  asio::io_context io;
  Recorder rec;
  ListenerOptions lo = tls_listener_options();
  if (mutual) lo.tls.ca_file = cert("ca.pem");
  auto listener = make_listener(io, ep(Scheme::tls, "127.0.0.1", 0), lo, rec);
  ASSERT_TRUE(listener) << listener.error();
  const auto port = (*listener)->local_port();
  const TempDir tmp(mutual ? "s_client_mutual" : "s_client");
  const std::string& dir = tmp.path();
  const auto input = data_file("ipfix/softflowd_1kxun_tcp.ipfix");
  std::vector<std::string> argv = {
      "openssl", "s_client",    "-connect", "127.0.0.1:" + std::to_string(port),
      "-quiet",  "-no_ign_eof", "-CAfile",  cert("ca.pem")};
  if (mutual) {
    for (const std::string& a : {std::string("-cert"), cert("exporter1.pem"), std::string("-key"),
                                 cert("exporter1.key")}) {
      argv.push_back(a);
    }
  }
  Child client(argv, input, dir + "/out.txt", dir + "/err.txt");
  ASSERT_TRUE(run_until(
      io, [&] { return rec.closed_count() == 1 && client.exited(); }, 10s))
      << "sessions closed: " << rec.closed_count();
  int status = 0;
  client.exited(&status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  ASSERT_EQ(rec.opened(), 1u);
  const auto& s = rec.sessions.begin()->second;
  EXPECT_EQ(s.bytes, read_file(input));
  EXPECT_EQ(s.info.scheme, Scheme::tls);
  EXPECT_EQ(s.info.peer_address.to_string(), "127.0.0.1");
  EXPECT_EQ(s.info.tls_identity, mutual ? "CN=exporter1.flowsec.test" : "");
  EXPECT_EQ(s.close_reason, "closed by peer");  // s_client sends close_notify at EOF
  const auto st = (*listener)->stats();
  EXPECT_EQ(st.handshakes_ok, 1u);
  EXPECT_EQ(st.sessions_accepted, 1u);
  EXPECT_EQ(st.bytes, read_file(input).size());
}

TEST(TlsPeers, OpensslClientToListener) {
  REQUIRE_OPENSSL();
  s_client_to_listener(false);
}

TEST(TlsPeers, OpensslClientWithCertificateToMutualTlsListener) {
  REQUIRE_OPENSSL();
  s_client_to_listener(true);
}

// --- exporter side certificate rules (SPEC §3 exporter 1, 2) ------------------------

struct ServerCase {
  const char* what;
  const char* cert;  // the collector's certificate
  const char* host;  // what the exporter dials
  std::optional<TlsRefusal> refusal;
  bool s_server;  // our listener will not load an expired certificate
};

struct Outcome {
  SenderStats stats;
  bool delivered = false;
  std::string log;
};

Outcome sender_against(const ServerCase& c, bool insecure) {
  Outcome out;
  asio::io_context io;
  Recorder rec;
  std::unique_ptr<Listener> listener;
  std::optional<TempDir> tmp;  // declared before the server, which writes into it
  std::unique_ptr<Child> server;
  std::string dir;
  std::uint16_t port = 0;
  if (c.s_server) {
    port = free_port();
    tmp.emplace(std::string("case-") + c.cert);
    dir = tmp->path();
    server = std::make_unique<Child>(s_server_argv(port, c.cert, false), "", dir + "/out.bin",
                                     dir + "/err.txt");
    if (!wait_listening(port)) {
      ADD_FAILURE() << "openssl s_server did not start";
      return out;
    }
  } else {
    auto l = make_listener(io, ep(Scheme::tls, "", 0), tls_listener_options(c.cert), rec);
    if (!l) {
      ADD_FAILURE() << l.error();
      return out;
    }
    listener = std::move(*l);
    port = listener->local_port();
  }
  SenderOptions o = fast_sender();
  o.tls.ca_file = cert("ca.pem");
  o.tls.insecure = insecure;
  testing::internal::CaptureStderr();
  {
    auto sender = make_sender(io, ep(Scheme::tls, c.host, port), o);
    if (!sender) {
      out.log = testing::internal::GetCapturedStderr();
      ADD_FAILURE() << sender.error();
      return out;
    }
    (*sender)->send(numbered(7));
    auto delivered = [&] {
      if (c.s_server) return std::filesystem::file_size(dir + "/out.bin") >= numbered(7).size();
      return rec.total_bytes() >= numbered(7).size();
    };
    run_until(
        io, [&] { return delivered() || (*sender)->stats().handshake_failures >= 3; }, 5s);
    out.delivered = delivered();
    // A session counts as made once the peer had time to refuse it (about 500 ms).
    if (out.delivered)
      run_until(
          io, [&] { return (*sender)->stats().connects >= 1; }, 3s);
    out.stats = (*sender)->stats();
  }
  out.log = testing::internal::GetCapturedStderr();
  return out;
}

TEST(TlsCertificates, ExporterChecksTheCollectorCertificate) {
  REQUIRE_OPENSSL();
  const std::vector<ServerCase> cases = {
      {"valid, by name", "server", "localhost", std::nullopt, false},
      {"valid, by IP SAN", "server", "127.0.0.1", std::nullopt, false},
      {"expired", "expired", "localhost", TlsRefusal::expired, true},
      {"not yet valid", "not-yet-valid", "localhost", TlsRefusal::not_yet_valid, false},
      {"self-signed", "self-signed", "localhost", TlsRefusal::self_signed, false},
      {"unknown CA", "ca2-server", "localhost", TlsRefusal::unknown_ca, false},
      {"wrong name", "other-name", "localhost", TlsRefusal::name_mismatch, false},
      {"IP literal, no IP SAN", "no-ip-san", "127.0.0.1", TlsRefusal::name_mismatch, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const Outcome strict = sender_against(c, false);
    if (!c.refusal) {
      EXPECT_TRUE(strict.delivered);
      EXPECT_EQ(strict.stats.connects, 1u);
      EXPECT_EQ(strict.stats.handshake_failures, 0u);
      continue;
    }
    EXPECT_FALSE(strict.delivered);
    EXPECT_EQ(strict.stats.connects, 0u);
    EXPECT_GE(strict.stats.handshake_failures, 3u);
    // Logged once (not once per attempt), naming the endpoint and the reason.
    const std::string line = "TLS handshake failed: " + std::string(describe(*c.refusal));
    EXPECT_EQ(count_of(strict.log, line), 1u) << strict.log;
    EXPECT_EQ(count_of(strict.log, "export to tls://" + std::string(c.host)), 1u) << strict.log;
    // The message waits; nothing is lost while the collector is refused.
    EXPECT_EQ(strict.stats.queue_messages, 1u);
    EXPECT_EQ(strict.stats.messages_dropped, 0u);

    // SPEC §3 exporter 2: --tls-insecure accepts it (and still encrypts).
    const Outcome lax = sender_against(c, true);
    EXPECT_TRUE(lax.delivered);
    EXPECT_EQ(lax.stats.connects, 1u);
    EXPECT_EQ(lax.stats.handshake_failures, 0u);
    EXPECT_NE(lax.log.find("--tls-insecure"), std::string::npos) << lax.log;
  }
}

// --- collector side: mutual TLS (SPEC §3 collector 2, RFC 7011 §11.3) --------------

struct ClientCase {
  const char* what;
  const char* client_cert;  // empty: none
  std::vector<std::string> allow;
  std::optional<TlsRefusal> refusal;
};

TEST(TlsCertificates, CollectorChecksTheExporterCertificate) {
  REQUIRE_CERTS();
  const std::vector<ClientCase> cases = {
      {"no client certificate", "", {}, TlsRefusal::no_client_certificate},
      {"client certificate from another CA", "ca2-client", {}, TlsRefusal::unknown_ca},
      {"valid but not on --tls-peer",
       "exporter1",
       {"exporter2.flowsec.test"},
       TlsRefusal::not_on_allow_list},
      {"valid and on --tls-peer", "exporter1", {"exporter1.flowsec.test"}, std::nullopt},
      {"valid, no --tls-peer", "exporter2", {}, std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    asio::io_context io;
    Recorder rec;
    ListenerOptions lo = tls_listener_options();
    lo.tls.ca_file = cert("ca.pem");
    lo.tls.peers = c.allow;
    testing::internal::CaptureStderr();
    auto listener = make_listener(io, ep(Scheme::tls, "127.0.0.1", 0), lo, rec);
    ASSERT_TRUE(listener) << listener.error() << testing::internal::GetCapturedStderr();
    SenderOptions so = fast_sender();
    so.tls.ca_file = cert("ca.pem");
    if (*c.client_cert != '\0') {
      so.tls.cert_file = cert(std::string(c.client_cert) + ".pem");
      so.tls.key_file = cert(std::string(c.client_cert) + ".key");
    }
    auto sender = make_sender(io, ep(Scheme::tls, "localhost", (*listener)->local_port()), so);
    ASSERT_TRUE(sender) << sender.error() << testing::internal::GetCapturedStderr();
    (*sender)->send(numbered(1));
    if (c.refusal) {
      const bool seen =
          run_until(io, [&] { return refused((*listener)->stats(), *c.refusal) >= 2; });
      const auto st = (*listener)->stats();
      const auto sst = (*sender)->stats();
      sender->reset();
      const std::string log = testing::internal::GetCapturedStderr();
      EXPECT_TRUE(seen) << log;
      EXPECT_EQ(st.handshakes_ok, 0u);
      EXPECT_EQ(rec.opened(), 0u);
      EXPECT_EQ(rec.total_bytes(), 0u);
      // Each refusal logged with the peer address and the reason.
      EXPECT_GE(count_of(log, "refused TLS session from 127.0.0.1:"), 2u) << log;
      EXPECT_GE(count_of(log, ": " + std::string(describe(*c.refusal))), 2u) << log;
      // The exporter keeps its message for later (resent, never lost).
      EXPECT_EQ(sst.messages_dropped, 0u);
      EXPECT_GE(sst.messages_resent, 1u);
      // TLS 1.3: the exporter finished its handshake before the collector refused; it
      // counts a failed attempt (logged once), not a connection.
      EXPECT_GE(sst.handshake_failures, 1u);
      EXPECT_EQ(sst.connects, 0u);
      EXPECT_GE(count_of(log, "export to tls://localhost:"), 1u) << log;
      EXPECT_LE(count_of(log, "export to tls://localhost:"), 2u) << log;  // not once per try
    } else {
      const bool got = run_until(io, [&] { return rec.total_bytes() >= numbered(1).size(); });
      testing::internal::GetCapturedStderr();
      ASSERT_TRUE(got);
      ASSERT_EQ(rec.opened(), 1u);
      EXPECT_EQ(rec.sessions.begin()->second.info.tls_identity,
                "CN=" + std::string(c.client_cert) + ".flowsec.test");
      EXPECT_EQ(rec.sessions.begin()->second.bytes, numbered(1));
      EXPECT_EQ((*listener)->stats().handshakes_ok, 1u);
    }
  }
}

// --- hostile clients touch no other session (SPEC §3 collector 2, 4) ---------------

TEST(TlsListener, PlaintextHalfHandshakeAndSilenceAffectNoOtherSession) {
  REQUIRE_CERTS();
  asio::io_context io;
  Recorder rec;
  ListenerOptions lo = tls_listener_options();
  lo.handshake_timeout = 300ms;
  testing::internal::CaptureStderr();
  auto listener = make_listener(io, ep(Scheme::tls, "127.0.0.1", 0), lo, rec);
  ASSERT_TRUE(listener) << listener.error();
  const auto port = (*listener)->local_port();
  const tcp::endpoint target(asio::ip::address_v4::loopback(), port);

  // A good exporter starts first and keeps sending throughout.
  auto sender = make_sender(io, ep(Scheme::tls, "localhost", port), [] {
    SenderOptions o = fast_sender();
    o.tls.ca_file = cert("ca.pem");
    return o;
  }());
  ASSERT_TRUE(sender) << sender.error();
  std::uint32_t next = 0;
  auto send_some = [&] {
    for (int i = 0; i < 10; ++i) (*sender)->send(numbered(next++));
  };
  send_some();
  ASSERT_TRUE(run_until(io, [&] { return rec.opened() == 1; }));

  // Plaintext IPFIX on the TLS port.
  tcp::socket plain(io);
  plain.connect(target);
  const auto ipfix = read_file(data_file("ipfix/softflowd_1kxun_tcp.ipfix"));
  asio::write(plain, asio::buffer(ipfix.data(), 200));
  // Half a ClientHello (record and handshake headers announce far more), then nothing.
  tcp::socket half(io);
  half.connect(target);
  const std::uint8_t partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc,
                                  0x03, 0x03, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
  asio::write(half, asio::buffer(partial));
  // Connects and says nothing.
  tcp::socket silent(io);
  silent.connect(target);

  const auto t0 = Clock::now();
  const bool all = run_until(io, [&] {
    send_some();
    const auto st = (*listener)->stats();
    return refused(st, TlsRefusal::not_tls) == 1 && refused(st, TlsRefusal::handshake_timeout) == 2;
  });
  const auto took = Clock::now() - t0;
  send_some();
  // The good session went on the whole time, in order, on one session.
  ASSERT_TRUE(run_until(io, [&] {
    return rec.total_bytes() == static_cast<std::size_t>(next) * numbered(0).size();
  }));
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(all) << log;
  EXPECT_GE(took, 250ms);  // the timeouts waited for handshake_timeout
  EXPECT_EQ(rec.opened(), 1u);
  std::vector<Parsed> got;
  ASSERT_TRUE(parse_stream(rec.sessions.begin()->second.bytes, got));
  ASSERT_EQ(got.size(), next);
  for (std::uint32_t i = 0; i < next; ++i) EXPECT_EQ(got[i].seq, i);
  EXPECT_TRUE(run_until(io, [&] { return (*sender)->stats().connects == 1; }));
  EXPECT_EQ(count_of(log, ": not TLS"), 1u) << log;
  EXPECT_EQ(count_of(log, ": handshake timeout"), 2u) << log;
  EXPECT_NE(log.find("refused TLS session from 127.0.0.1:" +
                     std::to_string(plain.local_endpoint().port()) + ": not TLS"),
            std::string::npos)
      << log;

  // ... and the listener still accepts.
  auto second = make_sender(io, ep(Scheme::tls, "localhost", port), [] {
    SenderOptions o = fast_sender();
    o.tls.ca_file = cert("ca.pem");
    return o;
  }());
  ASSERT_TRUE(second);
  (*second)->send(numbered(1000));
  EXPECT_TRUE(run_until(io, [&] { return rec.opened() == 2; }));
  EXPECT_EQ((*listener)->stats().handshakes_ok, 2u);
}

// --- SIGHUP: new files for new sessions, established ones stay (SPEC §3 collector 5) -

TEST(TlsListener, ReloadChangesTheCertificateForNewSessionsOnly) {
  REQUIRE_CERTS();
  const TempDir tmp("reload");
  const std::string& dir = tmp.path();
  const auto copy = [&](const std::string& name) {
    std::filesystem::copy_file(cert(name + ".pem"), dir + "/cert.pem",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(cert(name + ".key"), dir + "/key.pem",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::permissions(
        dir + "/key.pem", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  };
  copy("server");
  asio::io_context io;
  Recorder rec;
  ListenerOptions lo;
  lo.tls.cert_file = dir + "/cert.pem";
  lo.tls.key_file = dir + "/key.pem";
  auto listener = make_listener(io, ep(Scheme::tls, "127.0.0.1", 0), lo, rec);
  ASSERT_TRUE(listener) << listener.error();
  const auto port = (*listener)->local_port();
  SenderOptions so = fast_sender();
  so.tls.ca_file = cert("ca.pem");
  auto established = make_sender(io, ep(Scheme::tls, "localhost", port), so);
  ASSERT_TRUE(established);
  (*established)->send(numbered(0));
  ASSERT_TRUE(run_until(io, [&] { return rec.total_bytes() == numbered(0).size(); }));

  // Swap in a certificate for another name and reload.
  copy("other-name");
  testing::internal::CaptureStderr();
  ASSERT_TRUE((*listener)->reload_tls());

  // The established session carries on.
  (*established)->send(numbered(1));
  ASSERT_TRUE(run_until(io, [&] { return rec.total_bytes() == 2 * numbered(0).size(); }));
  EXPECT_EQ(rec.opened(), 1u);
  EXPECT_EQ(rec.closed_count(), 0u);
  EXPECT_TRUE(run_until(io, [&] { return (*established)->stats().connects == 1; }));
  EXPECT_EQ((*established)->stats().handshake_failures, 0u);

  // A new session gets the new certificate: it names other.example, not localhost.
  auto fresh = make_sender(io, ep(Scheme::tls, "localhost", port), so);
  ASSERT_TRUE(fresh);
  (*fresh)->send(numbered(2));
  EXPECT_TRUE(run_until(io, [&] { return (*fresh)->stats().handshake_failures >= 1; }));
  EXPECT_EQ((*fresh)->stats().connects, 0u);
  // A reload that fails keeps the current context and names the file.
  std::filesystem::remove(dir + "/key.pem");
  const auto bad = (*listener)->reload_tls();
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("name mismatch"), std::string::npos) << log;
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("key.pem"), std::string::npos) << bad.error();
  SenderOptions other = so;
  other.tls.insecure = true;
  auto third = make_sender(io, ep(Scheme::tls, "localhost", port), other);
  ASSERT_TRUE(third);
  (*third)->send(numbered(3));
  EXPECT_TRUE(run_until(io, [&] { return rec.opened() == 2; }));
}

// --- clean close: shutdown() ends with close_notify (SPEC §4) ----------------------

TEST(TlsSender, ShutdownDeliversEverythingAndSendsCloseNotify) {
  REQUIRE_CERTS();
  asio::io_context io;
  Recorder rec;
  auto listener = make_listener(io, ep(Scheme::tls, "127.0.0.1", 0), tls_listener_options(), rec);
  ASSERT_TRUE(listener) << listener.error();
  SenderOptions so = fast_sender();
  so.tls.ca_file = cert("ca.pem");
  auto sender = make_sender(io, ep(Scheme::tls, "127.0.0.1", (*listener)->local_port()), so);
  ASSERT_TRUE(sender);
  (*sender)->set_on_connect([] { return std::vector<Message>{numbered(0, 16, 0xffff)}; });
  constexpr std::uint32_t kCount = 5000;
  for (std::uint32_t i = 0; i < kCount; ++i) (*sender)->send(numbered(i, 16 + i % 200));
  std::optional<bool> done;
  (*sender)->shutdown(5s, [&](bool ok) { done = ok; });
  ASSERT_TRUE(run_until(io, [&] { return done.has_value() && rec.closed_count() == 1; }));
  EXPECT_TRUE(*done);
  const auto& s = rec.sessions.begin()->second;
  EXPECT_EQ(s.close_reason, "closed by peer");  // not "without TLS close_notify"
  std::vector<Parsed> got;
  ASSERT_TRUE(parse_stream(s.bytes, got));
  ASSERT_EQ(got.size(), kCount + 1);
  EXPECT_EQ(got[0].domain, 0xffffu);  // the template first (RFC 7011 §8)
  for (std::uint32_t i = 0; i < kCount; ++i) EXPECT_EQ(got[i + 1].seq, i);
  EXPECT_EQ((*sender)->stats().messages_sent, kCount + 1);
}

}  // namespace
}  // namespace flowsec::transport
