// SCTP (RFC 4960) for export and collection (SPEC §3), with the lksctp socket API
// (libsctp-dev): one-to-one style sockets, SOCK_STREAM + IPPROTO_SCTP, driven by asio
// through its generic stream protocol.
//
// RFC 7011 §10.2 lets an exporter send everything on one stream with ordered delivery,
// which makes the association a byte stream of IPFIX messages exactly like TCP: the
// sender asks for one outbound stream and sends each message with sctp_send() on stream
// 0; the listener delivers what it reads as a stream (the caller frames it by the IPFIX
// length field, RFC 7011 §10). sctp_send() rather than sctp_sendmsg(): it passes send
// flags through, so MSG_NOSIGNAL keeps a broken association from raising SIGPIPE.
//
// Where the kernel has no SCTP (socket() fails with EPROTONOSUPPORT) creation fails with
// one line that says so (SPEC §3) — checked before anything else is set up.
//
// Sender (SPEC §4, as the stream sender): non-blocking connect bounded by
// connect_timeout, backoff 1 s doubling to 30 s, the bounded queue with drop-oldest
// counted and logged, the on_connect hook's messages (templates, RFC 7011 §8) first after
// every (re)connection. SCTP acknowledges DATA chunks: after each batch of sends the
// sender asks SCTP_STATUS how many chunks are still unacknowledged or pending and keeps at
// least that many of the last messages sent (a message is one chunk or more); when the
// association breaks they are queued again, so duplicates are possible, loss is not.
// shutdown() sends everything, then shutdown(SHUT_WR): SCTP's graceful SHUTDOWN completes
// only when every DATA chunk was acknowledged, and the sender then reads EOF.
//
// Listener: accept, read, deliver; idle timeout and max_sessions as for TCP.
#include <netinet/in.h>
#include <netinet/sctp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/basic_socket_acceptor.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/log.hpp"
#include "transport/detail/factories.hpp"
#include "transport/detail/io_support.hpp"

namespace flowsec::transport::detail {
namespace {

using Proto = asio::generic::stream_protocol;
using Acceptor = asio::basic_socket_acceptor<Proto>;
using asio::ip::tcp;  // name resolution only
using Clock = std::chrono::steady_clock;

constexpr std::string_view kComponent = "transport";
constexpr std::size_t kReadBuffer = 65536;
constexpr std::chrono::milliseconds kAckCheck{200};  // sender: look at SCTP_STATUS again

// SPEC §3: "where the kernel lacks SCTP, the start-up error says so".
Expected<void, std::string> check_kernel_sctp(const Endpoint& e, int family) {
  const int fd = ::socket(family, SOCK_STREAM, IPPROTO_SCTP);
  if (fd >= 0) {
    ::close(fd);
    return {};
  }
  const int err = errno;
  if (err == EPROTONOSUPPORT || err == ESOCKTNOSUPPORT) {
    return unexpected(e.text + ": this kernel has no SCTP support (socket: " + errno_text(err) +
                      "); load the sctp module or use tls://");
  }
  return unexpected(e.text + ": cannot create an SCTP socket (socket: " + errno_text(err) + ")");
}

Proto sctp_protocol(int family) {
  return Proto(family, IPPROTO_SCTP);
}

Proto::endpoint to_generic(const tcp::endpoint& ep) {
  return Proto::endpoint(ep.data(), ep.size(), IPPROTO_SCTP);
}

struct PeerAddress {
  IpAddress address;
  std::uint16_t port = 0;
};

PeerAddress from_generic(const Proto::endpoint& ep) {
  PeerAddress p;
  if (ep.data()->sa_family == AF_INET && ep.size() >= sizeof(sockaddr_in)) {
    sockaddr_in sin{};
    std::memcpy(&sin, ep.data(), sizeof sin);
    p.address = IpAddress::v4(ntohl(sin.sin_addr.s_addr));
    p.port = ntohs(sin.sin_port);
  } else if (ep.data()->sa_family == AF_INET6 && ep.size() >= sizeof(sockaddr_in6)) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, ep.data(), sizeof sin6);
    asio::ip::address_v6::bytes_type b{};
    std::memcpy(b.data(), &sin6.sin6_addr, b.size());
    p.address = to_ip_address(asio::ip::address_v6(b));
    p.port = ntohs(sin6.sin6_port);
  }
  return p;
}

// ---------------------------------------------------------------------------------------
// Sender

class SctpSenderCore : public std::enable_shared_from_this<SctpSenderCore> {
 public:
  SctpSenderCore(asio::io_context& io, Endpoint endpoint, const SenderOptions& options)
      : io_(io),
        endpoint_(std::move(endpoint)),
        options_(options),
        resolver_(io),
        socket_(io),
        timer_(io),
        backoff_timer_(io),
        shutdown_timer_(io),
        queue_(options.queue_limit_bytes),
        backoff_(options),
        rx_(4096) {}

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
    write_more();
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
      log::warning(kComponent,
                   "shutdown of " + self->endpoint_.text + " timed out: " +
                       std::to_string(self->queue_.user_messages() + self->unacked_.size()) +
                       " messages not known to be delivered");
      self->finish(false);
    });
    asio::post(io_, [self = shared_from_this()] { self->check_shutdown(); });
  }

  SenderStats stats() const { return stats_with_queue(stats_, queue_); }

  void stop() {
    done_ = nullptr;
    hook_ = nullptr;
    halt();
  }

 private:
  enum class State { idle, resolving, connecting, connected, closing, waiting, stopped };

  void resolve() {
    state_ = State::resolving;
    resolver_.async_resolve(
        endpoint_.host, std::to_string(endpoint_.port), tcp::resolver::numeric_service,
        [self = shared_from_this()](const asio::error_code& ec, tcp::resolver::results_type r) {
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

  void try_next_target() {
    tcp::endpoint target;
    if (!targets_.take_next(target)) {
      schedule_retry();
      return;
    }
    connect_to(target);
  }

  void connect_to(const tcp::endpoint& target) {
    asio::error_code ec;
    socket_.open(sctp_protocol(target.protocol().family()), ec);
    if (!ec) {
      // RFC 7011 §10.2: one stream with ordered delivery carries the whole export.
      sctp_initmsg init{};
      init.sinit_num_ostreams = 1;
      init.sinit_max_instreams = 1;
      (void)::setsockopt(socket_.native_handle(), IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof init);
      socket_.non_blocking(true, ec);
    }
    if (ec) {
      ++stats_.connect_failures;
      note("cannot open an SCTP socket: " + ec.message());
      teardown();
      schedule_retry();
      return;
    }
    target_ = target;
    state_ = State::connecting;
    timed_out_ = false;
    timer_.expires_after(options_.connect_timeout);
    timer_.async_wait([self = shared_from_this(), gen = generation_](const asio::error_code& e) {
      if (e || gen != self->generation_ || self->state_ != State::connecting) return;
      self->timed_out_ = true;
      asio::error_code ignored;
      self->socket_.cancel(ignored);
    });
    socket_.async_connect(to_generic(target), [self = shared_from_this(),
                                               gen = generation_](const asio::error_code& e) {
      if (gen != self->generation_) return;
      self->on_connected(e);
    });
  }

  void on_connected(const asio::error_code& ec) {
    timer_.cancel();
    if (ec) {
      ++stats_.connect_failures;
      note("cannot connect to " + target_text() + ": " +
           (timed_out_ ? "timed out after " + seconds_text(options_.connect_timeout)
                       : ec.message()));
      teardown();
      try_next_target();
      return;
    }
    state_ = State::connected;
    ++stats_.connects;
    stats_.connected = true;
    backoff_.reset();
    log::info(kComponent,
              "export to " + endpoint_.text + ": SCTP association with " + target_text());
    first_ = hook_messages(hook_);  // RFC 7011 §8: templates first
    receive();
    write_more();
  }

  std::string target_text() const {
    return peer_text(to_ip_address(target_.address()), target_.port());
  }

  // Sends until the socket is full or nothing is left; one sctp_send per message.
  void write_more() {
    while (state_ == State::connected && !waiting_write_) {
      const bool hook = !first_.empty();
      if (!hook && queue_.empty()) break;
      const Message& m = hook ? first_.front().data : queue_.front().data;
      sctp_sndrcvinfo info{};
      info.sinfo_stream = 0;  // RFC 7011 §10.2: stream 0, ordered
      const int n = sctp_send(socket_.native_handle(), m.data(), m.size(), &info,
                              MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0 && static_cast<std::size_t>(n) == m.size()) {
        ++stats_.messages_sent;
        stats_.bytes_sent += m.size();
        if (hook) {
          first_.pop_front();
        } else {
          unacked_.push_back(queue_.take_front());
        }
        continue;
      }
      const int err = n < 0 ? errno : EIO;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        wait_writable();
        break;
      }
      if (err == EMSGSIZE) {  // larger than the socket buffer: it can never be sent
        const std::size_t size = m.size();
        if (hook) {
          first_.pop_front();
        } else {
          (void)queue_.take_front();
        }
        count_drop({1, size}, "a message of " + std::to_string(size) + " bytes is too large");
        continue;
      }
      connection_lost(errno_text(err));
      return;
    }
    trim_unacked();
    check_shutdown();
  }

  void wait_writable() {
    waiting_write_ = true;
    socket_.async_wait(Proto::socket::wait_write,
                       [self = shared_from_this(), gen = generation_](const asio::error_code& ec) {
                         if (gen != self->generation_) return;
                         self->waiting_write_ = false;
                         if (ec) return;
                         self->write_more();
                       });
  }

  // Keeps at least the messages SCTP has not seen acknowledged (see the file comment),
  // and looks again a little later while any are kept: acknowledgements arrive after the
  // sends, and a message already acknowledged should not be sent twice after a break.
  void trim_unacked() {
    if (state_ != State::connected || unacked_.empty()) return;
    sctp_status status{};
    socklen_t len = sizeof status;
    if (::getsockopt(socket_.native_handle(), IPPROTO_SCTP, SCTP_STATUS, &status, &len) != 0) {
      unacked_.clear();  // cannot know; never hold an unbounded list
      return;
    }
    const std::size_t keep =
        std::size_t{status.sstat_unackdata} + std::size_t{status.sstat_penddata};
    while (unacked_.size() > keep) unacked_.pop_front();
    if (!unacked_.empty() && !ack_check_armed_) {
      ack_check_armed_ = true;
      timer_.expires_after(kAckCheck);
      timer_.async_wait([self = shared_from_this(), gen = generation_](const asio::error_code& ec) {
        if (gen != self->generation_) return;
        self->ack_check_armed_ = false;
        if (!ec) self->trim_unacked();
      });
    }
  }

  // Collectors send nothing; a read tells us when the association ends.
  void receive() {
    socket_.async_receive(asio::buffer(rx_), [self = shared_from_this(), gen = generation_](
                                                 const asio::error_code& ec, std::size_t) {
      if (gen != self->generation_) return;
      if (!ec) {
        self->trim_unacked();
        self->receive();
        return;
      }
      if (ec == asio::error::operation_aborted) return;
      if (ec == asio::error::eof && self->state_ == State::closing) {
        self->unacked_.clear();  // a graceful SHUTDOWN means every chunk was acknowledged
        self->finish(true);
        return;
      }
      self->connection_lost(ec == asio::error::eof ? "the collector closed the association"
                                                   : ec.message());
    });
  }

  void connection_lost(const std::string& what) {
    note("SCTP association with " + target_text() + " ended: " + what + "; reconnecting in " +
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
    backoff_timer_.expires_after(backoff_.next());
    backoff_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->state_ != State::waiting) return;
      self->resolve();
    });
  }

  void teardown() {
    ++generation_;
    std::vector<QueuedMessage> again;
    for (auto& m : unacked_) again.push_back(std::move(m));
    unacked_.clear();
    first_.clear();
    if (!again.empty()) {
      stats_.messages_resent += again.size();
      count_drop(queue_.push_front(std::move(again)), "the export queue is full");
    }
    waiting_write_ = false;
    ack_check_armed_ = false;
    timer_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
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
    if (state_ == State::connected && queue_.empty() && first_.empty()) {
      state_ = State::closing;
      if (::shutdown(socket_.native_handle(), SHUT_WR) != 0) {
        connection_lost(errno_text(errno));
      }
    } else if ((state_ == State::waiting || state_ == State::resolving || state_ == State::idle) &&
               queue_.empty()) {
      finish(true);
    }
  }

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
  tcp::resolver resolver_;
  Proto::socket socket_;
  asio::steady_timer timer_;  // connect timeout, then the acknowledgement check
  asio::steady_timer backoff_timer_;
  asio::steady_timer shutdown_timer_;
  MessageQueue queue_;
  std::deque<QueuedMessage> first_;    // the hook's messages for this association
  std::deque<QueuedMessage> unacked_;  // sent, maybe not acknowledged yet
  OnConnectHook hook_;
  std::function<void(bool)> done_;
  ResolvedTargets<tcp::endpoint> targets_;
  tcp::endpoint target_;
  std::uint64_t generation_ = 0;
  State state_ = State::idle;
  Backoff backoff_;
  std::vector<std::byte> rx_;
  SenderStats stats_;
  log::RateLimiter drop_log_{5, std::chrono::seconds(10)};
  log::RateLimiter error_log_{5, std::chrono::seconds(10)};
  bool waiting_write_ = false;
  bool ack_check_armed_ = false;
  bool timed_out_ = false;
  bool shutting_down_ = false;
};

class SctpSender final : public Sender {
 public:
  explicit SctpSender(std::shared_ptr<SctpSenderCore> core) : core_(std::move(core)) {}
  ~SctpSender() override { core_->stop(); }
  SctpSender(const SctpSender&) = delete;
  SctpSender& operator=(const SctpSender&) = delete;

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
  std::shared_ptr<SctpSenderCore> core_;
};

// ---------------------------------------------------------------------------------------
// Listener

struct SctpSession {
  explicit SctpSession(Proto::socket s) : socket(std::move(s)), buffer(kReadBuffer) {}
  Proto::socket socket;
  SessionInfo info;
  std::vector<std::byte> buffer;
  Clock::time_point last_activity;
};

class SctpListenerCore : public std::enable_shared_from_this<SctpListenerCore> {
 public:
  SctpListenerCore(asio::io_context& io, Endpoint endpoint, const ListenerOptions& options,
                   ListenerHandler& handler)
      : io_(io),
        endpoint_(std::move(endpoint)),
        options_(options),
        handler_(&handler),
        acceptor_(io),
        sweep_timer_(io) {}

  Expected<void, std::string> open() {
    asio::error_code ec;
    tcp::endpoint where;
    bool dual_stack = false;
    if (endpoint_.host.empty()) {
      where = tcp::endpoint(tcp::v6(), endpoint_.port);
      dual_stack = true;
    } else {
      auto resolved = resolve_listen_address<tcp>(io_, endpoint_);
      if (!resolved) return unexpected(std::move(resolved.error()));
      where = *resolved;
    }
    if (auto r = check_kernel_sctp(endpoint_, where.protocol().family()); !r) {
      // Without IPv6, all addresses means IPv4 only.
      if (!dual_stack || !check_kernel_sctp(endpoint_, AF_INET)) return r;
      where = tcp::endpoint(tcp::v4(), endpoint_.port);
      dual_stack = false;
    }
    acceptor_.open(sctp_protocol(where.protocol().family()), ec);
    if (!ec) acceptor_.set_option(Acceptor::reuse_address(true), ec);
    if (!ec && dual_stack) {
      const int off = 0;
      (void)::setsockopt(acceptor_.native_handle(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    if (!ec) acceptor_.bind(to_generic(where), ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return unexpected("cannot listen on " + endpoint_.text + ": " + ec.message());
    local_port_ = from_generic(acceptor_.local_endpoint(ec)).port;
    return {};
  }

  void start() {
    accept();
    arm_sweep();
  }

  const Endpoint& endpoint() const { return endpoint_; }
  std::uint16_t local_port() const { return local_port_; }
  ListenerStats stats() const { return stats_with_sessions(stats_, sessions_.size()); }

  void close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    acceptor_.close(ignored);
    sweep_timer_.cancel();
    auto sessions = std::move(sessions_);
    sessions_.clear();
    for (auto& [id, s] : sessions) {
      s->socket.close(ignored);
      handler_->on_session_close(s->info, "listener closed");
    }
  }

 private:
  using SessionPtr = std::shared_ptr<SctpSession>;

  void accept() {
    acceptor_.async_accept(
        [self = shared_from_this()](const asio::error_code& ec, Proto::socket socket) {
          if (self->closed_) return;
          if (!ec) {
            self->on_accept(std::move(socket));
          } else if (ec == asio::error::operation_aborted) {
            return;
          } else {
            self->note("accept: " + ec.message());
          }
          self->accept();
        });
  }

  void on_accept(Proto::socket socket) {
    asio::error_code ec;
    const PeerAddress peer = from_generic(socket.remote_endpoint(ec));
    if (session_cap_reached(sessions_.size(), options_, stats_)) {
      note("association from " + peer_text(peer.address, peer.port) +
           " refused: " + std::to_string(options_.max_sessions) + " sessions already open");
      socket.close(ec);
      return;
    }
    auto s = std::make_shared<SctpSession>(std::move(socket));
    s->info = new_session_info(Scheme::sctp, peer.address, peer.port);
    s->last_activity = Clock::now();
    sessions_[s->info.id] = s;
    ++stats_.sessions_accepted;
    handler_->on_session_open(s->info);
    if (alive(s)) read(s);
  }

  bool alive(const SessionPtr& s) const {
    if (closed_) return false;
    const auto it = sessions_.find(s->info.id);
    return it != sessions_.end() && it->second == s;
  }

  void read(const SessionPtr& s) {
    s->socket.async_receive(
        asio::buffer(s->buffer),
        [self = shared_from_this(), s](const asio::error_code& ec, std::size_t n) {
          if (!self->alive(s)) return;
          if (ec) {
            self->close_session(s, ec == asio::error::eof ? "closed by the peer" : ec.message());
            return;
          }
          s->last_activity = Clock::now();
          self->stats_.bytes += n;
          const bool keep =
              self->handler_->on_data(s->info, std::span<const std::byte>(s->buffer.data(), n));
          if (!self->alive(s)) return;
          if (!keep) {
            self->close_session(s, "closed by the collector");
            return;
          }
          self->read(s);
        });
  }

  void close_session(const SessionPtr& s, const std::string& reason) {
    sessions_.erase(s->info.id);
    asio::error_code ignored;
    s->socket.close(ignored);
    handler_->on_session_close(s->info, reason);
  }

  void arm_sweep() {
    sweep_timer_.expires_after(idle_sweep_period(options_.idle_timeout));
    sweep_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->closed_) return;
      const auto now = Clock::now();
      std::vector<SessionPtr> idle;
      for (const auto& [id, s] : self->sessions_) {
        if (now - s->last_activity >= self->options_.idle_timeout) idle.push_back(s);
      }
      for (const auto& s : idle) {
        if (!self->alive(s)) continue;
        ++self->stats_.sessions_idle_closed;
        self->close_session(s, "idle timeout");
      }
      if (!self->closed_) self->arm_sweep();
    });
  }

  void note(const std::string& what) {
    warn_rate_limited(log_, "listen " + endpoint_.text + ": " + what);
  }

  asio::io_context& io_;
  Endpoint endpoint_;
  ListenerOptions options_;
  ListenerHandler* handler_;
  Acceptor acceptor_;
  asio::steady_timer sweep_timer_;
  std::map<std::uint64_t, SessionPtr> sessions_;
  ListenerStats stats_;
  log::RateLimiter log_{5, std::chrono::seconds(10)};
  std::uint16_t local_port_ = 0;
  bool closed_ = false;
};

class SctpListener final : public Listener {
 public:
  explicit SctpListener(std::shared_ptr<SctpListenerCore> core) : core_(std::move(core)) {}
  ~SctpListener() override { core_->close(); }
  SctpListener(const SctpListener&) = delete;
  SctpListener& operator=(const SctpListener&) = delete;

  const Endpoint& endpoint() const override { return core_->endpoint(); }
  std::uint16_t local_port() const override { return core_->local_port(); }
  ListenerStats stats() const override { return core_->stats(); }
  Expected<void, std::string> reload_tls() override { return {}; }  // no TLS on SCTP
  void close() override { core_->close(); }

 private:
  std::shared_ptr<SctpListenerCore> core_;
};

}  // namespace

SenderResult make_sctp_sender(asio::io_context& io, const Endpoint& e, const SenderOptions& o) {
  if (auto r = check_kernel_sctp(e, AF_INET); !r) {
    if (!check_kernel_sctp(e, AF_INET6)) return unexpected(std::move(r.error()));
  }
  auto core = std::make_shared<SctpSenderCore>(io, e, o);
  core->start();
  return std::unique_ptr<Sender>(std::make_unique<SctpSender>(std::move(core)));
}

ListenerResult make_sctp_listener(asio::io_context& io, const Endpoint& e, const ListenerOptions& o,
                                  ListenerHandler& h) {
  auto core = std::make_shared<SctpListenerCore>(io, e, o, h);
  if (auto r = core->open(); !r) return unexpected(std::move(r.error()));
  core->start();
  return std::unique_ptr<Listener>(std::make_unique<SctpListener>(std::move(core)));
}

}  // namespace flowsec::transport::detail
