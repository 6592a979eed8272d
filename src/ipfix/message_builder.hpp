#pragma once
// Builds one IPFIX message (RFC 7011 §3) at a time: header, template sets,
// options template sets, withdrawals and data sets, never larger than the
// size given at construction.
//
// Contract: the builder owns its buffer; finish() hands the finished message
// to the caller. Every add_* either appends the whole item or, when it would
// push the message over the size bound, returns false and changes nothing —
// the caller then finish()es and begin()s a new message. Templates whose id is
// below 256 (internal v5/sFlow ids, RFC 7011 §3.4.1) are refused the same way:
// map them to wire ids first. Records handed to
// add_record() must already be encoded for their template (the builder does
// not re-validate them). No exceptions beyond std::bad_alloc; one thread at a
// time.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/bytes.hpp"
#include "ipfix/limits.hpp"
#include "ipfix/template.hpp"

namespace flowsec::ipfix {

class IpfixMessageBuilder {
 public:
  // max_message_size is clamped to 16..65535 (RFC 7011 §3.1).
  explicit IpfixMessageBuilder(std::uint32_t observation_domain,
                               std::size_t max_message_size = limits::kMaxMessageSize);

  // Starts a new message, dropping anything not finished.
  void begin(std::uint32_t export_time, std::uint32_t sequence);
  // A template record in a template set, or an options template record in an
  // options template set (RFC 7011 §3.4.1, §3.4.2).
  [[nodiscard]] bool add_template(const Template& t);
  // RFC 7011 §8.1: field count 0. template_id 2 (3 for options) withdraws every
  // (options) template of the domain. The id is written as given.
  [[nodiscard]] bool add_withdrawal(std::uint16_t template_id, bool options);
  // A data record for `t`, already encoded; consecutive records of one template
  // share a data set.
  [[nodiscard]] bool add_record(const Template& t, Bytes record) {
    return add_records(t, record, record.size()) == 1;
  }
  // As many of `records` (records of `t`, back to back, `record_length` bytes each) as fit
  // the message, in one copy: how many were added, 0 when not even the first fits.
  [[nodiscard]] std::size_t add_records(const Template& t, Bytes records,
                                        std::size_t record_length);

  // Nothing added since begin().
  [[nodiscard]] bool empty() const { return buf_.size() == kHeaderSize; }
  [[nodiscard]] std::uint32_t data_records() const { return data_records_; }
  // Size the message would have if finished now (header, sets and any padding).
  [[nodiscard]] std::size_t size() const { return buf_.size() + open_padding(); }

  // Closes the open set, patches every length and returns the message. The
  // builder then holds an empty message with the same header; call begin() to
  // start the next one.
  std::vector<std::byte> finish();

  // RFC 7011 §3.3.1: pad every set to a multiple of 4 bytes. Padding is left out of
  // a data set whose records are so short that it would read as another record.
  void set_pad_sets(bool on) { pad_sets_ = on; }

 private:
  static constexpr std::size_t kHeaderSize = 16;
  static constexpr std::size_t kSetHeaderSize = 4;

  [[nodiscard]] std::size_t padding_for(std::size_t set_length, std::size_t min_record) const;
  [[nodiscard]] std::size_t open_padding() const;
  // Makes room for an item of `item_len` bytes in a set `set_id`; false if it would
  // not fit. On true the right set is open and the caller appends the item.
  bool open_for(std::uint16_t set_id, std::size_t item_len, std::size_t min_record);
  void close_set();

  std::uint32_t domain_;
  std::size_t max_size_;
  bool pad_sets_ = false;
  std::vector<std::byte> buf_;
  std::uint32_t export_time_ = 0;
  std::uint32_t sequence_ = 0;
  std::uint32_t data_records_ = 0;
  // The open set: id (0 = none), where its header starts, shortest record in it.
  std::uint16_t set_id_ = 0;
  std::size_t set_at_ = 0;
  std::size_t set_min_record_ = 0;
};

}  // namespace flowsec::ipfix
