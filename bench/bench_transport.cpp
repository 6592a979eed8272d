// Transport throughput on loopback (issue 3): 1 KB messages over udp, tcp, tls
// and dtls from our sender to our listener, and TLS handshakes per second.
// Target (SPEC §8): TLS costs at most 1.25x TCP per byte.
//
//   scripts/make-test-certs.sh /tmp/flowsec-certs
//   FLOWSEC_CERTS=/tmp/flowsec-certs build/release/bench/bench_transport
//
// Sender and listener share one io_context thread, so bytes_per_second is what one
// core moves through both ends. UDP and DTLS may lose datagrams under load: the
// "delivered" counter says which share arrived (a benchmark, not a test).
#include <benchmark/benchmark.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "transport/listener.hpp"
#include "transport/sender.hpp"

namespace {

using namespace flowsec;
using namespace flowsec::transport;
using namespace std::chrono_literals;

std::string certs() {
  const char* dir = std::getenv("FLOWSEC_CERTS");
  return dir != nullptr ? dir : "/tmp/flowsec-certs";
}

struct CountingHandler : ListenerHandler {
  std::atomic<std::uint64_t> bytes{0};
  bool on_data(const SessionInfo&, std::span<const std::byte> data) override {
    bytes += data.size();
    return true;
  }
};

// One io_context running on its own thread for the length of a benchmark.
struct Loop {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~Loop() {
    guard.reset();
    io.stop();
    thread.join();
  }
  template <class Fn>
  auto call(Fn&& fn) {
    std::packaged_task<decltype(fn())()> task(std::forward<Fn>(fn));
    auto f = task.get_future();
    asio::post(io, [&task] { task(); });
    return f.get();
  }
};

void throughput(benchmark::State& state, Scheme scheme) {
  constexpr std::size_t kMessages = 4096;
  constexpr std::size_t kSize = 1024;
  Loop loop;
  CountingHandler handler;
  ListenerOptions lo;
  lo.tls.cert_file = certs() + "/server.pem";
  lo.tls.key_file = certs() + "/server.key";
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Sender> sender;
  std::string error;
  loop.call([&] {
    auto l = make_listener(loop.io, Endpoint{scheme, "127.0.0.1", 0, "bench"}, lo, handler);
    if (!l) {
      error = l.error();
      return 0;
    }
    listener = std::move(*l);
    SenderOptions so;
    so.tls.ca_file = certs() + "/ca.pem";
    auto s =
        make_sender(loop.io, Endpoint{scheme, "localhost", listener->local_port(), "bench"}, so);
    if (!s) {
      error = s.error();
      return 0;
    }
    sender = std::move(*s);
    return 0;
  });
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  const transport::Message message(kSize, std::byte{0x42});
  std::uint64_t sent = 0;
  for (auto _ : state) {
    const std::uint64_t target = handler.bytes + kMessages * kSize;
    loop.call([&] {
      for (std::size_t i = 0; i < kMessages; ++i) sender->send(message);
      return 0;
    });
    sent += kMessages * kSize;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (handler.bytes < target && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(handler.bytes.load()));
  state.counters["delivered"] =
      sent == 0 ? 0.0 : static_cast<double>(handler.bytes.load()) / static_cast<double>(sent);
  loop.call([&] {
    sender.reset();
    listener->close();
    listener.reset();
    return 0;
  });
}

void BM_Udp(benchmark::State& s) {
  throughput(s, Scheme::udp);
}
void BM_Tcp(benchmark::State& s) {
  throughput(s, Scheme::tcp);
}
void BM_Tls(benchmark::State& s) {
  throughput(s, Scheme::tls);
}
void BM_Dtls(benchmark::State& s) {
  throughput(s, Scheme::dtls);
}
BENCHMARK(BM_Udp)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Tcp)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Tls)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dtls)->UseRealTime()->Unit(benchmark::kMillisecond);

// Full TLS handshakes per second: a new sender connects, the listener counts it.
void BM_TlsHandshakes(benchmark::State& state) {
  Loop loop;
  CountingHandler handler;
  ListenerOptions lo;
  lo.tls.cert_file = certs() + "/server.pem";
  lo.tls.key_file = certs() + "/server.key";
  std::unique_ptr<Listener> listener;
  loop.call([&] {
    auto l = make_listener(loop.io, Endpoint{Scheme::tls, "127.0.0.1", 0, "bench"}, lo, handler);
    if (l) listener = std::move(*l);
    return 0;
  });
  if (!listener) {
    state.SkipWithError("listener failed");
    return;
  }
  SenderOptions so;
  so.tls.ca_file = certs() + "/ca.pem";
  const Endpoint to{Scheme::tls, "localhost", listener->local_port(), "bench"};
  for (auto _ : state) {
    const auto before = loop.call([&] { return listener->stats().handshakes_ok; });
    std::unique_ptr<Sender> sender;
    loop.call([&] {
      if (auto s = make_sender(loop.io, to, so)) sender = std::move(*s);
      return 0;
    });
    while (loop.call([&] { return listener->stats().handshakes_ok; }) == before) {
      std::this_thread::yield();
    }
    loop.call([&] {
      sender.reset();
      return 0;
    });
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  loop.call([&] {
    listener->close();
    listener.reset();
    return 0;
  });
}
BENCHMARK(BM_TlsHandshakes)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
