#pragma once
// UptimeConverter: makes NetFlow-style times absolute before records go into an
// IPFIX file (SPEC §6 "-D b").
//
// flowStartSysUpTime (22, v5/v9 FIRST_SWITCHED) and flowEndSysUpTime (21,
// LAST_SWITCHED) count milliseconds since the exporter booted; the reference is the
// message header's sysUptime, which an IPFIX file (RFC 5655) does not carry. So for
// each template holding them a derived template is made where they become
// flowStartMilliseconds (152) / flowEndMilliseconds (153), 8 bytes, epoch ms — computed
// as ipfix/render.hpp does for text, at millisecond precision:
//  - record has systemInitTimeMilliseconds (160): init + value;
//  - else header has export_time and sys_uptime_ms (v5, v9, sFlow):
//    export_time·1000 + export_time_nsec/10^6 − (sys_uptime_ms − value), the
//    difference taken modulo 2^32 as a signed number (uptime wrap, small skew);
//  - else (plain IPFIX without 160): the record is left as it is.
// Only fixed-length 1..8-byte occurrences are converted; the other fields, and
// variable-length fields with their prefixes, are copied byte for byte.
//
// Contract: one thread at a time (the sink's worker). convert() returns the input
// batch itself when none of its templates holds 21/22 (the common IPFIX case: no
// copy), otherwise a converted copy that stays valid until the next convert().
// Derived templates are cached per input template (bounded; the cache keeps the
// input templates alive so their addresses are not reused). Never fails: a
// template that cannot be derived is passed through unchanged.
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "ipfix/record.hpp"
#include "ipfix/template.hpp"

namespace flowsec::sinks {

class UptimeConverter {
 public:
  static constexpr std::size_t kMaxCachedTemplates = 4096;

  [[nodiscard]] const ipfix::RecordBatch& convert(const ipfix::RecordBatch& in);

  // Records rewritten with absolute times since construction (for tests and stats).
  [[nodiscard]] std::uint64_t records_converted() const { return converted_; }

 private:
  struct Entry {
    ipfix::TemplatePtr source;          // keeps the key's address valid
    ipfix::TemplatePtr derived;         // nullptr: nothing to convert in this template
    std::vector<std::uint8_t> convert;  // per field: 0 copy, 1 → 152/153
  };
  const std::shared_ptr<const Entry>& entry(const ipfix::TemplatePtr& t);

  std::unordered_map<const ipfix::Template*, std::shared_ptr<const Entry>> cache_;
  std::vector<std::shared_ptr<const Entry>>
      resolved_;  // per template index of the batch being converted
  ipfix::RecordBatch out_;
  std::uint64_t converted_ = 0;
};

}  // namespace flowsec::sinks
