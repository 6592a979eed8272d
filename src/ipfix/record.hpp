#pragma once
// The one record model everything downstream of a decoder sees (ARCHITECTURE
// "normalize early"): NetFlow v5, v9, IPFIX and sFlow all become IPFIX data
// records — bytes laid out by a Template of IPFIX information elements.
//
// A RecordBatch owns the bytes of the records it holds (a copy of each
// message, or bytes synthesised for v5/sFlow), the templates they use, and
// per-message metadata. Records are views into it; they stay valid until the
// batch is cleared. Decoders already checked every record against its
// template, so views never need to re-validate lengths. A batch is used by
// one thread at a time; hand it over whole (move) through a queue.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/ip_address.hpp"
#include "ipfix/template.hpp"

namespace flowsec::ipfix {

enum class Protocol : std::uint8_t { netflow_v5, netflow_v9, ipfix, sflow_v5 };

// Where a batch came from: filled in by the collector for every output (SPEC §6).
struct Exporter {
  IpAddress address;
  std::uint16_t port = 0;
  // Authenticated certificate subject over TLS/DTLS; empty otherwise.
  std::string tls_identity;
};

struct MessageMeta {
  Protocol protocol = Protocol::ipfix;
  std::uint32_t export_time = 0;         // seconds since 1970 (all headers carry one)
  std::uint32_t sequence = 0;            // as on the wire (meaning differs per protocol)
  std::uint32_t observation_domain = 0;  // IPFIX domain, v9 source id, v5 engine type<<8|id,
                                         // sFlow sub-agent id
  std::uint32_t sys_uptime_ms = 0;       // v5/v9/sFlow header; IPFIX: see ipfix_uptime
  std::uint32_t export_time_nsec = 0;    // v5 residual nanoseconds; 0 otherwise
  // IPFIX headers carry no uptime (RFC 7011 §3.1): true once sys_uptime_ms was filled in for
  // the message, from the session's systemInitTimeMilliseconds (IE 160) or the probe's own
  // clock. Then 0 is an uptime like any other: a message exported within the first second
  // after the exporter's start has it.
  bool ipfix_uptime = false;
};

// The message has an uptime that turns flowStart/EndSysUpTime (IE 22/21) into absolute
// times: an IPFIX message one filled in, a v5/v9/sFlow one a non-zero header uptime.
[[nodiscard]] inline bool has_sys_uptime(const MessageMeta& m) {
  return m.protocol == Protocol::ipfix ? m.ipfix_uptime : m.sys_uptime_ms != 0;
}

// One field of one record: its spec and its value bytes (without the variable-length prefix).
struct FieldValue {
  const FieldSpec* spec;
  Bytes value;
};

class RecordView {
 public:
  RecordView(const Template& t, Bytes bytes, const MessageMeta& meta)
      : template_(&t), bytes_(bytes), meta_(&meta) {}

  [[nodiscard]] const Template& record_template() const { return *template_; }
  [[nodiscard]] Bytes bytes() const { return bytes_; }
  [[nodiscard]] const MessageMeta& message() const { return *meta_; }

  // Calls fn(FieldValue) for each field in template order.
  template <class Fn>
  void for_each_field(Fn&& fn) const;
  // Value bytes of the first field with this element, if present.
  [[nodiscard]] std::optional<Bytes> field(std::uint32_t enterprise, std::uint16_t id) const;
  // Unsigned value (any length 1..8) of the first such field.
  [[nodiscard]] std::optional<std::uint64_t> unsigned_field(std::uint32_t enterprise,
                                                            std::uint16_t id) const;

 private:
  const Template* template_;
  Bytes bytes_;
  const MessageMeta* meta_;
};

class RecordBatch {
 public:
  struct Ref {
    std::uint32_t offset;
    std::uint16_t length;
    std::uint16_t template_index;
    std::uint32_t message_index;
  };
  // Size of every part, to roll back a message that failed half-way through decoding.
  struct Mark {
    std::size_t data, refs, templates, messages;
  };

  RecordBatch() = default;
  RecordBatch(RecordBatch&&) noexcept = default;
  RecordBatch& operator=(RecordBatch&&) noexcept = default;

  [[nodiscard]] std::size_t size() const { return refs_.size(); }
  [[nodiscard]] bool empty() const { return refs_.empty(); }
  [[nodiscard]] RecordView operator[](std::size_t i) const {
    const Ref& r = refs_[i];
    return RecordView(*templates_[r.template_index], Bytes(data_).subspan(r.offset, r.length),
                      messages_[r.message_index]);
  }
  [[nodiscard]] std::span<const TemplatePtr> templates() const { return templates_; }
  // The records from `first` on that share its template and message and follow one another
  // in storage, as one span of bytes; `end` is set one past the last of them.
  [[nodiscard]] Bytes run(std::size_t first, std::size_t& end) const {
    const Ref& a = refs_[first];
    std::size_t next = a.offset + std::size_t{a.length};
    end = first + 1;
    while (end < refs_.size() && refs_[end].template_index == a.template_index &&
           refs_[end].message_index == a.message_index && refs_[end].offset == next) {
      next += refs_[end].length;
      ++end;
    }
    return Bytes(data_).subspan(a.offset, next - a.offset);
  }

  // The exporter shared by every record in the batch.
  Exporter exporter;

  // --- building (decoders) ---
  // Copies bytes into the batch; returns their offset.
  std::uint32_t store(Bytes bytes) {
    auto at = static_cast<std::uint32_t>(data_.size());
    data_.insert(data_.end(), bytes.begin(), bytes.end());
    return at;
  }
  // Writable storage for synthesised records (v5 header fields, sFlow).
  std::vector<std::byte>& storage() { return data_; }
  std::uint32_t add_message(const MessageMeta& meta) {
    messages_.push_back(meta);
    return static_cast<std::uint32_t>(messages_.size() - 1);
  }
  // Index of `t` in this batch, adding it if it is not the last one added.
  std::uint16_t use_template(const TemplatePtr& t);
  void add(std::uint32_t offset, std::uint16_t length, std::uint16_t template_index,
           std::uint32_t message_index) {
    // Built in place from the four values (a Ref built first and passed by reference was
    // stored in pieces and read back whole: a failed store forward, 4% of the probe's CPU).
    refs_.emplace_back(offset, length, template_index, message_index);
  }
  // Metadata of the messages added since `first` (a Mark's `messages`), for session-level
  // corrections a decoder cannot make alone (collector: systemInitTimeMilliseconds).
  [[nodiscard]] std::span<MessageMeta> messages_from(std::size_t first) {
    return std::span<MessageMeta>(messages_).subspan(first);
  }
  [[nodiscard]] Mark mark() const {
    return {data_.size(), refs_.size(), templates_.size(), messages_.size()};
  }
  void rollback(const Mark& m);
  void clear();
  void reserve(std::size_t bytes, std::size_t records) {
    data_.reserve(bytes);
    refs_.reserve(records);
  }

 private:
  std::vector<std::byte> data_;
  std::vector<Ref> refs_;
  std::vector<TemplatePtr> templates_;
  std::vector<MessageMeta> messages_;
};

template <class Fn>
void RecordView::for_each_field(Fn&& fn) const {
  const auto fields = template_->fields();
  if (!template_->has_variable_length()) {
    for (std::size_t i = 0; i < fields.size(); ++i) {
      fn(FieldValue{&fields[i], bytes_.subspan(template_->fixed_offset(i), fields[i].length)});
    }
    return;
  }
  // RFC 7011 §7: a length of 255 announces a 2-byte length that follows.
  std::size_t pos = 0;
  for (const FieldSpec& f : fields) {
    std::size_t len = f.length;
    if (f.is_variable()) {
      if (pos >= bytes_.size()) return;
      len = static_cast<std::uint8_t>(bytes_[pos++]);
      if (len == 255) {
        if (pos + 2 > bytes_.size()) return;
        len = load_be<std::uint16_t>(bytes_.data() + pos);
        pos += 2;
      }
    }
    if (pos + len > bytes_.size()) return;
    fn(FieldValue{&f, bytes_.subspan(pos, len)});
    pos += len;
  }
}

}  // namespace flowsec::ipfix
