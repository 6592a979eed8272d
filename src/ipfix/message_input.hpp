#pragma once
// Internal to the template-based decoders (decode_ipfix.cpp, decode_netflow_v9.cpp):
// the message being decoded and its copy in the output batch.
//
// Reads are at offsets the caller has already bounds-checked. The message is
// copied into the batch, with its metadata, only when the first data record
// needs it (ensure_stored), so template-only messages cost the batch nothing.
#include <cstdint>

#include "common/bytes.hpp"
#include "ipfix/record.hpp"

namespace flowsec::ipfix::detail {

class MessageInput {
 protected:
  MessageInput(Bytes message, RecordBatch& out) : msg_(message), out_(out) {}

  [[nodiscard]] std::uint16_t u16_at(std::size_t at) const {
    return load_be<std::uint16_t>(msg_.data() + at);
  }
  [[nodiscard]] std::uint32_t u32_at(std::size_t at) const {
    return load_be<std::uint32_t>(msg_.data() + at);
  }
  void ensure_stored() {
    if (stored_) return;
    stored_ = true;
    base_ = out_.store(msg_);
    message_index_ = out_.add_message(meta_);
  }

  Bytes msg_;
  RecordBatch& out_;
  MessageMeta meta_;  // filled from the header before the first record
  bool stored_ = false;
  std::uint32_t base_ = 0;           // offset of the message copy in the batch
  std::uint32_t message_index_ = 0;  // index of meta_ in the batch
};

}  // namespace flowsec::ipfix::detail
