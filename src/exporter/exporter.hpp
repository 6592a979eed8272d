#pragma once
// Exporter: record batches → NetFlow v5 / v9 / IPFIX messages (-V) → one or many
// transport::Senders (-n), SPEC §4.
//
// Threads: export_batch(), flush() and shutdown() are called from ONE producer thread
// (the probe loop or a sink worker). Messages are built there and handed to the
// senders' asio::io_context with asio::post, one post per collector at the end of each
// export_batch() and flush() (a message stays on the producer thread until then; the producer
// waits, up to a second, while 256 posted messages are still to be taken); Senders are only
// ever touched on the io thread (their contract). stats() may be read from any thread (atomics).
// Ownership: the Exporter owns the Senders. It must outlive every handler it posted:
// call shutdown(), let the io thread finish (io_context::run returns or is stopped and
// joined), then destroy the Exporter.
// Errors: configuration problems are found by validate_export_config() at start-up (one
// line each). On the data path nothing throws: a record that cannot be exported (an IPv6
// flow in v5, an options record under -T, a record larger than a message, no template id
// left) is dropped and counted in ExporterStats::records_not_exportable, logged
// rate-limited.
//
// Output layouts:
//  - ExporterOptions::fields absent: each record keeps its own template's fields (the
//    proxy's "fields received"); for v9, variable-length fields become fixed
//    (v9_fixed_length) and elements v9 cannot carry are DROPPED with a warning once per
//    layout (they come from the network, unknown at start-up).
//  - fields present (-T): every record is mapped onto them by information element;
//    missing elements are zero / empty. Times are derived across flowStart/End
//    SysUpTime / Seconds / Milliseconds / Microseconds. -T fields v9 cannot carry are a
//    START-UP error (validate_export_config). Options records are not mapped (counted).
//  - v5: always the fixed v5 layout, from the IPv4 elements of each record.
// Template ids are numbered from first_template_id per distinct output layout.
//
// Time: sysUpTime (v5/v9 headers, flowStart/EndSysUpTime 22/21) counts from
// start_time_ms(), the exporter's start; in IPFIX output 22/21 are relative to that same
// instant, i.e. start_time_ms() is this exporting process's systemInitTimeMilliseconds
// (IE 160), which IPFIX output carries in an options record (scope observationDomainId)
// sent with the templates whenever a layout with 22/21 exists. Received v5/v9 sysUpTime
// values (and IPFIX ones whose metadata has sys_uptime_ms, from the collector's IE 160) are
// rebased from their exporter's boot time (export time - sysUpTime) to ours; other IPFIX
// 22/21 are taken as already relative to ours (FlowEncoder writes them so).
// A standard header first: asio picks its aligned allocator from a libstdc++ macro, and every
// translation unit must see the same choice (else ASan reports new/free mismatches).
#include <cstddef>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/result.hpp"
#include "ipfix/message_builder.hpp"
#include "ipfix/netflow_v5.hpp"
#include "ipfix/netflow_v9_builder.hpp"
#include "ipfix/record.hpp"
#include "transport/endpoint.hpp"
#include "transport/sender.hpp"

namespace flowsec::exporter {

inline constexpr std::uint16_t kDefaultFirstTemplateId = 257;         // -U, nProbe's default
inline constexpr std::size_t kDefaultStreamMessageSize = 8192;        // tcp/tls/sctp
inline constexpr std::uint32_t kDefaultTemplateRefreshMessages = 20;  // SPEC §4
inline constexpr std::chrono::seconds kDefaultTemplateRefreshInterval{60};

// -E T:ID. ID is the IPFIX observation domain and the v9 source id; v5 carries both bytes.
struct EngineId {
  std::uint8_t type = 0;
  std::uint32_t id = 0;
};
// "T:ID" (or "ID"); T 0..255, ID 0..4294967295. Errors name the argument.
[[nodiscard]] Expected<EngineId, std::string> parse_engine_id(std::string_view text);

struct ExporterOptions {
  int version = 10;  // -V: 5, 9 or 10
  // -T: output fields; nullopt = each record with its own template's fields.
  std::optional<std::vector<ipfix::FieldSpec>> fields;
  std::uint16_t first_template_id = kDefaultFirstTemplateId;  // -U
  EngineId engine;                                            // -E
  bool all_collectors = false;                                // -a
  // 0 = automatic: limits::kDefaultDatagramMessageSize (1400) when a collector is udp/dtls,
  // else kDefaultStreamMessageSize. Clamped to what the version's header allows..65535.
  std::size_t max_message_size = 0;
  // Template refresh over datagram transports (RFC 7011 §8.4): a message carries every
  // template again once this many messages went out since the last full set, or this long.
  std::uint32_t template_refresh_messages = kDefaultTemplateRefreshMessages;
  std::chrono::nanoseconds template_refresh_interval = kDefaultTemplateRefreshInterval;
  // Send the partial message at the end of every export_batch() (else: only when full,
  // on flush() and on shutdown()).
  bool flush_each_batch = true;
  // Wall clock in ms since 1970 (export time, sysUpTime). Default: system_clock. A pcap
  // replay may pass the packet clock.
  std::function<std::int64_t()> wall_clock_ms;
  // sysUpTime origin; 0 = wall_clock_ms() at construction.
  std::int64_t start_time_ms = 0;
};

// The -V value SPEC §2 implies when none is given: 10 when any collector is a stream, else 9.
[[nodiscard]] int default_version(std::span<const transport::Endpoint> collectors);

// Start-up checks, one line naming the problem:
//  - version not 5, 9 or 10; no collector;
//  - -V 5|9 over tcp/tls/sctp (SPEC §3: no length field to frame a stream; use -V 10);
//  - -V 9 with a -T field NetFlow v9 cannot carry (another enterprise than IANA/ntop);
//  - -V 5 with an engine id above 255; template id below 256 (RFC 7011 §3.4.1).
[[nodiscard]] Expected<void, std::string> validate_export_config(
    const ExporterOptions& options, std::span<const transport::Endpoint> collectors);

struct CollectorStats {
  std::string endpoint;
  std::uint64_t messages = 0;  // handed to the Sender
  std::uint64_t records = 0;   // data records in them
  bool connected = false;      // as last seen on the io thread
};

struct ExporterStats {
  std::uint64_t records_in = 0;              // offered to export_batch()
  std::uint64_t records_exported = 0;        // put into at least one message
  std::uint64_t records_not_exportable = 0;  // dropped (see the header comment)
  std::uint64_t messages = 0;                // built (each may go to several collectors with -a)
  std::uint64_t template_messages_on_connect = 0;  // produced by the on_connect hook
  std::vector<CollectorStats> collectors;
};

class Exporter {
 public:
  // Takes the senders (made by transport::make_sender on `io`) and installs their
  // on_connect hooks (posted to `io`). `clock` drives the template refresh interval.
  // Call validate_export_config() first; options are not re-checked here.
  Exporter(asio::io_context& io, std::vector<std::unique_ptr<transport::Sender>> senders,
           ExporterOptions options, const Clock& clock = SteadyClock::instance());
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // Producer thread. Builds messages from every record of `batch` and posts them.
  void export_batch(const ipfix::RecordBatch& batch);
  // Producer thread. Sends the partially built message(s).
  void flush();
  // Producer thread, once, last. Flushes, then shuts every Sender down (on the io thread)
  // and calls done(true) when all delivered everything, done(false) otherwise (on the io
  // thread). Records offered afterwards are counted as not exportable.
  void shutdown(std::chrono::milliseconds timeout, std::function<void(bool)> done);
  // Asks the io thread to refresh the connected state of every Sender (round-robin
  // skips disconnected collectors). Also done after every send and once a second.
  void poll_status();

  [[nodiscard]] ExporterStats stats() const;
  [[nodiscard]] std::int64_t start_time_ms() const { return start_ms_; }
  [[nodiscard]] int version() const { return options_.version; }
  [[nodiscard]] std::size_t max_message_size() const { return max_size_; }

 private:
  struct Collector;
  struct Channel;
  struct Plan;
  struct SharedTemplates;

  [[nodiscard]] std::int64_t now_ms() const;
  [[nodiscard]] std::uint32_t uptime_ms(std::int64_t now) const;
  Channel& pick_channel();
  void begin_message(Channel& ch);
  void finish_message(Channel& ch);
  void send_to(Channel& ch, transport::Message msg, std::uint32_t records);
  void post_outboxes();
  bool add_template_to(Channel& ch, std::size_t layout);
  void maybe_refresh(Channel& ch);
  // Records of one layout, back to back, `record_length` bytes each (one record: its size).
  void add_records(std::size_t layout, Bytes records, std::size_t record_length);
  [[nodiscard]] bool needs_rebase(const Plan& p, const ipfix::MessageMeta& m) const;
  void export_v5(const ipfix::RecordView& r);
  const Plan& plan_for(const ipfix::RecordBatch& batch, const ipfix::Template& t);
  Plan make_plan(ipfix::TemplatePtr input);
  std::optional<std::size_t> layout_for(std::vector<ipfix::FieldSpec> fields,
                                        std::uint16_t scope_count);
  void encode_record(const Plan& p, const ipfix::RecordView& r);
  std::vector<transport::Message> on_connect_messages(Channel& ch);
  void start_status_timer();
  void update_status();
  void count_not_exportable(std::string_view why);

  asio::io_context& io_;
  ExporterOptions options_;
  const Clock& clock_;
  std::int64_t start_ms_ = 0;
  std::size_t max_size_ = 0;
  std::atomic<bool> shut_down_{false};

  std::vector<std::unique_ptr<Collector>> collectors_;
  std::vector<std::unique_ptr<Channel>> channels_;  // one per collector, or one for -a
  std::size_t rr_next_ = 0;
  Channel* current_ = nullptr;  // channel of the message being built

  // Output layouts (producer thread) and their wire templates (shared with the hooks).
  std::map<std::pair<std::uint16_t, std::vector<std::uint64_t>>, std::size_t> layout_index_;
  std::vector<ipfix::TemplatePtr> layouts_;
  std::vector<bool> layout_uptime_;  // layout has flowStart/EndSysUpTime (22/21)
  // IPFIX: the options layout carrying systemInitTimeMilliseconds (IE 160) and its record.
  std::optional<std::size_t> init_layout_;
  std::vector<std::byte> init_record_;  // written once, before the hook can see it
  std::shared_ptr<SharedTemplates> shared_;

  std::unordered_map<const ipfix::Template*, std::unique_ptr<Plan>> plans_;
  const ipfix::Template* last_template_ = nullptr;
  const Plan* last_plan_ = nullptr;
  std::vector<Bytes> in_fields_;            // scratch: input field values
  std::vector<std::byte> record_;           // scratch: one output record
  std::vector<ipfix::NetflowV5Record> v5_;  // v5 records of the message being built

  std::atomic<std::uint64_t> records_in_{0}, records_exported_{0}, not_exportable_{0}, messages_{0},
      hook_messages_{0};
  log::RateLimiter drop_log_;
  asio::steady_timer status_timer_;
  std::shared_ptr<std::atomic<bool>> alive_;

  // Messages posted to the io thread and not yet handed to their senders. post_outboxes()
  // waits (at most kPaceWait) while there are kMaxPostedMessages: a producer that outran
  // the io thread only piled up fresh buffers. Senders keep their own queue (reconnects,
  // --export-queue-size); this bounds only the hand-over.
  struct Pace {
    std::mutex mutex;
    std::condition_variable taken;
    std::size_t posted = 0;
  };
  static constexpr std::size_t kMaxPostedMessages = 256;
  static constexpr std::chrono::milliseconds kPaceWait{1000};
  std::shared_ptr<Pace> pace_;
};

}  // namespace flowsec::exporter
