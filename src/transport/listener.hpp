#pragma once
// Listeners for collection (-3 URL, --collector-port): udp, tcp, tls, dtls, sctp.
//
// A listener hands the bytes it receives to a ListenerHandler, per session:
// a TCP/TLS/SCTP connection, a DTLS association, or — for plain UDP — one
// exporter address and port (so the collector keeps templates per exporter).
// Datagram transports (udp, dtls) deliver one message per on_data call; stream
// transports deliver chunks of the byte stream in order (the caller frames
// them). All calls happen on the io_context thread; one session is never
// handled by two threads.
//
// Security (SPEC §3): a handshake must finish within handshake_timeout; an
// idle session is closed after idle_timeout; at most max_sessions at once
// (further connections are refused and counted). Every refused handshake is
// logged once with the peer address and the reason in words, counted by
// reason, and affects no other session. Plaintext on a TLS port is a failed
// handshake, nothing more. reload_tls() (SIGHUP) swaps certificate, key and
// CA for new sessions without dropping established ones.
#include <array>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/ip_address.hpp"
#include "common/result.hpp"
#include "transport/endpoint.hpp"
#include "transport/tls.hpp"

namespace flowsec::transport {

struct SessionInfo {
  std::uint64_t id = 0;  // unique per listener process
  Scheme scheme = Scheme::udp;
  IpAddress peer_address;
  std::uint16_t peer_port = 0;
  std::string tls_identity;  // authenticated certificate subject (tls, dtls); else empty
};

class ListenerHandler {
 public:
  virtual ~ListenerHandler() = default;
  virtual void on_session_open(const SessionInfo& /*session*/) {}
  // Returns false to close the session (e.g. a malformed stream); ignored for plain UDP.
  virtual bool on_data(const SessionInfo& session, std::span<const std::byte> data) = 0;
  virtual void on_session_close(const SessionInfo& /*session*/, std::string_view /*reason*/) {}
};

struct ListenerOptions {
  TlsSettings tls;
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds idle_timeout{600000};
  std::size_t max_sessions = 4096;
  int udp_receive_buffer = 32 * 1024 * 1024;  // SO_RCVBUF asked for (the kernel may clamp)
};

struct ListenerStats {
  std::uint64_t sessions_accepted = 0;
  std::uint64_t sessions_active = 0;
  std::uint64_t sessions_refused_cap = 0;
  std::uint64_t sessions_idle_closed = 0;
  std::uint64_t handshakes_ok = 0;
  std::array<std::uint64_t, kTlsRefusalCount> handshakes_refused{};  // by TlsRefusal
  std::uint64_t datagrams = 0;
  std::uint64_t bytes = 0;
  std::uint64_t kernel_drops = 0;  // UDP SO_RXQ_OVFL
};

class Listener {
 public:
  virtual ~Listener() = default;
  [[nodiscard]] virtual const Endpoint& endpoint() const = 0;
  // The bound port (useful with port 0 in tests).
  [[nodiscard]] virtual std::uint16_t local_port() const = 0;
  [[nodiscard]] virtual ListenerStats stats() const = 0;
  virtual Expected<void, std::string> reload_tls() = 0;
  // Stops accepting and closes every session (TLS close_notify).
  virtual void close() = 0;
};

[[nodiscard]] Expected<std::unique_ptr<Listener>, std::string> make_listener(
    asio::io_context& io, const Endpoint& endpoint, const ListenerOptions& options,
    ListenerHandler& handler);

}  // namespace flowsec::transport
