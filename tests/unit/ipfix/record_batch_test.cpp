#include "ipfix/record.hpp"

#include <gtest/gtest.h>

namespace flowsec::ipfix {
namespace {

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int x : v) out.push_back(static_cast<std::byte>(x));
  return out;
}

TEST(RecordBatch, ViewsFixedAndVariableRecords) {
  RecordBatch batch;
  auto fixed = *Template::make(256, {{0, 4, 1}, {0, 7, 2}});
  auto var = *Template::make(257, {{0, 4, 1}, {0, 82, kVariableLength}, {0, 7, 2}});
  auto m = batch.add_message(MessageMeta{Protocol::ipfix, 1000, 7, 3, 0, 0});
  auto a = batch.store(bytes_of({6, 0x01, 0xbb}));
  batch.add(a, 3, batch.use_template(fixed), m);
  auto b = batch.store(bytes_of({17, 3, 'e', 't', 'h', 0x00, 0x35}));
  batch.add(b, 7, batch.use_template(var), m);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch.templates().size(), 2u);

  EXPECT_EQ(batch[0].unsigned_field(0, 7), 443u);
  EXPECT_EQ(batch[0].message().observation_domain, 3u);
  EXPECT_EQ(batch[1].unsigned_field(0, 7), 53u);
  auto name = batch[1].field(0, 82);
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(name->size(), 3u);
  int n = 0;
  batch[1].for_each_field([&](const FieldValue&) { ++n; });
  EXPECT_EQ(n, 3);
  EXPECT_FALSE(batch[1].field(0, 8).has_value());
}

// run(): the exporter copies such a run whole, so it must stop where the template, the
// message or the storage order changes.
TEST(RecordBatch, RunStopsAtTemplateMessageOrGap) {
  RecordBatch batch;
  auto t1 = *Template::make(256, {{0, 4, 1}, {0, 7, 2}});
  auto t2 = *Template::make(257, {{0, 4, 1}, {0, 11, 2}});
  const auto m1 = batch.add_message(MessageMeta{});
  const auto m2 = batch.add_message(MessageMeta{});
  auto put = [&](int first, const TemplatePtr& t, std::uint32_t m) {
    batch.add(batch.store(bytes_of({first, 0, 1})), 3, batch.use_template(t), m);
  };
  put(1, t1, m1);
  put(2, t1, m1);
  put(3, t1, m1);
  put(4, t2, m1);  // another template
  put(5, t2, m2);  // another message
  put(6, t2, m2);
  // Bytes stored between record 6 and the next: not back to back.
  batch.store(bytes_of({0, 0, 0}));
  batch.add(batch.store(bytes_of({9, 9, 9})), 3, batch.use_template(t2), m2);

  std::size_t end = 0;
  Bytes run = batch.run(0, end);
  EXPECT_EQ(end, 3u);
  ASSERT_EQ(run.size(), 9u);
  EXPECT_EQ(run[0], std::byte{1});
  EXPECT_EQ(run[6], std::byte{3});
  run = batch.run(1, end);  // from the middle of a run
  EXPECT_EQ(end, 3u);
  EXPECT_EQ(run.size(), 6u);
  EXPECT_EQ(batch.run(3, end).size(), 3u);
  EXPECT_EQ(end, 4u);
  EXPECT_EQ(batch.run(4, end).size(), 6u);
  EXPECT_EQ(end, 6u);
  run = batch.run(6, end);
  EXPECT_EQ(end, 7u);
  ASSERT_EQ(run.size(), 3u);
  EXPECT_EQ(run[0], std::byte{9});
}

TEST(RecordBatch, LongVariableLengthPrefix) {
  // RFC 7011 §7: 255 followed by a two-byte length.
  RecordBatch batch;
  auto var = *Template::make(300, {{0, 82, kVariableLength}});
  std::vector<std::byte> rec = bytes_of({255, 0x01, 0x00});
  rec.resize(3 + 256, std::byte{'x'});
  auto m = batch.add_message({});
  batch.add(batch.store(rec), static_cast<std::uint16_t>(rec.size()), batch.use_template(var), m);
  EXPECT_EQ(batch[0].field(0, 82)->size(), 256u);
}

TEST(RecordBatch, RollbackRestoresEveryPart) {
  RecordBatch batch;
  auto t = *Template::make(256, {{0, 4, 1}});
  auto m = batch.add_message({});
  batch.add(batch.store(bytes_of({1})), 1, batch.use_template(t), m);
  auto mark = batch.mark();
  auto t2 = *Template::make(257, {{0, 4, 1}});
  auto m2 = batch.add_message({});
  batch.add(batch.store(bytes_of({2})), 1, batch.use_template(t2), m2);
  batch.rollback(mark);
  EXPECT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch.templates().size(), 1u);
  EXPECT_EQ(batch[0].unsigned_field(0, 4), 1u);
  batch.clear();
  EXPECT_TRUE(batch.empty());
}

}  // namespace
}  // namespace flowsec::ipfix
