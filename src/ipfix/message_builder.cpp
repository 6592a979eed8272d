#include "ipfix/message_builder.hpp"

#include <algorithm>

namespace flowsec::ipfix {
namespace {

constexpr std::uint16_t kTemplateSetId = 2;  // RFC 7011 §3.3.2
constexpr std::uint16_t kOptionsTemplateSetId = 3;
constexpr std::uint16_t kEnterpriseBit = 0x8000;  // RFC 7011 §3.2
constexpr std::size_t kWithdrawalSize = 4;        // RFC 7011 §8.1
constexpr std::uint16_t kMinTemplateId = 256;     // RFC 7011 §3.4.1

std::size_t template_record_size(const Template& t) {
  // RFC 7011 §3.4.1 / §3.4.2.2: id, field count [, scope field count], field specifiers.
  std::size_t n = t.is_options() ? 6 : 4;
  for (const FieldSpec& f : t.fields()) n += f.enterprise != 0 ? 8 : 4;
  return n;
}

}  // namespace

IpfixMessageBuilder::IpfixMessageBuilder(std::uint32_t observation_domain,
                                         std::size_t max_message_size)
    : domain_(observation_domain),
      max_size_(std::clamp(max_message_size, kHeaderSize, limits::kMaxMessageSize)) {
  begin(0, 0);
}

void IpfixMessageBuilder::begin(std::uint32_t export_time, std::uint32_t sequence) {
  export_time_ = export_time;
  sequence_ = sequence;
  data_records_ = 0;
  set_id_ = 0;
  set_at_ = 0;
  set_min_record_ = 0;
  buf_.clear();
  // RFC 7011 §3.1: Version 10, Length (patched by finish()), Export Time,
  // Sequence Number, Observation Domain ID.
  ByteWriter w(buf_);
  w.u16(10);
  w.u16(0);
  w.u32(export_time);
  w.u32(sequence);
  w.u32(domain_);
}

std::size_t IpfixMessageBuilder::padding_for(std::size_t set_length, std::size_t min_record) const {
  if (!pad_sets_) return 0;
  const std::size_t pad = (4 - set_length % 4) % 4;
  // RFC 7011 §3.3.1: "The padding length MUST be shorter than any allowable record in
  // this Set", or a decoder would take it for one more record.
  return pad < min_record ? pad : 0;
}

std::size_t IpfixMessageBuilder::open_padding() const {
  if (set_id_ == 0) return 0;
  return padding_for(buf_.size() - set_at_, set_min_record_);
}

bool IpfixMessageBuilder::open_for(std::uint16_t set_id, std::size_t item_len,
                                   std::size_t min_record) {
  std::size_t total = 0;
  std::size_t new_min = min_record;
  if (set_id == set_id_) {
    new_min = std::min(set_min_record_, min_record);
    const std::size_t set_len = buf_.size() - set_at_ + item_len;
    total = buf_.size() + item_len + padding_for(set_len, new_min);
  } else {
    const std::size_t set_len = kSetHeaderSize + item_len;
    total = buf_.size() + open_padding() + set_len + padding_for(set_len, min_record);
  }
  if (total > max_size_) return false;
  if (set_id != set_id_) {
    close_set();
    set_at_ = buf_.size();
    set_id_ = set_id;
    ByteWriter w(buf_);
    w.u16(set_id);
    w.u16(0);  // patched by close_set()
  }
  set_min_record_ = new_min;
  return true;
}

void IpfixMessageBuilder::close_set() {
  if (set_id_ == 0) return;
  ByteWriter w(buf_);
  w.zeros(open_padding());
  w.patch_u16(set_at_ + 2, static_cast<std::uint16_t>(buf_.size() - set_at_));
  set_id_ = 0;
}

bool IpfixMessageBuilder::add_template(const Template& t) {
  if (t.id() < kMinTemplateId) return false;
  const std::uint16_t set_id = t.is_options() ? kOptionsTemplateSetId : kTemplateSetId;
  // Every template record is at least 4 bytes, so up to 3 bytes of padding never
  // reads as one.
  if (!open_for(set_id, template_record_size(t), kWithdrawalSize)) return false;
  ByteWriter w(buf_);
  w.u16(t.id());
  w.u16(static_cast<std::uint16_t>(t.fields().size()));
  if (t.is_options()) w.u16(t.scope_count());
  for (const FieldSpec& f : t.fields()) {
    // RFC 7011 §3.2: the top bit of the element id announces an enterprise number.
    const auto id = static_cast<std::uint16_t>(f.id & ~kEnterpriseBit);
    if (f.enterprise != 0) {
      w.u16(static_cast<std::uint16_t>(id | kEnterpriseBit));
      w.u16(f.length);
      w.u32(f.enterprise);
    } else {
      w.u16(id);
      w.u16(f.length);
    }
  }
  return true;
}

bool IpfixMessageBuilder::add_withdrawal(std::uint16_t template_id, bool options) {
  const std::uint16_t set_id = options ? kOptionsTemplateSetId : kTemplateSetId;
  if (!open_for(set_id, kWithdrawalSize, kWithdrawalSize)) return false;
  // RFC 7011 §8.1: a template withdrawal is a template record with field count 0.
  ByteWriter w(buf_);
  w.u16(template_id);
  w.u16(0);
  return true;
}

std::size_t IpfixMessageBuilder::add_records(const Template& t, Bytes records,
                                             std::size_t record_length) {
  // RFC 7011 §3.4.1: a data set id is its template id, 256 or more; a smaller id would
  // make the record part of a template set.
  if (t.id() < kMinTemplateId || record_length == 0 || records.size() < record_length) return 0;
  if (!open_for(t.id(), record_length, t.min_record_length())) return 0;
  // The set is open for `t` and the first record fits: n records fit while the message
  // with them and the set's padding stays within max_size_.
  const std::size_t count = records.size() / record_length;
  std::size_t n = std::min(count, (max_size_ - buf_.size()) / record_length);
  while (n > 1 && buf_.size() + n * record_length +
                          padding_for(buf_.size() - set_at_ + n * record_length, set_min_record_) >
                      max_size_) {
    --n;
  }
  ByteWriter(buf_).bytes(records.first(n * record_length));
  data_records_ += static_cast<std::uint32_t>(n);
  return n;
}

std::vector<std::byte> IpfixMessageBuilder::finish() {
  close_set();
  ByteWriter(buf_).patch_u16(2, static_cast<std::uint16_t>(buf_.size()));
  std::vector<std::byte> out = std::move(buf_);
  buf_ = {};
  buf_.reserve(out.capacity());
  begin(export_time_, sequence_);
  return out;
}

}  // namespace flowsec::ipfix
