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
// and kernel drop counting (SO_RXQ_OVFL), and reads paused while traffic flows. Certificates come
// from scripts/make-test-certs.sh (TLS cases skip loudly without them).
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

#include "support/transport_harness.hpp"
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

using namespace flowsec::test;

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

// Runs of messages of one size leave as UDP segmentation offload sends (udp.cpp). The
// collector must still see one datagram per message, whole and in order: a run cut by a
// shorter message, by a longer one, by the 64-segment limit and by the 65507-byte limit
// of one send, single messages between runs, and a burst larger than one sendmmsg(2).
TEST(UdpTransport, RunsOfOneSizeStillArriveAsOneDatagramPerMessage) {
  asio::io_context io;
  Recorder rec;
  auto listener = make_listener(io, ep(Scheme::udp, "127.0.0.1", 0), ListenerOptions{}, rec);
  ASSERT_TRUE(listener) << listener.error();
  auto sender =
      make_sender(io, ep(Scheme::udp, "127.0.0.1", (*listener)->local_port()), SenderOptions{});
  ASSERT_TRUE(sender) << sender.error();
  std::vector<Message> sent;
  auto run = [&](std::size_t count, std::size_t payload) {
    for (std::size_t i = 0; i < count; ++i) {
      sent.push_back(numbered(static_cast<std::uint32_t>(sent.size()), payload));
    }
  };
  run(100, 1372);  // 1388-byte messages, as the probe's default template fills them
  run(1, 600);     // a shorter one ends a run
  run(70, 1372);
  run(3, 1384);  // a longer one starts a new run
  run(1, 10);
  run(1, 1372);  // alone between two sizes
  run(1, 20);
  run(130, 1984);  // 33 of 2000 bytes fill one send's 65507 bytes
  run(200, 84);    // 100-byte messages: 64 per send at most
  for (const auto& m : sent) (*sender)->send(m);
  ASSERT_TRUE(run_until(io, [&] { return (*listener)->stats().datagrams == sent.size(); }))
      << (*listener)->stats().datagrams << " datagrams of " << sent.size();
  run_for(io, 20ms);  // nothing more arrives: a message cut in two would show here
  EXPECT_EQ((*listener)->stats().datagrams, sent.size());
  EXPECT_EQ((*sender)->stats().messages_sent, sent.size());
  EXPECT_EQ((*sender)->stats().messages_dropped, 0u);
  ASSERT_EQ(rec.opened(), 1u);
  const auto& chunks = rec.sessions.begin()->second.chunks;
  ASSERT_EQ(chunks.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) ASSERT_EQ(chunks[i], sent[i]) << "message " << i;
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

// While datagrams keep coming the listener reads every 5 ms with its socket out of the
// reactor, and puts it back when a read finds nothing (udp.cpp, on_readable). Every
// datagram must arrive, in order, through steady traffic, after idle gaps (back in the
// reactor) and when the listener closes in the middle of a pause.
TEST(UdpTransport, EveryDatagramArrivesAcrossReadPausesAndIdleGaps) {
  asio::io_context io;
  Recorder rec;
  auto listener = make_listener(io, ep(Scheme::udp, "127.0.0.1", 0), ListenerOptions{}, rec);
  ASSERT_TRUE(listener) << listener.error();
  asio::ip::udp::socket raw(io, asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), 0));
  const asio::ip::udp::endpoint target(asio::ip::address_v4::loopback(), (*listener)->local_port());
  std::uint32_t sent = 0;
  auto burst = [&](std::uint32_t n) {
    for (std::uint32_t i = 0; i < n; ++i, ++sent) raw.send_to(asio::buffer(numbered(sent)), target);
  };
  auto received = [&] { return (*listener)->stats().datagrams; };
  // Steady traffic: bursts closer together than the pause.
  for (int round = 0; round < 30; ++round) {
    burst(10);
    run_for(io, 1ms);
  }
  ASSERT_TRUE(run_until(io, [&] { return received() == sent; })) << received() << " of " << sent;
  // Idle longer than a pause: the next read finds nothing and the socket goes back to
  // the reactor, which must wake the listener for a single datagram.
  for (int gap = 0; gap < 3; ++gap) {
    run_for(io, 20ms);
    burst(1);
    ASSERT_TRUE(run_until(io, [&] { return received() == sent; })) << "after idle gap " << gap;
  }
  // Close during a pause: what the kernel holds is still delivered.
  burst(5);
  run_for(io, 1ms);  // read, then paused
  burst(7);
  (*listener)->close();
  EXPECT_EQ(received(), sent);
  ASSERT_EQ(rec.opened(), 1u);
  const auto& chunks = rec.sessions.begin()->second.chunks;
  ASSERT_EQ(chunks.size(), sent);
  for (std::uint32_t i = 0; i < sent; ++i) ASSERT_EQ(chunks[i], numbered(i)) << "datagram " << i;
  EXPECT_EQ(rec.closed_count(), 1u);
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
