// Integration: --metrics (SPEC §7) over loopback, and a real Prometheus scraping it.
//
// Peers: our own raw TCP client (status codes, request cap, timeouts, close), and the
// Debian `prometheus` server (2.x): it scrapes the MetricsServer every second, and its
// HTTP query API (read with `curl`) must return exactly the counter and gauge values
// the registry holds, labels included — after a change too. That proves the exposition
// parses in the real consumer (HELP/TYPE, escaping, no duplicate series: the number
// of samples Prometheus reports scraping equals the number of sample lines we wrote).
// Skips with a printed reason when prometheus or curl is not installed.
#include <gtest/gtest.h>

#include <array>
#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/metrics_server.hpp"
#include "common/metrics.hpp"
#include "support/temp_dir.hpp"
#include "support/transport_harness.hpp"

namespace flowsec::app {
namespace {

using namespace flowsec::test;

// Components' own counters, bumped from the test thread while the server collects
// them on the loop thread.
struct FakeStats {
  std::atomic<std::uint64_t> records_a{42};
  std::atomic<std::uint64_t> records_b{7};
  std::atomic<std::uint64_t> short_errors{3};
  std::atomic<std::int64_t> sessions{2};
};

void register_fake(MetricsRegistry& registry, FakeStats& s) {
  registry.add_collector([&s](MetricWriter& w) {
    w.counter("flowsec_test_records_received_total", "Records received, by exporter.",
              {{"exporter", "10.0.0.1"}}, s.records_a.load());
    w.counter("flowsec_test_decode_errors_total", "Decode errors by reason.",
              {{"exporter", "10.0.0.1"}, {"reason", "short"}}, s.short_errors.load());
    w.gauge("flowsec_test_sessions_active", "Open sessions.",
            static_cast<double>(s.sessions.load()));
    w.counter("flowsec_test_weird_total", "A label value that needs escaping.",
              {{"path", "a\"b\\c\nd"}}, 1);
  });
  // A second component writing to the same family.
  registry.add_collector([&s](MetricWriter& w) {
    w.counter("flowsec_test_records_received_total", "Records received, by exporter.",
              {{"exporter", "2001:db8::1"}}, s.records_b.load());
  });
}

struct Server {
  explicit Server(MetricsServerOptions options = {}) {
    register_fake(registry, stats);
    MetricsAddress addr;
    addr.host = "127.0.0.1";
    addr.text = "127.0.0.1:0";
    auto started =
        loop.call([&] { return MetricsServer::start(loop.io, addr, registry, options); });
    if (started) {
      server = std::move(*started);
    } else {
      error = started.error();
    }
  }
  ~Server() {
    loop.call([this] {
      server.reset();
      return 0;
    });
  }
  std::uint16_t port() const { return server ? server->port() : 0; }

  FakeStats stats;
  MetricsRegistry registry;
  Loop loop;
  std::unique_ptr<MetricsServer> server;
  std::string error;
};

// Sends `request` on a new connection and returns everything received until the
// server closes, or nullopt if it did not close within `limit` (or refused).
// `pieces` > 1 sends the request in that many parts 50 ms apart.
std::optional<std::string> exchange(std::uint16_t port, const std::string& request,
                                    std::chrono::milliseconds limit = 3000ms,
                                    std::size_t pieces = 1) {
  asio::io_context io;
  tcp::socket socket(io);
  asio::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), ec);
  if (ec) return std::nullopt;
  std::string received;
  bool closed = false;
  std::array<char, 4096> chunk{};
  std::function<void()> read = [&] {
    socket.async_read_some(asio::buffer(chunk), [&](const asio::error_code& e, std::size_t n) {
      received.append(chunk.data(), n);
      if (e) {
        closed = true;
        return;
      }
      read();
    });
  };
  const std::size_t step = request.size() / pieces + 1;
  for (std::size_t at = 0; at < request.size(); at += step) {
    if (at > 0) std::this_thread::sleep_for(50ms);
    asio::write(socket, asio::buffer(request.substr(at, step)), ec);
    if (ec) break;  // the server may close early (request too large)
  }
  read();
  io.run_for(limit);
  if (!closed) return std::nullopt;
  return received;
}

std::string status_line(const std::optional<std::string>& r) {
  if (!r) return "(no close)";
  return r->substr(0, r->find("\r\n"));
}

TEST(MetricsServer, ServesGetMetricsAndRefusesTheRest) {
  Server s;
  ASSERT_NE(s.port(), 0) << s.error;
  const auto ok = exchange(s.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(ok);
  EXPECT_EQ(status_line(ok), "HTTP/1.1 200 OK");
  EXPECT_NE(ok->find("\r\nContent-Type: text/plain; version=0.0.4"), std::string::npos) << *ok;
  EXPECT_NE(ok->find("flowsec_test_records_received_total{exporter=\"10.0.0.1\"} 42\n"),
            std::string::npos)
      << *ok;
  s.stats.records_a = 43;
  const auto again = exchange(s.port(), "GET /metrics HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(again);
  EXPECT_NE(again->find("{exporter=\"10.0.0.1\"} 43\n"), std::string::npos) << *again;

  EXPECT_EQ(status_line(exchange(s.port(), "GET / HTTP/1.1\r\n\r\n")), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(
      status_line(exchange(s.port(), "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")),
      "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(status_line(exchange(s.port(), "nonsense\r\n\r\n")), "HTTP/1.1 400 Bad Request");
  // A request arriving in pieces.
  EXPECT_EQ(status_line(exchange(s.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 3000ms, 4)),
            "HTTP/1.1 200 OK");
}

TEST(MetricsServer, OversizedRequestGets431AndTheConnectionCloses) {
  Server s;
  ASSERT_NE(s.port(), 0) << s.error;
  const std::string huge = "GET /metrics HTTP/1.1\r\nX: " + std::string(64 * 1024, 'a');
  const auto r = exchange(s.port(), huge);
  ASSERT_TRUE(r) << "server did not close";
  EXPECT_EQ(status_line(r), "HTTP/1.1 431 Request Header Fields Too Large");
}

TEST(MetricsServer, SilentClientIsClosedAfterTheTimeout) {
  MetricsServerOptions options;
  options.request_timeout = 300ms;
  Server s(options);
  ASSERT_NE(s.port(), 0) << s.error;
  const auto start = Clock::now();
  const auto r = exchange(s.port(), "", 3000ms);
  ASSERT_TRUE(r) << "silent connection still open after 3 s";
  EXPECT_EQ(*r, "");
  EXPECT_GE(Clock::now() - start, 250ms);
  // Half a request head is no better than silence.
  const auto half = exchange(s.port(), "GET /metrics HTTP/1.1\r\n", 3000ms);
  ASSERT_TRUE(half);
  EXPECT_EQ(*half, "");
  // The server still answers afterwards.
  EXPECT_EQ(status_line(exchange(s.port(), "GET /metrics HTTP/1.1\r\n\r\n")), "HTTP/1.1 200 OK");
}

TEST(MetricsServer, ConnectionsOverTheCapAreClosedOthersServed) {
  MetricsServerOptions options;
  options.max_connections = 2;
  options.request_timeout = 2000ms;
  Server s(options);
  ASSERT_NE(s.port(), 0) << s.error;
  asio::io_context io;
  tcp::socket a(io), b(io);
  a.connect(tcp::endpoint(asio::ip::address_v4::loopback(), s.port()));
  b.connect(tcp::endpoint(asio::ip::address_v4::loopback(), s.port()));
  std::this_thread::sleep_for(100ms);  // let the server accept both
  const auto third = exchange(s.port(), "GET /metrics HTTP/1.1\r\n\r\n", 1000ms);
  ASSERT_TRUE(third) << "over-cap connection not closed";
  EXPECT_EQ(*third, "");
  a.close();
  b.close();
  EXPECT_TRUE(eventually([&] {
    return status_line(exchange(s.port(), "GET /metrics HTTP/1.1\r\n\r\n")) == "HTTP/1.1 200 OK";
  }));
}

TEST(MetricsServer, CloseStopsListeningAndBusyPortIsAStartUpError) {
  Server s;
  ASSERT_NE(s.port(), 0) << s.error;
  MetricsAddress busy;
  busy.host = "127.0.0.1";
  busy.port = s.port();
  busy.text = "127.0.0.1:" + std::to_string(s.port());
  MetricsRegistry other;
  auto second = s.loop.call([&] { return MetricsServer::start(s.loop.io, busy, other); });
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().find("cannot listen on --metrics '" + busy.text + "'"),
            std::string::npos)
      << second.error();

  const auto port = s.port();
  s.loop.call([&] {
    s.server->close();
    return 0;
  });
  EXPECT_FALSE(exchange(port, "GET /metrics HTTP/1.1\r\n\r\n", 500ms));
}

TEST(MetricsServer, AllAddressesIncludesLoopback) {
  MetricsRegistry registry;
  Loop loop;
  MetricsAddress any;
  any.port = free_port();
  any.text = std::to_string(any.port);
  auto started = loop.call([&] { return MetricsServer::start(loop.io, any, registry); });
  ASSERT_TRUE(started) << started.error();
  EXPECT_EQ((*started)->port(), any.port);
  EXPECT_EQ(status_line(exchange(any.port, "GET /metrics HTTP/1.1\r\n\r\n")), "HTTP/1.1 200 OK");
  loop.call([&] {
    started->reset();
    return 0;
  });
}

// ---- Prometheus ------------------------------------------------------------------

bool have(const char* command) {
  return std::system((std::string("command -v ") + command + " >/dev/null 2>&1").c_str()) == 0;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs a PromQL instant query through curl; returns the JSON answer ("" on failure).
std::string promql(std::uint16_t port, const std::string& dir, const std::string& query) {
  const std::string qfile = dir + "/query.txt";
  std::ofstream(qfile) << query;
  const std::string cmd = "curl -sS --max-time 3 -G --data-urlencode query@" + qfile +
                          " http://127.0.0.1:" + std::to_string(port) + "/api/v1/query 2>&1";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

// The value of the single series a query returns; nullopt if it returns none or several.
std::optional<std::string> single_value(const std::string& json) {
  if (json.find("\"status\":\"success\"") == std::string::npos) return std::nullopt;
  const std::string key = "\"value\":[";
  const auto at = json.find(key);
  if (at == std::string::npos || json.find(key, at + 1) != std::string::npos) return std::nullopt;
  const auto q1 = json.find('"', json.find(',', at + key.size()));
  const auto q2 = json.find('"', q1 + 1);
  if (q1 == std::string::npos || q2 == std::string::npos) return std::nullopt;
  return json.substr(q1 + 1, q2 - q1 - 1);
}

TEST(MetricsPrometheus, PromtoolFindsNoProblemInTheExposition) {
  if (!have("promtool")) GTEST_SKIP() << "promtool is not installed (Debian: prometheus)";
  Server s;
  ASSERT_NE(s.port(), 0) << s.error;
  const auto r = exchange(s.port(), "GET /metrics HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(r);
  const TempDir tmp("metrics-promtool");
  const std::string& dir = tmp.path();
  std::ofstream(dir + "/metrics.txt") << r->substr(r->find("\r\n\r\n") + 4);
  const std::string cmd =
      "promtool check metrics < " + dir + "/metrics.txt > " + dir + "/out.txt 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << slurp(dir + "/out.txt");
}

TEST(MetricsPrometheus, ScrapedValuesEqualTheCounters) {
  if (!have("prometheus")) GTEST_SKIP() << "prometheus is not installed (Debian: prometheus)";
  if (!have("curl")) GTEST_SKIP() << "curl is not installed (needed to query prometheus)";
  Server s;
  ASSERT_NE(s.port(), 0) << s.error;

  const TempDir tmp("metrics-prom");
  const std::string& dir = tmp.path();
  const std::uint16_t prom_port = free_port();
  std::ofstream(dir + "/prometheus.yml") << "global:\n"
                                            "  scrape_interval: 1s\n"
                                            "  scrape_timeout: 1s\n"
                                            "scrape_configs:\n"
                                            "  - job_name: flowsec\n"
                                            "    static_configs:\n"
                                            "      - targets: ['127.0.0.1:"
                                         << s.port() << "']\n";
  auto prom = std::make_unique<Child>(
      std::vector<std::string>{"prometheus", "--config.file=" + dir + "/prometheus.yml",
                               "--storage.tsdb.path=" + dir + "/tsdb",
                               "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
      "/dev/null", dir + "/prometheus.out", dir + "/prometheus.err");
  auto log_tail = [&] {
    const std::string err = slurp(dir + "/prometheus.err");
    return err.size() > 3000 ? err.substr(err.size() - 3000) : err;
  };

  auto value = [&](const std::string& q) { return single_value(promql(prom_port, dir, q)); };
  auto wait_value = [&](const std::string& q, const std::string& want,
                        std::chrono::milliseconds limit) {
    std::optional<std::string> last;
    const bool ok = eventually(
        [&] {
          last = value(q);
          return last == want;
        },
        limit);
    return ::testing::AssertionResult(ok)
           << q << " = " << last.value_or("(no single series)") << ", want " << want;
  };

  // Prometheus starts, then scrapes within a second.
  ASSERT_TRUE(wait_value("up{job=\"flowsec\"}", "1", 15000ms)) << log_tail();
  EXPECT_TRUE(
      wait_value("flowsec_test_records_received_total{exporter=\"10.0.0.1\"}", "42", 3000ms));
  EXPECT_EQ(value("flowsec_test_records_received_total{exporter=\"2001:db8::1\"}"), "7");
  EXPECT_EQ(value("flowsec_test_decode_errors_total{exporter=\"10.0.0.1\",reason=\"short\"}"), "3");
  EXPECT_EQ(value("flowsec_test_sessions_active"), "2");
  // Escaped label value read back intact (JSON-escaped by the query API).
  EXPECT_NE(promql(prom_port, dir, "flowsec_test_weird_total").find("\"path\":\"a\\\"b\\\\c\\nd\""),
            std::string::npos)
      << promql(prom_port, dir, "flowsec_test_weird_total");
  // Every sample line we wrote was ingested: none dropped as a duplicate or unparsable.
  std::size_t lines = 0;
  for (std::istringstream in(s.registry.collect()); !in.eof();) {
    std::string line;
    std::getline(in, line);
    lines += !line.empty() && line[0] != '#' ? 1 : 0;
  }
  EXPECT_EQ(value("scrape_samples_scraped{job=\"flowsec\"}"), std::to_string(lines));

  // Counters move, a gauge goes down: the next scrape shows it.
  s.stats.records_a += 1000;
  s.stats.short_errors += 1;
  s.stats.sessions = 1;
  EXPECT_TRUE(
      wait_value("flowsec_test_records_received_total{exporter=\"10.0.0.1\"}", "1042", 5000ms));
  EXPECT_TRUE(wait_value("flowsec_test_decode_errors_total{exporter=\"10.0.0.1\",reason=\"short\"}",
                         "4", 3000ms));
  EXPECT_TRUE(wait_value("flowsec_test_sessions_active", "1", 3000ms));
  EXPECT_TRUE(wait_value("rate(flowsec_test_records_received_total{exporter=\"2001:db8::1\"}[1m])",
                         "0", 3000ms));

  prom.reset();  // SIGTERM to this one child and wait for it
}

}  // namespace
}  // namespace flowsec::app
