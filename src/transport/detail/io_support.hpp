#pragma once
// Internal to the transport module (udp.cpp, stream.cpp): the bounded export
// queue of SPEC §4, the log lines for its drops, and small address helpers.
// Everything here is used on one io_context thread; nothing is thread-safe
// unless said so (next_session_id() is).
//
// The queue holds whole messages in order. When the bytes held exceed the
// limit the OLDEST messages are dropped (SPEC §4: "when it is full the oldest
// are dropped and counted and logged — never silently"); push_* report what
// they dropped so the sender can count and log it.
#include <array>
#include <asio/ip/address.hpp>
#include <asio/ip/address_v6.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/ip_address.hpp"
#include "common/log.hpp"
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
  Dropped push_front(std::vector<QueuedMessage>&& ms) {
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

}  // namespace flowsec::transport::detail
