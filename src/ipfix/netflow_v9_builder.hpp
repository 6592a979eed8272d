#pragma once
// Builds one NetFlow v9 export packet (RFC 3954 §5) at a time: header, template
// flowsets, options template flowsets and data flowsets, never larger than the
// size given at construction. Also home of the NetFlow v9 field type <-> IPFIX
// element mapping, which decode_netflow_v9 uses in the other direction.
//
// Contract (same shape as IpfixMessageBuilder): the builder owns its buffer;
// finish() hands the finished packet to the caller. Every add_* either appends
// the whole item or returns false and changes nothing — when the item would push
// the packet over the size bound, or when v9 cannot express it (template id below
// 256, a variable-length field, an element with no v9 field type). Records handed
// to add_record() must already be encoded for their template (not re-validated).
// No exceptions beyond std::bad_alloc; one thread at a time.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/bytes.hpp"
#include "ipfix/ie_registry.hpp"
#include "ipfix/limits.hpp"
#include "ipfix/template.hpp"

namespace flowsec::ipfix {

// The IPFIX element a NetFlow v9 field of this type carries. `scope` marks a scope
// field of an options template: there types 1..5 are RFC 3954 §6.1 scope types
// (System, Interface, Line Card, Cache, Template), not IANA ids 1..5, and map to
// exportingProcessId, ingressInterface, lineCardId, meteringProcessId, templateId.
// System, Interface, Line Card and Template follow ipfixcol2's table
// (src/core/netflow2ipfix/netflow9.c, nf2ipx_opts_table); ipfixcol2 leaves Cache
// unmapped and names meteringProcessId as the candidate, which we take. Other types
// go through element_for_v9_type (RFC 3954 §8, ntop's 57472.. range).
[[nodiscard]] ElementId element_for_v9_field(std::uint16_t type, bool scope);

// The inverse: the v9 field type that carries this element, or nullopt when v9
// cannot express it (another enterprise's element; as a scope field, an element that
// is neither one of the five scope elements above nor a type above 5).
// element_for_v9_field(*v9_type_for_element(e, id, s), s) == {e, id} always holds.
[[nodiscard]] std::optional<std::uint16_t> v9_type_for_element(std::uint32_t enterprise,
                                                               std::uint16_t id, bool scope);

class NetflowV9MessageBuilder {
 public:
  // max_message_size is clamped to 20..65535 (RFC 3954 §5.1 header; UDP payload).
  explicit NetflowV9MessageBuilder(
      std::uint32_t source_id, std::size_t max_message_size = limits::kDefaultDatagramMessageSize);

  // Starts a new packet, dropping anything not finished.
  void begin(std::uint32_t sys_uptime_ms, std::uint32_t unix_secs, std::uint32_t sequence);
  // A template record in a template flowset (RFC 3954 §5.2); an options template
  // (t.is_options()) is passed on to add_options_template().
  [[nodiscard]] bool add_template(const Template& t);
  // An options template record in an options template flowset (RFC 3954 §6.1): scope
  // and option lengths in bytes, scope fields first. False if !t.is_options().
  [[nodiscard]] bool add_options_template(const Template& t);
  // A data record for `t`, already encoded; consecutive records of one template share
  // a data flowset (RFC 3954 §5.3).
  [[nodiscard]] bool add_record(const Template& t, Bytes record) {
    return add_records(t, record, record.size()) == 1;
  }
  // As many of `records` (records of `t`, back to back, `record_length` bytes each) as fit
  // the packet, in one copy: how many were added, 0 when not even the first fits.
  [[nodiscard]] std::size_t add_records(const Template& t, Bytes records,
                                        std::size_t record_length);

  // Nothing added since begin().
  [[nodiscard]] bool empty() const { return buf_.size() == kHeaderSize; }
  // The header count so far: template, options template and data records (RFC 3954 §5.1).
  [[nodiscard]] std::uint32_t records() const { return records_; }
  [[nodiscard]] std::uint32_t data_records() const { return data_records_; }
  // Size the packet would have if finished now (header, flowsets and padding).
  [[nodiscard]] std::size_t size() const { return buf_.size() + open_padding(); }

  // Closes the open flowset (padded to 4 bytes, RFC 3954 §5.3), patches every
  // flowset length and the header count, and returns the packet. The builder then
  // holds an empty packet with the same header; call begin() for the next one.
  std::vector<std::byte> finish();

 private:
  static constexpr std::size_t kHeaderSize = 20;
  static constexpr std::size_t kFlowsetHeaderSize = 4;

  // The v9 types of t's fields in order, or false if v9 cannot express t.
  bool v9_types(const Template& t, std::vector<std::uint16_t>& types) const;
  bool write_template(const Template& t, bool options);
  [[nodiscard]] static std::size_t padding_for(std::size_t set_length, std::size_t min_record);
  [[nodiscard]] std::size_t open_padding() const;
  bool open_for(std::uint16_t flowset_id, std::size_t item_len, std::size_t min_record);
  void close_flowset();

  std::uint32_t source_id_;
  std::size_t max_size_;
  std::vector<std::byte> buf_;
  std::uint32_t sys_uptime_ms_ = 0;
  std::uint32_t unix_secs_ = 0;
  std::uint32_t sequence_ = 0;
  std::uint32_t records_ = 0;
  std::uint32_t data_records_ = 0;
  // The open flowset: open_ says whether there is one; its id, where its header
  // starts, shortest record in it.
  bool open_ = false;
  std::uint16_t flowset_id_ = 0;
  std::size_t flowset_at_ = 0;
  std::size_t flowset_min_record_ = 0;
  std::vector<std::uint16_t> types_;  // scratch for v9_types(), reused
};

}  // namespace flowsec::ipfix
