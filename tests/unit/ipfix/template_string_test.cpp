// nProbe -T template strings (template_string.hpp). Expected ids and lengths
// come from nProbe's field table (shared/data/nprobe-template-fields.csv,
// parsed from nProbe's user guide), not from our registry.
#include "ipfix/template_string.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ipfix/ie_registry.hpp"

namespace flowsec::ipfix {
namespace {

TEST(TemplateStringTest, NprobeExample) {
  auto r = parse_template_string("%IPV4_SRC_ADDR %IN_BYTES %L7_PROTO");
  ASSERT_TRUE(r) << r.error();
  const std::vector<FieldSpec> want{{0, 8, 4}, {0, 1, 4}, {kNtopPen, 118, 2}};
  EXPECT_EQ(r->fields, want);
  EXPECT_TRUE(r->skipped.empty());
  EXPECT_TRUE(r->duplicates.empty());
}

TEST(TemplateStringTest, NprobeDefaultTemplate) {
  // nProbe's table: name, IPFIX id, length.
  const std::vector<FieldSpec> want{{0, 8, 4}, {0, 12, 4}, {0, 10, 4}, {0, 14, 4}, {0, 2, 4},
                                    {0, 1, 4}, {0, 22, 4}, {0, 21, 4}, {0, 7, 2},  {0, 11, 2},
                                    {0, 6, 1}, {0, 4, 1},  {0, 5, 1},  {0, 16, 4}, {0, 17, 4}};
  EXPECT_EQ(nprobe_default_template(), want);
  auto r = parse_template_string(kNprobeDefaultTemplate);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->fields, want);
}

TEST(TemplateStringTest, SeparatorsAndNameForms) {
  const std::vector<FieldSpec> want{{0, 8, 4}, {0, 1, 4}, {kNtopPen, 118, 2}};
  for (const char* text :
       {"IPV4_SRC_ADDR IN_BYTES L7_PROTO", "%IPV4_SRC_ADDR,%IN_BYTES,%L7_PROTO",
        "  %IPV4_SRC_ADDR ,\t%IN_BYTES\n%L7_PROTO  ", "%IPV4_SRC_ADDR%IN_BYTES%L7_PROTO",
        "sourceIPv4Address octetDeltaCount L7_PROTO",
        "%sourceIPv4Address,,octetDeltaCount %L7_PROTO,"}) {
    SCOPED_TRACE(text);
    auto r = parse_template_string(text);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->fields, want);
  }
}

TEST(TemplateStringTest, VariableLengthFields) {
  auto r = parse_template_string("%HTTP_SITE %IPV4_SRC_ADDR");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->fields.size(), 2u);
  EXPECT_EQ(r->fields[0], (FieldSpec{kNtopPen, 361, kVariableLength}));
}

TEST(TemplateStringTest, UnknownNameIsAnErrorNamingIt) {
  auto r = parse_template_string("%IPV4_SRC_ADDR %NO_SUCH_FIELD %IN_BYTES");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("NO_SUCH_FIELD"), std::string::npos) << r.error();

  r = parse_template_string("%IPV4_SRC_ADDR @NOPE@");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("@NOPE@"), std::string::npos) << r.error();

  r = parse_template_string("  , % ");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "empty template");
}

TEST(TemplateStringTest, DuplicatesAreKeptOnceAndReported) {
  auto r = parse_template_string("%IN_BYTES %IPV4_SRC_ADDR octetDeltaCount");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->fields, (std::vector<FieldSpec>{{0, 1, 4}, {0, 8, 4}}));
  EXPECT_EQ(r->duplicates, std::vector<std::string>{"octetDeltaCount"});
}

TEST(TemplateStringTest, NtopngMacro) {
  auto r = parse_template_string("@NTOPNG@");
  ASSERT_TRUE(r) << r.error();

  // Every name of the macro is either a field or reported as skipped; skipped names are
  // exactly those the registry does not know.
  std::vector<std::string> names;
  std::string all(kNtopngMacroFields);
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = all.find(' ', i);
    if (j == std::string::npos) j = all.size();
    names.push_back(all.substr(i + 1, j - i - 1));  // without '%'
    i = j + 1;
  }
  ASSERT_EQ(names.size(), 61u);  // nProbe lists SRC_TOS and DST_TOS twice
  std::vector<std::string> unknown;
  std::vector<FieldSpec> expect;
  for (const std::string& n : names) {
    const ElementInfo* e = find_element(n);
    if (e == nullptr) {
      unknown.push_back(n);
      continue;
    }
    const FieldSpec f{e->enterprise, e->id, e->default_length};
    if (std::find(expect.begin(), expect.end(), f) == expect.end()) expect.push_back(f);
  }
  EXPECT_EQ(r->skipped, unknown);
  EXPECT_EQ(r->fields, expect);
  // SRC_TOS and DST_TOS appear twice in nProbe's list; the template has them once.
  EXPECT_EQ(std::count(r->fields.begin(), r->fields.end(), FieldSpec{0, 5, 1}), 1);
  EXPECT_TRUE(r->duplicates.empty());
  // Fields ntopng needs at least (shared/data/README.md).
  for (const char* need :
       {"FIRST_SWITCHED", "LAST_SWITCHED", "L4_SRC_PORT", "L4_DST_PORT", "IP_PROTOCOL_VERSION",
        "PROTOCOL", "IN_BYTES", "IN_PKTS", "OUT_BYTES", "OUT_PKTS"}) {
    const ElementInfo* e = find_element(need);
    ASSERT_NE(e, nullptr) << need;
    EXPECT_TRUE(std::any_of(r->fields.begin(), r->fields.end(), [&](const FieldSpec& f) {
      return f.enterprise == e->enterprise && f.id == e->id;
    })) << need;
  }
  // L7_PROTO with nProbe's length, a string as variable length.
  EXPECT_NE(std::find(r->fields.begin(), r->fields.end(), FieldSpec{kNtopPen, 118, 2}),
            r->fields.end());
  EXPECT_NE(
      std::find(r->fields.begin(), r->fields.end(), FieldSpec{kNtopPen, 361, kVariableLength}),
      r->fields.end());
}

TEST(TemplateStringTest, MacroMixedWithFields) {
  auto macro = parse_template_string("@NTOPNG@");
  ASSERT_TRUE(macro);
  auto r = parse_template_string("@NTOPNG@ %FLOW_START_MILLISECONDS %IN_BYTES");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->fields.size(), macro->fields.size() + 1);
  EXPECT_EQ(r->fields.back(), (FieldSpec{0, 152, 8}));
  EXPECT_EQ(r->duplicates, std::vector<std::string>{"IN_BYTES"});
}

}  // namespace
}  // namespace flowsec::ipfix
