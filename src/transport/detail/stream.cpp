// TCP and TLS: the stream sender and listener behind make_sender/make_listener.
//
// Sender (SPEC §4). One connection at a time, made without blocking (resolve,
// connect, TLS handshake, all bounded by connect_timeout); failures are retried
// after backoff_initial, doubling to backoff_max, and logged once per change of
// state rather than once per attempt. Messages wait in a bounded queue (oldest
// dropped, counted, logged: the first drop at once, then a summary per second). After every
// (re)connection the on_connect hook's messages (templates, RFC 7011 §8) are written first, then
// the queue, many messages per write (a gather write over TCP; over TLS one
// contiguous buffer, so records are full, encrypted as a whole and sent with one
// socket write).
//
// No loss on a broken connection: messages written on the current connection
// stay in an "unacknowledged" list. The kernel tells how many bytes the peer has
// not ACKed yet (ioctl SIOCOUTQ); the list is trimmed to the messages covering
// that tail (after each write and every kAckPoll). When the connection breaks,
// what is left (and whatever was being written) goes back to the FRONT of the
// queue, after the templates of the next connection, counted in messages_resent.
// Duplicates are possible, loss is not. Over TLS the plaintext tail kept is the
// unacked byte count plus one full record (a record whose last bytes are missing
// is lost as a whole). A new connection is only "confirmed" after max(500 ms,
// 4 RTT) (or 8 MiB written): until then nothing is trimmed, a break counts as a
// failed attempt (logged once, backoff keeps growing) and everything written is
// sent again, because a peer may still reject the session after our handshake
// completed (TLS 1.3 checks the client certificate after the client's Finished;
// --tls-peer; a collector at its session cap closes right after accept) and then
// data it ACKed was never read. shutdown() waits for confirmation, too. What the
// peer's kernel ACKed but its application never read (a collector killed with a
// full receive buffer) cannot be known; our listener's close() delivers such
// bytes before it closes (see below).
//
// Listener (SPEC §3 collector side). An accept loop; at most max_sessions
// sessions (those still in their handshake count) — beyond that a connection is
// accepted and closed at once (sessions_refused_cap). TLS: the handshake must
// finish within handshake_timeout, then the peer must pass peer_allowed()
// (--tls-peer, RFC 7011 §11.3); every refusal is logged once with the peer and
// the reason and counted by reason, and touches no other session. Bytes are
// handed to the handler in order; a session without data for idle_timeout is
// closed. close() delivers the bytes already received by the kernel, then
// closes every session (TLS close_notify).
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/post.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/log.hpp"
#include "transport/detail/factories.hpp"
#include "transport/detail/io_support.hpp"

namespace flowsec::transport::detail {
namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kComponent = "transport";
constexpr std::size_t kMaxBatchBytes =
    std::size_t{256} * 1024;  // one write: plenty of full TLS records
constexpr std::size_t kMaxBatchMessages = 1024;
constexpr milliseconds kAckPoll{200};        // trims the unacknowledged list
constexpr milliseconds kShutdownAckPoll{5};  // waiting for the last ACK at shutdown
constexpr milliseconds kConfirmWindow{500};  // see the file comment
constexpr std::size_t kConfirmMaxBytes = std::size_t{8} * 1024 * 1024;  // ... or this much written
constexpr milliseconds kStableConnection{10000};  // backoff restarts after such a connection
// RFC 8446 §5.1/§5.2: at most 2^14 plaintext bytes per record, plus header, tag, padding.
constexpr std::size_t kTlsRecordPlaintext = 16384;
constexpr std::size_t kTlsRecordOverhead = 256;
constexpr std::size_t kListenerReadBuffer = std::size_t{64} * 1024;
constexpr std::size_t kSenderReadBuffer = std::size_t{4} * 1024;
// TLS: ciphertext asked of the socket per read, at least one full record.
constexpr std::size_t kTlsMinReadChunk = kTlsRecordPlaintext + kTlsRecordOverhead;
constexpr std::size_t kMaxCloseDrain = std::size_t{64} * 1024 * 1024;

bool is_ssl_error(const asio::error_code& ec) {
  return ec.category() == asio::error::get_ssl_category();
}

// Why a handshake failed, from asio's error and the SSL's verify result. asio has
// already taken the first OpenSSL error off the queue and stored it in `ec`.
TlsRefusal classify(const SSL* ssl, const asio::error_code& ec, bool timed_out) {
  TlsRefusal r = timed_out
                     ? classify_handshake_failure(ssl, true)
                     : classify_handshake_error(
                           ssl, is_ssl_error(ec) ? static_cast<unsigned long>(ec.value()) : 0);
  ERR_clear_error();
  return r;
}

std::string error_text(const asio::error_code& ec) {
  if (ec == asio::error::eof) return "closed by peer";
  if (ec == asio::ssl::error::stream_truncated) return "closed by peer without TLS close_notify";
  if (is_ssl_error(ec)) {
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
    return std::string("TLS error: ") + buf;
  }
  return ec.message();
}

// TLS over a TCP socket with OpenSSL working on memory BIOs we fill and drain
// ourselves, so that the socket sees few, large reads and writes: a batch of up to
// kMaxBatchBytes becomes all its records in ONE socket write, and one socket read
// takes what the kernel holds (up to the session's read buffer) and hands the
// plaintext of every complete record in it to the caller at once. (asio's
// ssl::stream moves one record per socket call through a 17 KB engine buffer: on
// loopback the system calls cost more than the cryptography.)
//
// Errors are reported as asio's ssl::stream reports them: OpenSSL errors as
// ERR_get_error() values in asio::error::get_ssl_category(), close_notify as
// asio::error::eof, a transport EOF without close_notify as
// asio::ssl::error::stream_truncated, socket errors as they come. One read and one
// write may be in flight at once (as with asio's stream); TLS output produced by a
// read (alerts, key updates) queues behind the write in flight.
class TlsChannel {
 public:
  using Done = std::function<void(const asio::error_code&)>;
  using Transferred = std::function<void(const asio::error_code&, std::size_t)>;

  // Takes ownership of `ssl`. `read_chunk`: bytes asked of the socket per read.
  TlsChannel(tcp::socket& socket, SSL* ssl, std::size_t read_chunk)
      : socket_(socket), ssl_(ssl), in_(read_chunk) {
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = BIO_new(BIO_s_mem());
    if (rbio != nullptr && wbio != nullptr) {
      BIO_set_mem_eof_return(rbio, -1);  // empty means "more to come", not EOF
      SSL_set_bio(ssl_, rbio, wbio);
      bios_ok_ = true;
    } else {
      BIO_free(rbio);
      BIO_free(wbio);
    }
    // Several records per pull from the read BIO.
    SSL_set_read_ahead(ssl_, 1);
  }
  ~TlsChannel() { SSL_free(ssl_); }  // frees the BIOs too
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  SSL* native_handle() { return ssl_; }

  void async_handshake(asio::ssl::stream_base::handshake_type type, Done done) {
    if (type == asio::ssl::stream_base::client) {
      SSL_set_connect_state(ssl_);
    } else {
      SSL_set_accept_state(ssl_);
    }
    handshake_step(std::move(done));
  }

  // Encrypts all of `data` (which must stay valid until `done`) and writes it.
  void async_write(asio::const_buffer data, Transferred done) {
    asio::error_code ec;
    if (!bios_ok_) ec = asio::error::no_memory;
    const auto* p = static_cast<const unsigned char*>(data.data());
    std::size_t left = data.size();
    while (!ec && left > 0) {
      std::size_t n = 0;
      const int r = SSL_write_ex(ssl_, p, left, &n);
      if (r != 1) {
        ec = ssl_error(r);
        break;
      }
      p += n;
      left -= n;
    }
    if (ec) {
      // Whatever OpenSSL queued (an alert) still goes out; the caller hears the error.
      flush([ec, done = std::move(done)](const asio::error_code&) { done(ec, 0); });
      return;
    }
    flush([size = data.size(), done = std::move(done)](const asio::error_code& fec) {
      done(fec, fec ? 0 : size);
    });
  }

  // Reads at least one byte of plaintext into `buffer` (kept valid until `done`): as
  // much as the records already received hold, else what the next socket read brings.
  void async_read_some(asio::mutable_buffer buffer, Transferred done) {
    asio::error_code ec;
    const std::size_t n = read_decrypted(buffer, ec);
    if (n > 0 || ec != asio::error::would_block) {
      complete_read(ec, n, std::move(done));
      return;
    }
    socket_.async_read_some(asio::buffer(in_),
                            [this, buffer, done = std::move(done)](const asio::error_code& rec,
                                                                   std::size_t got) mutable {
                              if (got > 0) feed(got);
                              if (rec) {
                                // Records that arrived complete before the error are still handed
                                // over.
                                asio::error_code ignored;
                                const std::size_t left = read_decrypted(buffer, ignored);
                                if (left > 0) {
                                  done(asio::error_code(), left);
                                  return;
                                }
                                done(transport_error(rec), 0);
                                return;
                              }
                              async_read_some(buffer, std::move(done));
                            });
  }

  // Reads without waiting (the socket must be non-blocking): decrypted bytes, or 0
  // and asio::error::would_block when nothing complete has arrived.
  std::size_t read_available(asio::mutable_buffer buffer, asio::error_code& ec) {
    for (;;) {
      ec.clear();
      const std::size_t n = read_decrypted(buffer, ec);
      if (n > 0 || ec != asio::error::would_block) return n;
      const std::size_t got = socket_.read_some(asio::buffer(in_), ec);
      if (got > 0) {
        feed(got);
        continue;
      }
      if (ec) ec = transport_error(ec);
      return 0;
    }
  }

  // Sends our close_notify now, without waiting for the peer's (the socket must be
  // non-blocking). Skipped when a write is still in flight: its bytes must not be
  // interleaved, and the connection is being torn down anyway.
  void close_notify(asio::error_code& ec) {
    ec.clear();
    if (!bios_ok_ || writing_) return;
    // Pretend the peer's close_notify came: SSL_shutdown then only sends ours.
    SSL_set_shutdown(ssl_, SSL_get_shutdown(ssl_) | SSL_RECEIVED_SHUTDOWN);
    if (SSL_shutdown(ssl_) < 0) ERR_clear_error();
    BIO* wbio = SSL_get_wbio(ssl_);
    std::array<char, 1024> chunk{};
    for (;;) {
      const int n = BIO_read(wbio, chunk.data(), static_cast<int>(chunk.size()));
      if (n <= 0) break;
      asio::write(socket_, asio::buffer(chunk.data(), static_cast<std::size_t>(n)), ec);
      if (ec) break;
    }
  }

 private:
  void handshake_step(Done done) {
    if (!bios_ok_) {
      done(asio::error::no_memory);
      return;
    }
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      flush(std::move(done));  // our last flight (the client's Finished)
      return;
    }
    const int err = SSL_get_error(ssl_, r);
    if (err != SSL_ERROR_WANT_READ) {
      const asio::error_code ec = ssl_error(r, err);
      // The alert that tells the peer why goes out first.
      flush([ec, done = std::move(done)](const asio::error_code&) { done(ec); });
      return;
    }
    flush([this, done = std::move(done)](const asio::error_code& fec) mutable {
      if (fec) {
        done(fec);
        return;
      }
      socket_.async_read_some(
          asio::buffer(in_),
          [this, done = std::move(done)](const asio::error_code& rec, std::size_t got) mutable {
            if (got > 0) feed(got);
            if (rec) {
              done(transport_error(rec));
              return;
            }
            handshake_step(std::move(done));
          });
    });
  }

  // Decrypts what the read BIO holds into `buffer`, record after record. 0 with
  // would_block when no complete record is there.
  std::size_t read_decrypted(asio::mutable_buffer buffer, asio::error_code& ec) {
    if (!bios_ok_) {
      ec = asio::error::no_memory;
      return 0;
    }
    auto* p = static_cast<unsigned char*>(buffer.data());
    std::size_t total = 0;
    while (total < buffer.size()) {
      std::size_t n = 0;
      const int r = SSL_read_ex(ssl_, p + total, buffer.size() - total, &n);
      if (r == 1) {
        total += n;
        continue;
      }
      const int err = SSL_get_error(ssl_, r);
      if (err == SSL_ERROR_WANT_READ) {
        if (total == 0) ec = asio::error::would_block;
      } else if (total == 0) {
        ec = ssl_error(r, err);
      }
      // An error after some data: deliver the data now; the next read reports it.
      break;
    }
    return total;
  }

  // A read's result, after sending what reading produced (alerts, key update replies):
  // `done` keeps the connection alive while that is written.
  void complete_read(const asio::error_code& ec, std::size_t n, Transferred done) {
    if (bios_ok_ && BIO_ctrl_pending(SSL_get_wbio(ssl_)) > 0) {
      flush([ec, n, done = std::move(done)](const asio::error_code&) { done(ec, n); });
      return;
    }
    done(ec, n);
  }

  void feed(std::size_t got) {
    // A memory BIO takes everything (it grows).
    if (BIO_write(SSL_get_rbio(ssl_), in_.data(), static_cast<int>(got)) != static_cast<int>(got)) {
      ERR_clear_error();
    }
  }

  asio::error_code transport_error(const asio::error_code& ec) const {
    // The peer's TCP close: clean only after its close_notify.
    if (ec == asio::error::eof && (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) == 0) {
      return asio::ssl::error::stream_truncated;
    }
    return ec;
  }

  asio::error_code ssl_error(int r) const { return ssl_error(r, SSL_get_error(ssl_, r)); }
  static asio::error_code ssl_error(int /*r*/, int err) {
    if (err == SSL_ERROR_ZERO_RETURN) return asio::error::eof;  // close_notify
    const unsigned long e = ERR_get_error();
    if (err == SSL_ERROR_SYSCALL && e == 0) return asio::ssl::error::stream_truncated;
    return {static_cast<int>(e), asio::error::get_ssl_category()};
  }

  // Sends everything the write BIO holds; `done` runs when that is on the socket (or
  // the socket failed). Output queued while a write is in flight follows it.
  void flush(Done done) {
    waiting_.push_back(std::move(done));
    if (!writing_) send_pending();
  }

  void send_pending() {
    BIO* wbio = SSL_get_wbio(ssl_);
    const std::size_t pending = bios_ok_ ? BIO_ctrl_pending(wbio) : 0;
    // Nobody waiting: nothing holds the connection alive for a write; such output (from
    // read_available) goes with the next flush or close_notify.
    if (pending == 0 || waiting_.empty()) {
      writing_ = false;
      auto waiting = std::move(waiting_);
      waiting_.clear();
      for (auto& w : waiting) w(asio::error_code());
      return;
    }
    writing_ = true;
    out_.resize(pending);
    const int n = BIO_read(wbio, out_.data(), static_cast<int>(pending));
    out_.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    // Those who waited for this output hear when it is written; later ones wait for more.
    auto batch = std::move(waiting_);
    waiting_.clear();
    asio::async_write(
        socket_, asio::buffer(out_),
        [this, batch = std::move(batch)](const asio::error_code& ec, std::size_t) mutable {
          if (ec) {
            writing_ = false;
            auto rest = std::move(waiting_);
            waiting_.clear();
            for (auto& w : batch) w(ec);
            for (auto& w : rest) w(ec);
            return;
          }
          for (auto& w : batch) w(ec);
          send_pending();
        });
  }

  tcp::socket& socket_;
  SSL* ssl_;
  bool bios_ok_ = false;
  bool writing_ = false;
  std::vector<unsigned char> in_;   // ciphertext read from the socket
  std::vector<unsigned char> out_;  // ciphertext being written to the socket
  std::vector<Done> waiting_;       // flushes waiting for the write BIO's bytes
};

// One TCP connection, plain or TLS. Handlers of the operations in flight hold a
// shared_ptr to it, so the socket and the TLS engine outlive them.
class Connection {
 public:
  explicit Connection(asio::io_context& io, std::size_t read_buffer)
      : read_buf(read_buffer), tcp_(io) {}

  tcp::socket& socket() { return tcp_; }
  TlsChannel* tls() { return tls_.get(); }
  SSL* ssl() { return tls_ ? tls_->native_handle() : nullptr; }
  // Takes ownership of `ssl` (freed with the channel).
  void start_tls(SSL* ssl) {
    tls_ = std::make_unique<TlsChannel>(tcp_, ssl, std::max(read_buf.size(), kTlsMinReadChunk));
  }

  // TCP: the buffers as one gather write.
  template <class Buffers, class Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    asio::async_write(tcp_, buffers, std::forward<Handler>(handler));
  }
  // TLS: one contiguous buffer, encrypted as a whole.
  template <class Handler>
  void async_write_tls(asio::const_buffer buffer, Handler&& handler) {
    tls_->async_write(buffer, std::forward<Handler>(handler));
  }
  template <class Handler>
  void async_read_some(Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(asio::buffer(read_buf), std::forward<Handler>(handler));
    } else {
      tcp_.async_read_some(asio::buffer(read_buf), std::forward<Handler>(handler));
    }
  }
  // Reads what has already arrived, without waiting (the socket is made non-blocking).
  std::size_t read_available(asio::error_code& ec) {
    socket().non_blocking(true, ec);
    if (ec) return 0;
    return tls_ ? tls_->read_available(asio::buffer(read_buf), ec)
                : tcp_.read_some(asio::buffer(read_buf), ec);
  }

  // Bytes written to the socket that the peer has not acknowledged yet (SIOCOUTQ).
  std::optional<std::size_t> unacked_bytes() {
    if (!socket().is_open()) return std::nullopt;
    int n = 0;
    if (::ioctl(socket().native_handle(), SIOCOUTQ, &n) != 0 || n < 0) return std::nullopt;
    return static_cast<std::size_t>(n);
  }

  void close() {
    asio::error_code ignored;
    socket().close(ignored);
  }

  // Ends the connection from our side without waiting for anything: TLS close_notify
  // (RFC 8446 §6.1: the closing side need not wait for the peer's), unread bytes
  // discarded so the kernel ends with FIN rather than RST, then close. Synchronous on
  // purpose: between a collector's last read and its close no more bytes may be ACKed
  // and then thrown away, and asio cannot read again after EOF while an
  // async_shutdown waits for the peer's close_notify (the read never completes).
  void close_gracefully() {
    asio::error_code ec;
    socket().non_blocking(true, ec);
    if (tls_ && !ec) {
      tls_->close_notify(ec);
      ERR_clear_error();
    }
    std::array<char, 4096> sink{};
    for (int i = 0; i < 64 && socket().is_open(); ++i) {
      if (::recv(socket().native_handle(), sink.data(), sink.size(), MSG_DONTWAIT) <= 0) break;
    }
    socket().shutdown(tcp::socket::shutdown_both, ec);
    close();
  }

  std::vector<std::byte> read_buf;
  std::vector<std::byte> staging;          // TLS: the batch as one buffer
  std::vector<asio::const_buffer> gather;  // TCP: the batch as a buffer list

 private:
  tcp::socket tcp_;
  std::unique_ptr<TlsChannel> tls_;  // declared after tcp_: destroyed before it
};

// ---------------------------------------------------------------------------------------
// Sender

class StreamSenderCore : public std::enable_shared_from_this<StreamSenderCore> {
 public:
  StreamSenderCore(asio::io_context& io, Endpoint endpoint, const SenderOptions& options,
                   std::shared_ptr<const TlsContext> tls)
      : io_(io),
        endpoint_(std::move(endpoint)),
        options_(options),
        tls_(std::move(tls)),
        resolver_(io),
        timer_(io),
        ack_timer_(io),
        shutdown_timer_(io),
        queue_(options.queue_limit_bytes),
        backoff_(options),
        drops_(io, "export to " + endpoint_.text, options.queue_limit_bytes) {}

  void start() {
    asio::post(io_, [self = shared_from_this()] { self->attempt(); });
  }

  const Endpoint& endpoint() const { return endpoint_; }

  void send(Message message) {
    if (state_ == State::closed) {
      count_drop({1, message.size()}, "the sender is shut down");
      return;
    }
    count_drop(queue_.push_back({std::move(message), false}), "the export queue is full");
    pump();
  }

  void set_on_connect(OnConnectHook hook) {
    hook_ = std::move(hook);
    // Already connected (the hook came late): its messages still go before later data.
    if (state_ == State::connected && hook_) {
      for (auto& m : hook_messages(hook_)) hook_pending_.push_back(std::move(m));
      pump();
    }
  }

  void shutdown(milliseconds timeout, std::function<void(bool)> done) {
    if (state_ == State::closed) {
      const bool ok = queue_.empty();
      asio::post(io_, [done = std::move(done), ok] {
        if (done) done(ok);
      });
      return;
    }
    done_ = std::move(done);
    shutting_down_ = true;
    if (state_ != State::connected && queue_.empty()) {
      // Nothing to deliver and no connection to close.
      asio::post(io_, [self = shared_from_this()] {
        if (self->state_ != State::connected && self->queue_.empty()) self->finish(true);
      });
      return;
    }
    shutdown_timer_.expires_after(timeout);
    shutdown_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->on_shutdown_timeout();
    });
    if (state_ == State::waiting) {
      // No point waiting out the backoff: try now, the deadline bounds it.
      timer_.cancel();
      asio::post(io_, [self = shared_from_this(), gen = gen_] {
        if (gen == self->gen_ && self->state_ == State::waiting) self->attempt();
      });
    } else {
      if (state_ == State::connected) arm_ack_timer();  // poll faster from now on
      asio::post(io_, [self = shared_from_this()] { self->check_flushed(); });
    }
  }

  SenderStats stats() const {
    SenderStats s = stats_with_queue(stats_, queue_);
    s.connected = state_ == State::connected;
    return s;
  }

  // The Sender object went away: stop everything; no callback runs afterwards.
  void stop() {
    done_ = nullptr;
    close_all();
    stop_reporting();
  }

 private:
  enum class State : std::uint8_t { waiting, connecting, connected, closed };

  // ---- connecting ----

  void attempt() {
    if (state_ == State::closed) return;
    state_ = State::connecting;
    const std::uint64_t gen = ++gen_;
    timed_out_ = false;
    conn_ = std::make_shared<Connection>(io_, kSenderReadBuffer);
    timer_.expires_after(options_.connect_timeout);
    timer_.async_wait([self = shared_from_this(), gen](const asio::error_code& ec) {
      if (ec || gen != self->gen_) return;
      // SPEC §4: connect and handshake are bounded; cancelling makes them fail.
      self->timed_out_ = true;
      self->resolver_.cancel();
      if (self->conn_) self->conn_->close();
    });
    resolver_.async_resolve(
        endpoint_.host, std::to_string(endpoint_.port), tcp::resolver::numeric_service,
        [self = shared_from_this(), gen](const asio::error_code& ec,
                                         const tcp::resolver::results_type& results) {
          if (gen != self->gen_) return;
          if (ec || results.empty()) {
            self->attempt_failed(self->timed_out_ ? "name resolution timed out"
                                                  : "cannot resolve " + self->endpoint_.host +
                                                        ": " + (ec ? ec.message() : "no address"),
                                 std::nullopt);
            return;
          }
          self->connect(results, gen);
        });
  }

  void connect(const tcp::resolver::results_type& results, std::uint64_t gen) {
    auto conn = conn_;
    asio::async_connect(
        conn->socket(), results,
        [self = shared_from_this(), gen, conn](const asio::error_code& ec, const tcp::endpoint&) {
          if (gen != self->gen_) return;
          if (ec) {
            self->attempt_failed(self->timed_out_
                                     ? "connect timed out after " +
                                           std::to_string(self->options_.connect_timeout.count()) +
                                           " ms"
                                     : "cannot connect: " + ec.message(),
                                 std::nullopt);
            return;
          }
          self->set_socket_options(conn->socket());
          if (self->tls_) {
            self->handshake(conn, gen);
          } else {
            self->connected();
          }
        });
  }

  void set_socket_options(tcp::socket& s) {
    asio::error_code ignored;
    // We batch ourselves; Nagle would only delay the last message of a burst.
    s.set_option(tcp::no_delay(true), ignored);
    // A dead collector is noticed without traffic (keepalive) and while data waits
    // for ACKs (TCP_USER_TIMEOUT), so the sender reconnects instead of hanging.
    s.set_option(asio::socket_base::keep_alive(true), ignored);
    const int fd = s.native_handle();
    const int idle = 30, interval = 10, count = 3;
    const unsigned user_timeout_ms = 60000;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
  }

  void handshake(const std::shared_ptr<Connection>& conn, std::uint64_t gen) {
    // SPEC §3 exporter 1: SNI and the name checked are the host we dialled.
    SSL* ssl = tls_->new_ssl(endpoint_.host);
    if (ssl == nullptr) {
      ERR_clear_error();
      attempt_failed("cannot set up TLS for host " + endpoint_.host, TlsRefusal::other);
      return;
    }
    conn->start_tls(ssl);
    conn->tls()->async_handshake(
        asio::ssl::stream_base::client,
        [self = shared_from_this(), gen, conn](const asio::error_code& ec) {
          if (gen != self->gen_) return;
          if (ec) {
            const TlsRefusal r = classify(conn->ssl(), ec, self->timed_out_);
            self->attempt_failed("TLS handshake failed: " + std::string(describe(r)), r);
            return;
          }
          self->connected();
        });
  }

  // A connection attempt failed (refusal set: at the TLS level).
  void attempt_failed(const std::string& what, std::optional<TlsRefusal> refusal) {
    drop_connection();
    count_failure(what, refusal);
    retry_later();
  }

  void count_failure(const std::string& what, std::optional<TlsRefusal> refusal) {
    if (refusal) {
      ++stats_.handshake_failures;
    } else {
      ++stats_.connect_failures;
    }
    ++failures_in_row_;
    // Logged once per change of state, not once per attempt.
    if (what != last_failure_) {
      last_failure_ = what;
      log::warning(kComponent, "export to " + endpoint_.text + ": " + what +
                                   "; retrying with backoff up to " +
                                   std::to_string(options_.backoff_max.count()) + " ms");
    }
  }

  void retry_later() {
    if (state_ == State::closed) return;
    state_ = State::waiting;
    const milliseconds next = backoff_.next();
    const milliseconds delay = shutting_down_ ? std::min(next, options_.backoff_initial) : next;
    const std::uint64_t gen = gen_;
    timer_.expires_after(delay);
    timer_.async_wait([self = shared_from_this(), gen](const asio::error_code& ec) {
      if (ec || gen != self->gen_ || self->state_ != State::waiting) return;
      self->attempt();
    });
  }

  void connected() {
    timer_.cancel();
    state_ = State::connected;
    connected_at_ = Clock::now();
    written_on_conn_ = 0;
    confirmed_ = false;
    // The confirmation window covers a peer's refusal after our side of the handshake:
    // at least kConfirmWindow, and several round trips on a slow path.
    confirm_after_ = kConfirmWindow;
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(conn_->socket().native_handle(), IPPROTO_TCP, TCP_INFO, &info, &len) == 0) {
      confirm_after_ = std::max(confirm_after_, milliseconds(4 * info.tcpi_rtt / 1000));
    }
    timer_.expires_after(confirm_after_);
    timer_.async_wait([self = shared_from_this(), gen = gen_](const asio::error_code& ec) {
      if (!ec && gen == self->gen_) self->maybe_confirm();
    });
    // RFC 7011 §8: every new connection starts with the templates, before any data.
    hook_pending_ = hook_messages(hook_);
    read_loop(conn_, gen_);
    arm_ack_timer();
    pump();
  }

  // ---- connected ----

  void pump() {
    if (state_ != State::connected || writing_) return;
    if (hook_pending_.empty() && queue_.empty()) {
      check_flushed();
      return;
    }
    inflight_.clear();
    std::size_t bytes = 0;
    auto fits = [&](const QueuedMessage& m) {
      return inflight_.empty() ||
             (inflight_.size() < kMaxBatchMessages && bytes + m.data.size() <= kMaxBatchBytes);
    };
    while (!hook_pending_.empty() && fits(hook_pending_.front())) {
      bytes += hook_pending_.front().data.size();
      inflight_.push_back(std::move(hook_pending_.front()));
      hook_pending_.pop_front();
    }
    while (hook_pending_.empty() && !queue_.empty() && fits(queue_.front())) {
      bytes += queue_.front().data.size();
      inflight_.push_back(queue_.take_front());
    }
    writing_ = true;
    auto conn = conn_;
    auto done = [self = shared_from_this(), gen = gen_, conn](
                    const asio::error_code& ec, std::size_t n) { self->written(gen, ec, n); };
    if (conn->tls() != nullptr) {
      // One contiguous buffer: full records, all sent with one socket write.
      conn->staging.clear();
      conn->staging.reserve(bytes);
      for (const auto& m : inflight_)
        conn->staging.insert(conn->staging.end(), m.data.begin(), m.data.end());
      conn->async_write_tls(asio::buffer(conn->staging), std::move(done));
    } else {
      conn->gather.clear();
      for (const auto& m : inflight_) conn->gather.push_back(asio::buffer(m.data));
      conn->async_write(conn->gather, std::move(done));
    }
  }

  void written(std::uint64_t gen, const asio::error_code& ec, std::size_t n) {
    if (gen != gen_) return;  // that connection is gone; connection_lost() took the batch
    writing_ = false;
    if (ec) {
      connection_lost(error_text(ec), std::nullopt);
      return;
    }
    stats_.messages_sent += inflight_.size();
    stats_.bytes_sent += n;
    written_on_conn_ += n;
    maybe_confirm();
    for (auto& m : inflight_) {
      unacked_bytes_ += m.data.size();
      unacked_.push_back(std::move(m));
    }
    inflight_.clear();
    trim_unacked();
    pump();
  }

  // The connection counts as made (connects, the "connected" log line, failures reset)
  // once the peer had time to refuse it; before that a break is a failed attempt.
  void maybe_confirm() {
    if (confirmed_ || state_ != State::connected) return;
    if (Clock::now() - connected_at_ < confirm_after_ && written_on_conn_ < kConfirmMaxBytes)
      return;
    confirmed_ = true;
    ++stats_.connects;
    std::string how;
    if (failures_in_row_ > 0) {
      how = " after " + std::to_string(failures_in_row_) + " failed attempts";
    }
    log::info(kComponent,
              "export to " + endpoint_.text + ": connected" + how +
                  (tls_ ? std::string(" (") + SSL_get_version(conn_->ssl()) + ")" : std::string()));
    failures_in_row_ = 0;
    last_failure_.clear();
    trim_unacked();
    check_flushed();
  }

  bool confirmed() const { return confirmed_; }

  // Keeps only the messages that cover the bytes the peer has not ACKed yet.
  void trim_unacked() {
    if (!conn_ || unacked_.empty() || !confirmed()) return;
    const auto outq = conn_->unacked_bytes();
    if (!outq) return;
    std::size_t keep = *outq;
    if (tls_ && keep > 0) keep += kTlsRecordPlaintext + kTlsRecordOverhead;
    while (!unacked_.empty() && unacked_bytes_ - unacked_.front().data.size() >= keep) {
      unacked_bytes_ -= unacked_.front().data.size();
      unacked_.pop_front();
    }
  }

  void arm_ack_timer() {
    ack_timer_.expires_after(shutting_down_ ? kShutdownAckPoll : kAckPoll);
    ack_timer_.async_wait([self = shared_from_this(), gen = gen_](const asio::error_code& ec) {
      if (ec || gen != self->gen_ || self->state_ != State::connected) return;
      self->trim_unacked();
      self->check_flushed();
      if (self->state_ == State::connected && gen == self->gen_) self->arm_ack_timer();
    });
  }

  void read_loop(const std::shared_ptr<Connection>& conn, std::uint64_t gen) {
    // Collectors send nothing; reading notices a closed or reset connection at once
    // (and consumes TLS 1.3 session tickets).
    conn->async_read_some(
        [self = shared_from_this(), conn, gen](const asio::error_code& ec, std::size_t) {
          if (gen != self->gen_ || self->state_ != State::connected) return;
          if (ec) {
            self->connection_lost(error_text(ec), ec);
            return;
          }
          self->read_loop(conn, gen);
        });
  }

  // The established connection broke: re-queue what the peer may not have, reconnect.
  void connection_lost(const std::string& why, std::optional<asio::error_code> read_error) {
    const bool unconfirmed = !confirmed();
    const auto outq = unconfirmed ? std::nullopt : conn_->unacked_bytes();
    if (outq) trim_unacked_to(*outq);
    // An SSL alert right after the handshake: the peer refused our certificate (a TLS 1.3
    // server checks it after our side already finished).
    std::optional<TlsRefusal> refusal;
    if (tls_ && unconfirmed) {
      refusal = read_error && is_ssl_error(*read_error) ? classify(conn_->ssl(), *read_error, false)
                                                        : TlsRefusal::connection_closed;
    }
    std::vector<QueuedMessage> again;
    for (auto& m : unacked_) {
      if (!m.from_hook) again.push_back(std::move(m));
    }
    for (auto& m : inflight_) {
      if (!m.from_hook) again.push_back(std::move(m));
    }
    unacked_.clear();
    unacked_bytes_ = 0;
    inflight_.clear();
    hook_pending_.clear();
    writing_ = false;
    const std::size_t resent = again.size();
    stats_.messages_resent += resent;
    count_drop(queue_.push_front(std::move(again)), "the export queue is full");
    const auto lived = Clock::now() - connected_at_;
    if (lived >= std::min<milliseconds>(options_.backoff_max, kStableConnection)) {
      backoff_.reset();
    }
    drop_connection();
    if (unconfirmed) {
      // Refused right after it was made (TLS 1.3 client certificate checks, --tls-peer,
      // a collector at its session cap): a failed attempt, logged once, not a lost link.
      count_failure(
          refusal && *refusal != TlsRefusal::connection_closed
              ? "TLS session refused by the collector: " + std::string(describe(*refusal))
              : "the collector closed the connection right after accepting it (" + why + ")",
          refusal);
    } else {
      log::warning(kComponent, "export to " + endpoint_.text + ": connection lost (" + why + "); " +
                                   std::to_string(resent) + " messages will be sent again");
    }
    retry_later();
  }

  void trim_unacked_to(std::size_t outq) {
    std::size_t keep = outq;
    if (tls_ && keep > 0) keep += kTlsRecordPlaintext + kTlsRecordOverhead;
    while (!unacked_.empty() && unacked_bytes_ - unacked_.front().data.size() >= keep) {
      unacked_bytes_ -= unacked_.front().data.size();
      unacked_.pop_front();
    }
  }

  // Closes the current connection (if any) and makes its pending handlers stale.
  void drop_connection() {
    ++gen_;
    timer_.cancel();
    ack_timer_.cancel();
    resolver_.cancel();
    if (conn_) conn_->close();
    conn_.reset();
    writing_ = false;
  }

  // ---- shutdown ----

  // Shutdown: once everything is written and the peer has ACKed every byte, close
  // cleanly (TLS close_notify) and report success.
  void check_flushed() {
    if (!shutting_down_ || state_ != State::connected || writing_ || !queue_.empty() ||
        !hook_pending_.empty()) {
      return;
    }
    // Not before the peer had its chance to refuse the session (see maybe_confirm).
    if (!confirmed_) return;
    const auto outq = conn_->unacked_bytes();
    if (!outq || *outq > 0) return;  // the ack timer polls again
    // Everything is acknowledged by the peer: close_notify, close, report success.
    conn_->close_gracefully();
    finish(true);
  }

  void on_shutdown_timeout() {
    if (!done_ || state_ == State::closed) return;
    std::size_t left = queue_.user_messages();
    for (const auto& m : inflight_) left += m.from_hook ? 0 : 1;
    for (const auto& m : unacked_) left += m.from_hook ? 0 : 1;
    log::warning(kComponent, "export to " + endpoint_.text + ": shutdown timed out, " +
                                 std::to_string(left) + " messages not delivered");
    finish(false);
  }

  void finish(bool ok) {
    auto done = std::move(done_);
    done_ = nullptr;
    close_all();
    if (done) done(ok);
  }

  void close_all() {
    drop_connection();
    state_ = State::closed;
    shutdown_timer_.cancel();
  }

  // The Sender is gone: also silence the drop reporter.
  void stop_reporting() { drops_.cancel(); }

  void count_drop(Dropped d, std::string_view why) {
    if (!count_dropped(stats_, d)) return;
    drops_.report(d, stats_.messages_dropped, why, shared_from_this());
  }

  asio::io_context& io_;
  Endpoint endpoint_;
  SenderOptions options_;
  std::shared_ptr<const TlsContext> tls_;  // null for tcp
  tcp::resolver resolver_;
  asio::steady_timer timer_;  // connect deadline, backoff, confirmation
  asio::steady_timer ack_timer_;
  asio::steady_timer shutdown_timer_;
  std::shared_ptr<Connection> conn_;
  std::uint64_t gen_ = 0;  // handlers of an older connection/attempt ignore themselves
  State state_ = State::waiting;
  bool timed_out_ = false;
  bool writing_ = false;
  bool shutting_down_ = false;

  MessageQueue queue_;
  std::deque<QueuedMessage> hook_pending_;  // this connection's templates, not yet written
  std::vector<QueuedMessage> inflight_;     // the batch being written
  std::deque<QueuedMessage> unacked_;       // written, not known to be ACKed
  std::size_t unacked_bytes_ = 0;
  std::size_t written_on_conn_ = 0;
  Clock::time_point connected_at_{};
  milliseconds confirm_after_ = kConfirmWindow;
  bool confirmed_ = false;

  OnConnectHook hook_;
  std::function<void(bool)> done_;
  Backoff backoff_;
  std::uint64_t failures_in_row_ = 0;
  std::string last_failure_;
  SenderStats stats_;
  DropReporter drops_;
};

class StreamSender final : public Sender {
 public:
  explicit StreamSender(std::shared_ptr<StreamSenderCore> core) : core_(std::move(core)) {}
  ~StreamSender() override {
    try {
      core_->stop();
    } catch (...) {  // a destructor must not throw; stopping is best effort
    }
  }
  StreamSender(const StreamSender&) = delete;
  StreamSender& operator=(const StreamSender&) = delete;

  const Endpoint& endpoint() const override { return core_->endpoint(); }
  void send(Message message) override { core_->send(std::move(message)); }
  void set_on_connect(std::function<std::vector<Message>()> hook) override {
    core_->set_on_connect(std::move(hook));
  }
  void shutdown(milliseconds timeout, std::function<void(bool)> done) override {
    core_->shutdown(timeout, std::move(done));
  }
  SenderStats stats() const override { return core_->stats(); }

 private:
  std::shared_ptr<StreamSenderCore> core_;
};

// ---------------------------------------------------------------------------------------
// Listener

class StreamListenerCore;

class StreamSession : public std::enable_shared_from_this<StreamSession> {
 public:
  StreamSession(asio::io_context& io, std::shared_ptr<StreamListenerCore> core, SessionInfo info,
                std::shared_ptr<const TlsContext> tls)
      : core_(std::move(core)),
        conn_(std::make_shared<Connection>(io, kListenerReadBuffer)),
        info_(std::move(info)),
        tls_(std::move(tls)),
        timer_(io) {}

  tcp::socket& socket() { return conn_->socket(); }
  void start();
  // Ends the session from our side (handler, idle, listener close): the handler hears
  // on_session_close(reason) if it saw the session open; TLS sends close_notify.
  void close_local(std::string_view reason);
  // Listener close: hand over what the kernel already holds, then close_local().
  void drain_and_close();

 private:
  void handshake();
  void refuse(TlsRefusal reason);
  void open();
  void read();
  void arm_idle();
  void closed_by_peer(const std::string& reason);
  void release();

  std::shared_ptr<StreamListenerCore> core_;
  std::shared_ptr<Connection> conn_;
  SessionInfo info_;
  std::shared_ptr<const TlsContext> tls_;  // the context this session's SSL came from
  asio::steady_timer timer_;               // handshake deadline, then idle checks
  Clock::time_point last_activity_{};
  bool timed_out_ = false;
  bool opened_ = false;
  bool closed_ = false;
};

class StreamListenerCore : public std::enable_shared_from_this<StreamListenerCore> {
 public:
  StreamListenerCore(asio::io_context& io, Endpoint endpoint, const ListenerOptions& options,
                     ListenerHandler& handler, std::shared_ptr<TlsContextSource> tls)
      : io_(io),
        endpoint_(std::move(endpoint)),
        options_(options),
        handler_(&handler),
        tls_(std::move(tls)),
        acceptor_(io),
        retry_timer_(io) {}

  Expected<void, std::string> open() {
    auto bound = bind_listener<tcp>(
        io_, endpoint_, [this](const tcp::endpoint& ep, bool dual_stack, asio::error_code& ec) {
          bind_to(ep, dual_stack, ec);
        });
    if (!bound) return bound;
    asio::error_code ec;
    local_port_ = acceptor_.local_endpoint(ec).port();
    return {};
  }

  void start() { accept(); }

  const Endpoint& endpoint() const { return endpoint_; }
  std::uint16_t local_port() const { return local_port_; }
  ListenerStats stats() const { return stats_with_sessions(stats_, sessions_.size()); }
  Expected<void, std::string> reload_tls() {
    if (!tls_) return {};
    auto r = tls_->reload();
    if (r) log::info(kComponent, "listen " + endpoint_.text + ": TLS files reloaded");
    return r;
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
    auto sessions = std::move(sessions_);
    sessions_.clear();
    for (auto& [id, session] : sessions) session->drain_and_close();
    handler_ = nullptr;  // nothing is called after close()
  }

  // For sessions.
  ListenerHandler* handler() { return handler_; }
  ListenerStats& counters() { return stats_; }
  const ListenerOptions& options() const { return options_; }
  void remove(std::uint64_t id) { sessions_.erase(id); }

  void log_refusal(const SessionInfo& info, TlsRefusal reason) {
    warn_rate_limited(refusal_log_, "listen " + endpoint_.text + ": refused TLS session from " +
                                        peer_text(info.peer_address, info.peer_port) + ": " +
                                        std::string(describe(reason)));
  }

 private:
  void bind_to(const tcp::endpoint& ep, bool dual_stack, asio::error_code& ec) {
    asio::error_code ignored;
    acceptor_.close(ignored);
    acceptor_.open(ep.protocol(), ec);
    if (ec) return;
    if (dual_stack) acceptor_.set_option(asio::ip::v6_only(false), ec);
    // A restarted collector binds its port again while old connections sit in TIME_WAIT.
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) acceptor_.close(ignored);
  }

  void accept() {
    acceptor_.async_accept([self = shared_from_this()](const asio::error_code& ec,
                                                       tcp::socket socket) {
      if (self->closed_) return;
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
        // EMFILE and friends: say so, breathe, go on accepting.
        warn_rate_limited(self->error_log_,
                          "listen " + self->endpoint_.text + ": accept failed: " + ec.message());
        self->retry_timer_.expires_after(milliseconds(100));
        self->retry_timer_.async_wait([self](const asio::error_code& tec) {
          if (!tec && !self->closed_) self->accept();
        });
        return;
      }
      self->accepted(std::move(socket));
      if (!self->closed_) self->accept();
    });
  }

  void accepted(tcp::socket socket) {
    asio::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    SessionInfo info;
    info.scheme = endpoint_.scheme;
    info.peer_address = to_ip_address(remote.address());
    info.peer_port = remote.port();
    if (session_cap_reached(sessions_.size(), options_, stats_)) {
      // SPEC §9: handshaking sessions count too.
      warn_rate_limited(cap_log_, "listen " + endpoint_.text + ": refused connection from " +
                                      peer_text(info.peer_address, info.peer_port) + ": " +
                                      std::to_string(options_.max_sessions) +
                                      " sessions already open");
      asio::error_code ignored;
      socket.close(ignored);
      return;
    }
    info.id = next_session_id();
    ++stats_.sessions_accepted;
    auto session = std::make_shared<StreamSession>(io_, shared_from_this(), info,
                                                   tls_ ? tls_->current() : nullptr);
    session->socket() = std::move(socket);
    sessions_.emplace(info.id, session);
    session->start();
  }

  asio::io_context& io_;
  Endpoint endpoint_;
  ListenerOptions options_;
  ListenerHandler* handler_;
  std::shared_ptr<TlsContextSource> tls_;  // null for tcp
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  std::map<std::uint64_t, std::shared_ptr<StreamSession>> sessions_;
  ListenerStats stats_;
  log::RateLimiter refusal_log_{20, std::chrono::seconds(10)};
  log::RateLimiter cap_log_{5, std::chrono::seconds(10)};
  log::RateLimiter error_log_{5, std::chrono::seconds(10)};
  std::uint16_t local_port_ = 0;
  bool closed_ = false;
};

void StreamSession::start() {
  if (tls_) {
    handshake();
  } else {
    open();
  }
}

void StreamSession::handshake() {
  SSL* ssl = tls_->new_ssl();
  if (ssl == nullptr) {
    ERR_clear_error();
    refuse(TlsRefusal::other);
    return;
  }
  conn_->start_tls(ssl);
  // SPEC §3.4: a handshake must finish in time; a silent or stalled client is cut off
  // and affects nobody else.
  timer_.expires_after(core_->options().handshake_timeout);
  timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (ec || self->opened_ || self->closed_) return;
    self->timed_out_ = true;
    self->conn_->close();
  });
  conn_->tls()->async_handshake(
      asio::ssl::stream_base::server, [self = shared_from_this()](const asio::error_code& ec) {
        if (self->closed_) return;
        self->timer_.cancel();
        if (ec) {
          self->refuse(classify(self->conn_->ssl(), ec, self->timed_out_));
          return;
        }
        // RFC 7011 §11.3 / SPEC §3 collector 2: a valid certificate must also be on
        // the --tls-peer list.
        if (!peer_allowed(self->conn_->ssl(), self->tls_->settings().peers)) {
          self->refuse(TlsRefusal::not_on_allow_list);
          return;
        }
        ++self->core_->counters().handshakes_ok;
        self->info_.tls_identity = peer_identity(self->conn_->ssl());
        self->open();
      });
}

void StreamSession::refuse(TlsRefusal reason) {
  auto self = shared_from_this();
  ++core_->counters().handshakes_refused[static_cast<std::size_t>(reason)];
  core_->log_refusal(info_, reason);
  closed_ = true;
  timer_.cancel();
  conn_->close();
  release();
}

void StreamSession::open() {
  auto* handler = core_->handler();
  if (handler == nullptr) return;
  opened_ = true;
  handler->on_session_open(info_);
  if (closed_) return;  // the handler closed the listener
  last_activity_ = Clock::now();
  arm_idle();
  read();
}

void StreamSession::read() {
  conn_->async_read_some([self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
    if (self->closed_) return;
    if (n > 0) {
      auto* handler = self->core_->handler();
      if (handler == nullptr) return;
      self->last_activity_ = Clock::now();
      self->core_->counters().bytes += n;
      const bool keep = handler->on_data(
          self->info_, std::span<const std::byte>(self->conn_->read_buf.data(), n));
      if (self->closed_) return;
      if (!keep) {
        self->close_local("closed by the collector");
        return;
      }
    }
    if (ec) {
      self->closed_by_peer(error_text(ec));
      return;
    }
    self->read();
  });
}

void StreamSession::arm_idle() {
  // SPEC §3.4: a session idle for idle_timeout is closed.
  timer_.expires_at(last_activity_ + core_->options().idle_timeout);
  timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (ec || self->closed_) return;
    if (Clock::now() - self->last_activity_ >= self->core_->options().idle_timeout) {
      ++self->core_->counters().sessions_idle_closed;
      self->close_local("idle");
      return;
    }
    self->arm_idle();
  });
}

void StreamSession::closed_by_peer(const std::string& reason) {
  auto self = shared_from_this();
  closed_ = true;
  timer_.cancel();
  conn_->close();
  if (auto* handler = core_->handler(); handler != nullptr && opened_) {
    handler->on_session_close(info_, reason);
  }
  release();
}

void StreamSession::close_local(std::string_view reason) {
  if (closed_) return;
  auto self = shared_from_this();
  closed_ = true;
  timer_.cancel();
  if (auto* handler = core_->handler(); handler != nullptr && opened_) {
    handler->on_session_close(info_, reason);
  }
  release();
  conn_->close_gracefully();
}

void StreamSession::drain_and_close() {
  if (closed_) return;
  if (!opened_) {  // still in its handshake: nothing to deliver
    closed_ = true;
    timer_.cancel();
    conn_->close();
    return;
  }
  // Bytes the kernel has ACKed are gone from the exporter's retransmission window;
  // an orderly stop hands them over instead of discarding them.
  std::size_t total = 0;
  while (total < kMaxCloseDrain) {
    auto* handler = core_->handler();
    if (handler == nullptr) break;
    asio::error_code ec;
    const std::size_t n = conn_->read_available(ec);
    if (n > 0) {
      total += n;
      core_->counters().bytes += n;
      if (!handler->on_data(info_, std::span<const std::byte>(conn_->read_buf.data(), n))) break;
    }
    if (ec || n == 0) break;
  }
  close_local("listener closed");
}

void StreamSession::release() {
  core_->remove(info_.id);
}

class StreamListener final : public Listener {
 public:
  explicit StreamListener(std::shared_ptr<StreamListenerCore> core) : core_(std::move(core)) {}
  ~StreamListener() override {
    try {
      core_->close();
    } catch (...) {  // e.g. a handler's on_session_close threw; nothing left to do
    }
  }
  StreamListener(const StreamListener&) = delete;
  StreamListener& operator=(const StreamListener&) = delete;

  const Endpoint& endpoint() const override { return core_->endpoint(); }
  std::uint16_t local_port() const override { return core_->local_port(); }
  ListenerStats stats() const override { return core_->stats(); }
  Expected<void, std::string> reload_tls() override { return core_->reload_tls(); }
  void close() override { core_->close(); }

 private:
  std::shared_ptr<StreamListenerCore> core_;
};

}  // namespace

SenderResult make_stream_sender(asio::io_context& io, const Endpoint& e, const SenderOptions& o) {
  std::shared_ptr<const TlsContext> tls;
  if (e.scheme == Scheme::tls) {
    auto ctx = TlsContext::create(TlsRole::client, TlsProtocol::tls, o.tls);
    if (!ctx) return unexpected(e.text + ": " + ctx.error());
    tls = std::move(*ctx);
    if (o.tls.insecure) {
      log::warning(kComponent, "export to " + e.text +
                                   ": --tls-insecure: the collector's certificate is NOT "
                                   "verified (traffic is still encrypted)");
    }
  }
  auto core = std::make_shared<StreamSenderCore>(io, e, o, std::move(tls));
  core->start();
  return std::unique_ptr<Sender>(std::make_unique<StreamSender>(std::move(core)));
}

ListenerResult make_stream_listener(asio::io_context& io, const Endpoint& e,
                                    const ListenerOptions& o, ListenerHandler& h) {
  std::shared_ptr<TlsContextSource> tls;
  if (e.scheme == Scheme::tls) {
    auto source = TlsContextSource::create(TlsRole::server, TlsProtocol::tls, o.tls);
    if (!source) return unexpected(e.text + ": " + source.error());
    tls = std::move(*source);
  }
  auto core = std::make_shared<StreamListenerCore>(io, e, o, h, std::move(tls));
  if (auto r = core->open(); !r) return unexpected(std::move(r.error()));
  core->start();
  return std::unique_ptr<Listener>(std::make_unique<StreamListener>(std::move(core)));
}

}  // namespace flowsec::transport::detail
