#include "ipfix/template.hpp"

#include <gtest/gtest.h>

#include "ipfix/limits.hpp"

namespace flowsec::ipfix {
namespace {

TEST(Template, ComputesOffsetsForFixedLayouts) {
  auto t = Template::make(256, {{0, 8, 4}, {0, 12, 4}, {0, 1, 8}, {0, 4, 1}});
  ASSERT_TRUE(t.has_value());
  const Template& tt = **t;
  EXPECT_FALSE(tt.has_variable_length());
  EXPECT_EQ(tt.min_record_length(), 17);
  EXPECT_EQ(tt.fixed_offset(0), 0);
  EXPECT_EQ(tt.fixed_offset(2), 8);
  EXPECT_EQ(tt.fixed_offset(3), 16);
  EXPECT_EQ(tt.index_of(0, 1), 2);
  EXPECT_EQ(tt.index_of(0, 2), -1);
  EXPECT_FALSE(tt.is_options());
}

TEST(Template, VariableLengthCountsOnePrefixByte) {
  auto t =
      Template::make(300, {{0, 8, 4}, {0, 82, kVariableLength}, {35632, 119, kVariableLength}});
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE((*t)->has_variable_length());
  EXPECT_EQ((*t)->min_record_length(), 6);
}

TEST(Template, RejectsZeroFields) {
  auto t = Template::make(256, {}, 0, 42);
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error(), (Error{Errc::template_zero_fields, 42}));
}

TEST(Template, RejectsTooManyFields) {
  std::vector<FieldSpec> fields(limits::kMaxFieldsPerTemplate + 1, FieldSpec{0, 1, 4});
  auto t = Template::make(256, fields);
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code, Errc::template_too_many_fields);
  fields.pop_back();
  EXPECT_TRUE(Template::make(256, fields).has_value());
}

TEST(Template, OptionsScopeCountMustNotExceedFields) {
  auto bad = Template::make(256, {{0, 149, 4}, {0, 34, 4}}, 3);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, Errc::template_scope_count);
  auto ok = Template::make(256, {{0, 149, 4}, {0, 34, 4}}, 1);
  ASSERT_TRUE(ok.has_value());
  EXPECT_TRUE((*ok)->is_options());
  EXPECT_EQ((*ok)->scope_count(), 1);
}

TEST(Template, RejectsZeroLengthFieldAndOversizedRecords) {
  EXPECT_EQ(Template::make(256, {{0, 8, 0}}).error().code, Errc::template_field_length);
  std::vector<FieldSpec> big(300, FieldSpec{0, 82, 300});  // 90000 bytes per record
  EXPECT_EQ(Template::make(256, big).error().code, Errc::template_field_length);
}

TEST(Template, SameLayoutIgnoresId) {
  auto a = Template::make(256, {{0, 8, 4}});
  auto b = Template::make(999, {{0, 8, 4}});
  auto c = Template::make(256, {{0, 8, 4}}, 1);
  EXPECT_TRUE((*a)->same_layout(**b));
  EXPECT_FALSE((*a)->same_layout(**c));
}

}  // namespace
}  // namespace flowsec::ipfix
