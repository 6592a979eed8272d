#pragma once
// Template: the immutable description of a record layout (RFC 7011 §3.4.1,
// RFC 3954 §5.2). Shared as TemplatePtr so a batch of records keeps the
// templates it was decoded with alive while the session replaces them.
// Built only through Template::make(), which enforces the structural rules,
// so every Template in the program is valid.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ipfix/errors.hpp"
#include "ipfix/ie_registry.hpp"

namespace flowsec::ipfix {

struct FieldSpec {
  std::uint32_t enterprise = 0;  // 0 = IANA
  std::uint16_t id = 0;          // element id without the enterprise bit
  std::uint16_t length = 0;      // bytes, or kVariableLength (RFC 7011 §7)
  [[nodiscard]] bool is_variable() const { return length == kVariableLength; }
  friend bool operator==(const FieldSpec&, const FieldSpec&) = default;
};

class Template;
using TemplatePtr = std::shared_ptr<const Template>;

class Template {
 public:
  // Validates: at least one field, at most limits::kMaxFieldsPerTemplate, no zero-length
  // field, for options templates 1 <= scope_count <= field count (RFC 7011 §3.4.2.2),
  // minimum record length <= 65535. The id is not checked here (v5/sFlow use internal ids);
  // wire decoders check id >= 256 themselves. `offset` is reported in errors.
  static Result<TemplatePtr> make(std::uint16_t id, std::vector<FieldSpec> fields,
                                  std::uint16_t scope_count = 0, std::size_t offset = 0);

  [[nodiscard]] std::uint16_t id() const { return id_; }
  [[nodiscard]] std::uint16_t scope_count() const { return scope_count_; }
  [[nodiscard]] bool is_options() const { return scope_count_ > 0; }
  [[nodiscard]] std::span<const FieldSpec> fields() const { return fields_; }
  [[nodiscard]] bool has_variable_length() const { return variable_; }
  // Record length for fixed-length templates; for variable ones the smallest possible record
  // (each variable field counted as its 1-byte length prefix).
  [[nodiscard]] std::uint16_t min_record_length() const { return min_length_; }
  // Byte offset of field i within a record; only meaningful when !has_variable_length().
  [[nodiscard]] std::uint16_t fixed_offset(std::size_t i) const { return offsets_[i]; }
  // Index of the first field with this element, or -1.
  [[nodiscard]] int index_of(std::uint32_t enterprise, std::uint16_t id) const;

  // Same layout (fields and scope) regardless of id.
  [[nodiscard]] bool same_layout(const Template& other) const {
    return scope_count_ == other.scope_count_ && fields_ == other.fields_;
  }

 private:
  Template() = default;
  std::uint16_t id_ = 0;
  std::uint16_t scope_count_ = 0;
  bool variable_ = false;
  std::uint16_t min_length_ = 0;
  std::vector<FieldSpec> fields_;
  std::vector<std::uint16_t> offsets_;
};

}  // namespace flowsec::ipfix
