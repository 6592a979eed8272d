// IPFIX message decoder (RFC 7011). See decode.hpp for the contract.
//
// Shape: one pass over the sets. Template changes are staged and committed to
// the store only after the last set decoded (all or nothing); data sets look
// templates up once per set, never per record; the message is copied into the
// batch once and records are views (offset, length) into that copy.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "ipfix/decode.hpp"
#include "ipfix/limits.hpp"
#include "ipfix/message_input.hpp"

namespace flowsec::ipfix {
namespace {

constexpr std::size_t kHeaderSize = 16;      // RFC 7011 §3.1
constexpr std::size_t kSetHeaderSize = 4;    // RFC 7011 §3.3.2
constexpr std::uint16_t kTemplateSetId = 2;  // RFC 7011 §3.3.2
constexpr std::uint16_t kOptionsTemplateSetId = 3;
constexpr std::uint16_t kMinDataSetId = 256;
constexpr std::uint16_t kEnterpriseBit = 0x8000;  // RFC 7011 §3.2

// A template change decoded from this message, applied to the store only when
// the whole message decoded (decode.hpp: all or nothing).
struct StagedOp {
  enum class Kind : std::uint8_t { add, withdraw, withdraw_all };
  Kind kind;
  bool options_only = false;  // withdraw_all: options templates (set 3) instead of data templates
  std::uint16_t id = 0;
  TemplatePtr tmpl;
};

class Decoder : private detail::MessageInput {
 public:
  Decoder(Bytes message, TemplateStore& store, RecordBatch& out)
      : MessageInput(message, out), store_(store) {}

  Result<DecodeStats> run();

 private:
  Result<void> template_set(std::size_t body_at, std::size_t body_len, bool options);
  Result<void> data_set(std::uint16_t set_id, std::size_t body_at, std::size_t body_len);
  Result<void> variable_records(const Template& t, std::size_t at, std::size_t end,
                                std::uint16_t template_index);

  // The template a data set with this id refers to: staged changes of this
  // message first, then the store.
  TemplatePtr lookup(std::uint16_t id);
  void stage(StagedOp op);
  void commit();

  TemplateStore& store_;
  DecodeStats stats_;

  std::vector<StagedOp> staged_;
  // Latest staged add/withdraw per id, and the position of the latest
  // withdraw-all ops, so a lookup costs O(1) however many ops the message holds.
  std::unordered_map<std::uint16_t, std::size_t> latest_;
  std::size_t withdraw_all_at_ = 0;      // 1 + index, 0 = none
  std::size_t withdraw_options_at_ = 0;  // 1 + index, 0 = none
};

Result<DecodeStats> Decoder::run() {
  // RFC 7011 §3.1: Version, Length, Export Time, Sequence Number, Observation Domain ID.
  if (msg_.size() < kHeaderSize) return fail(Errc::truncated_header, 0);
  if (u16_at(0) != 10) return fail(Errc::bad_version, 0);
  const std::size_t length = u16_at(2);
  // RFC 7011 §3.1: Length is the total message length including this header.
  if (length < kHeaderSize) return fail(Errc::length_too_small, 2);
  if (length > msg_.size()) return fail(Errc::length_exceeds_data, 2);
  // One message per datagram (RFC 7011 §10.3) or per framed stream message (§10.4):
  // bytes past Length are not part of any message.
  if (length < msg_.size()) return fail(Errc::length_below_data, length);

  meta_.protocol = Protocol::ipfix;
  meta_.export_time = u32_at(4);
  meta_.sequence = u32_at(8);
  meta_.observation_domain = u32_at(12);
  stats_.protocol = Protocol::ipfix;
  stats_.sequence = meta_.sequence;
  stats_.observation_domain = meta_.observation_domain;

  std::size_t at = kHeaderSize;
  while (at < length) {
    // RFC 7011 §3.3.2: Set ID and Length; Length covers the set header.
    if (length - at < kSetHeaderSize) return fail(Errc::set_overruns_message, at);
    const std::uint16_t set_id = u16_at(at);
    const std::size_t set_len = u16_at(at + 2);
    if (set_len < kSetHeaderSize) return fail(Errc::set_too_short, at);
    if (set_len > length - at) return fail(Errc::set_overruns_message, at);
    const std::size_t body_at = at + kSetHeaderSize;
    const std::size_t body_len = set_len - kSetHeaderSize;

    if (set_id == kTemplateSetId || set_id == kOptionsTemplateSetId) {
      if (auto r = template_set(body_at, body_len, set_id == kOptionsTemplateSetId); !r) {
        return tl::unexpected(r.error());
      }
    } else if (set_id >= kMinDataSetId) {
      if (auto r = data_set(set_id, body_at, body_len); !r) return tl::unexpected(r.error());
    } else {
      // RFC 7011 §3.3.2: ids 0 and 1 are not used for historical reasons, 4..255 are
      // reserved for future use. Their length is still trustworthy, so we skip them
      // (counted) instead of dropping the message.
      ++stats_.skipped_sets;
    }
    at += set_len;
  }
  commit();
  return stats_;
}

Result<void> Decoder::template_set(std::size_t body_at, std::size_t body_len, bool options) {
  const std::uint16_t set_id = options ? kOptionsTemplateSetId : kTemplateSetId;
  const std::size_t end = body_at + body_len;
  std::size_t at = body_at;
  // Fields are parsed here first, so that a refresh of a known template (the common
  // case over UDP) allocates nothing and keeps the pointer batches already hold.
  std::array<FieldSpec, limits::kMaxFieldsPerTemplate> fields;

  // RFC 7011 §3.3.1: up to 3 bytes of padding may end a set; every template record
  // (even a withdrawal, RFC 7011 §8.1) is at least 4 bytes.
  while (end - at >= 4) {
    const std::size_t record_at = at;
    const std::uint16_t id = u16_at(at);
    const std::uint16_t field_count = u16_at(at + 2);
    at += 4;

    if (field_count == 0) {
      // RFC 7011 §8.1: a field count of 0 withdraws the template; the set id as
      // template id withdraws every (options) template of the domain.
      ++stats_.withdrawals;
      if (id == set_id) {
        stage(StagedOp{StagedOp::Kind::withdraw_all, options, id, nullptr});
        continue;
      }
      // RFC 7011 §3.4.1: template ids 0..255 are reserved.
      if (id < kMinDataSetId) return fail(Errc::template_id_reserved, record_at);
      stage(StagedOp{StagedOp::Kind::withdraw, false, id, nullptr});
      continue;
    }
    // RFC 7011 §3.4.1: template ids 0..255 are reserved.
    if (id < kMinDataSetId) return fail(Errc::template_id_reserved, record_at);
    // limits.hpp: the cap on fields per template (SPEC §9).
    if (field_count > limits::kMaxFieldsPerTemplate) {
      return fail(Errc::template_too_many_fields, record_at + 2);
    }
    std::uint16_t scope_count = 0;
    if (options) {
      // RFC 7011 §3.4.2.2: Scope Field Count follows the Field Count, and is at least 1
      // and at most the field count.
      if (end - at < 2) return fail(Errc::template_truncated, at);
      scope_count = u16_at(at);
      if (scope_count == 0 || scope_count > field_count) {
        return fail(Errc::template_scope_count, at);
      }
      at += 2;
    }
    // RFC 7011 §3.2: each field specifier is id + length, followed by a 4-byte
    // enterprise number when the id's top bit is set.
    for (std::size_t i = 0; i < field_count; ++i) {
      if (end - at < 4) return fail(Errc::template_truncated, at);
      std::uint16_t fid = u16_at(at);
      const std::uint16_t flen = u16_at(at + 2);
      at += 4;
      std::uint32_t pen = 0;
      if ((fid & kEnterpriseBit) != 0) {
        if (end - at < 4) return fail(Errc::template_truncated, at);
        pen = u32_at(at);
        at += 4;
        fid = static_cast<std::uint16_t>(fid & ~kEnterpriseBit);
      }
      fields[i] = FieldSpec{pen, fid, flen};
    }
    const std::span<const FieldSpec> parsed(fields.data(), field_count);

    TemplatePtr t;
    if (TemplatePtr current = lookup(id);
        current && current->scope_count() == scope_count &&
        std::equal(parsed.begin(), parsed.end(), current->fields().begin(),
                   current->fields().end())) {
      t = std::move(current);
    } else {
      // Template::make enforces the remaining structural rules (zero-length fields,
      // RFC 7011 §7 record length bound).
      auto made = Template::make(id, std::vector<FieldSpec>(parsed.begin(), parsed.end()),
                                 scope_count, record_at);
      if (!made) return tl::unexpected(made.error());
      t = std::move(*made);
    }
    stage(StagedOp{StagedOp::Kind::add, false, id, std::move(t)});
  }
  return {};
}

Result<void> Decoder::data_set(std::uint16_t set_id, std::size_t body_at, std::size_t body_len) {
  TemplatePtr t = lookup(set_id);
  if (!t) {
    // decode.hpp: data without its template is counted, not an error; over UDP data can
    // arrive before its template or after it expired (RFC 7011 §8.4).
    ++stats_.unknown_template_sets;
    stats_.unknown_template_bytes += static_cast<std::uint32_t>(body_len);
    return {};
  }
  const std::size_t min_len = t->min_record_length();
  if (body_len < min_len) return {};  // RFC 7011 §3.3.1: nothing but padding
  ensure_stored();
  const std::uint16_t template_index = out_.use_template(t);
  const std::uint32_t before = stats_.data_records;

  if (!t->has_variable_length()) {
    // RFC 7011 §3.3.1: records back to back; a remainder shorter than one record is padding.
    const std::size_t count = body_len / min_len;
    const auto rec_len = static_cast<std::uint16_t>(min_len);
    std::uint32_t offset = base_ + static_cast<std::uint32_t>(body_at);
    for (std::size_t i = 0; i < count; ++i) {
      out_.add(offset, rec_len, template_index, message_index_);
      offset += rec_len;
    }
    stats_.data_records += static_cast<std::uint32_t>(count);
  } else if (auto r = variable_records(*t, body_at, body_at + body_len, template_index); !r) {
    return r;
  }
  if (t->is_options()) stats_.options_records += stats_.data_records - before;
  return {};
}

Result<void> Decoder::variable_records(const Template& t, std::size_t at, std::size_t end,
                                       std::uint16_t template_index) {
  const std::size_t min_len = t.min_record_length();
  const auto fields = t.fields();
  // RFC 7011 §3.3.1: fewer bytes than the smallest possible record left is padding.
  while (end - at >= min_len) {
    const std::size_t record_at = at;
    for (const FieldSpec& f : fields) {
      std::size_t len = f.length;
      if (f.is_variable()) {
        // RFC 7011 §7: a 1-byte length; 255 announces a 2-byte length that follows.
        if (at >= end) return fail(Errc::varlen_truncated, at);
        len = static_cast<std::uint8_t>(msg_[at]);
        ++at;
        if (len == 255) {
          if (end - at < 2) return fail(Errc::varlen_truncated, at - 1);
          len = u16_at(at);
          at += 2;
        }
      }
      if (end - at < len) return fail(Errc::varlen_truncated, at);
      at += len;
    }
    out_.add(base_ + static_cast<std::uint32_t>(record_at),
             static_cast<std::uint16_t>(at - record_at), template_index, message_index_);
    ++stats_.data_records;
  }
  return {};
}

TemplatePtr Decoder::lookup(std::uint16_t id) {
  TemplatePtr t;
  std::size_t since = 0;  // staged ops at index >= since may still hide t
  if (auto it = latest_.find(id); it != latest_.end()) {
    const StagedOp& op = staged_[it->second];
    if (op.kind == StagedOp::Kind::withdraw) return nullptr;
    t = op.tmpl;
    since = it->second + 1;
  } else {
    t = store_.find(Protocol::ipfix, meta_.observation_domain, id);
    if (!t) return nullptr;
  }
  // RFC 7011 §8.1: a later withdraw-all hides it.
  if (withdraw_all_at_ > since && !t->is_options()) return nullptr;
  if (withdraw_options_at_ > since && t->is_options()) return nullptr;
  return t;
}

void Decoder::stage(StagedOp op) {
  // RFC 7011 §8.1 / SPEC §6: withdrawals over a datagram transport are ignored by
  // the store, so they must not hide templates from data sets here either. They
  // are still staged so the store counts them.
  const bool honoured = store_.kind() != TransportKind::datagram;
  switch (op.kind) {
    case StagedOp::Kind::add:
      latest_[op.id] = staged_.size();
      break;
    case StagedOp::Kind::withdraw:
      if (honoured) latest_[op.id] = staged_.size();
      break;
    case StagedOp::Kind::withdraw_all:
      if (honoured)
        (op.options_only ? withdraw_options_at_ : withdraw_all_at_) = staged_.size() + 1;
      break;
  }
  staged_.push_back(std::move(op));
}

void Decoder::commit() {
  const std::uint32_t domain = meta_.observation_domain;
  for (StagedOp& op : staged_) {
    switch (op.kind) {
      case StagedOp::Kind::add:
        if (store_.add(Protocol::ipfix, domain, std::move(op.tmpl)) ==
            TemplateStore::AddResult::rejected) {
          ++stats_.templates_rejected;
        } else {
          ++stats_.templates;
        }
        break;
      case StagedOp::Kind::withdraw:
        store_.withdraw(Protocol::ipfix, domain, op.id);
        break;
      case StagedOp::Kind::withdraw_all:
        store_.withdraw_all(Protocol::ipfix, domain, op.options_only);
        break;
    }
  }
}

}  // namespace

Result<DecodeStats> decode_ipfix(Bytes message, TemplateStore& templates, RecordBatch& out) {
  const RecordBatch::Mark mark = out.mark();
  Decoder decoder(message, templates, out);
  auto result = decoder.run();
  // decode.hpp: all or nothing. Template changes were only staged, so the store is
  // untouched; the batch goes back to where it was.
  if (!result) out.rollback(mark);
  return result;
}

}  // namespace flowsec::ipfix
