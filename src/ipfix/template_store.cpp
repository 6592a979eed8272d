#include "ipfix/template_store.hpp"

#include <iterator>

#include "ipfix/limits.hpp"

namespace flowsec::ipfix {

TemplateStore::TemplateStore(TransportKind kind, const Clock& clock,
                             Clock::duration datagram_lifetime)
    : kind_(kind), clock_(&clock), lifetime_(datagram_lifetime) {}

TemplatePtr TemplateStore::find(Protocol protocol, std::uint32_t domain, std::uint16_t id) {
  auto it = entries_.find(key(protocol, domain, id));
  if (it == entries_.end()) return nullptr;
  // RFC 7011 §8.4: over UDP a template not refreshed within its lifetime is gone.
  if (kind_ == TransportKind::datagram && clock_->now() - it->second.last_seen > lifetime_) {
    entries_.erase(it);
    ++counters_.expired;
    return nullptr;
  }
  return it->second.tmpl;
}

TemplateStore::AddResult TemplateStore::add(Protocol protocol, std::uint32_t domain,
                                            TemplatePtr t) {
  const auto k = key(protocol, domain, t->id());
  auto it = entries_.find(k);
  const auto now = clock_->now();
  if (it != entries_.end()) {
    if (it->second.tmpl->same_layout(*t)) {
      it->second.last_seen = now;  // keep the old pointer: batches compare by identity
      ++counters_.refreshed;
      return AddResult::refreshed;
    }
    it->second = Entry{std::move(t), now};
    ++counters_.redefined;
    return AddResult::redefined;
  }
  if (entries_.size() >= limits::kMaxTemplatesPerSession) {
    ++counters_.rejected;
    return AddResult::rejected;
  }
  entries_.emplace(k, Entry{std::move(t), now});
  ++counters_.added;
  return AddResult::added;
}

bool TemplateStore::withdraw(Protocol protocol, std::uint32_t domain, std::uint16_t id) {
  if (!honours_withdrawals()) {
    ++counters_.withdrawals_ignored;
    return false;
  }
  if (entries_.erase(key(protocol, domain, id)) == 0) return false;
  ++counters_.withdrawn;
  return true;
}

std::size_t TemplateStore::withdraw_all(Protocol protocol, std::uint32_t domain, bool options) {
  if (!honours_withdrawals()) {
    ++counters_.withdrawals_ignored;
    return 0;
  }
  std::size_t removed = 0;
  const auto lo = key(protocol, domain, 0);
  const auto hi = key(protocol, domain, 0xffff);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->first >= lo && it->first <= hi && it->second.tmpl->is_options() == options) {
      it = entries_.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  counters_.withdrawn += removed;
  return removed;
}

}  // namespace flowsec::ipfix
