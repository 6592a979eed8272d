#pragma once
// Collector: the receive side of flowsec (SPEC §6). It is the ListenerHandler of
// every listener (-3 / --collector-port): bytes of each transport session in,
// record batches out to the sinks.
//
// Per session it keeps what RFC 7011 §8 ties to a session: a TemplateStore
// (datagram lifetime for udp/dtls, session lifetime for tcp/tls, sctp rules for
// sctp), a StreamFramer for stream transports (RFC 7011 §10) and a
// SequenceTracker (lost and out-of-order counted and logged, rate-limited).
// Decoded records are stamped with the exporter's address and port and, over
// TLS/DTLS, its authenticated certificate identity (SPEC §3 collector rule 3).
//
// Batching: records of one session accumulate in one batch, published when it
// holds batch_records records, when flush() is called (the app calls it on a
// short timer) and when the session ends; so outputs see large batches at high
// rates and records within a fraction of a second at low ones.
//
// Bad input (SPEC §9): a malformed datagram is dropped and counted by reason; a
// malformed stream closes that session only (on_data returns false). An exporter
// outside --collector-allow is counted and its data ignored (streams: closed).
//
// Threads: every ListenerHandler call and flush() happen on the listeners'
// io_context thread (one thread). publish is called on that thread and must not
// block (the sinks' queues never do). stats() may be called from any thread.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.hpp"
#include "common/ip_address.hpp"
#include "common/log.hpp"
#include "ipfix/batch_pool.hpp"
#include "ipfix/errors.hpp"
#include "ipfix/record.hpp"
#include "transport/listener.hpp"

namespace flowsec::collector {

using BatchPtr = std::shared_ptr<const ipfix::RecordBatch>;

struct CollectorOptions {
  std::vector<IpNetwork> allow;      // --collector-allow; empty = every exporter
  std::size_t batch_records = 4096;  // publish a session's batch at this size
  std::function<void(BatchPtr)> publish;
  const Clock* clock = &SteadyClock::instance();  // template lifetimes (tests: ManualClock)
};

// Per exporter address (SPEC §7 "per exporter").
struct ExporterCounters {
  std::uint64_t messages = 0;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
};

inline constexpr std::size_t kMaxExporterEntries = 4096;
inline constexpr std::string_view kOtherExporters = "other";

struct CollectorStats {
  std::uint64_t sessions_opened = 0;
  std::uint64_t sessions_active = 0;
  std::uint64_t sessions_not_allowed = 0;  // exporters outside --collector-allow
  std::uint64_t messages = 0;              // received, malformed ones included
  std::uint64_t records = 0;               // decoded
  std::uint64_t bytes = 0;                 // of the messages received
  std::uint64_t messages_malformed = 0;
  std::array<std::uint64_t, ipfix::kErrcCount> decode_errors{};  // by ipfix::Errc
  std::uint64_t not_flow_protocol = 0;      // datagrams of no known version (also counted above)
  std::uint64_t unknown_template_sets = 0;  // data sets whose template is unknown (RFC 7011 §8)
  std::uint64_t unknown_template_bytes = 0;
  std::uint64_t sequence_lost = 0;  // records (IPFIX, v5) or packets (v9, sFlow)
  std::uint64_t sequence_out_of_order = 0;
  std::uint64_t sequence_resets = 0;
  std::uint64_t streams_truncated = 0;  // a stream ended inside a message
  std::uint64_t batches_published = 0;
  // Key: exporter address text; past kMaxExporterEntries addresses, new ones are added up
  // under kOtherExporters.
  std::map<std::string, ExporterCounters> exporters;
};

class Collector final : public transport::ListenerHandler {
 public:
  explicit Collector(CollectorOptions options);
  ~Collector() override;
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  void on_session_open(const transport::SessionInfo& session) override;
  bool on_data(const transport::SessionInfo& session, std::span<const std::byte> data) override;
  void on_session_close(const transport::SessionInfo& session, std::string_view reason) override;

  // Publishes every session's pending records.
  void flush();

  [[nodiscard]] CollectorStats stats() const;

 private:
  struct Session;
  Session& session_for(const transport::SessionInfo& info);
  // False when the message is malformed (counted and logged here).
  bool decode_message(Session& s, std::span<const std::byte> message);
  void publish(Session& s);
  void count_error(Session& s, ipfix::Errc code, std::size_t offset);

  CollectorOptions options_;
  ipfix::BatchPool batches_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;
  mutable std::mutex stats_mutex_;  // guards stats_ (written on the io thread, read by metrics)
  CollectorStats stats_;
  log::RateLimiter error_log_;
  log::RateLimiter sequence_log_;
};

}  // namespace flowsec::collector
