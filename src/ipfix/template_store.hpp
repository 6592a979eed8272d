#pragma once
// Templates of one transport session, per (protocol, observation domain, id).
//
// The rules differ by transport (RFC 7011 §8, SPEC §6):
//  - datagram (UDP, DTLS): a template lives `datagram_lifetime` (30 min) after
//    it was last received, then expires (RFC 7011 §8.4); withdrawals are
//    ignored, since they cannot be relied on over an unreliable transport.
//  - stream (TCP, TLS), sctp and file: templates never expire; they end with
//    the session (the store is destroyed with it); withdrawals remove them
//    (RFC 7011 §8.1).
// On every transport a redefinition (same id, different layout) replaces the
// old template and is counted: RFC 7011 §8.1 lets a stream collector reset the
// session instead, but SPEC §6 prefers keeping the data flowing.
// One store belongs to one session, handled by one thread: no locking.
#include <chrono>
#include <cstdint>
#include <unordered_map>

#include "common/clock.hpp"
#include "ipfix/record.hpp"
#include "ipfix/template.hpp"

namespace flowsec::ipfix {

enum class TransportKind : std::uint8_t { datagram, stream, sctp, file };

struct TemplateStoreCounters {
  std::uint64_t added = 0;                // new template ids
  std::uint64_t refreshed = 0;            // same id, same layout (datagram refresh)
  std::uint64_t redefined = 0;            // same id, different layout: replaced
  std::uint64_t withdrawn = 0;            // removed by a withdrawal (stream transports)
  std::uint64_t withdrawals_ignored = 0;  // withdrawals received over a datagram transport
  std::uint64_t expired = 0;              // datagram lifetime ran out
  std::uint64_t rejected = 0;             // refused because the session reached the cap
};

class TemplateStore {
 public:
  static constexpr std::chrono::minutes kDefaultDatagramLifetime{30};

  explicit TemplateStore(TransportKind kind, const Clock& clock = SteadyClock::instance(),
                         Clock::duration datagram_lifetime = kDefaultDatagramLifetime);

  [[nodiscard]] TransportKind kind() const { return kind_; }

  // The live template, or nullptr if unknown or expired (an expired one is erased).
  [[nodiscard]] TemplatePtr find(Protocol protocol, std::uint32_t domain, std::uint16_t id);

  enum class AddResult : std::uint8_t { added, refreshed, redefined, rejected };
  // Adds or replaces. `rejected` only when limits::kMaxTemplatesPerSession is reached.
  AddResult add(Protocol protocol, std::uint32_t domain, TemplatePtr t);

  // RFC 7011 §8.1: withdraw one template id; returns true if something was removed.
  bool withdraw(Protocol protocol, std::uint32_t domain, std::uint16_t id);
  // RFC 7011 §8.1 "All Data Templates Withdrawal" (options = false: set 2, id 2) and
  // "All Options Templates Withdrawal" (options = true: set 3, id 3): withdraws every
  // template of that kind in the domain, leaving the other kind alone.
  std::size_t withdraw_all(Protocol protocol, std::uint32_t domain, bool options);

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] const TemplateStoreCounters& counters() const { return counters_; }

 private:
  struct Entry {
    TemplatePtr tmpl;
    Clock::time_point last_seen;
  };
  static std::uint64_t key(Protocol p, std::uint32_t domain, std::uint16_t id) {
    return (std::uint64_t{static_cast<std::uint8_t>(p)} << 48) | (std::uint64_t{domain} << 16) | id;
  }
  [[nodiscard]] bool honours_withdrawals() const { return kind_ != TransportKind::datagram; }

  TransportKind kind_;
  const Clock* clock_;
  Clock::duration lifetime_;
  std::unordered_map<std::uint64_t, Entry> entries_;
  TemplateStoreCounters counters_;
};

}  // namespace flowsec::ipfix
