// Plain UDP: the datagram sender and listener behind make_sender/make_listener.
//
// Sender: one connected UDP socket (the host is resolved once, at creation), one
// message per datagram (SPEC §3), sent in batches with sendmmsg(2) when the socket
// is writable. A run of messages of one size (what a fixed-length template fills) goes
// out as one UDP segmentation offload send (UDP_SEGMENT, Linux 4.18): the kernel cuts it
// into exactly those datagrams, one per message, at about a third of the CPU per datagram
// (docs/benchmarks.md). Where the kernel or the route refuses it (EMSGSIZE: a message
// longer than the path MTU; EINVAL, EIO: old kernel, no checksum offload, IPsec), the
// sender sends one datagram per message from then on, fragmented by IP where needed.
// Messages wait in the bounded queue of SPEC §4 (oldest dropped, counted and logged
// rate-limited).
//
// Listener: one socket, dual-stack [::] when no host is given (IPV6_V6ONLY off,
// 0.0.0.0 where IPv6 is missing), a large receive buffer (SO_RCVBUFFORCE, else
// SO_RCVBUF), the kernel's drop counter from SO_RXQ_OVFL (SPEC §6), and
// recvmmsg(2) batches read when asio reports the socket readable, then every 5 ms for
// as long as datagrams keep coming (see on_readable). Each
// (source address, port) is a pseudo-session, so the collector keeps template
// state per exporter (RFC 7011 §8.4): opened at its first datagram, closed after
// idle_timeout without datagrams, at most max_sessions at once.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>
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
constexpr std::size_t kSendBatch = 64;              // messages per sendmmsg(2)
constexpr std::size_t kMaxSegments = 64;            // datagrams per UDP_SEGMENT send (kernel)
constexpr std::size_t kRecvBatch = 32;              // datagrams per recvmmsg(2)
constexpr std::size_t kRecvSlot = 65536;            // > largest UDP payload (65507)
constexpr int kRecvRoundsPerWake = 16;              // then yield to other handlers
constexpr std::chrono::milliseconds kRecvPause{5};  // see UdpListenerCore::on_readable
constexpr int kUdpMaxPayload = 65507;

// ---------------------------------------------------------------------------------------
// Sender

// Room for one UDP_SEGMENT control message (the segment size).
struct SegmentControl {
  alignas(cmsghdr) unsigned char bytes[CMSG_SPACE(sizeof(std::uint16_t))];
};

class UdpSenderCore : public std::enable_shared_from_this<UdpSenderCore> {
 public:
  UdpSenderCore(asio::io_context& io, Endpoint endpoint, const SenderOptions& options)
      : io_(io),
        endpoint_(std::move(endpoint)),
        socket_(io),
        queue_(options.queue_limit_bytes),
        shutdown_timer_(io),
        drops_(io, "export to " + endpoint_.text, options.queue_limit_bytes) {}

  Expected<void, std::string> open() {
    asio::error_code ec;
    udp::resolver resolver(io_);
    const auto results =
        resolver.resolve(endpoint_.host, std::to_string(endpoint_.port),
                         udp::resolver::numeric_service | udp::resolver::address_configured, ec);
    if (ec || results.empty()) {
      return unexpected("cannot resolve " + endpoint_.host + " in " + endpoint_.text + ": " +
                        (ec ? ec.message() : std::string("no address")));
    }
    const udp::endpoint target = results.begin()->endpoint();
    socket_.open(target.protocol(), ec);
    if (!ec) socket_.non_blocking(true, ec);
    if (!ec) socket_.connect(target, ec);
    if (ec)
      return unexpected("cannot open a UDP socket to " + endpoint_.text + ": " + ec.message());
    stats_.connected = true;
    return {};
  }

  const Endpoint& endpoint() const { return endpoint_; }

  void send(Message message) {
    if (closed_) {
      count_drop({1, message.size()}, "the sender is shut down");
      return;
    }
    count_drop(queue_.push_back({std::move(message), false}), "the export queue is full");
    pump();
  }

  // Datagram senders have no connection: the hook's messages (templates) go out once,
  // now; the exporter refreshes them on its own schedule (SPEC §4).
  void set_on_connect(const std::function<std::vector<Message>()>& hook) {
    if (!hook || closed_) return;
    count_drop(queue_.push_front(hook_messages(hook)), "the export queue is full");
    pump();
  }

  void shutdown(std::chrono::milliseconds timeout, std::function<void(bool)> done) {
    done_ = std::move(done);
    shutting_down_ = true;
    shutdown_timer_.expires_after(timeout);
    shutdown_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || !self->done_) return;
      const std::size_t left = self->queue_.size();
      log::warning(kComponent, "shutdown of " + self->endpoint_.text +
                                   " timed out: " + std::to_string(left) + " messages not sent");
      self->finish(false);
    });
    asio::post(io_, [self = shared_from_this()] { self->check_shutdown(); });
  }

  SenderStats stats() const { return stats_with_queue(stats_, queue_); }

  // The Sender object went away: stop everything; no callback runs afterwards.
  void stop() {
    done_ = nullptr;
    closed_ = true;
    shutdown_timer_.cancel();
    drops_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
  }

 private:
  void count_drop(Dropped d, std::string_view why) {
    if (!count_dropped(stats_, d)) return;
    drops_.report(d, stats_.messages_dropped, why, shared_from_this());
  }

  void pump() {
    if (waiting_ || closed_ || queue_.empty()) return;
    waiting_ = true;
    socket_.async_wait(udp::socket::wait_write,
                       [self = shared_from_this()](const asio::error_code& ec) {
                         self->waiting_ = false;
                         if (ec || self->closed_) return;
                         self->flush();
                       });
  }

  // Sends as much of the queue as the socket takes now, kSendBatch messages per call.
  void flush() {
    std::array<mmsghdr, kSendBatch> msgs{};
    std::array<iovec, kSendBatch> iov{};
    std::array<SegmentControl, kSendBatch> control{};
    std::array<std::size_t, kSendBatch> messages_in{};  // messages in each msghdr
    while (!queue_.empty()) {
      const std::size_t n = std::min(queue_.size(), kSendBatch);
      std::size_t headers = 0;
      for (std::size_t i = 0; i < n;) {
        const std::size_t k = segmentation_ ? same_size_run(i, n) : 1;
        for (std::size_t j = i; j < i + k; ++j) {
          auto& data = queue_.at(j).data;
          iov[j].iov_base = const_cast<std::byte*>(data.data());
          iov[j].iov_len = data.size();
        }
        mmsghdr& m = msgs[headers];
        m = mmsghdr{};
        m.msg_hdr.msg_iov = &iov[i];
        m.msg_hdr.msg_iovlen = k;
        if (k > 1) {
          // Every datagram but the last is exactly the segment size (udp(7)).
          SegmentControl& c = control[headers];
          m.msg_hdr.msg_control = c.bytes;
          m.msg_hdr.msg_controllen = sizeof c.bytes;
          cmsghdr* cm = CMSG_FIRSTHDR(&m.msg_hdr);
          cm->cmsg_level = SOL_UDP;
          cm->cmsg_type = UDP_SEGMENT;
          cm->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
          const auto segment = static_cast<std::uint16_t>(iov[i].iov_len);
          std::memcpy(CMSG_DATA(cm), &segment, sizeof segment);
        }
        messages_in[headers++] = k;
        i += k;
      }
      const int sent = ::sendmmsg(socket_.native_handle(), msgs.data(),
                                  static_cast<unsigned>(headers), MSG_DONTWAIT);
      if (sent > 0) {
        for (int h = 0; h < sent; ++h) {
          for (std::size_t j = 0; j < messages_in[h]; ++j) {
            const auto m = queue_.take_front();
            ++stats_.messages_sent;
            stats_.bytes_sent += m.data.size();
          }
        }
        refused_retries_ = 0;
        continue;
      }
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
      if (err == EINTR) continue;
      if (messages_in[0] > 1 &&
          (err == EMSGSIZE || err == EINVAL || err == EIO || err == ENOPROTOOPT)) {
        // Segmentation refused (a segment above the path MTU, old kernel, no checksum
        // offload, IPsec): nothing of this call was sent; the same messages go again, one
        // datagram each.
        segmentation_ = false;
        log::info(kComponent, "export to " + endpoint_.text +
                                  ": UDP segmentation offload refused (" + errno_text(err) +
                                  "); sending each datagram on its own from now on");
        continue;
      }
      if (err == ECONNREFUSED && refused_retries_ == 0) {
        // An ICMP port unreachable for an earlier datagram is reported on this send and
        // the datagram was not sent; the error is consumed, so try it once more.
        ++refused_retries_;
        note_error("the collector is unreachable (ICMP port unreachable)");
        continue;
      }
      refused_retries_ = 0;
      const auto m = queue_.take_front();
      note_error(m.data.size() > static_cast<std::size_t>(kUdpMaxPayload)
                     ? "a message of " + std::to_string(m.data.size()) +
                           " bytes does not fit in a datagram"
                     : errno_text(err));
      count_drop({1, m.data.size()}, "it could not be sent");
    }
    check_shutdown();
    pump();
  }

  // How many queued messages from `first` (before `end`) one segmentation send can carry:
  // a run of one size, which a single shorter message may end, at most kMaxSegments and
  // kUdpMaxPayload bytes in all.
  std::size_t same_size_run(std::size_t first, std::size_t end) const {
    const std::size_t size = queue_.at(first).data.size();
    std::size_t k = 1;
    std::size_t total = size;
    while (first + k < end && k < kMaxSegments) {
      const std::size_t next = queue_.at(first + k).data.size();
      if (next > size || next == 0 || total + next > static_cast<std::size_t>(kUdpMaxPayload)) {
        break;
      }
      total += next;
      ++k;
      if (next < size) break;
    }
    return k;
  }

  void note_error(const std::string& what) {
    warn_rate_limited(error_log_, "export to " + endpoint_.text + ": " + what);
  }

  void check_shutdown() {
    if (shutting_down_ && done_ && queue_.empty()) finish(true);
  }

  void finish(bool ok) {
    auto done = std::move(done_);
    done_ = nullptr;
    closed_ = true;
    shutdown_timer_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
    stats_.connected = false;
    if (done) done(ok);
  }

  asio::io_context& io_;
  Endpoint endpoint_;
  udp::socket socket_;
  MessageQueue queue_;
  asio::steady_timer shutdown_timer_;
  std::function<void(bool)> done_;
  SenderStats stats_;
  DropReporter drops_;
  log::RateLimiter error_log_{5, std::chrono::seconds(10)};
  int refused_retries_ = 0;
  bool segmentation_ = true;  // UDP_SEGMENT until the kernel refuses it
  bool waiting_ = false;
  bool shutting_down_ = false;
  bool closed_ = false;
};

class UdpSender final : public Sender {
 public:
  explicit UdpSender(std::shared_ptr<UdpSenderCore> core) : core_(std::move(core)) {}
  ~UdpSender() override {
    try {
      core_->stop();
    } catch (...) {  // a destructor must not throw; stopping is best effort
    }
  }
  UdpSender(const UdpSender&) = delete;
  UdpSender& operator=(const UdpSender&) = delete;

  const Endpoint& endpoint() const override { return core_->endpoint(); }
  void send(Message message) override { core_->send(std::move(message)); }
  void set_on_connect(std::function<std::vector<Message>()> hook) override {
    core_->set_on_connect(hook);
  }
  void shutdown(std::chrono::milliseconds timeout, std::function<void(bool)> done) override {
    core_->shutdown(timeout, std::move(done));
  }
  SenderStats stats() const override { return core_->stats(); }

 private:
  std::shared_ptr<UdpSenderCore> core_;
};

// ---------------------------------------------------------------------------------------
// Listener

struct PeerKey {
  IpAddress address;
  std::uint16_t port = 0;
  friend auto operator<=>(const PeerKey&,
                          const PeerKey&) = default;  // NOLINT(modernize-use-nullptr)
};

struct UdpSession {
  SessionInfo info;
  Clock::time_point last_seen;
};

IpAddress from_sockaddr(const sockaddr_storage& ss, std::uint16_t& port) {
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    port = ntohs(sin->sin_port);
    return IpAddress::v4(ntohl(sin->sin_addr.s_addr));
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  port = ntohs(sin6->sin6_port);
  std::array<std::byte, 16> raw{};
  std::memcpy(raw.data(), &sin6->sin6_addr, raw.size());
  if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
    return IpAddress::v4(std::span<const std::byte, 4>(raw.data() + 12, 4));
  }
  return IpAddress::v6(std::span<const std::byte, 16>(raw));
}

class UdpListenerCore : public std::enable_shared_from_this<UdpListenerCore> {
 public:
  UdpListenerCore(asio::io_context& io, Endpoint endpoint, const ListenerOptions& options,
                  ListenerHandler& handler)
      : io_(io),
        endpoint_(std::move(endpoint)),
        options_(options),
        handler_(&handler),
        socket_(io),
        sweep_timer_(io),
        pause_timer_(io),
        buffer_(kRecvBatch * kRecvSlot) {}
  ~UdpListenerCore() {
    if (paused_) ::close(fd_);
  }
  UdpListenerCore(const UdpListenerCore&) = delete;
  UdpListenerCore& operator=(const UdpListenerCore&) = delete;

  Expected<void, std::string> open() {
    auto bound = bind_listener<udp>(
        io_, endpoint_, [this](const udp::endpoint& ep, bool dual_stack, asio::error_code& ec) {
          open_and_bind(socket_, ep, dual_stack, ec);
        });
    if (!bound) return bound;
    asio::error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) return unexpected("cannot listen on " + endpoint_.text + ": " + ec.message());
    set_receive_buffer();
    // SPEC §6: the kernel's count of datagrams dropped for a full receive buffer arrives
    // with every datagram as an SO_RXQ_OVFL control message.
    const int one = 1;
    if (::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0) {
      log::warning(kComponent, "listen " + endpoint_.text +
                                   ": SO_RXQ_OVFL unavailable, kernel drops are not counted: " +
                                   errno_text(errno));
    }
    const auto local = socket_.local_endpoint(ec);
    local_port_ = local.port();
    protocol_ = local.protocol();
    return {};
  }

  void start() {
    arm_read();
    arm_sweep();
  }

  const Endpoint& endpoint() const { return endpoint_; }
  std::uint16_t local_port() const { return local_port_; }
  ListenerStats stats() const { return stats_with_sessions(stats_, sessions_.size()); }

  void close() {
    if (closed_) return;
    // Datagrams the kernel already holds are delivered before the sessions end.
    if (handler_ != nullptr) read_batches(kRecvRoundsPerWake * 4);
    closed_ = true;
    sweep_timer_.cancel();
    pause_timer_.cancel();
    asio::error_code ignored;
    if (paused_) {  // released from asio during a pause: ours to close
      ::close(fd_);
      paused_ = false;
      fd_ = -1;
    }
    socket_.close(ignored);
    auto* handler = handler_;
    handler_ = nullptr;
    auto sessions = std::move(sessions_);
    sessions_.clear();
    if (handler != nullptr) {
      for (auto& [key, session] : sessions)
        handler->on_session_close(session.info, "listener closed");
    }
  }

 private:
  void set_receive_buffer() {
    const int fd = socket_.native_handle();
    const int want = options_.udp_receive_buffer;
    if (want <= 0) return;
    // SO_RCVBUFFORCE passes net.core.rmem_max when we may (CAP_NET_ADMIN, e.g. root).
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
      (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    }
    int got = 0;
    socklen_t len = sizeof got;
    if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && got / 2 < want) {
      // Linux reports twice the usable size (bookkeeping overhead).
      log::warning(kComponent, "listen " + endpoint_.text + ": receive buffer is " +
                                   std::to_string(got / 2) + " bytes, asked for " +
                                   std::to_string(want) + " (raise net.core.rmem_max)");
    }
  }

  void arm_read() {
    socket_.async_wait(udp::socket::wait_read,
                       [self = shared_from_this()](const asio::error_code& ec) {
                         if (ec || self->closed_) return;
                         self->on_readable();
                       });
  }

  // Called when the socket is readable or a pause is over. While datagrams keep coming,
  // the listener reads what has arrived every kRecvPause instead of waking for each one:
  // asio's epoll registration is edge-triggered, so every arrival on an empty socket
  // woke the thread (3 300 wake-ups a second at 25 k datagrams/s in 1 ms bursts). During
  // the pause the socket is taken out of the reactor (release), so arrivals cannot wake
  // it; when a read after a pause finds nothing, it goes back (assign) and waits as
  // before. 15–30% less CPU per record at 25–100 k datagrams/s (docs/benchmarks.md); the
  // receive buffer (SO_RCVBUFFORCE) holds a pause's datagrams many times over.
  void on_readable() {
    const int got = read_batches(kRecvRoundsPerWake);
    if (closed_) return;
    const bool drained = got < kRecvRoundsPerWake * static_cast<int>(kRecvBatch);
    if (got > 0 && drained) {
      if (!paused_) {
        asio::error_code ec;
        const int fd = socket_.release(ec);
        if (ec) {  // cannot leave the reactor: wait for the next datagram instead
          arm_read();
          return;
        }
        fd_ = fd;
        paused_ = true;
      }
      pause_timer_.expires_after(kRecvPause);
      pause_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
        if (ec || self->closed_) return;
        self->on_readable();
      });
      return;
    }
    if (paused_ && !resume_reactor()) return;
    arm_read();
  }

  // Gives the socket back to the reactor after a pause; false (logged, listener closed)
  // if asio refuses it, which only a lack of memory can cause.
  bool resume_reactor() {
    asio::error_code ec;
    socket_.assign(protocol_, fd_, ec);
    if (!ec) {
      paused_ = false;
      fd_ = -1;
      return true;
    }
    log::error(kComponent, "listen " + endpoint_.text + ": " + ec.message());
    close();
    return false;
  }

  [[nodiscard]] int receive_fd() { return paused_ ? fd_ : socket_.native_handle(); }

  // Reads up to `rounds` recvmmsg batches or until the socket is empty.
  int read_batches(int rounds) {
    int total = 0;
    constexpr std::size_t kControl = CMSG_SPACE(sizeof(std::uint32_t));
    std::array<mmsghdr, kRecvBatch> msgs{};
    std::array<iovec, kRecvBatch> iov{};
    std::array<sockaddr_storage, kRecvBatch> from{};
    alignas(cmsghdr) std::array<std::array<unsigned char, kControl>, kRecvBatch> control{};
    for (int round = 0; round < rounds && !closed_; ++round) {
      for (std::size_t i = 0; i < kRecvBatch; ++i) {
        iov[i].iov_base = buffer_.data() + i * kRecvSlot;
        iov[i].iov_len = kRecvSlot;
        msgs[i] = mmsghdr{};
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = control[i].data();
        msgs[i].msg_hdr.msg_controllen = kControl;
      }
      const int n = ::recvmmsg(receive_fd(), msgs.data(), kRecvBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        const int err = errno;
        if (err == EINTR) continue;
        if (err != EAGAIN && err != EWOULDBLOCK) {
          std::uint64_t suppressed = 0;
          if (error_log_.allow(suppressed)) {
            log::warning(kComponent, "listen " + endpoint_.text + ": " + errno_text(err));
          }
        }
        return total;
      }
      total += n;
      const auto now = Clock::now();
      for (int i = 0; i < n && !closed_; ++i) {
        const auto& h = msgs[static_cast<std::size_t>(i)].msg_hdr;
        for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr;
             c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            std::uint32_t drops = 0;
            std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
            stats_.kernel_drops = drops;  // the socket's running total
          }
        }
        const std::size_t len = msgs[static_cast<std::size_t>(i)].msg_len;
        dispatch(from[static_cast<std::size_t>(i)],
                 std::span<const std::byte>(
                     buffer_.data() + static_cast<std::size_t>(i) * kRecvSlot, len),
                 now);
      }
      if (static_cast<std::size_t>(n) < kRecvBatch) return total;
    }
    return total;
  }

  void dispatch(const sockaddr_storage& from, std::span<const std::byte> data,
                Clock::time_point now) {
    if (handler_ == nullptr) return;
    PeerKey key;
    key.address = from_sockaddr(from, key.port);
    auto it = sessions_.find(key);
    if (it == sessions_.end()) {
      if (session_cap_reached(sessions_.size(), options_, stats_)) {
        // A new exporter waits until an idle one expires.
        warn_rate_limited(cap_log_, "listen " + endpoint_.text + ": datagram from " +
                                        peer_text(key.address, key.port) +
                                        " dropped: " + std::to_string(options_.max_sessions) +
                                        " exporters already active");
        return;
      }
      UdpSession session;
      session.info = new_session_info(Scheme::udp, key.address, key.port);
      session.last_seen = now;
      it = sessions_.emplace(key, std::move(session)).first;
      ++stats_.sessions_accepted;
      handler_->on_session_open(it->second.info);
      if (handler_ == nullptr) return;  // the handler closed the listener
    }
    it->second.last_seen = now;
    ++stats_.datagrams;
    stats_.bytes += data.size();
    // Plain UDP has no session to close: the return value is ignored (listener.hpp).
    (void)handler_->on_data(it->second.info, data);
  }

  void arm_sweep() {
    sweep_timer_.expires_after(idle_sweep_period(options_.idle_timeout));
    sweep_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->closed_) return;
      self->sweep();
      if (!self->closed_) self->arm_sweep();
    });
  }

  void sweep() {
    const auto now = Clock::now();
    for (auto it = sessions_.begin(); it != sessions_.end() && handler_ != nullptr;) {
      if (now - it->second.last_seen < options_.idle_timeout) {
        ++it;
        continue;
      }
      const SessionInfo info = it->second.info;
      it = sessions_.erase(it);
      ++stats_.sessions_idle_closed;
      handler_->on_session_close(info, "idle");
    }
  }

  asio::io_context& io_;
  Endpoint endpoint_;
  ListenerOptions options_;
  ListenerHandler* handler_;
  udp::socket socket_;
  asio::steady_timer sweep_timer_;
  asio::steady_timer pause_timer_;
  bool paused_ = false;  // socket_ released from the reactor; fd_ holds it
  int fd_ = -1;
  udp protocol_ = udp::v4();  // to assign fd_ back
  std::vector<std::byte> buffer_;
  std::map<PeerKey, UdpSession> sessions_;
  ListenerStats stats_;
  log::RateLimiter cap_log_{5, std::chrono::seconds(10)};
  log::RateLimiter error_log_{5, std::chrono::seconds(10)};
  std::uint16_t local_port_ = 0;
  bool closed_ = false;
};

class UdpListener final : public Listener {
 public:
  explicit UdpListener(std::shared_ptr<UdpListenerCore> core) : core_(std::move(core)) {}
  ~UdpListener() override {
    try {
      core_->close();
    } catch (...) {  // e.g. a handler's on_session_close threw; nothing left to do
    }
  }
  UdpListener(const UdpListener&) = delete;
  UdpListener& operator=(const UdpListener&) = delete;

  const Endpoint& endpoint() const override { return core_->endpoint(); }
  std::uint16_t local_port() const override { return core_->local_port(); }
  ListenerStats stats() const override { return core_->stats(); }
  Expected<void, std::string> reload_tls() override { return {}; }  // nothing to reload
  void close() override { core_->close(); }

 private:
  std::shared_ptr<UdpListenerCore> core_;
};

}  // namespace

SenderResult make_udp_sender(asio::io_context& io, const Endpoint& e, const SenderOptions& o) {
  auto core = std::make_shared<UdpSenderCore>(io, e, o);
  if (auto r = core->open(); !r) return unexpected(std::move(r.error()));
  return std::unique_ptr<Sender>(std::make_unique<UdpSender>(std::move(core)));
}

ListenerResult make_udp_listener(asio::io_context& io, const Endpoint& e, const ListenerOptions& o,
                                 ListenerHandler& h) {
  auto core = std::make_shared<UdpListenerCore>(io, e, o, h);
  if (auto r = core->open(); !r) return unexpected(std::move(r.error()));
  core->start();
  return std::unique_ptr<Listener>(std::make_unique<UdpListener>(std::move(core)));
}

}  // namespace flowsec::transport::detail
