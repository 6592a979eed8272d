#include "ipfix/template_store.hpp"

#include <gtest/gtest.h>

#include "ipfix/limits.hpp"

namespace flowsec::ipfix {
namespace {

using namespace std::chrono_literals;

TemplatePtr make(std::uint16_t id, std::uint16_t element = 8, std::uint16_t scope = 0) {
  std::vector<FieldSpec> f{{0, element, 4}, {0, 1, 8}};
  return *Template::make(id, f, scope);
}

TEST(TemplateStore, DatagramTemplatesExpireAfterTheirLifetime) {
  ManualClock clock;
  TemplateStore store(TransportKind::datagram, clock, 30min);
  store.add(Protocol::ipfix, 1, make(256));
  clock.advance(29min);
  EXPECT_NE(store.find(Protocol::ipfix, 1, 256), nullptr);
  // RFC 7011 §8.4: a refresh restarts the lifetime.
  EXPECT_EQ(store.add(Protocol::ipfix, 1, make(256)), TemplateStore::AddResult::refreshed);
  clock.advance(29min);
  EXPECT_NE(store.find(Protocol::ipfix, 1, 256), nullptr);
  clock.advance(2min);
  EXPECT_EQ(store.find(Protocol::ipfix, 1, 256), nullptr);
  EXPECT_EQ(store.counters().expired, 1u);
  EXPECT_EQ(store.size(), 0u);
}

TEST(TemplateStore, StreamTemplatesNeverExpire) {
  ManualClock clock;
  TemplateStore store(TransportKind::stream, clock, 30min);
  store.add(Protocol::ipfix, 1, make(256));
  clock.advance(24h);
  EXPECT_NE(store.find(Protocol::ipfix, 1, 256), nullptr);
}

TEST(TemplateStore, KeysByProtocolDomainAndId) {
  ManualClock clock;
  TemplateStore store(TransportKind::datagram, clock);
  store.add(Protocol::ipfix, 1, make(256, 8));
  store.add(Protocol::ipfix, 2, make(256, 12));
  store.add(Protocol::netflow_v9, 1, make(256, 27));
  EXPECT_EQ(store.find(Protocol::ipfix, 1, 256)->fields()[0].id, 8);
  EXPECT_EQ(store.find(Protocol::ipfix, 2, 256)->fields()[0].id, 12);
  EXPECT_EQ(store.find(Protocol::netflow_v9, 1, 256)->fields()[0].id, 27);
  EXPECT_EQ(store.find(Protocol::ipfix, 3, 256), nullptr);
  EXPECT_EQ(store.size(), 3u);
}

TEST(TemplateStore, RedefinitionReplacesAndIsCounted) {
  TemplateStore store(TransportKind::stream);
  auto first = make(300, 8);
  store.add(Protocol::ipfix, 0, first);
  // Identical layout keeps the existing pointer, so batches holding it stay consistent.
  EXPECT_EQ(store.add(Protocol::ipfix, 0, make(300, 8)), TemplateStore::AddResult::refreshed);
  EXPECT_EQ(store.find(Protocol::ipfix, 0, 300), first);
  EXPECT_EQ(store.add(Protocol::ipfix, 0, make(300, 27)), TemplateStore::AddResult::redefined);
  EXPECT_EQ(store.find(Protocol::ipfix, 0, 300)->fields()[0].id, 27);
  EXPECT_EQ(store.counters().redefined, 1u);
  // The old template stays alive for whoever still holds it.
  EXPECT_EQ(first->fields()[0].id, 8);
}

TEST(TemplateStore, WithdrawalsHonouredOnStreamsIgnoredOnDatagrams) {
  TemplateStore stream(TransportKind::stream);
  stream.add(Protocol::ipfix, 0, make(256));
  stream.add(Protocol::ipfix, 0, make(257));
  stream.add(Protocol::ipfix, 0, make(258, 149, 1));
  stream.add(Protocol::ipfix, 5, make(256));
  EXPECT_TRUE(stream.withdraw(Protocol::ipfix, 0, 256));
  EXPECT_FALSE(stream.withdraw(Protocol::ipfix, 0, 256));
  // RFC 7011 §8.1: "all options templates" leaves data templates, and vice versa.
  EXPECT_EQ(stream.withdraw_all(Protocol::ipfix, 0, /*options=*/true), 1u);
  EXPECT_NE(stream.find(Protocol::ipfix, 0, 257), nullptr);
  stream.add(Protocol::ipfix, 0, make(258, 149, 1));
  EXPECT_EQ(stream.withdraw_all(Protocol::ipfix, 0, /*options=*/false), 1u);
  EXPECT_NE(stream.find(Protocol::ipfix, 0, 258), nullptr);
  EXPECT_EQ(stream.withdraw_all(Protocol::ipfix, 0, true), 1u);
  EXPECT_NE(stream.find(Protocol::ipfix, 5, 256), nullptr);  // other domain untouched
  EXPECT_EQ(stream.counters().withdrawn, 4u);

  TemplateStore udp(TransportKind::datagram);
  udp.add(Protocol::ipfix, 0, make(256));
  EXPECT_FALSE(udp.withdraw(Protocol::ipfix, 0, 256));
  EXPECT_EQ(udp.withdraw_all(Protocol::ipfix, 0, false), 0u);
  EXPECT_NE(udp.find(Protocol::ipfix, 0, 256), nullptr);
  EXPECT_EQ(udp.counters().withdrawals_ignored, 2u);
}

TEST(TemplateStore, CapsTemplatesPerSession) {
  TemplateStore store(TransportKind::stream);
  for (std::size_t i = 0; i < limits::kMaxTemplatesPerSession; ++i) {
    ASSERT_EQ(store.add(Protocol::ipfix, static_cast<std::uint32_t>(i / 1000),
                        make(static_cast<std::uint16_t>(256 + i % 1000))),
              TemplateStore::AddResult::added);
  }
  EXPECT_EQ(store.add(Protocol::ipfix, 99, make(256)), TemplateStore::AddResult::rejected);
  EXPECT_EQ(store.counters().rejected, 1u);
  // Replacing an existing id is still allowed at the cap.
  EXPECT_EQ(store.add(Protocol::ipfix, 0, make(256, 27)), TemplateStore::AddResult::redefined);
}

}  // namespace
}  // namespace flowsec::ipfix
