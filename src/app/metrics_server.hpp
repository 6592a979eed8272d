#pragma once
// `--metrics [ADDR:]PORT` (SPEC §2, §7): a minimal HTTP/1.1 server for Prometheus.
//
//   GET or HEAD /metrics  200, the registry in text format 0.0.4 (collected per request)
//   any other path        404
//   any other method      405 with Allow: GET, HEAD
//   a request head over kMaxRequestBytes 431; a malformed request line 400
// Every response carries Connection: close and the connection is closed after it;
// a connection that has not sent a full request head within `request_timeout`, or
// not taken its response within it, is closed. At most `max_connections` at once;
// others are closed on accept. Request bodies are never read.
//
// Address: PORT listens on every address (dual-stack [::], IPv4 0.0.0.0 where the
// host has no IPv6), like the collector's listeners; ADDR:PORT and [IPv6]:PORT on
// that address only; `localhost:PORT` means 127.0.0.1. Names are not resolved.
//
// Ownership and threads: the server runs on the io_context it is given (the app's),
// and collects the registry on that thread; the registry must outlive the server.
// close() and the destructor run on that thread (or while it is not running); after
// them no handler touches the registry again.
// Errors: parse_metrics_address and MetricsServer::start return one line naming the
// argument, for a start-up failure; nothing throws. Broken clients are only closed.
#include <asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/metrics.hpp"
#include "common/result.hpp"

namespace flowsec::app {

inline constexpr std::size_t kMaxRequestBytes = 8192;
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

struct MetricsAddress {
  std::string host;  // an IP address without brackets; empty = all addresses
  std::uint16_t port = 0;
  std::string text;  // the argument as given, for messages
  friend bool operator==(const MetricsAddress&, const MetricsAddress&) = default;
};

// "9100", "127.0.0.1:9100", "[::1]:9100", "localhost:9100". Port 1-65535.
[[nodiscard]] Expected<MetricsAddress, std::string> parse_metrics_address(std::string_view arg);

// Sans-I/O request handling (what the server does with the bytes of one connection).
enum class RequestState : std::uint8_t { incomplete, complete, too_large };
// Whether `received` holds a whole request head (up to the empty line).
[[nodiscard]] RequestState request_state(std::string_view received);
// The full response (status line, headers, body) to one request head.
[[nodiscard]] std::string http_response(std::string_view request_head,
                                        const MetricsRegistry& registry);
// The 431 response sent when a request head exceeds kMaxRequestBytes.
[[nodiscard]] std::string http_too_large_response();

struct MetricsServerOptions {
  std::chrono::milliseconds request_timeout{10000};
  std::size_t max_connections = 32;
};

class MetricsServer {
 public:
  [[nodiscard]] static Expected<std::unique_ptr<MetricsServer>, std::string> start(
      asio::io_context& io, const MetricsAddress& address, const MetricsRegistry& registry,
      const MetricsServerOptions& options = {});
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound port (the one the kernel chose when the address said 0).
  [[nodiscard]] std::uint16_t port() const;
  // Stops accepting and closes every open connection. Idempotent.
  void close();

  struct Impl;

 private:
  explicit MetricsServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace flowsec::app
