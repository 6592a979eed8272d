#include "ipfix/template_string.hpp"

#include <algorithm>

#include "ipfix/ie_registry.hpp"
#include "ipfix/limits.hpp"

namespace flowsec::ipfix {

namespace {

bool is_separator(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == ',';
}

// Splits on separators; a '%' also begins a new token (and is dropped).
template <class Fn>
void for_each_token(std::string_view text, Fn&& fn) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (is_separator(text[i]) || text[i] == '%') {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && !is_separator(text[j]) && text[j] != '%') ++j;
    fn(text.substr(i, j - i));
    i = j;
  }
}

struct Builder {
  ParsedTemplate out;

  // `report`: list a duplicate (names the user wrote; nProbe's own macro repeats some).
  void add(const ElementInfo& e, std::string_view name, bool report) {
    const FieldSpec f{e.enterprise, e.id, e.default_length};
    const bool seen = std::any_of(out.fields.begin(), out.fields.end(), [&](const FieldSpec& g) {
      return g.enterprise == f.enterprise && g.id == f.id;
    });
    if (seen) {
      if (report) out.duplicates.emplace_back(name);
      return;
    }
    out.fields.push_back(f);
  }
};

}  // namespace

Expected<ParsedTemplate, std::string> parse_template_string(std::string_view text) {
  Builder b;
  std::string error;
  for_each_token(text, [&](std::string_view token) {
    if (!error.empty()) return;
    if (token.front() == '@') {
      if (token != kNtopngMacro) {
        error = "unknown template macro '" + std::string(token) + "'";
        return;
      }
      for_each_token(kNtopngMacroFields, [&](std::string_view name) {
        if (const ElementInfo* e = find_element(name)) {
          b.add(*e, name, false);
        } else {
          b.out.skipped.emplace_back(name);
        }
      });
      return;
    }
    const ElementInfo* e = find_element(token);
    if (e == nullptr) {
      error = "unknown template field '" + std::string(token) + "'";
      return;
    }
    b.add(*e, token, true);
  });
  if (!error.empty()) return unexpected(std::move(error));
  if (b.out.fields.empty()) return unexpected(std::string("empty template"));
  if (b.out.fields.size() > limits::kMaxFieldsPerTemplate) {
    return unexpected("template has " + std::to_string(b.out.fields.size()) +
                      " fields, more than the limit of " +
                      std::to_string(limits::kMaxFieldsPerTemplate));
  }
  return std::move(b.out);
}

std::vector<FieldSpec> nprobe_default_template() {
  auto parsed = parse_template_string(kNprobeDefaultTemplate);
  // Every name in the constant is in the generated registry (template_string_test checks it).
  return parsed ? std::move(parsed->fields) : std::vector<FieldSpec>{};
}

}  // namespace flowsec::ipfix
