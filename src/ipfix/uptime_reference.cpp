#include "ipfix/uptime_reference.hpp"

namespace flowsec::ipfix {
namespace {
constexpr std::uint16_t kSystemInitTimeMilliseconds = 160;  // IANA IE 160
}  // namespace

void UptimeReference::apply(RecordBatch& batch, const RecordBatch::Mark& since) {
  for (std::size_t i = since.refs; i < batch.size(); ++i) {
    const RecordView r = batch[i];
    if (!r.record_template().is_options()) continue;
    const auto init = r.unsigned_field(0, kSystemInitTimeMilliseconds);
    if (!init) continue;
    const std::uint32_t domain = r.message().observation_domain;
    if (init_ms_.size() < kMaxDomains || init_ms_.contains(domain)) init_ms_[domain] = *init;
  }
  if (init_ms_.empty()) return;
  for (MessageMeta& m : batch.messages_from(since.messages)) {
    if (m.protocol != Protocol::ipfix || m.ipfix_uptime) continue;
    const auto it = init_ms_.find(m.observation_domain);
    if (it == init_ms_.end()) continue;
    // Modulo 2^32, as a v9 sysUpTime counter wraps; renderers take differences the same way.
    m.sys_uptime_ms = static_cast<std::uint32_t>(std::uint64_t{m.export_time} * 1000 - it->second);
    m.ipfix_uptime = true;
  }
}

}  // namespace flowsec::ipfix
