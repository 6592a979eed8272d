// Many listeners in one process (issue 3): udp, tcp, tls and dtls listeners
// share one io_context, each receives from its own sender, and every session
// is reported with its own scheme, peer and — for tls and dtls — the
// exporter's authenticated identity.
#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "transport/listener.hpp"
#include "transport/sender.hpp"

namespace flowsec::transport {
namespace {

using namespace std::chrono_literals;

struct Recorder : ListenerHandler {
  std::mutex mutex;
  std::map<Scheme, std::size_t> bytes;
  std::map<Scheme, std::string> identity;
  bool on_data(const SessionInfo& s, std::span<const std::byte> d) override {
    std::lock_guard lock(mutex);
    bytes[s.scheme] += d.size();
    identity[s.scheme] = s.tls_identity;
    return true;
  }
  std::size_t received(Scheme s) {
    std::lock_guard lock(mutex);
    return bytes[s];
  }
};

TEST(ManyListeners, FourTransportsInOneProcess) {
  const std::string certs = FLOWSEC_TEST_CERTS;
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread thread([&] { io.run(); });
  auto call = [&](auto fn) {
    std::packaged_task<void()> task(fn);
    auto f = task.get_future();
    asio::post(io, [&task] { task(); });
    f.get();
  };

  Recorder recorder;
  ListenerOptions lo;
  lo.tls.cert_file = certs + "/server.pem";
  lo.tls.key_file = certs + "/server.key";
  lo.tls.ca_file = certs + "/ca.pem";  // mutual TLS on the secure listeners
  SenderOptions so;
  so.tls.ca_file = certs + "/ca.pem";
  so.tls.cert_file = certs + "/exporter1.pem";
  so.tls.key_file = certs + "/exporter1.key";

  const Scheme schemes[] = {Scheme::udp, Scheme::tcp, Scheme::tls, Scheme::dtls};
  std::vector<std::unique_ptr<Listener>> listeners;
  std::vector<std::unique_ptr<Sender>> senders;
  call([&] {
    for (Scheme s : schemes) {
      auto l = make_listener(io, Endpoint{s, "127.0.0.1", 0, "listen"}, lo, recorder);
      ASSERT_TRUE(l) << l.error();
      auto snd = make_sender(io, Endpoint{s, "localhost", (*l)->local_port(), "export"}, so);
      ASSERT_TRUE(snd) << snd.error();
      listeners.push_back(std::move(*l));
      senders.push_back(std::move(*snd));
    }
    // Distinct sizes per transport so a mix-up would show.
    for (std::size_t i = 0; i < senders.size(); ++i) {
      for (int m = 0; m < 10; ++m) senders[i]->send(Message(100 + 10 * i, std::byte{7}));
    }
  });
  ASSERT_EQ(listeners.size(), 4u);
  const auto until = std::chrono::steady_clock::now() + 10s;
  auto all_arrived = [&] {
    for (std::size_t i = 0; i < 4; ++i) {
      if (recorder.received(schemes[i]) != 10 * (100 + 10 * i)) return false;
    }
    return true;
  };
  while (!all_arrived() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(recorder.received(schemes[i]), 10 * (100 + 10 * i)) << to_string(schemes[i]);
  }
  {
    std::lock_guard lock(recorder.mutex);
    EXPECT_EQ(recorder.identity[Scheme::tls], "CN=exporter1.flowsec.test");
    EXPECT_EQ(recorder.identity[Scheme::dtls], "CN=exporter1.flowsec.test");
    EXPECT_EQ(recorder.identity[Scheme::tcp], "");
    EXPECT_EQ(recorder.identity[Scheme::udp], "");
  }
  call([&] {
    senders.clear();
    for (auto& l : listeners) l->close();
    listeners.clear();
  });
  guard.reset();
  io.stop();
  thread.join();
}

}  // namespace
}  // namespace flowsec::transport
