// ClickHouseSink's pure parts (clickhouse_sink.hpp): the --clickhouse URL
// (RFC 3986 authority and percent-decoding; identifiers restricted so they can go into
// SQL), the statements it sends, and the retry schedule. The delivery itself is tested
// against a real clickhouse-server in tests/integration/sinks_clickhouse_test.cpp.
#include "sinks/clickhouse_sink.hpp"

#include <gtest/gtest.h>

namespace flowsec::sinks {
namespace {

using std::chrono::milliseconds;

TEST(ClickHouseUrlTest, FullUrl) {
  auto t = parse_clickhouse_url("http://flows:s3cr%3At%40x@ch1.example.org:9123/netflow?table=f_2");
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->user, "flows");
  EXPECT_EQ(t->password, "s3cr:t@x");
  EXPECT_EQ(t->host, "ch1.example.org");
  EXPECT_EQ(t->port, 9123);
  EXPECT_EQ(t->database, "netflow");
  EXPECT_EQ(t->table, "f_2");
  EXPECT_EQ(t->base_url, "http://ch1.example.org:9123/");  // no credentials
}

TEST(ClickHouseUrlTest, Defaults) {
  auto t = parse_clickhouse_url("http://127.0.0.1/db");
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->user, "");
  EXPECT_EQ(t->password, "");
  EXPECT_EQ(t->port, 8123);
  EXPECT_EQ(t->table, "flows");
  EXPECT_EQ(t->base_url, "http://127.0.0.1:8123/");

  auto s = parse_clickhouse_url("HTTPS://ch/db");
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->port, 8443);
  EXPECT_EQ(s->base_url, "https://ch:8443/");
}

TEST(ClickHouseUrlTest, Ipv6HostUserWithoutPasswordAndUnescapedAt) {
  auto t = parse_clickhouse_url("http://reader@[2001:db8::5]:8124/db1");
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->user, "reader");
  EXPECT_EQ(t->password, "");
  EXPECT_EQ(t->host, "[2001:db8::5]");
  EXPECT_EQ(t->port, 8124);
  EXPECT_EQ(t->base_url, "http://[2001:db8::5]:8124/");

  auto u = parse_clickhouse_url("http://u:p@ss@[::1]/db");  // the last '@' ends the userinfo
  ASSERT_TRUE(u) << u.error();
  EXPECT_EQ(u->password, "p@ss");
  EXPECT_EQ(u->port, 8123);

  auto d = parse_clickhouse_url("http://:pw@h/db");  // password for the default user
  ASSERT_TRUE(d) << d.error();
  EXPECT_EQ(d->user, "default");
  EXPECT_EQ(d->password, "pw");
}

TEST(ClickHouseUrlTest, BadUrlsSayWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"ch:8123/db", "expected http://"},
      {"ftp://ch/db", "scheme must be http or https"},
      {"http://ch:8123", "database is missing"},
      {"http://ch:8123/", "database is missing"},
      {"http://ch:8123?table=x", "database is missing"},
      {"http://ch:8123/net-flow", "database 'net-flow'"},
      {"http://ch:8123/db/x", "database 'db/x'"},
      {"http://ch:8123/db;DROP", "database 'db;DROP'"},
      {"http://ch:8123/db?table=a%60b", "table 'a%60b'"},
      {"http://ch:8123/db?table=", "table ''"},
      {"http://ch:8123/db?user=x", "unknown parameter 'user'"},
      {"http://ch:0/db", "port '0'"},
      {"http://ch:65536/db", "port '65536'"},
      {"http://ch:/db", "port ''"},
      {"http://ch:80a/db", "port '80a'"},
      {"http://:8123/db", "host is missing"},
      {"http://c h/db", "host 'c h'"},
      {"http://[::1/db", "unterminated [IPv6]"},
      {"http://[1.2.3.4]/db", "is not an IPv6 address"},
      {"http://[::1]x/db", "after the [IPv6]"},
      {"http://u:%zz@ch/db", "bad %-escape"},
      {"http://u:%4@ch/db", "bad %-escape"},
      {"http://ch/db#x", "fragment"},
      {"http://ch/a1234567890123456789012345678901234567890123456789012345678901234", "1..64"},
  };
  for (const auto& [url, what] : cases) {
    auto t = parse_clickhouse_url(url);
    ASSERT_FALSE(t) << url;
    EXPECT_NE(t.error().find(what), std::string::npos) << url << " → " << t.error();
    EXPECT_EQ(t.error().find('\n'), std::string::npos) << "one line: " << t.error();
    EXPECT_EQ(t.error().rfind("--clickhouse ", 0), 0u) << t.error();
  }
}

TEST(ClickHouseSqlTest, CreateAndInsertStatements) {
  auto t = parse_clickhouse_url("http://ch/netflow?table=flows_local");
  ASSERT_TRUE(t);
  const std::string create = clickhouse_create_table_sql(*t);
  EXPECT_EQ(create.rfind("CREATE TABLE IF NOT EXISTS `netflow`.`flows_local` (EXPORTER_ADDRESS "
                         "String, ",
                         0),
            0u)
      << create;
  EXPECT_NE(create.find(") ENGINE = MergeTree PARTITION BY toYYYYMMDD(FIRST_SWITCHED) ORDER BY "
                        "(FIRST_SWITCHED, IPV4_SRC_ADDR, IPV4_DST_ADDR)"),
            std::string::npos)
      << create;
  const std::string insert = clickhouse_insert_sql(*t);
  EXPECT_EQ(insert, "INSERT INTO `netflow`.`flows_local` (" + clickhouse_column_names() +
                        ") FORMAT TabSeparated");
}

TEST(ClickHouseRetryTest, DoublesFromMinimumUpToMaximum) {
  const milliseconds lo(500), hi(30000);
  EXPECT_EQ(clickhouse_retry_delay(0, lo, hi), milliseconds(0));
  EXPECT_EQ(clickhouse_retry_delay(1, lo, hi), milliseconds(500));
  EXPECT_EQ(clickhouse_retry_delay(2, lo, hi), milliseconds(1000));
  EXPECT_EQ(clickhouse_retry_delay(3, lo, hi), milliseconds(2000));
  EXPECT_EQ(clickhouse_retry_delay(7, lo, hi), milliseconds(30000));            // 32000 capped
  EXPECT_EQ(clickhouse_retry_delay(4000000000u, lo, hi), milliseconds(30000));  // no overflow
  // Degenerate options still give a positive, bounded delay.
  EXPECT_EQ(clickhouse_retry_delay(3, milliseconds(0), milliseconds(0)), milliseconds(1));
  EXPECT_EQ(clickhouse_retry_delay(2, milliseconds(800), milliseconds(100)), milliseconds(800));
}

}  // namespace
}  // namespace flowsec::sinks
