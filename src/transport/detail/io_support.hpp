#pragma once
// Internal to the transport module's implementations (udp.cpp, stream.cpp, dtls.cpp,
// sctp.cpp): the bounded export queue of SPEC §4 and the log lines for its drops, the
// machinery every sender repeats (reconnect backoff, the on_connect hook's messages,
// stats snapshots), the machinery every listener repeats (resolve and bind, the
// session cap, the idle sweep period, new session ids), rate-limited log lines, and
// small address helpers. Everything here is used on one io_context thread; nothing is
// thread-safe unless said so (next_session_id() is).
//
// The queue holds whole messages in order. When the bytes held exceed the
// limit the OLDEST messages are dropped (SPEC §4: "when it is full the oldest
// are dropped and counted and logged — never silently"); push_* report what
// they dropped so the sender can count and log it.
#include <algorithm>
#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/address_v6.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/ip_address.hpp"
#include "common/log.hpp"
#include "transport/listener.hpp"
#include "transport/sender.hpp"

namespace flowsec::transport::detail {

// A message waiting to be sent or written but not yet known to be delivered.
// from_hook marks the on_connect hook's messages (templates, RFC 7011 §8): they
// belong to one connection and are never re-queued after it breaks, because the
// hook produces fresh ones for the next connection.
struct QueuedMessage {
  Message data;
  bool from_hook = false;
};

struct Dropped {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
};

class MessageQueue {
 public:
  explicit MessageQueue(std::size_t limit_bytes) : limit_(limit_bytes) {}

  // Appends one message, then drops the oldest while over the limit (possibly the
  // new message itself when it alone is larger than the limit).
  Dropped push_back(QueuedMessage m) {
    bytes_ += m.data.size();
    items_.push_back(std::move(m));
    return enforce_limit();
  }
  // Puts `ms` (in their order) before everything queued: messages re-queued after a
  // broken connection go out first. They are the oldest, so they are dropped first.
  // `ms`: a std::vector or std::deque of QueuedMessage, taken (left empty).
  template <class Messages>
  requires std::is_rvalue_reference_v<Messages&&> Dropped push_front(Messages&& ms) {
    for (auto it = ms.rbegin(); it != ms.rend(); ++it) {
      bytes_ += it->data.size();
      items_.push_front(std::move(*it));
    }
    ms.clear();
    return enforce_limit();
  }
  [[nodiscard]] bool empty() const { return items_.empty(); }
  [[nodiscard]] std::size_t size() const { return items_.size(); }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }
  [[nodiscard]] const QueuedMessage& front() const { return items_.front(); }
  [[nodiscard]] const QueuedMessage& at(std::size_t i) const { return items_[i]; }
  QueuedMessage take_front() {
    QueuedMessage m = std::move(items_.front());
    items_.pop_front();
    bytes_ -= m.data.size();
    return m;
  }
  // Number of user messages (not hook messages) held, for shutdown reports.
  [[nodiscard]] std::size_t user_messages() const {
    std::size_t n = 0;
    for (const auto& m : items_) n += m.from_hook ? 0 : 1;
    return n;
  }

 private:
  Dropped enforce_limit() {
    Dropped d;
    while (bytes_ > limit_ && !items_.empty()) {
      d.bytes += items_.front().data.size();
      ++d.messages;
      bytes_ -= items_.front().data.size();
      items_.pop_front();
    }
    return d;
  }

  std::deque<QueuedMessage> items_;
  std::size_t bytes_ = 0;
  std::size_t limit_;
};

// Logs drops from a full queue (SPEC §4: "counted and logged — never silently"): the
// first drop of a burst at once, then one line per kSummaryPeriod with how many more
// went while drops continue, so the log neither stays silent nor floods.
class DropReporter {
 public:
  static constexpr std::chrono::milliseconds kSummaryPeriod{1000};

  DropReporter(asio::io_context& io, std::string subject, std::size_t limit_bytes)
      : timer_(io), subject_(std::move(subject)), limit_bytes_(limit_bytes) {}

  // `total`: messages dropped so far, this drop included. `owner` is kept alive until
  // the summary timer has run.
  void report(Dropped d, std::uint64_t total, std::string_view why, std::shared_ptr<void> owner) {
    if (d.messages == 0) return;
    total_ = total;
    if (armed_) {
      pending_ += d.messages;
      return;
    }
    log::warning("transport", subject_ + ": dropped " + std::to_string(d.messages) +
                                  " oldest message(s), " + std::string(why) + " (limit " +
                                  std::to_string(limit_bytes_) + " bytes); " +
                                  std::to_string(total) + " dropped in total");
    arm(std::move(owner));
  }
  void cancel() {
    timer_.cancel();
    armed_ = false;
  }

 private:
  void arm(std::shared_ptr<void> owner) {
    armed_ = true;
    timer_.expires_after(kSummaryPeriod);
    timer_.async_wait([this, owner = std::move(owner)](const asio::error_code& ec) mutable {
      if (ec || !armed_) return;
      if (pending_ == 0) {
        armed_ = false;
        return;
      }
      log::warning("transport", subject_ + ": dropped " + std::to_string(pending_) +
                                    " more oldest message(s) in the last " +
                                    std::to_string(kSummaryPeriod.count()) + " ms; " +
                                    std::to_string(total_) + " dropped in total");
      pending_ = 0;
      arm(std::move(owner));
    });
  }

  asio::steady_timer timer_;
  std::string subject_;
  std::size_t limit_bytes_;
  std::uint64_t pending_ = 0;
  std::uint64_t total_ = 0;
  bool armed_ = false;
};

// Session ids are unique in the process across every listener (SessionInfo::id).
inline std::uint64_t next_session_id() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// asio address → IpAddress; an IPv4-mapped IPv6 address (a dual-stack socket's view of
// an IPv4 peer) becomes the plain IPv4 address, so exporters are named the same way
// whichever socket received them.
inline IpAddress to_ip_address(const asio::ip::address& a) {
  if (a.is_v4()) return IpAddress::v4(a.to_v4().to_uint());
  const auto v6 = a.to_v6();
  const auto b = v6.to_bytes();
  if (v6.is_v4_mapped()) {
    const std::array<std::byte, 4> v4{static_cast<std::byte>(b[12]), static_cast<std::byte>(b[13]),
                                      static_cast<std::byte>(b[14]), static_cast<std::byte>(b[15])};
    return IpAddress::v4(std::span<const std::byte, 4>(v4));
  }
  std::array<std::byte, 16> raw{};
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<std::byte>(b[i]);
  return IpAddress::v6(std::span<const std::byte, 16>(raw));
}

// "192.0.2.1:4739" or "[2001:db8::1]:4739", for log lines.
inline std::string peer_text(const IpAddress& a, std::uint16_t port) {
  std::string s = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  s += ':';
  s += std::to_string(port);
  return s;
}

// ---------------------------------------------------------------------------------------
// Log lines

inline constexpr std::string_view kLogComponent = "transport";

// " (N similar lines suppressed)", or nothing when none were.
inline std::string suppressed_note(std::uint64_t suppressed) {
  return suppressed == 0 ? std::string()
                         : " (" + std::to_string(suppressed) + " similar lines suppressed)";
}

inline std::string with_suppressed(std::string line, std::uint64_t suppressed) {
  return line + suppressed_note(suppressed);
}

// Logs `line` as a warning if `limiter` lets it through, noting the lines it held back.
inline void warn_rate_limited(log::RateLimiter& limiter, const std::string& line) {
  std::uint64_t suppressed = 0;
  if (limiter.allow(suppressed)) log::warning(kLogComponent, with_suppressed(line, suppressed));
}

inline std::string errno_text(int err) {
  return std::error_code(err, std::generic_category()).message();
}

// "30 s" for whole seconds, else "1500 ms".
inline std::string seconds_text(std::chrono::milliseconds d) {
  const auto ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

// ---------------------------------------------------------------------------------------
// Senders

using OnConnectHook = std::function<std::vector<Message>()>;

// SPEC §4: reconnects wait backoff_initial, doubling up to backoff_max.
class Backoff {
 public:
  explicit Backoff(const SenderOptions& options)
      : initial_(options.backoff_initial), max_(options.backoff_max), delay_(initial_) {}

  // The delay the next retry waits.
  [[nodiscard]] std::chrono::milliseconds current() const { return delay_; }
  // Returns the delay to wait now and doubles the next one (up to the maximum).
  std::chrono::milliseconds next() {
    const auto d = delay_;
    delay_ = std::min(delay_ * 2, max_);
    return d;
  }
  // After a successful (or long enough) connection: start again from backoff_initial.
  void reset() { delay_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds delay_;
};

// RFC 7011 §8: the on_connect hook's messages (templates) for a new connection, marked
// from_hook; none when there is no hook.
inline std::deque<QueuedMessage> hook_messages(const OnConnectHook& hook) {
  std::deque<QueuedMessage> out;
  if (hook) {
    for (auto& m : hook()) out.push_back({std::move(m), true});
  }
  return out;
}

// Counts a drop in the sender's stats; false when nothing was dropped.
inline bool count_dropped(SenderStats& stats, Dropped d) {
  if (d.messages == 0) return false;
  stats.messages_dropped += d.messages;
  stats.bytes_dropped += d.bytes;
  return true;
}

// The sender's counters with the queue's current size.
inline SenderStats stats_with_queue(SenderStats s, const MessageQueue& queue) {
  s.queue_messages = queue.size();
  s.queue_bytes = queue.bytes();
  return s;
}

// The addresses one name resolved to, tried in turn by a connecting sender.
template <class Endpoint>
class ResolvedTargets {
 public:
  template <class Results>
  void assign(const Results& results) {
    list_.clear();
    for (const auto& entry : results) list_.push_back(entry.endpoint());
    next_ = 0;
  }
  // The next address to try; false when every one was tried.
  bool take_next(Endpoint& out) {
    if (next_ >= list_.size()) return false;
    out = list_[next_++];
    return true;
  }

 private:
  std::vector<Endpoint> list_;
  std::size_t next_ = 0;
};

// ---------------------------------------------------------------------------------------
// Listeners

// The listener's counters with the number of sessions open now.
inline ListenerStats stats_with_sessions(ListenerStats s, std::size_t active) {
  s.sessions_active = active;
  return s;
}

// SPEC §3.4: a hard cap on sessions per listener. True (and counted) when `active`
// sessions leave no room for another.
inline bool session_cap_reached(std::size_t active, const ListenerOptions& options,
                                ListenerStats& stats) {
  if (active < options.max_sessions) return false;
  ++stats.sessions_refused_cap;
  return true;
}

// A new session's identity: a fresh id, the scheme and the peer.
inline SessionInfo new_session_info(Scheme scheme, const IpAddress& address, std::uint16_t port) {
  SessionInfo info;
  info.id = next_session_id();
  info.scheme = scheme;
  info.peer_address = address;
  info.peer_port = port;
  return info;
}

// How often listeners without per-session timers look for idle sessions.
inline std::chrono::milliseconds idle_sweep_period(std::chrono::milliseconds idle_timeout) {
  return std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(idle_timeout / 4),
                    std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

// Where a listener with a host binds: the host resolved (passive, numeric port), first
// address.
template <class Protocol>
Expected<typename Protocol::endpoint, std::string> resolve_listen_address(asio::io_context& io,
                                                                          const Endpoint& e) {
  using Resolver = typename Protocol::resolver;
  asio::error_code ec;
  Resolver resolver(io);
  const auto results = resolver.resolve(e.host, std::to_string(e.port),
                                        Resolver::passive | Resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return unexpected("cannot resolve " + e.host + " in " + e.text + ": " +
                      (ec ? ec.message() : std::string("no address")));
  }
  return results.begin()->endpoint();
}

// Binds a listener: with no host, to all addresses with one dual-stack IPv6 socket (IPv4
// peers seen as ::ffff:a.b.c.d), else IPv4 only; with a host, to its first address.
// `bind_to(endpoint, dual_stack, ec)` opens and binds the listener's socket.
template <class Protocol, class BindTo>
Expected<void, std::string> bind_listener(asio::io_context& io, const Endpoint& e,
                                          BindTo&& bind_to) {
  using ProtoEndpoint = typename Protocol::endpoint;
  asio::error_code ec;
  if (e.host.empty()) {
    bind_to(ProtoEndpoint(Protocol::v6(), e.port), true, ec);
    if (ec) {
      const auto v6_error = ec;
      bind_to(ProtoEndpoint(Protocol::v4(), e.port), false, ec);
      if (ec) return unexpected("cannot listen on " + e.text + ": " + v6_error.message());
    }
    return {};
  }
  auto where = resolve_listen_address<Protocol>(io, e);
  if (!where) return unexpected(std::move(where.error()));
  bind_to(*where, false, ec);
  if (ec) return unexpected("cannot listen on " + e.text + ": " + ec.message());
  return {};
}

// Opens `socket` for `ep` and binds it (dual-stack when asked); closed again on failure.
template <class Socket>
void open_and_bind(Socket& socket, const typename Socket::endpoint_type& ep, bool dual_stack,
                   asio::error_code& ec) {
  asio::error_code ignored;
  socket.close(ignored);
  socket.open(ep.protocol(), ec);
  if (ec) return;
  if (dual_stack) socket.set_option(asio::ip::v6_only(false), ec);
  if (!ec) socket.bind(ep, ec);
  if (ec) socket.close(ignored);
}

}  // namespace flowsec::transport::detail
