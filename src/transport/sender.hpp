#pragma once
// Message senders for export (-n URL): udp, tcp, tls, dtls, sctp.
//
// A message is one IPFIX/NetFlow message: over udp one datagram, over dtls
// one DTLS record, over tcp/tls/sctp bytes of the stream (RFC 7011 §10).
// Senders live on one asio::io_context thread; every call below is made on
// that thread (post() to it from elsewhere).
//
// Reliability (SPEC §4): stream senders connect without blocking and retry
// with exponential backoff (1 s doubling to 30 s). Messages wait in a bounded
// queue; when it is full the OLDEST are dropped, counted and logged — never
// silently. After every (re)connection the on_connect hook's messages (the
// templates, RFC 7011 §8) go first. Bytes the kernel had accepted but the
// peer never acknowledged when a connection broke are sent again after the
// reconnect, so a collector restart loses nothing (duplicates are possible,
// loss is not). shutdown() flushes the queue, sends TLS close_notify and
// reports whether everything was delivered.
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "transport/endpoint.hpp"
#include "transport/tls.hpp"

namespace flowsec::transport {

using Message = std::vector<std::byte>;

struct SenderOptions {
  TlsSettings tls;                                   // tls and dtls
  std::size_t queue_limit_bytes = 64 * 1024 * 1024;  // --export-queue-size
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds connect_timeout{10000};  // TCP connect + TLS handshake
};

struct SenderStats {
  std::uint64_t messages_sent = 0;  // handed completely to the kernel / TLS
  std::uint64_t bytes_sent = 0;
  std::uint64_t messages_dropped = 0;  // queue overflow (oldest first)
  std::uint64_t bytes_dropped = 0;
  std::uint64_t messages_resent = 0;  // re-queued after a broken connection
  std::uint64_t connects = 0;         // successful (re)connections
  std::uint64_t connect_failures = 0;
  std::uint64_t handshake_failures = 0;
  std::size_t queue_messages = 0;
  std::size_t queue_bytes = 0;
  bool connected = false;
};

class Sender {
 public:
  virtual ~Sender() = default;
  [[nodiscard]] virtual const Endpoint& endpoint() const = 0;
  // Queues one message; never blocks.
  virtual void send(Message message) = 0;
  // Messages to send first after each (re)connection (datagram senders: at start).
  virtual void set_on_connect(std::function<std::vector<Message>()> hook) = 0;
  // Flushes, closes cleanly (TLS close_notify), then calls done(true) if every queued
  // message was delivered, done(false) after `timeout` otherwise (and logs the count).
  virtual void shutdown(std::chrono::milliseconds timeout, std::function<void(bool)> done) = 0;
  [[nodiscard]] virtual SenderStats stats() const = 0;
};

// Start-up errors (bad TLS files, SCTP missing from the kernel, -V 5|9 over a stream is
// checked by the caller) come back as one line naming the cause.
[[nodiscard]] Expected<std::unique_ptr<Sender>, std::string> make_sender(
    asio::io_context& io, const Endpoint& endpoint, const SenderOptions& options);

}  // namespace flowsec::transport
