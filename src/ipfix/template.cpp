#include "ipfix/template.hpp"

#include "ipfix/limits.hpp"

namespace flowsec::ipfix {

Result<TemplatePtr> Template::make(std::uint16_t id, std::vector<FieldSpec> fields,
                                   std::uint16_t scope_count, std::size_t offset) {
  if (fields.empty()) return fail(Errc::template_zero_fields, offset);
  if (fields.size() > limits::kMaxFieldsPerTemplate) {
    return fail(Errc::template_too_many_fields, offset);
  }
  if (scope_count > fields.size()) return fail(Errc::template_scope_count, offset);

  auto t = std::shared_ptr<Template>(new Template());
  t->id_ = id;
  t->scope_count_ = scope_count;
  t->offsets_.reserve(fields.size());
  std::size_t length = 0;
  for (const FieldSpec& f : fields) {
    if (f.length == 0) return fail(Errc::template_field_length, offset);
    t->offsets_.push_back(static_cast<std::uint16_t>(length > 0xffff ? 0xffff : length));
    if (f.is_variable()) {
      t->variable_ = true;
      length += 1;  // RFC 7011 §7: at least the one-byte length prefix
    } else {
      length += f.length;
    }
  }
  if (length > limits::kMaxMessageSize) return fail(Errc::template_field_length, offset);
  t->min_length_ = static_cast<std::uint16_t>(length);
  t->fields_ = std::move(fields);
  return TemplatePtr(std::move(t));
}

int Template::index_of(std::uint32_t enterprise, std::uint16_t id) const {
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].id == id && fields_[i].enterprise == enterprise) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace flowsec::ipfix
