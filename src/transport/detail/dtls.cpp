// DTLS 1.2 over UDP (SPEC §3 "DTLS"): the exporter side (dtls:// with -n) and the
// collector side (dtls:// with --collector-port) behind make_sender / make_listener.
//
// Framing: one IPFIX message is one SSL_write, hence one DTLS record in one datagram;
// the listener hands every decrypted record to the handler as one message (SPEC §3:
// "one IPFIX message per DTLS record").
//
// I/O: OpenSSL never touches a socket. Every SSL gets a "datagram BIO" (below): the
// datagram just received is lent to it for the SSL call that follows (BIO_read returns
// it whole, once), and every BIO_write (one DTLS record or handshake fragment) becomes
// one datagram that we send with asio. A memory BIO would merge a whole flight into one
// blob; this keeps datagram boundaries exact and needs no socket inside OpenSSL.
//
// MTU: SSL_OP_NO_QUERY_MTU and SSL_set_mtu(kDtlsMtu = 1452 bytes of UDP payload: a
// 1500-byte Ethernet frame minus IPv6 (40) and UDP (8) headers, so it fits IPv4 too).
// OpenSSL fragments handshake messages to fit it. Application records are never
// fragmented: a message must fit in one record of one datagram, i.e. be at most
// DTLS_get_data_mtu() bytes for the negotiated cipher suite (1415 with AES-GCM, 1423
// with ChaCha20-Poly1305, ~1375 with the CBC suites), so SPEC §3's default 1400-byte
// messages fit with every AEAD suite. Larger messages are refused, counted as dropped
// and logged (rate-limited).
//
// Sender: resolve, connect a UDP socket, handshake (retransmissions driven by
// DTLSv1_get_timeout / DTLSv1_handle_timeout, the whole handshake bounded by
// connect_timeout), verify exactly as TLS does (the TlsContext's rules; refusals named
// by classify_handshake_failure and logged), then the on_connect hook's messages
// (templates, RFC 7011 §8) and the bounded queue (SPEC §4: oldest dropped, counted and
// logged). Any fatal error — an alert, close_notify from the collector, ICMP port
// unreachable — ends the association; the sender handshakes again after a backoff of
// 1 s doubling to 30 s. Messages whose records were written but not yet handed to the
// kernel are queued again (a duplicate is possible, a loss we know of is not). Datagrams
// the kernel accepted are gone, as with plain UDP: DTLS has no acknowledgements.
// shutdown() sends everything, then close_notify.
//
// Listener: one UDP socket; a datagram from an address without an association goes
// through DTLSv1_listen() on a spare SSL, which answers a ClientHello without a valid
// cookie with a HelloVerifyRequest and keeps no state (RFC 6347 §4.2.1; the cookie is
// an HMAC of the peer address and port, made by the TlsContext's callbacks from
// set_dtls_peer()). Only a ClientHello carrying a valid cookie allocates an association
// (at most max_sessions), which then finishes the handshake within handshake_timeout.
// Refused handshakes are logged with the peer and the reason and counted by reason;
// datagrams from unknown peers that are not DTLS at all count as not_tls. Established
// sessions carry the peer's verified certificate subject (SPEC §3.3), pass --tls-peer
// (RFC 7011 §11.3) and close after idle_timeout without records. Invalid records are
// dropped silently and never end an association (RFC 6347 §4.1.2.7).
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/log.hpp"
#include "transport/detail/factories.hpp"
#include "transport/detail/io_support.hpp"

namespace flowsec::transport::detail {
namespace {

using asio::ip::udp;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kComponent = "transport";
constexpr long kDtlsMtu = 1452;                    // see the file comment
constexpr std::size_t kReceiveBuffer = 65536;      // > largest UDP payload (65507)
constexpr std::size_t kRecordBuffer = 16384;       // largest DTLS plaintext record
constexpr std::size_t kMaxDatagramsInFlight = 64;  // sender: records written, not yet sent

// DTLS record layer (RFC 6347 §4.1): type(1) version(2) epoch(2) seq(6) length(2).
constexpr std::size_t kRecordHeader = 13;
constexpr unsigned kContentHandshake = 22;
constexpr unsigned kHandshakeClientHello = 1;

unsigned byte_at(std::span<const std::byte> d, std::size_t i) {
  return std::to_integer<unsigned>(d[i]);
}

// Looks like a DTLS record header: a TLS content type and a DTLS version (0xFEnn).
bool is_dtls_record(std::span<const std::byte> d) {
  return d.size() >= kRecordHeader && byte_at(d, 0) >= 20 && byte_at(d, 0) <= 25 &&
         byte_at(d, 1) == 0xFE;
}

// A handshake record in epoch 0 that starts a ClientHello.
bool is_initial_client_hello(std::span<const std::byte> d) {
  return is_dtls_record(d) && d.size() > kRecordHeader && byte_at(d, 0) == kContentHandshake &&
         byte_at(d, 3) == 0 && byte_at(d, 4) == 0 &&
         byte_at(d, kRecordHeader) == kHandshakeClientHello;
}

// The first error on the thread's OpenSSL queue, in words; empties the queue.
std::string ssl_error_text() {
  std::string text;
  while (const unsigned long e = ERR_get_error()) {
    if (!text.empty()) continue;
    std::array<char, 256> buf{};
    ERR_error_string_n(e, buf.data(), buf.size());
    text = buf.data();
  }
  return text.empty() ? std::string("no OpenSSL error reported") : text;
}

// ---------------------------------------------------------------------------------------
// The datagram BIO

struct DatagramChannel {
  std::span<const std::byte> in;           // the datagram lent for the current SSL call
  std::deque<std::vector<std::byte>> out;  // datagrams OpenSSL wrote, oldest first
  bool peek = false;                       // BIO_CTRL_DGRAM_SET_PEEK_MODE
};

DatagramChannel* channel_of(BIO* b) {
  return static_cast<DatagramChannel*>(BIO_get_data(b));
}

int channel_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  if (len < 0) return -1;
  const auto* p = reinterpret_cast<const std::byte*>(data);
  channel_of(b)->out.emplace_back(p, p + len);
  return len;
}

int channel_read(BIO* b, char* buf, int len) {
  BIO_clear_retry_flags(b);
  DatagramChannel* c = channel_of(b);
  if (c->in.empty()) {
    BIO_set_retry_read(b);
    return -1;
  }
  // A datagram larger than OpenSSL's buffer is truncated: DTLS discards the bad record.
  const std::size_t n = std::min(c->in.size(), static_cast<std::size_t>(std::max(len, 0)));
  std::memcpy(buf, c->in.data(), n);
  if (!c->peek) c->in = {};
  return static_cast<int>(n);
}

long channel_ctrl(BIO* b, int cmd, long num, void* /*ptr*/) {
  DatagramChannel* c = channel_of(b);
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(c->in.size());
    case BIO_CTRL_WPENDING:
      return 0;  // written datagrams are taken right after each SSL call
    case BIO_CTRL_DGRAM_SET_PEEK_MODE:
      c->peek = num != 0;
      return 1;
    default:
      return 0;  // no MTU query (SSL_OP_NO_QUERY_MTU), no socket options
  }
}

int channel_create(BIO* b) {
  BIO_set_data(b, new DatagramChannel);
  BIO_set_init(b, 1);
  return 1;
}

int channel_destroy(BIO* b) {
  if (b == nullptr) return 0;
  delete channel_of(b);
  BIO_set_data(b, nullptr);
  BIO_set_init(b, 0);
  return 1;
}

const BIO_METHOD* channel_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "flowsec datagram");
    if (m != nullptr) {
      BIO_meth_set_write(m, channel_write);
      BIO_meth_set_read(m, channel_read);
      BIO_meth_set_ctrl(m, channel_ctrl);
      BIO_meth_set_create(m, channel_create);
      BIO_meth_set_destroy(m, channel_destroy);
    }
    return m;
  }();
  return method;
}

// Gives `ssl` a fresh datagram BIO and the MTU of the file comment. nullptr on failure.
DatagramChannel* attach_channel(SSL* ssl) {
  const BIO_METHOD* method = channel_method();
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr) return nullptr;
  SSL_set_bio(ssl, bio, bio);  // the SSL owns the BIO, the BIO owns the channel
  SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
  if (SSL_set_mtu(ssl, kDtlsMtu) <= 0) return nullptr;  // returns the MTU set, 0 if refused
  // SPEC §3: DTLS 1.2 or later (the context says so too; this keeps it true per SSL).
  if (SSL_set_min_proto_version(ssl, DTLS1_2_VERSION) != 1) return nullptr;
  return channel_of(bio);
}

// Time until OpenSSL wants DTLSv1_handle_timeout() (a retransmission), if a timer runs.
std::optional<Clock::duration> retransmit_in(SSL* ssl) {
  timeval tv{};
  if (ssl == nullptr || DTLSv1_get_timeout(ssl, &tv) != 1) return std::nullopt;
  return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

std::string endpoint_text(const udp::endpoint& ep) {
  return peer_text(to_ip_address(ep.address()), ep.port());
}

// ---------------------------------------------------------------------------------------
// Sender

// One datagram waiting for the socket; `message` when it is the record of a message
// (for the counters, and to queue the message again if the association breaks first).
struct OutDatagram {
  std::vector<std::byte> bytes;
  std::optional<QueuedMessage> message;
};

class DtlsSenderCore : public std::enable_shared_from_this<DtlsSenderCore> {
 public:
  DtlsSenderCore(asio::io_context& io, Endpoint endpoint, const SenderOptions& options,
                 std::shared_ptr<const TlsContext> context)
      : io_(io),
        endpoint_(std::move(endpoint)),
        options_(options),
        context_(std::move(context)),
        resolver_(io),
        socket_(io),
        timer_(io),
        backoff_timer_(io),
        shutdown_timer_(io),
        queue_(options.queue_limit_bytes),
        backoff_(options),
        rx_(kReceiveBuffer),
        record_(kRecordBuffer) {}
  ~DtlsSenderCore() { free_ssl(); }
  DtlsSenderCore(const DtlsSenderCore&) = delete;
  DtlsSenderCore& operator=(const DtlsSenderCore&) = delete;

  void start() {
    asio::post(io_, [self = shared_from_this()] {
      if (self->state_ == State::idle) self->resolve();
    });
  }

  const Endpoint& endpoint() const { return endpoint_; }

  void send(Message message) {
    if (state_ == State::stopped) {
      count_drop({1, message.size()}, "the sender is shut down");
      return;
    }
    count_drop(queue_.push_back({std::move(message), false}), "the export queue is full");
    pump();
  }

  void set_on_connect(OnConnectHook hook) { hook_ = std::move(hook); }

  void shutdown(std::chrono::milliseconds timeout, std::function<void(bool)> done) {
    if (state_ == State::stopped) {
      if (done) asio::post(io_, [done = std::move(done), ok = queue_.empty()] { done(ok); });
      return;
    }
    done_ = std::move(done);
    shutting_down_ = true;
    shutdown_timer_.expires_after(timeout);
    shutdown_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || !self->done_) return;
      std::size_t left = self->queue_.user_messages();
      for (const auto& d : self->out_) left += d.message && !d.message->from_hook ? 1 : 0;
      log::warning(kComponent, "shutdown of " + self->endpoint_.text + " timed out: " +
                                   std::to_string(left) + " messages not delivered");
      self->finish(false);
    });
    asio::post(io_, [self = shared_from_this()] { self->check_shutdown(); });
  }

  SenderStats stats() const { return stats_with_queue(stats_, queue_); }

  // The Sender object went away: stop; no callback runs afterwards.
  void stop() {
    done_ = nullptr;
    hook_ = nullptr;
    halt();
  }

 private:
  enum class State { idle, resolving, handshaking, connected, closing, waiting, stopped };

  // ---- connection life cycle ----

  void resolve() {
    state_ = State::resolving;
    resolver_.async_resolve(
        endpoint_.host, std::to_string(endpoint_.port), udp::resolver::numeric_service,
        [self = shared_from_this()](const asio::error_code& ec, udp::resolver::results_type r) {
          if (self->state_ != State::resolving) return;
          if (ec || r.empty()) {
            ++self->stats_.connect_failures;
            self->note("cannot resolve " + self->endpoint_.host + ": " +
                       (ec ? ec.message() : std::string("no address")));
            self->schedule_retry();
            return;
          }
          self->targets_.assign(r);
          self->try_next_target();
        });
  }

  // Addresses of one name are tried in turn; when all failed, wait and resolve again.
  void try_next_target() {
    udp::endpoint target;
    if (!targets_.take_next(target)) {
      schedule_retry();
      return;
    }
    connect_to(target);
  }

  void connect_to(const udp::endpoint& target) {
    asio::error_code ec;
    socket_.open(target.protocol(), ec);
    if (!ec) socket_.non_blocking(true, ec);
    if (!ec) socket_.connect(target, ec);  // UDP: sets the peer, sends nothing
    if (ec) {
      ++stats_.connect_failures;
      note("cannot open a UDP socket to " + endpoint_text(target) + ": " + ec.message());
      teardown();
      try_next_target();
      return;
    }
    SSL* ssl = context_->new_ssl(endpoint_.host);  // SNI and name check (SPEC §3 exporter 1)
    DatagramChannel* channel = ssl != nullptr ? attach_channel(ssl) : nullptr;
    if (channel == nullptr) {
      if (ssl != nullptr) SSL_free(ssl);
      ++stats_.connect_failures;
      note("cannot create a DTLS session: " + ssl_error_text());
      teardown();
      schedule_retry();
      return;
    }
    ssl_ = ssl;
    channel_ = channel;
    SSL_set_connect_state(ssl_);
    target_ = target;
    heard_from_peer_ = false;
    state_ = State::handshaking;
    handshake_deadline_ = Clock::now() + options_.connect_timeout;
    receive();
    handshake();
  }

  void handshake() {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      take_output(nullptr);
      established();
      return;
    }
    const int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      take_output(nullptr);
      send_next();
      arm_timer();
      return;
    }
    const TlsRefusal reason = classify_handshake_failure(ssl_, false);
    send_now();  // our alert, if OpenSSL wrote one
    handshake_failed(reason);
  }

  void established() {
    state_ = State::connected;
    ++stats_.connects;
    stats_.connected = true;
    backoff_.reset();
    data_mtu_ = DTLS_get_data_mtu(ssl_);
    const std::string identity = peer_identity(ssl_);
    log::info(kComponent, "export to " + endpoint_.text + ": DTLS session with " +
                              endpoint_text(target_) + " (" + SSL_get_version(ssl_) + ", " +
                              SSL_get_cipher_name(ssl_) +
                              (identity.empty() ? std::string() : ", " + identity) + ")");
    // RFC 7011 §8: the templates go first in every new session.
    first_ = hook_messages(hook_);
    arm_timer();
    pump();
  }

  void handshake_failed(TlsRefusal reason) {
    const bool answered = heard_from_peer_;
    const udp::endpoint target = target_;
    teardown();
    if (!answered && reason == TlsRefusal::handshake_timeout) {
      // Nobody answered at all: a connection failure, not a refused handshake.
      ++stats_.connect_failures;
      note("no DTLS answer from " + endpoint_text(target) + " within " +
           seconds_text(options_.connect_timeout));
      try_next_target();
      return;
    }
    ++stats_.handshake_failures;
    note("DTLS handshake with " + endpoint_text(target) + " refused: " +
         std::string(describe(reason)) + "; retrying in " + seconds_text(backoff_.current()));
    schedule_retry();
  }

  // A socket error: ICMP port unreachable (ECONNREFUSED) or worse.
  void socket_failed(const asio::error_code& ec) {
    if (state_ == State::handshaking && !heard_from_peer_) {
      ++stats_.connect_failures;
      note("cannot reach " + endpoint_text(target_) + ": " + ec.message());
      teardown();
      try_next_target();
      return;
    }
    if (state_ == State::handshaking) {
      ++stats_.handshake_failures;
      note("DTLS handshake with " + endpoint_text(target_) + " failed: " + ec.message());
      teardown();
      schedule_retry();
      return;
    }
    connection_lost(ec.message());
  }

  void connection_lost(const std::string& what) {
    note("DTLS session with " + endpoint_text(target_) + " ended: " + what + "; reconnecting in " +
         seconds_text(backoff_.current()));
    teardown();
    schedule_retry();
  }

  void schedule_retry() {
    if (state_ == State::stopped) return;
    if (shutting_down_ && queue_.empty()) {
      finish(true);
      return;
    }
    state_ = State::waiting;
    backoff_timer_.expires_after(backoff_.next());  // SPEC §4: 1 s doubling to 30 s
    backoff_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->state_ != State::waiting) return;
      self->resolve();
    });
  }

  void free_ssl() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ssl_ = nullptr;
    channel_ = nullptr;
  }

  // Ends the current association (if any). Messages whose records did not reach the
  // kernel go back to the front of the queue.
  void teardown() {
    ++generation_;
    std::vector<QueuedMessage> again;
    for (auto& d : out_) {
      if (d.message && !d.message->from_hook) again.push_back(std::move(*d.message));
    }
    out_.clear();
    first_.clear();
    sending_ = false;
    if (!again.empty()) {
      stats_.messages_resent += again.size();
      count_drop(queue_.push_front(std::move(again)), "the export queue is full");
    }
    timer_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
    free_ssl();
    stats_.connected = false;
    state_ = State::idle;
  }

  void halt() {
    shutdown_timer_.cancel();
    backoff_timer_.cancel();
    resolver_.cancel();
    teardown();
    state_ = State::stopped;
  }

  void finish(bool ok) {
    auto done = std::move(done_);
    done_ = nullptr;
    halt();
    if (done) done(ok);
  }

  void check_shutdown() {
    if (!shutting_down_ || !done_) return;
    switch (state_) {
      case State::connected:
        if (queue_.empty() && first_.empty() && out_.empty() && !sending_) {
          // Everything is with the kernel: close_notify ends the session cleanly.
          ERR_clear_error();
          (void)SSL_shutdown(ssl_);
          ERR_clear_error();
          state_ = State::closing;
          take_output(nullptr);
          if (out_.empty()) {
            finish(true);
          } else {
            send_next();
          }
        }
        break;
      case State::idle:
      case State::waiting:
      case State::resolving:
        if (queue_.empty()) finish(true);
        break;
      default:
        break;  // a handshake or the close is under way
    }
  }

  // ---- data ----

  void pump() {
    while (state_ == State::connected && out_.size() < kMaxDatagramsInFlight) {
      if (!first_.empty()) {
        QueuedMessage m = std::move(first_.front());
        first_.pop_front();
        if (!write_message(std::move(m))) return;
      } else if (!queue_.empty()) {
        if (!write_message(queue_.take_front())) return;
      } else {
        break;
      }
    }
    send_next();
    check_shutdown();
  }

  // One message, one record (SPEC §3). False when the association failed.
  bool write_message(QueuedMessage m) {
    if (m.data.empty()) return true;
    if (m.data.size() > data_mtu_) {
      count_drop({1, m.data.size()}, "a message of " + std::to_string(m.data.size()) +
                                         " bytes does not fit in one DTLS record (at most " +
                                         std::to_string(data_mtu_) + " bytes here)");
      return true;
    }
    ERR_clear_error();
    const int r = SSL_write(ssl_, m.data.data(), static_cast<int>(m.data.size()));
    if (r <= 0) {
      const int err = SSL_get_error(ssl_, r);
      const std::string what = ssl_error_text();
      take_output(nullptr);
      put_back(std::move(m));
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        send_next();  // OpenSSL waits for the peer (renegotiation is off, so hardly ever)
        return false;
      }
      send_now();
      connection_lost("cannot write: " + what);
      return false;
    }
    take_output(&m);
    return true;
  }

  // A message that was not written goes back where it came from.
  void put_back(QueuedMessage m) {
    if (m.from_hook) {
      first_.push_front(std::move(m));
      return;
    }
    std::vector<QueuedMessage> back;
    back.push_back(std::move(m));
    count_drop(queue_.push_front(std::move(back)), "the export queue is full");
  }

  // Moves what OpenSSL wrote into the send queue; `message` rides on the last datagram.
  void take_output(QueuedMessage* message) {
    if (channel_ == nullptr) return;
    while (!channel_->out.empty()) {
      out_.push_back({std::move(channel_->out.front()), std::nullopt});
      channel_->out.pop_front();
    }
    if (message != nullptr) {
      if (!out_.empty() && !out_.back().message) {
        out_.back().message = std::move(*message);
      } else {
        // Nothing came out (cannot happen with one record per SSL_write): count it as
        // written rather than lose it from the counters.
        ++stats_.messages_sent;
        stats_.bytes_sent += message->data.size();
      }
    }
  }

  // Best effort, now, without waiting: an alert or close_notify before the socket closes.
  void send_now() {
    if (channel_ == nullptr) return;
    for (const auto& d : channel_->out) {
      asio::error_code ignored;
      socket_.send(asio::buffer(d), 0, ignored);
    }
    channel_->out.clear();
  }

  void send_next() {
    if (sending_ || out_.empty() || !socket_.is_open()) return;
    sending_ = true;
    socket_.async_send(asio::buffer(out_.front().bytes),
                       [self = shared_from_this(), gen = generation_](
                           const asio::error_code& ec, std::size_t) { self->on_sent(gen, ec); });
  }

  void on_sent(std::uint64_t gen, const asio::error_code& ec) {
    if (gen != generation_ || state_ == State::stopped) return;
    sending_ = false;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // ECONNREFUSED: an ICMP port unreachable for an earlier datagram; this one was not
      // sent and stays queued for the next association.
      socket_failed(ec);
      return;
    }
    OutDatagram d = std::move(out_.front());
    out_.pop_front();
    if (d.message) {
      ++stats_.messages_sent;
      stats_.bytes_sent += d.message->data.size();
    }
    if (state_ == State::closing) {
      if (out_.empty()) {
        finish(true);
      } else {
        send_next();
      }
      return;
    }
    pump();
  }

  void receive() {
    socket_.async_receive(asio::buffer(rx_), [self = shared_from_this(), gen = generation_](
                                                 const asio::error_code& ec, std::size_t n) {
      self->on_received(gen, ec, n);
    });
  }

  void on_received(std::uint64_t gen, const asio::error_code& ec, std::size_t n) {
    if (gen != generation_ || state_ == State::stopped) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      socket_failed(ec);
      return;
    }
    heard_from_peer_ = true;
    if (n > 0 && channel_ != nullptr) {
      channel_->in = std::span<const std::byte>(rx_.data(), n);
      if (state_ == State::handshaking) {
        handshake();
      } else if (state_ == State::connected || state_ == State::closing) {
        read_records();
      }
      if (gen != generation_) return;  // the association ended meanwhile
      if (channel_ != nullptr) channel_->in = {};
    }
    if (socket_.is_open()) receive();
  }

  // After the handshake the collector sends nothing but handshake retransmissions,
  // alerts and close_notify; application data from it is ignored.
  void read_records() {
    for (;;) {
      ERR_clear_error();
      const int r = SSL_read(ssl_, record_.data(), static_cast<int>(record_.size()));
      if (r > 0) continue;
      const int err = SSL_get_error(ssl_, r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
      if (err == SSL_ERROR_ZERO_RETURN) {
        if (state_ == State::closing) break;  // the answer to our close_notify
        ERR_clear_error();
        (void)SSL_shutdown(ssl_);
        ERR_clear_error();
        send_now();
        connection_lost("the collector closed the session (close_notify)");
        return;
      }
      const std::string what = ssl_error_text();
      send_now();
      connection_lost(what);
      return;
    }
    take_output(nullptr);
    send_next();
    arm_timer();
    if (state_ == State::connected) pump();  // a write that waited for the peer may go now
  }

  // ---- timers ----

  void arm_timer() {
    std::optional<Clock::time_point> when;
    if (state_ == State::handshaking) when = handshake_deadline_;
    if (const auto in = retransmit_in(ssl_)) {
      const auto at = Clock::now() + *in;
      if (!when || at < *when) when = at;
    }
    if (!when) {
      timer_.cancel();
      return;
    }
    timer_.expires_at(*when);
    timer_.async_wait([self = shared_from_this(), gen = generation_](const asio::error_code& ec) {
      if (ec || gen != self->generation_ || self->ssl_ == nullptr) return;
      self->on_timer();
    });
  }

  void on_timer() {
    if (state_ == State::handshaking && Clock::now() >= handshake_deadline_) {
      ERR_clear_error();
      handshake_failed(classify_handshake_failure(ssl_, true));
      return;
    }
    ERR_clear_error();
    if (DTLSv1_handle_timeout(ssl_) < 0) {  // retransmissions exhausted
      send_now();
      if (state_ == State::handshaking) {
        handshake_failed(classify_handshake_failure(ssl_, true));
      } else {
        connection_lost("no answer to DTLS retransmissions: " + ssl_error_text());
      }
      return;
    }
    take_output(nullptr);
    send_next();
    arm_timer();
  }

  // ---- logging ----

  void count_drop(Dropped d, const std::string& why) {
    if (!count_dropped(stats_, d)) return;
    warn_rate_limited(drop_log_, "export to " + endpoint_.text + ": dropped " +
                                     std::to_string(d.messages) + " message(s): " + why + "; " +
                                     std::to_string(stats_.messages_dropped) + " dropped in total");
  }

  void note(const std::string& what) {
    warn_rate_limited(error_log_, "export to " + endpoint_.text + ": " + what);
  }

  asio::io_context& io_;
  Endpoint endpoint_;
  SenderOptions options_;
  std::shared_ptr<const TlsContext> context_;
  udp::resolver resolver_;
  udp::socket socket_;
  asio::steady_timer timer_;  // handshake deadline and DTLS retransmissions
  asio::steady_timer backoff_timer_;
  asio::steady_timer shutdown_timer_;
  MessageQueue queue_;
  std::deque<QueuedMessage> first_;  // the hook's messages for the current association
  std::deque<OutDatagram> out_;
  OnConnectHook hook_;
  std::function<void(bool)> done_;
  ResolvedTargets<udp::endpoint> targets_;
  udp::endpoint target_;
  SSL* ssl_ = nullptr;
  DatagramChannel* channel_ = nullptr;  // owned by ssl_'s BIO
  std::size_t data_mtu_ = 0;
  std::uint64_t generation_ = 0;  // bumped by teardown(): stale completions are ignored
  State state_ = State::idle;
  Clock::time_point handshake_deadline_;
  Backoff backoff_;
  std::vector<std::byte> rx_;
  std::vector<unsigned char> record_;
  SenderStats stats_;
  log::RateLimiter drop_log_{5, std::chrono::seconds(10)};
  log::RateLimiter error_log_{5, std::chrono::seconds(10)};
  bool heard_from_peer_ = false;
  bool sending_ = false;
  bool shutting_down_ = false;
};

class DtlsSender final : public Sender {
 public:
  explicit DtlsSender(std::shared_ptr<DtlsSenderCore> core) : core_(std::move(core)) {}
  ~DtlsSender() override { core_->stop(); }
  DtlsSender(const DtlsSender&) = delete;
  DtlsSender& operator=(const DtlsSender&) = delete;

  const Endpoint& endpoint() const override { return core_->endpoint(); }
  void send(Message message) override { core_->send(std::move(message)); }
  void set_on_connect(std::function<std::vector<Message>()> hook) override {
    core_->set_on_connect(std::move(hook));
  }
  void shutdown(std::chrono::milliseconds timeout, std::function<void(bool)> done) override {
    core_->shutdown(timeout, std::move(done));
  }
  SenderStats stats() const override { return core_->stats(); }

 private:
  std::shared_ptr<DtlsSenderCore> core_;
};

// ---------------------------------------------------------------------------------------
// Listener

struct Association {
  explicit Association(asio::io_context& io) : timer(io) {}
  ~Association() {
    if (ssl != nullptr) SSL_free(ssl);
  }
  Association(const Association&) = delete;
  Association& operator=(const Association&) = delete;

  SSL* ssl = nullptr;
  DatagramChannel* channel = nullptr;  // owned by ssl's BIO
  std::shared_ptr<const TlsContext> context;
  udp::endpoint peer;
  SessionInfo info;
  bool established = false;
  Clock::time_point handshake_deadline;
  Clock::time_point last_activity;
  Clock::time_point armed_for = Clock::time_point::max();
  asio::steady_timer timer;  // handshake deadline, retransmissions, idle timeout
};

class DtlsListenerCore : public std::enable_shared_from_this<DtlsListenerCore> {
 public:
  DtlsListenerCore(asio::io_context& io, Endpoint endpoint, const ListenerOptions& options,
                   ListenerHandler& handler, std::shared_ptr<TlsContextSource> source)
      : io_(io),
        endpoint_(std::move(endpoint)),
        options_(options),
        handler_(&handler),
        source_(std::move(source)),
        socket_(io),
        rx_(kReceiveBuffer),
        record_(kRecordBuffer) {}
  ~DtlsListenerCore() {
    free_listen_ssl();
    if (listen_peer_ != nullptr) BIO_ADDR_free(listen_peer_);
  }
  DtlsListenerCore(const DtlsListenerCore&) = delete;
  DtlsListenerCore& operator=(const DtlsListenerCore&) = delete;

  Expected<void, std::string> open() {
    listen_peer_ = BIO_ADDR_new();
    if (listen_peer_ == nullptr) return unexpected("listen " + endpoint_.text + ": out of memory");
    auto bound = bind_listener<udp>(
        io_, endpoint_, [this](const udp::endpoint& ep, bool dual_stack, asio::error_code& ec) {
          open_and_bind(socket_, ep, dual_stack, ec);
        });
    if (!bound) return bound;
    asio::error_code ec;
    // Answers (handshake flights, alerts) never wait: a full socket buffer drops them and
    // DTLS retransmits (RFC 6347 §4.2.4).
    socket_.non_blocking(true, ec);
    if (ec) return unexpected("cannot listen on " + endpoint_.text + ": " + ec.message());
    if (options_.udp_receive_buffer > 0) {
      socket_.set_option(udp::socket::receive_buffer_size(options_.udp_receive_buffer), ec);
      ec.clear();  // the kernel may clamp or refuse; DTLS works either way
    }
    local_port_ = socket_.local_endpoint(ec).port();
    return {};
  }

  void start() { receive(); }

  const Endpoint& endpoint() const { return endpoint_; }
  std::uint16_t local_port() const { return local_port_; }
  ListenerStats stats() const { return stats_with_sessions(stats_, sessions_.size()); }

  // SIGHUP (SPEC §3.5): new associations use the new files; established ones keep theirs.
  Expected<void, std::string> reload_tls() {
    auto r = source_->reload();
    if (!r) return unexpected("listen " + endpoint_.text + ": " + r.error());
    free_listen_ssl();
    return {};
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    auto sessions = std::move(sessions_);
    sessions_.clear();
    for (auto& [peer, a] : sessions) {
      a->timer.cancel();
      if (!a->established) continue;
      ERR_clear_error();
      (void)SSL_shutdown(a->ssl);  // close_notify
      ERR_clear_error();
      flush(*a);
      handler_->on_session_close(a->info, "listener closed");
    }
    asio::error_code ignored;
    socket_.close(ignored);
    free_listen_ssl();
  }

 private:
  using AssociationPtr = std::shared_ptr<Association>;

  void receive() {
    socket_.async_receive_from(
        asio::buffer(rx_), from_,
        [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
          if (self->closed_) return;
          if (!ec) {
            self->on_datagram(self->from_, std::span<const std::byte>(self->rx_.data(), n));
          } else if (ec == asio::error::operation_aborted) {
            return;
          } else {
            self->note("receive: " + ec.message());
          }
          if (!self->closed_) self->receive();
        });
  }

  void on_datagram(const udp::endpoint& from, std::span<const std::byte> data) {
    if (data.empty()) return;
    if (const auto it = sessions_.find(from); it != sessions_.end()) {
      AssociationPtr a = it->second;
      // RFC 6347 §4.2.8: a new ClientHello (epoch 0) on an established association means
      // the peer lost its state and reused the port; a verified cookie replaces it.
      if (a->established && is_initial_client_hello(data)) {
        accept(from, data, a);
        return;
      }
      a->channel->in = data;
      if (drive(a)) a->channel->in = {};
      return;
    }
    accept(from, data, nullptr);
  }

  // A datagram from an address without an association (or a restarting one).
  void accept(const udp::endpoint& from, std::span<const std::byte> data,
              const AssociationPtr& replacing) {
    const IpAddress address = to_ip_address(from.address());
    if (!is_dtls_record(data)) {
      // SPEC §3.4: plaintext on a secure port is a refused handshake, nothing more.
      refused(from, TlsRefusal::not_tls);
      return;
    }
    // Other DTLS records (a lost association's data, alerts) are dropped silently.
    if (byte_at(data, 0) != kContentHandshake) return;
    if (listen_ssl_ == nullptr && !make_listen_ssl()) return;
    set_dtls_peer(listen_ssl_, address, from.port());  // the cookie's input
    listen_channel_->in = data;
    ERR_clear_error();
    const int r = DTLSv1_listen(listen_ssl_, listen_peer_);
    listen_channel_->in = {};
    for (const auto& d : listen_channel_->out) send_to(from, d);  // HelloVerifyRequest
    listen_channel_->out.clear();
    ERR_clear_error();
    if (r <= 0) {
      // No cookie, a wrong one, or not a ClientHello: nothing is kept (RFC 6347 §4.2.1).
      if (r < 0) free_listen_ssl();
      return;
    }
    // The peer proved it receives at its address: now it may have state.
    if (replacing) close_session(replacing, "the peer started a new DTLS session", false);
    if (session_cap_reached(sessions_.size(), options_, stats_)) {
      free_listen_ssl();
      warn_rate_limited(log_, "listen " + endpoint_.text + ": DTLS session from " +
                                  peer_text(address, from.port()) + " refused: " +
                                  std::to_string(options_.max_sessions) + " sessions already open");
      return;
    }
    auto a = std::make_shared<Association>(io_);
    a->ssl = listen_ssl_;
    a->channel = listen_channel_;
    a->context = std::move(listen_context_);
    listen_ssl_ = nullptr;
    listen_channel_ = nullptr;
    a->peer = from;
    a->info = new_session_info(Scheme::dtls, address, from.port());
    a->handshake_deadline = Clock::now() + options_.handshake_timeout;
    sessions_[from] = a;
    ++stats_.sessions_accepted;
    (void)drive(a);  // the ClientHello DTLSv1_listen kept is processed now
  }

  bool make_listen_ssl() {
    listen_context_ = source_->current();
    SSL* ssl = listen_context_->new_ssl();
    DatagramChannel* channel = ssl != nullptr ? attach_channel(ssl) : nullptr;
    if (channel == nullptr) {
      if (ssl != nullptr) SSL_free(ssl);
      listen_context_.reset();
      note("cannot create a DTLS session: " + ssl_error_text());
      return false;
    }
    listen_ssl_ = ssl;
    listen_channel_ = channel;
    return true;
  }

  void free_listen_ssl() {
    if (listen_ssl_ != nullptr) SSL_free(listen_ssl_);
    listen_ssl_ = nullptr;
    listen_channel_ = nullptr;
    listen_context_.reset();
  }

  bool alive(const AssociationPtr& a) const {
    if (closed_) return false;
    const auto it = sessions_.find(a->peer);
    return it != sessions_.end() && it->second == a;
  }

  // Handshake and records with whatever the channel holds. False when `a` is gone.
  bool drive(const AssociationPtr& a) {
    if (!a->established) {
      ERR_clear_error();
      const int r = SSL_do_handshake(a->ssl);
      if (r != 1) {
        const int err = SSL_get_error(a->ssl, r);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
          ERR_clear_error();
          flush(*a);
          arm(a);
          return true;
        }
        const TlsRefusal reason = classify_handshake_failure(a->ssl, false);
        flush(*a);  // our alert
        refuse(a, reason);
        return false;
      }
      flush(*a);
      if (!established(a)) return false;
    }
    return read_records(a);
  }

  bool established(const AssociationPtr& a) {
    // RFC 7011 §11.3 allow-list (--tls-peer), on the verified certificate.
    if (!peer_allowed(a->ssl, a->context->settings().peers)) {
      ERR_clear_error();
      (void)SSL_shutdown(a->ssl);
      ERR_clear_error();
      flush(*a);
      refuse(a, TlsRefusal::not_on_allow_list);
      return false;
    }
    a->established = true;
    a->last_activity = Clock::now();
    a->info.tls_identity = peer_identity(a->ssl);  // SPEC §3.3
    ++stats_.handshakes_ok;
    log::write(log::Level::debug, kComponent,
               "listen " + endpoint_.text + ": DTLS session from " + endpoint_text(a->peer) +
                   (a->info.tls_identity.empty() ? std::string() : " as " + a->info.tls_identity));
    handler_->on_session_open(a->info);
    if (!alive(a)) return false;
    arm(a);
    return true;
  }

  bool read_records(const AssociationPtr& a) {
    for (;;) {
      ERR_clear_error();
      const int r = SSL_read(a->ssl, record_.data(), static_cast<int>(record_.size()));
      if (r > 0) {
        a->last_activity = Clock::now();
        ++stats_.datagrams;
        stats_.bytes += static_cast<std::uint64_t>(r);
        const bool keep = handler_->on_data(
            a->info, std::span<const std::byte>(reinterpret_cast<const std::byte*>(record_.data()),
                                                static_cast<std::size_t>(r)));
        if (!alive(a)) return false;
        if (!keep) {
          close_session(a, "closed by the collector", true);
          return false;
        }
        continue;
      }
      const int err = SSL_get_error(a->ssl, r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
      if (err == SSL_ERROR_ZERO_RETURN) {
        close_session(a, "closed by the peer (close_notify)", true);
        return false;
      }
      const std::string what = ssl_error_text();
      flush(*a);
      close_session(a, "DTLS error: " + what, false);
      return false;
    }
    ERR_clear_error();
    flush(*a);
    arm(a);
    return true;
  }

  // Ends a session; close_notify first when `notify`.
  void close_session(const AssociationPtr& a, const std::string& reason, bool notify) {
    if (notify) {
      ERR_clear_error();
      (void)SSL_shutdown(a->ssl);
      ERR_clear_error();
      flush(*a);
    }
    erase(a);
    if (a->established) handler_->on_session_close(a->info, reason);
  }

  // A refused handshake: logged once with the peer and the reason, counted (SPEC §3.2).
  void refuse(const AssociationPtr& a, TlsRefusal reason) {
    erase(a);
    refused(a->peer, reason);
  }

  void refused(const udp::endpoint& peer, TlsRefusal reason) {
    ++stats_.handshakes_refused[static_cast<std::size_t>(reason)];
    warn_rate_limited(log_, "listen " + endpoint_.text + ": refused DTLS handshake from " +
                                endpoint_text(peer) + ": " + std::string(describe(reason)));
  }

  void erase(const AssociationPtr& a) {
    a->timer.cancel();
    if (alive(a)) sessions_.erase(a->peer);
  }

  void flush(Association& a) {
    for (const auto& d : a.channel->out) send_to(a.peer, d);
    a.channel->out.clear();
  }

  void send_to(const udp::endpoint& to, const std::vector<std::byte>& d) {
    asio::error_code ec;
    socket_.send_to(asio::buffer(d), to, 0, ec);
    if (ec && ec != asio::error::would_block)
      note("send to " + endpoint_text(to) + ": " + ec.message());
  }

  // One timer per association, set for the earliest of: handshake deadline (or idle
  // deadline once established) and OpenSSL's retransmission timer.
  void arm(const AssociationPtr& a) {
    const auto now = Clock::now();
    auto when = a->established ? a->last_activity + options_.idle_timeout : a->handshake_deadline;
    if (const auto in = retransmit_in(a->ssl)) when = std::min(when, now + *in);
    if (a->armed_for > now && a->armed_for <= when) return;  // an earlier wake-up is set
    a->armed_for = when;
    a->timer.expires_at(when);
    a->timer.async_wait([self = shared_from_this(),
                         weak = std::weak_ptr<Association>(a)](const asio::error_code& ec) {
      if (ec || self->closed_) return;
      if (auto locked = weak.lock(); locked && self->alive(locked)) self->on_timer(locked);
    });
  }

  void on_timer(const AssociationPtr& a) {
    a->armed_for = Clock::time_point::max();
    const auto now = Clock::now();
    if (!a->established && now >= a->handshake_deadline) {
      // SPEC §3.4: a handshake must finish within handshake_timeout.
      ERR_clear_error();
      refuse(a, classify_handshake_failure(a->ssl, true));
      return;
    }
    if (a->established && now - a->last_activity >= options_.idle_timeout) {
      ++stats_.sessions_idle_closed;
      close_session(a, "idle timeout", true);
      return;
    }
    ERR_clear_error();
    if (DTLSv1_handle_timeout(a->ssl) < 0) {
      flush(*a);
      if (!a->established) {
        refuse(a, classify_handshake_failure(a->ssl, true));
      } else {
        close_session(a, "no answer to DTLS retransmissions", false);
      }
      return;
    }
    ERR_clear_error();
    flush(*a);
    arm(a);
  }

  void note(const std::string& what) {
    warn_rate_limited(error_log_, "listen " + endpoint_.text + ": " + what);
  }

  asio::io_context& io_;
  Endpoint endpoint_;
  ListenerOptions options_;
  ListenerHandler* handler_;
  std::shared_ptr<TlsContextSource> source_;
  udp::socket socket_;
  udp::endpoint from_;
  std::vector<std::byte> rx_;
  std::vector<unsigned char> record_;
  std::map<udp::endpoint, AssociationPtr> sessions_;
  // The spare SSL that runs the stateless cookie exchange (DTLSv1_listen); it becomes
  // the association's SSL when a cookie checks out.
  SSL* listen_ssl_ = nullptr;
  DatagramChannel* listen_channel_ = nullptr;
  std::shared_ptr<const TlsContext> listen_context_;
  BIO_ADDR* listen_peer_ = nullptr;
  ListenerStats stats_;
  log::RateLimiter log_{10, std::chrono::seconds(10)};
  log::RateLimiter error_log_{5, std::chrono::seconds(10)};
  std::uint16_t local_port_ = 0;
  bool closed_ = false;
};

class DtlsListener final : public Listener {
 public:
  explicit DtlsListener(std::shared_ptr<DtlsListenerCore> core) : core_(std::move(core)) {}
  ~DtlsListener() override { core_->close(); }
  DtlsListener(const DtlsListener&) = delete;
  DtlsListener& operator=(const DtlsListener&) = delete;

  const Endpoint& endpoint() const override { return core_->endpoint(); }
  std::uint16_t local_port() const override { return core_->local_port(); }
  ListenerStats stats() const override { return core_->stats(); }
  Expected<void, std::string> reload_tls() override { return core_->reload_tls(); }
  void close() override { core_->close(); }

 private:
  std::shared_ptr<DtlsListenerCore> core_;
};

}  // namespace

SenderResult make_dtls_sender(asio::io_context& io, const Endpoint& e, const SenderOptions& o) {
  auto context = TlsContext::create(TlsRole::client, TlsProtocol::dtls, o.tls);
  if (!context) return unexpected(e.text + ": " + context.error());
  auto core = std::make_shared<DtlsSenderCore>(io, e, o, std::move(*context));
  core->start();
  return std::unique_ptr<Sender>(std::make_unique<DtlsSender>(std::move(core)));
}

ListenerResult make_dtls_listener(asio::io_context& io, const Endpoint& e, const ListenerOptions& o,
                                  ListenerHandler& h) {
  auto source = TlsContextSource::create(TlsRole::server, TlsProtocol::dtls, o.tls);
  if (!source) return unexpected(e.text + ": " + source.error());
  auto core = std::make_shared<DtlsListenerCore>(io, e, o, h, std::move(*source));
  if (auto r = core->open(); !r) return unexpected(std::move(r.error()));
  core->start();
  return std::unique_ptr<Listener>(std::make_unique<DtlsListener>(std::move(core)));
}

}  // namespace flowsec::transport::detail
