// SIGHUP reloads the TLS listener's certificate for new sessions while an
// established session keeps flowing (SPEC §3.5). A real signal is raised in
// the test process; asio::signal_set delivers it on the io_context thread.
//
// Proof that the new file is in use: after the reload the listener presents
// a certificate without an IP subjectAltName, so a new exporter dialling the
// IP literal 127.0.0.1 is refused (name mismatch), while the session opened
// before the reload still delivers its messages.
#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <future>
#include <thread>

#include "support/temp_dir.hpp"
#include "support/transport_harness.hpp"
#include "transport/listener.hpp"
#include "transport/sender.hpp"
#include "transport/sighup.hpp"

namespace flowsec::transport {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Counting : ListenerHandler {
  std::atomic<std::uint64_t> bytes{0};
  bool on_data(const SessionInfo&, std::span<const std::byte> d) override {
    bytes += d.size();
    return true;
  }
};

using test::eventually;
using test::Loop;

TEST(Sighup, ReloadsTheListenerCertificateWithoutDroppingSessions) {
  const fs::path certs = FLOWSEC_TEST_CERTS;
  const test::TempDir tmp("sighup");
  const fs::path dir = tmp.path();
  fs::copy_file(certs / "server.pem", dir / "cur.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(certs / "server.key", dir / "cur.key", fs::copy_options::overwrite_existing);

  Loop loop;
  Counting handler;
  ListenerOptions lo;
  lo.tls.cert_file = (dir / "cur.pem").string();
  lo.tls.key_file = (dir / "cur.key").string();
  std::unique_ptr<Listener> listener;
  std::unique_ptr<SighupReloader> reloader;
  std::unique_ptr<Sender> before, after;
  SenderOptions so;
  so.tls.ca_file = (certs / "ca.pem").string();
  so.backoff_initial = 100ms;
  so.backoff_max = 200ms;
  loop.call([&] {
    listener = std::move(*make_listener(
        loop.io, Endpoint{Scheme::tls, "127.0.0.1", 0, "tls://127.0.0.1:0"}, lo, handler));
    reloader = std::make_unique<SighupReloader>(loop.io, std::vector<Listener*>{listener.get()});
    auto s =
        make_sender(loop.io, Endpoint{Scheme::tls, "127.0.0.1", listener->local_port(), "a"}, so);
    before = std::move(*s);
    before->send(Message(100, std::byte{1}));
    return 0;
  });
  ASSERT_TRUE(eventually([&] { return handler.bytes.load() == 100; }));

  // Swap in a certificate that has no IP subjectAltName, then SIGHUP.
  fs::copy_file(certs / "no-ip-san.pem", dir / "cur.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(certs / "no-ip-san.key", dir / "cur.key", fs::copy_options::overwrite_existing);
  ASSERT_EQ(::raise(SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return loop.call([&] { return reloader->reloads(); }) == 1; }));
  EXPECT_EQ(loop.call([&] { return reloader->failures(); }), 0u);

  // A new session sees the new certificate: 127.0.0.1 is not in it.
  loop.call([&] {
    after = std::move(
        *make_sender(loop.io, Endpoint{Scheme::tls, "127.0.0.1", listener->local_port(), "b"}, so));
    after->send(Message(50, std::byte{2}));
    return 0;
  });
  EXPECT_TRUE(
      eventually([&] { return loop.call([&] { return after->stats().handshake_failures; }) > 0; }));
  EXPECT_EQ(loop.call([&] { return after->stats().messages_sent; }), 0u);

  // The session opened before the reload still carries data.
  loop.call([&] {
    before->send(Message(200, std::byte{3}));
    return 0;
  });
  EXPECT_TRUE(eventually([&] { return handler.bytes.load() == 300; }));
  EXPECT_TRUE(loop.call([&] { return before->stats().connected; }));

  // A reload that fails keeps the material in use.
  fs::remove(dir / "cur.key");
  ASSERT_EQ(::raise(SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return loop.call([&] { return reloader->failures(); }) == 1; }));

  loop.call([&] {
    reloader->stop();
    before.reset();
    after.reset();
    listener->close();
    listener.reset();
    return 0;
  });
}

}  // namespace
}  // namespace flowsec::transport
