#pragma once
// ClickHouseSink: the `--clickhouse http://[USER[:PASS]@]HOST:PORT/DATABASE[?table=NAME]`
// output (SPEC §6): flows inserted in batches over ClickHouse's HTTP interface (libcurl).
//
// Table (default name "flows") in an existing DATABASE (never created here), created when
// missing (CREATE TABLE IF NOT EXISTS, clickhouse_create_table_sql()) with column types
// every ClickHouse since 18.16 (Debian 12's) understands: see clickhouse_row.hpp for the
// columns and which IPFIX element fills each, and docs/scaling.md. Engine MergeTree,
// partitioned by day of FIRST_SWITCHED, ordered by (FIRST_SWITCHED, IPV4_SRC_ADDR,
// IPV4_DST_ADDR). An existing table is used as it is if it has every column (it may have
// more, with defaults): inserts name their columns. One row per flow record; options
// records are not flows and are skipped. NetFlow uptimes (22/21) are made absolute by
// UptimeConverter first.
//
// Delivery: rows are rendered as TabSeparated into chunks of at most batch_rows; a chunk
// is sent (one INSERT ... FORMAT TabSeparated) when it is full or its first row has
// waited flush_interval, from write() and tick(). A failed request (server away, HTTP
// status other than 200) keeps the rows and is retried after clickhouse_retry_delay()
// (retry_min doubling up to retry_max), preceded by the CREATE TABLE again (the server
// may have come back empty). While the server is away rows accumulate up to
// max_pending_rows (TSV: about 250 bytes a row); rows beyond that are dropped at once,
// counted in records_failed and logged (rate-limited). So a restarted server loses
// nothing within that bound. write() and tick() send at most one chunk and stop at the
// first request that fails: they block at most for one failing request (connect timeout
// 2 s, request timeout 30 s) or two that succeed (CREATE after a failure, then INSERT).
// The easy handle is reused, so the connection is kept alive between inserts. close()
// keeps inserting until nothing is pending or `linger` has passed (requests are cut to
// the time left); what is left then is counted in records_failed, and delivered() says
// whether everything reached the server. records_written counts rows the server
// acknowledged (HTTP 200).
//
// Duplicates: delivery is at-least-once. A batch of up to batch_rows (< ClickHouse's
// max_insert_block_size, 1048576) is one block, inserted whole or not at all; but when
// the answer is lost after the server committed it (timeout, connection reset after the
// request was sent), the retry inserts the same rows again. ClickHouse deduplicates
// retried blocks (insert_deduplicate) only for Replicated*MergeTree tables: a user who
// needs exactly-once creates the table as ReplicatedMergeTree (or a Distributed table
// over such shards, docs/scaling.md) before starting flowsec; the sink seals a chunk once
// it has been sent and resends it byte for byte, so the block checksums match (not tried
// here: replication needs ZooKeeper). With the default MergeTree,
// such a retry duplicates rows (rare: it needs the server to fail after committing).
// A chunk the server keeps refusing (e.g. a column of the wrong type in a table made by
// someone else) is retried forever with the maximum delay, and new rows are dropped
// beyond max_pending_rows: counted and logged, never blocking the rest of the collector.
//
// https:// works when libcurl has TLS (Debian's has OpenSSL): the server certificate is
// checked against the system CA store. Credentials go in an Authorization: Basic header,
// never in the logged URL.
//
// Contract: a Sink (sink.hpp), driven by its QueuedSink worker; stats(), pending_rows()
// and delivered() from any thread. Never throws on the data path.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "sinks/clickhouse_row.hpp"
#include "sinks/sink.hpp"

namespace flowsec::sinks {

struct ClickHouseTarget {
  std::string user, password;  // empty user: ClickHouse's "default" user
  std::string host;            // name, IPv4 or [IPv6]
  std::uint16_t port = 8123;   // 8123 for http://, 8443 for https:// when the URL has none
  std::string database;
  std::string table = "flows";
  std::string base_url;  // http://HOST:PORT/ (no credentials)
};

// Parses the --clickhouse URL; one line naming what is wrong otherwise. Scheme http or
// https; USER and PASS percent-decoded (RFC 3986 §2.1), so ':' '@' '/' in a password are
// written %3A %40 %2F; HOST a name, an IPv4 address or [IPv6]; DATABASE and NAME
// identifiers of [A-Za-z0-9_] (at most 64), so they go into SQL without quoting
// problems; `table` is the only query parameter.
[[nodiscard]] Expected<ClickHouseTarget, std::string> parse_clickhouse_url(std::string_view url);

// The statements the sink sends (DATABASE.TABLE in backquotes).
[[nodiscard]] std::string clickhouse_create_table_sql(const ClickHouseTarget& target);
[[nodiscard]] std::string clickhouse_insert_sql(const ClickHouseTarget& target);

// Wait before retry number `failures` (1 = after the first failure): retry_min doubled
// per further failure, at most retry_max; zero for failures == 0.
[[nodiscard]] std::chrono::milliseconds clickhouse_retry_delay(std::uint32_t failures,
                                                               std::chrono::milliseconds retry_min,
                                                               std::chrono::milliseconds retry_max);

struct ClickHouseSinkOptions {
  ClickHouseTarget target;
  std::size_t batch_rows = 65536;
  std::chrono::milliseconds flush_interval{1000};
  std::size_t max_pending_rows = 1 << 20;  // ~250 MB of TSV at the bound
  std::chrono::milliseconds retry_min{500}, retry_max{30000};
  std::chrono::milliseconds linger{10000};
};

class ClickHouseSink final : public Sink {
 public:
  // Tries to create the table (IF NOT EXISTS) and checks that it has every column. A
  // server that cannot be reached is not an error (logged; creation is retried before
  // the next insert); a server that answers with an error (bad credentials, unknown
  // database, a table lacking columns) is: one line saying so. Also an error: https://
  // with a libcurl without TLS, or libcurl failing to load or initialise (libcurl is
  // loaded by the first open(), not at program start).
  [[nodiscard]] static Expected<std::unique_ptr<ClickHouseSink>, std::string> open(
      ClickHouseSinkOptions options);
  ~ClickHouseSink() override;
  ClickHouseSink(const ClickHouseSink&) = delete;
  ClickHouseSink& operator=(const ClickHouseSink&) = delete;

  [[nodiscard]] std::string name() const override { return "clickhouse"; }
  void write(const ipfix::RecordBatch& batch) override;
  void tick(std::chrono::system_clock::time_point now) override;
  void close() override;
  [[nodiscard]] SinkStats stats() const override;
  // Rows waiting for the server (metrics).
  [[nodiscard]] std::uint64_t pending_rows() const;
  [[nodiscard]] bool delivered() const override { return delivered_; }

 private:
  struct Impl;
  explicit ClickHouseSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> delivered_{false};
};

}  // namespace flowsec::sinks
