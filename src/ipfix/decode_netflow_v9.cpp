// NetFlow v9 decoder (RFC 3954). See decode.hpp for the contract.
//
// Shape: one pass over the flowsets. Templates are staged and committed to the
// store only after the whole packet decoded (all or nothing); a data flowset
// looks its template up once, never per record; the packet is copied into the
// batch once and records are views (offset, length) into that copy. v9 field
// types become IPFIX elements (element_for_v9_field, netflow_v9_builder.hpp).
//
// Leniency, each taken from real exporters or from what the RFC leaves open:
//  - Header count (RFC 3954 §5.1: template + options template + data records). Every
//    real capture in tests/data/export matches it exactly, but a data flowset whose
//    template we lack cannot be counted, and a count below the records present harms
//    nobody. So only a count that claims more records than the packet holds is
//    rejected: more than the records counted plus one per byte of uncountable
//    flowsets (a record is at least one byte).
//  - Fields of length 0 (Juniper's options template in
//    tests/data/export/akvorado/netflow_data+templates.pcap sends scope System with
//    length 0) carry nothing and are left out of the template; Template::make
//    refuses them. An options template left with no scope field that way becomes a
//    plain template of its option fields.
//  - Padding: a data flowset's tail shorter than one record, a template flowset's
//    tail shorter than a template header, or any all-zero tail (template id 0 is
//    never valid) is padding (RFC 3954 §5.3, §6.1).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "ipfix/decode.hpp"
#include "ipfix/limits.hpp"
#include "ipfix/message_input.hpp"
#include "ipfix/netflow_v9_builder.hpp"

namespace flowsec::ipfix {
namespace {

constexpr std::size_t kHeaderSize = 20;                 // RFC 3954 §5.1
constexpr std::size_t kFlowsetHeaderSize = 4;           // RFC 3954 §5.2
constexpr std::uint16_t kVersion = 9;                   // RFC 3954 §5.1
constexpr std::uint16_t kTemplateFlowsetId = 0;         // RFC 3954 §5.2
constexpr std::uint16_t kOptionsTemplateFlowsetId = 1;  // RFC 3954 §6.1
constexpr std::uint16_t kMinDataFlowsetId = 256;        // RFC 3954 §5.3
constexpr std::size_t kFieldSize = 4;                   // type + length

class Decoder : private detail::MessageInput {
 public:
  Decoder(Bytes packet, TemplateStore& store, RecordBatch& out)
      : MessageInput(packet, out), store_(store) {}

  Result<DecodeStats> run();

 private:
  Result<void> template_flowset(std::size_t at, std::size_t end);
  Result<void> options_flowset(std::size_t at, std::size_t end);
  void data_flowset(std::uint16_t id, std::size_t at, std::size_t end);
  // Field specifiers of one template record, parsed before any allocation. Lives on
  // the stack of the flowset functions only, so data-only packets never touch it.
  using FieldArray = std::array<FieldSpec, limits::kMaxFieldsPerTemplate>;
  // Parses `count` field specifiers at `at` into `out` (zero-length ones left out);
  // the first `scope` are scope fields. Returns the number kept, scope ones first.
  Result<std::size_t> fields(std::size_t at, std::size_t count, std::size_t scope, FieldArray& out,
                             std::size_t& scope_kept);
  // Stages a template for `parsed`: the current one when the layout did not change
  // (a refresh allocates nothing), else a new one.
  Result<void> stage(std::uint16_t id, std::span<const FieldSpec> parsed, std::size_t scope,
                     std::size_t record_at);

  // Templates staged by this packet first, then the store.
  TemplatePtr lookup(std::uint16_t id);
  void commit();

  [[nodiscard]] bool zero_tail(std::size_t at, std::size_t end) const {
    return std::all_of(msg_.begin() + static_cast<std::ptrdiff_t>(at),
                       msg_.begin() + static_cast<std::ptrdiff_t>(end),
                       [](std::byte b) { return b == std::byte{0}; });
  }

  TemplateStore& store_;
  DecodeStats stats_;
  // For the header count check: records seen, and bytes of flowsets whose records
  // cannot be counted.
  std::size_t records_ = 0;
  std::size_t uncounted_bytes_ = 0;

  std::vector<TemplatePtr> staged_;
  std::unordered_map<std::uint16_t, std::size_t> latest_;  // id -> index in staged_
};

Result<DecodeStats> Decoder::run() {
  // RFC 3954 §5.1: Version, Count, sysUpTime, UNIX Secs, Sequence Number, Source ID.
  if (msg_.size() < kHeaderSize) return fail(Errc::truncated_header, 0);
  if (u16_at(0) != kVersion) return fail(Errc::bad_version, 0);
  const std::size_t count = u16_at(2);
  if (count > limits::kMaxV9RecordsPerPacket) return fail(Errc::count_mismatch, 2);

  meta_.protocol = Protocol::netflow_v9;
  meta_.sys_uptime_ms = u32_at(4);
  meta_.export_time = u32_at(8);
  meta_.sequence = u32_at(12);
  meta_.observation_domain = u32_at(16);
  stats_.protocol = Protocol::netflow_v9;
  stats_.sequence = meta_.sequence;
  stats_.observation_domain = meta_.observation_domain;

  const std::size_t size = msg_.size();
  std::size_t at = kHeaderSize;
  while (at < size) {
    // RFC 3954 §5.2: FlowSet ID and Length; Length covers the flowset header.
    if (size - at < kFlowsetHeaderSize) return fail(Errc::set_overruns_message, at);
    const std::uint16_t id = u16_at(at);
    const std::size_t len = u16_at(at + 2);
    if (len < kFlowsetHeaderSize) return fail(Errc::set_too_short, at);
    if (len > size - at) return fail(Errc::set_overruns_message, at);
    const std::size_t body = at + kFlowsetHeaderSize;
    const std::size_t end = at + len;

    if (id == kTemplateFlowsetId) {
      if (auto r = template_flowset(body, end); !r) return tl::unexpected(r.error());
    } else if (id == kOptionsTemplateFlowsetId) {
      if (auto r = options_flowset(body, end); !r) return tl::unexpected(r.error());
    } else if (id >= kMinDataFlowsetId) {
      data_flowset(id, body, end);
    } else {
      // RFC 3954 §5.3: ids 2..255 are reserved; skip what we cannot interpret.
      ++stats_.skipped_sets;
      uncounted_bytes_ += end - body;
    }
    at = end;
  }

  // RFC 3954 §5.1: Count is the number of records in the packet (see the leniency
  // note at the top of this file).
  if (count > records_ + uncounted_bytes_) return fail(Errc::count_mismatch, 2);
  commit();
  return stats_;
}

Result<void> Decoder::template_flowset(std::size_t at, std::size_t end) {
  // RFC 3954 §5.2: template records back to back: id, field count, (type, length)...
  FieldArray parsed;
  while (end - at >= 4) {
    const std::size_t record_at = at;
    const std::uint16_t id = u16_at(at);
    const std::size_t field_count = u16_at(at + 2);
    if (id == 0 && zero_tail(at, end)) break;  // padding
    // RFC 3954 §5.2: template ids 0..255 are reserved for flowset ids.
    if (id < kMinDataFlowsetId) return fail(Errc::template_id_reserved, record_at);
    if (field_count == 0) return fail(Errc::template_zero_fields, record_at + 2);
    // limits.hpp: the cap on fields per template (SPEC §9).
    if (field_count > limits::kMaxFieldsPerTemplate) {
      return fail(Errc::template_too_many_fields, record_at + 2);
    }
    at += 4;
    if (end - at < kFieldSize * field_count) return fail(Errc::template_truncated, at);
    std::size_t scope_kept = 0;
    auto n = fields(at, field_count, 0, parsed, scope_kept);
    if (!n) return tl::unexpected(n.error());
    if (auto r = stage(id, {parsed.data(), *n}, 0, record_at); !r) return r;
    at += kFieldSize * field_count;
    ++records_;
  }
  return {};
}

Result<void> Decoder::options_flowset(std::size_t at, std::size_t end) {
  // RFC 3954 §6.1: id, option scope length, option length (both in bytes of field
  // specifiers), scope fields, option fields, then padding to 32 bits.
  FieldArray parsed;
  while (end - at >= 6) {
    const std::size_t record_at = at;
    const std::uint16_t id = u16_at(at);
    const std::size_t scope_len = u16_at(at + 2);
    const std::size_t option_len = u16_at(at + 4);
    if (id == 0 && zero_tail(at, end)) break;  // padding
    if (id < kMinDataFlowsetId) return fail(Errc::template_id_reserved, record_at);
    // RFC 3954 §6.1: at least one scope field; both lengths count 4-byte specifiers.
    if (scope_len == 0 || scope_len % kFieldSize != 0) {
      return fail(Errc::template_scope_count, record_at + 2);
    }
    if (option_len % kFieldSize != 0) return fail(Errc::template_scope_count, record_at + 4);
    const std::size_t scope = scope_len / kFieldSize;
    const std::size_t field_count = scope + option_len / kFieldSize;
    if (field_count > limits::kMaxFieldsPerTemplate) {
      return fail(Errc::template_too_many_fields, record_at + 2);
    }
    at += 6;
    if (end - at < scope_len + option_len) return fail(Errc::template_truncated, at);
    std::size_t scope_kept = 0;
    auto n = fields(at, field_count, scope, parsed, scope_kept);
    if (!n) return tl::unexpected(n.error());
    if (auto r = stage(id, {parsed.data(), *n}, scope_kept, record_at); !r) return r;
    at += scope_len + option_len;
    ++records_;
  }
  return {};
}

Result<std::size_t> Decoder::fields(std::size_t at, std::size_t count, std::size_t scope,
                                    FieldArray& out, std::size_t& scope_kept) {
  std::size_t n = 0;
  scope_kept = 0;
  for (std::size_t i = 0; i < count; ++i, at += kFieldSize) {
    const std::uint16_t type = u16_at(at);
    const std::uint16_t length = u16_at(at + 2);
    if (length == 0) continue;  // see the note at the top of this file
    // RFC 3954 fields are fixed-length; 65535 is IPFIX's variable-length marker
    // (RFC 7011 §7) and no v9 record that long fits a packet.
    if (length == kVariableLength) return fail(Errc::template_field_length, at + 2);
    const bool is_scope = i < scope;
    const ElementId e = element_for_v9_field(type, is_scope);
    out[n++] = FieldSpec{e.enterprise, e.id, length};
    if (is_scope) ++scope_kept;
  }
  return n;
}

Result<void> Decoder::stage(std::uint16_t id, std::span<const FieldSpec> parsed, std::size_t scope,
                            std::size_t record_at) {
  TemplatePtr t = lookup(id);
  if (!t || t->scope_count() != scope ||
      !std::equal(parsed.begin(), parsed.end(), t->fields().begin(), t->fields().end())) {
    // Template::make enforces the remaining rules: at least one field (all of them
    // may have had length 0), record length bound.
    auto made = Template::make(id, std::vector<FieldSpec>(parsed.begin(), parsed.end()),
                               static_cast<std::uint16_t>(scope), record_at);
    if (!made) return tl::unexpected(made.error());
    t = std::move(*made);
  }
  latest_[id] = staged_.size();
  staged_.push_back(std::move(t));
  return {};
}

void Decoder::data_flowset(std::uint16_t id, std::size_t at, std::size_t end) {
  const TemplatePtr t = lookup(id);
  const std::size_t body_len = end - at;
  if (!t) {
    // decode.hpp: data without its template is counted, not an error (RFC 3954 §9:
    // a collector may receive data before the template).
    ++stats_.unknown_template_sets;
    stats_.unknown_template_bytes += static_cast<std::uint32_t>(body_len);
    uncounted_bytes_ += body_len;
    return;
  }
  // v9 templates are fixed-length: records back to back, a shorter tail is padding.
  const std::size_t rec_len = t->min_record_length();
  const std::size_t count = body_len / rec_len;
  if (count == 0) return;
  ensure_stored();
  const std::uint16_t template_index = out_.use_template(t);
  std::uint32_t offset = base_ + static_cast<std::uint32_t>(at);
  for (std::size_t i = 0; i < count; ++i) {
    out_.add(offset, static_cast<std::uint16_t>(rec_len), template_index, message_index_);
    offset += static_cast<std::uint32_t>(rec_len);
  }
  records_ += count;
  stats_.data_records += static_cast<std::uint32_t>(count);
  if (t->is_options()) stats_.options_records += static_cast<std::uint32_t>(count);
}

TemplatePtr Decoder::lookup(std::uint16_t id) {
  if (!latest_.empty()) {
    if (auto it = latest_.find(id); it != latest_.end()) return staged_[it->second];
  }
  return store_.find(Protocol::netflow_v9, meta_.observation_domain, id);
}

void Decoder::commit() {
  for (TemplatePtr& t : staged_) {
    if (store_.add(Protocol::netflow_v9, meta_.observation_domain, std::move(t)) ==
        TemplateStore::AddResult::rejected) {
      ++stats_.templates_rejected;
    } else {
      ++stats_.templates;
    }
  }
}

}  // namespace

Result<DecodeStats> decode_netflow_v9(Bytes packet, TemplateStore& templates, RecordBatch& out) {
  const RecordBatch::Mark mark = out.mark();
  Decoder decoder(packet, templates, out);
  auto result = decoder.run();
  // decode.hpp: all or nothing. Templates were only staged, so the store is
  // untouched; the batch goes back to where it was.
  if (!result) out.rollback(mark);
  return result;
}

}  // namespace flowsec::ipfix
