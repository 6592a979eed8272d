#pragma once
// UptimeReference: gives IPFIX messages the uptime reference their records need.
//
// NetFlow v9 headers carry sysUpTime, so flowStart/EndSysUpTime (IE 22/21) in v9
// records can be turned into absolute times. IPFIX headers have no uptime
// (RFC 7011 §3.1): an exporter that sends 22/21 over IPFIX (softflowd does) gives
// their reference as systemInitTimeMilliseconds (IE 160) in an options record.
// This remembers IE 160 per observation domain and writes, into the metadata of
// every later IPFIX message of that domain, the header uptime v9 would have
// carried (export_time * 1000 - init), so renderers and file writers need only
// one rule for both protocols.
//
// One instance per transport session (the reference belongs to the exporting
// process behind it); one thread at a time. Bounded: at most kMaxDomains domains.
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "ipfix/record.hpp"

namespace flowsec::ipfix {

class UptimeReference {
 public:
  static constexpr std::size_t kMaxDomains = 1024;
  // Looks at the records and messages added to `batch` since `since` (taken with
  // batch.mark() before decoding): learns IE 160 from options records, then fills in
  // sys_uptime_ms of IPFIX messages that have none.
  void apply(RecordBatch& batch, const RecordBatch::Mark& since);

 private:
  std::unordered_map<std::uint32_t, std::uint64_t> init_ms_;  // per observation domain
};

}  // namespace flowsec::ipfix
