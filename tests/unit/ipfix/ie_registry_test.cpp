#include "ipfix/ie_registry.hpp"

#include <gtest/gtest.h>

namespace flowsec::ipfix {
namespace {

// Expected values below come from data/iana-ipfix-elements.csv and
// data/nprobe-template-fields.csv, the generator's inputs.

TEST(IeRegistry, KnowsIanaElementsWithTheirTypes) {
  const ElementInfo* e = find_element(0, 8);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->name, "sourceIPv4Address");
  EXPECT_EQ(e->type, DataType::ipv4Address);
  EXPECT_EQ(e->nprobe_name, "IPV4_SRC_ADDR");
  EXPECT_EQ(find_element(0, 27)->type, DataType::ipv6Address);
  EXPECT_EQ(find_element(0, 152)->type, DataType::dateTimeMilliseconds);
  EXPECT_EQ(find_element(0, 83)->type, DataType::string);
  EXPECT_EQ(find_element(0, 83)->default_length, kVariableLength);
  // nProbe exports INTERFACE_NAME (82) as a fixed 8-byte string: its length wins.
  EXPECT_EQ(find_element(0, 82)->default_length, 8);
  EXPECT_EQ(find_element(0, 292)->type, DataType::subTemplateList);
  EXPECT_EQ(find_element(0, 60000), nullptr);
}

TEST(IeRegistry, IanaNamesWinOverNprobesMislabels) {
  // nProbe's table swaps 128/129 and calls 55 ipClassOfService; IANA does not.
  EXPECT_EQ(find_element(0, 128)->name, "bgpNextAdjacentAsNumber");
  EXPECT_EQ(find_element(0, 129)->name, "bgpPrevAdjacentAsNumber");
  EXPECT_EQ(find_element(0, 55)->name, "postIpClassOfService");
  EXPECT_EQ(find_element(0, 55)->nprobe_name, "DST_TOS");
}

TEST(IeRegistry, FindsByNprobeNameAliasAndIanaName) {
  const ElementInfo* bytes = find_element("%IN_BYTES");
  ASSERT_NE(bytes, nullptr);
  EXPECT_EQ(bytes->id, 1);
  EXPECT_EQ(bytes->default_length, 4);                 // nProbe exports IN_BYTES as 4 bytes
  EXPECT_EQ(find_element("SRC_TO_DST_BYTES"), bytes);  // "[Aliased to %SRC_TO_DST_BYTES]"
  EXPECT_EQ(find_element("octetDeltaCount"), bytes);
  EXPECT_EQ(find_element("NO_SUCH_FIELD"), nullptr);
}

TEST(IeRegistry, NtopElementsLiveInEnterprise35632) {
  const ElementInfo* l7 = find_element("L7_PROTO");
  ASSERT_NE(l7, nullptr);
  EXPECT_EQ(l7->enterprise, kNtopPen);
  EXPECT_EQ(l7->id, 118);
  EXPECT_EQ(l7->v9_type, 57590);
  EXPECT_EQ(l7->default_length, 2);
  const ElementInfo* name = find_element("L7_PROTO_NAME");
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(name->default_length, kVariableLength);
  EXPECT_EQ(name->type, DataType::string);
}

TEST(IeRegistry, MapsNetflowV9Types) {
  EXPECT_EQ(element_for_v9_type(8), (ElementId{0, 8}));
  EXPECT_EQ(element_for_v9_type(57590), (ElementId{kNtopPen, 118}));
  // A high v9 type that ntop never defined cannot be an IANA id (15 bits): it keeps its
  // low 15 bits under the catch-all enterprise.
  EXPECT_EQ(element_for_v9_type(65000), (ElementId{kV9HighTypePen, 65000 - 32768}));
  EXPECT_EQ(element_for_v9_type(40000), (ElementId{kV9HighTypePen, 40000 - 32768}));
}

TEST(IeRegistry, ReverseElementsFollowRfc5103) {
  const ElementInfo* r = find_element(kReversePen, 1);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->name, "reverseOctetDeltaCount");
  EXPECT_EQ(r->type, DataType::unsigned64);
  // RFC 5103 §6.1: identifiers of the exporting process have no reverse.
  EXPECT_EQ(find_element(kReversePen, 149), nullptr);
  EXPECT_EQ(find_element(kReversePen, 210), nullptr);
}

TEST(IeRegistry, OutputNames) {
  EXPECT_EQ(output_name(0, 8), "IPV4_SRC_ADDR");
  EXPECT_EQ(output_name(0, 3), "deltaFlowCount");
  EXPECT_EQ(output_name(kReversePen, 1), "reverseOctetDeltaCount");
  EXPECT_EQ(output_name(12345, 7), "E12345_7");
}

TEST(IeRegistry, TableIsSortedAndComplete) {
  auto all = all_elements();
  // 460 IANA rows, plus reverse and ntop elements.
  EXPECT_GT(all.size(), 460u + 256u);
  for (std::size_t i = 1; i < all.size(); ++i) {
    ASSERT_LT(std::pair(all[i - 1].enterprise, all[i - 1].id),
              std::pair(all[i].enterprise, all[i].id));
  }
}

}  // namespace
}  // namespace flowsec::ipfix
