#include "ipfix/record.hpp"

namespace flowsec::ipfix {

std::optional<Bytes> RecordView::field(std::uint32_t enterprise, std::uint16_t id) const {
  if (!template_->has_variable_length()) {
    int i = template_->index_of(enterprise, id);
    if (i < 0) return std::nullopt;
    const auto idx = static_cast<std::size_t>(i);
    return bytes_.subspan(template_->fixed_offset(idx), template_->fields()[idx].length);
  }
  std::optional<Bytes> found;
  for_each_field([&](const FieldValue& v) {
    if (!found && v.spec->id == id && v.spec->enterprise == enterprise) found = v.value;
  });
  return found;
}

std::optional<std::uint64_t> RecordView::unsigned_field(std::uint32_t enterprise,
                                                        std::uint16_t id) const {
  auto b = field(enterprise, id);
  if (!b || b->empty() || b->size() > 8) return std::nullopt;
  return load_be_var(*b);
}

std::uint16_t RecordBatch::use_template(const TemplatePtr& t) {
  if (templates_.empty() || templates_.back() != t) {
    // A batch spans few templates; a linear scan keeps indices stable and dedupes.
    for (std::size_t i = 0; i < templates_.size(); ++i) {
      if (templates_[i] == t) return static_cast<std::uint16_t>(i);
    }
    templates_.push_back(t);
  }
  return static_cast<std::uint16_t>(templates_.size() - 1);
}

void RecordBatch::rollback(const Mark& m) {
  data_.resize(m.data);
  refs_.resize(m.refs);
  templates_.resize(m.templates);
  messages_.resize(m.messages);
}

void RecordBatch::clear() {
  data_.clear();
  refs_.clear();
  templates_.clear();
  messages_.clear();
  exporter = Exporter{};
}

}  // namespace flowsec::ipfix
