#include "ipfix/netflow_v9_builder.hpp"

#include <algorithm>

namespace flowsec::ipfix {
namespace {

constexpr std::uint16_t kVersion = 9;                   // RFC 3954 §5.1
constexpr std::uint16_t kTemplateFlowsetId = 0;         // RFC 3954 §5.2
constexpr std::uint16_t kOptionsTemplateFlowsetId = 1;  // RFC 3954 §6.1
constexpr std::uint16_t kMinTemplateId = 256;           // RFC 3954 §5.2
constexpr std::uint16_t kHighTypeBit = 0x8000;
constexpr std::uint16_t kMaxScopeType = 5;

// RFC 3954 §6.1 scope field types 1..5 and the IPFIX elements they become (see the
// header for where the choice comes from).
constexpr std::uint16_t kScopeElements[kMaxScopeType + 1] = {
    0,    // (unused)
    144,  // 1 System: exportingProcessId
    10,   // 2 Interface: ingressInterface
    141,  // 3 Line Card: lineCardId
    143,  // 4 Cache: meteringProcessId
    145,  // 5 Template: templateId
};

}  // namespace

ElementId element_for_v9_field(std::uint16_t type, bool scope) {
  if (scope && type >= 1 && type <= kMaxScopeType) return {kIanaPen, kScopeElements[type]};
  return element_for_v9_type(type);
}

std::optional<std::uint16_t> v9_type_for_element(std::uint32_t enterprise, std::uint16_t id,
                                                 bool scope) {
  std::optional<std::uint16_t> type;
  if (scope && enterprise == kIanaPen) {
    for (std::uint16_t t = 1; t <= kMaxScopeType; ++t) {
      if (kScopeElements[t] == id) return t;
    }
  }
  if (enterprise == kIanaPen && id != 0 && (id & kHighTypeBit) == 0) {
    type = id;  // RFC 3954 §8: v9 types are the IANA ids (0 is not a field type)
  } else if (enterprise == kNtopPen) {
    if (const ElementInfo* info = find_element(enterprise, id); info != nullptr) {
      if (info->v9_type != 0) type = info->v9_type;
    }
  } else if (enterprise == kV9HighTypePen && (id & kHighTypeBit) == 0) {
    type = static_cast<std::uint16_t>(id | kHighTypeBit);
  }
  // Only a type that reads back as the same element is an answer: this rejects IANA
  // ids 1..5 as scope fields (they would read as scope types) and high types that
  // now name an ntop element.
  if (type && element_for_v9_field(*type, scope) != ElementId{enterprise, id}) return std::nullopt;
  return type;
}

NetflowV9MessageBuilder::NetflowV9MessageBuilder(std::uint32_t source_id,
                                                 std::size_t max_message_size)
    : source_id_(source_id),
      max_size_(std::clamp(max_message_size, kHeaderSize, limits::kMaxMessageSize)) {
  begin(0, 0, 0);
}

void NetflowV9MessageBuilder::begin(std::uint32_t sys_uptime_ms, std::uint32_t unix_secs,
                                    std::uint32_t sequence) {
  sys_uptime_ms_ = sys_uptime_ms;
  unix_secs_ = unix_secs;
  sequence_ = sequence;
  records_ = 0;
  data_records_ = 0;
  open_ = false;
  flowset_id_ = 0;
  flowset_at_ = 0;
  flowset_min_record_ = 0;
  buf_.clear();
  // RFC 3954 §5.1: Version 9, Count (patched by finish()), sysUpTime, UNIX Secs,
  // Sequence Number (packets), Source ID.
  ByteWriter w(buf_);
  w.u16(kVersion);
  w.u16(0);
  w.u32(sys_uptime_ms);
  w.u32(unix_secs);
  w.u32(sequence);
  w.u32(source_id_);
}

std::size_t NetflowV9MessageBuilder::padding_for(std::size_t set_length, std::size_t min_record) {
  const std::size_t pad = (4 - set_length % 4) % 4;
  // RFC 3954 §5.3 pads flowsets to 32 bits; padding as long as a record would read
  // as one more record, so a flowset of such short records stays unpadded.
  return pad < min_record ? pad : 0;
}

std::size_t NetflowV9MessageBuilder::open_padding() const {
  if (!open_) return 0;
  return padding_for(buf_.size() - flowset_at_, flowset_min_record_);
}

bool NetflowV9MessageBuilder::open_for(std::uint16_t flowset_id, std::size_t item_len,
                                       std::size_t min_record) {
  std::size_t total = 0;
  std::size_t new_min = min_record;
  const bool same = open_ && flowset_id == flowset_id_;
  if (same) {
    new_min = std::min(flowset_min_record_, min_record);
    const std::size_t set_len = buf_.size() - flowset_at_ + item_len;
    total = buf_.size() + item_len + padding_for(set_len, new_min);
  } else {
    const std::size_t set_len = kFlowsetHeaderSize + item_len;
    total = buf_.size() + open_padding() + set_len + padding_for(set_len, min_record);
  }
  if (total > max_size_) return false;
  if (!same) {
    close_flowset();
    open_ = true;
    flowset_at_ = buf_.size();
    flowset_id_ = flowset_id;
    ByteWriter w(buf_);
    w.u16(flowset_id);
    w.u16(0);  // patched by close_flowset()
  }
  flowset_min_record_ = new_min;
  return true;
}

void NetflowV9MessageBuilder::close_flowset() {
  if (!open_) return;
  ByteWriter w(buf_);
  w.zeros(open_padding());
  w.patch_u16(flowset_at_ + 2, static_cast<std::uint16_t>(buf_.size() - flowset_at_));
  open_ = false;
}

bool NetflowV9MessageBuilder::v9_types(const Template& t, std::vector<std::uint16_t>& types) const {
  types.clear();
  const auto fields = t.fields();
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const FieldSpec& f = fields[i];
    // RFC 3954 has fixed-length fields only; 65535 would read back as variable.
    if (f.is_variable()) return false;
    auto type = v9_type_for_element(f.enterprise, f.id, i < t.scope_count());
    if (!type) return false;
    types.push_back(*type);
  }
  return true;
}

bool NetflowV9MessageBuilder::write_template(const Template& t, bool options) {
  // RFC 3954 §5.2: template ids 0..255 are reserved for flowset ids.
  if (t.id() < kMinTemplateId) return false;
  if (!v9_types(t, types_)) return false;
  const auto fields = t.fields();
  // RFC 3954 §5.2 template record: id, field count, (type, length)...
  // RFC 3954 §6.1 options template record: id, scope length, option length (bytes).
  const std::size_t record_len = (options ? 6 : 4) + 4 * fields.size();
  // Template records are at least 8 bytes, so up to 3 bytes of padding never read as one.
  if (!open_for(options ? kOptionsTemplateFlowsetId : kTemplateFlowsetId, record_len, 8)) {
    return false;
  }
  ByteWriter w(buf_);
  w.u16(t.id());
  if (options) {
    w.u16(static_cast<std::uint16_t>(4 * t.scope_count()));
    w.u16(static_cast<std::uint16_t>(4 * (fields.size() - t.scope_count())));
  } else {
    w.u16(static_cast<std::uint16_t>(fields.size()));
  }
  for (std::size_t i = 0; i < fields.size(); ++i) {
    w.u16(types_[i]);
    w.u16(fields[i].length);
  }
  ++records_;
  return true;
}

bool NetflowV9MessageBuilder::add_template(const Template& t) {
  if (t.is_options()) return add_options_template(t);
  return write_template(t, false);
}

bool NetflowV9MessageBuilder::add_options_template(const Template& t) {
  if (!t.is_options()) return false;
  return write_template(t, true);
}

std::size_t NetflowV9MessageBuilder::add_records(const Template& t, Bytes records,
                                                 std::size_t record_length) {
  // RFC 3954 §5.3: the data flowset id is the template id, 256 or more.
  if (t.id() < kMinTemplateId || record_length == 0 || records.size() < record_length) return 0;
  if (!open_for(t.id(), record_length, record_length)) return 0;
  // The flowset is open for `t` and the first record fits: n records fit while the packet
  // with them and the flowset's padding stays within max_size_.
  const std::size_t count = records.size() / record_length;
  std::size_t n = std::min(count, (max_size_ - buf_.size()) / record_length);
  while (n > 1 &&
         buf_.size() + n * record_length +
                 padding_for(buf_.size() - flowset_at_ + n * record_length, flowset_min_record_) >
             max_size_) {
    --n;
  }
  ByteWriter(buf_).bytes(records.first(n * record_length));
  records_ += static_cast<std::uint32_t>(n);
  data_records_ += static_cast<std::uint32_t>(n);
  return n;
}

std::vector<std::byte> NetflowV9MessageBuilder::finish() {
  close_flowset();
  // RFC 3954 §5.1: Count is every template, options template and data record. A
  // record is at least one byte and the packet at most 65535, so it fits 16 bits.
  ByteWriter(buf_).patch_u16(2, static_cast<std::uint16_t>(records_));
  std::vector<std::byte> out = std::move(buf_);
  buf_ = {};
  buf_.reserve(out.capacity());
  begin(sys_uptime_ms_, unix_secs_, sequence_);
  return out;
}

}  // namespace flowsec::ipfix
