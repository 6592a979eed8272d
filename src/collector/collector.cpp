#include "collector/collector.hpp"

#include <fmt/core.h>

#include <utility>

#include "ipfix/decode.hpp"
#include "ipfix/sequence_tracker.hpp"
#include "ipfix/stream_framer.hpp"
#include "ipfix/template_store.hpp"
#include "ipfix/uptime_reference.hpp"

namespace flowsec::collector {
namespace {

constexpr std::string_view kComponent = "collector";

ipfix::TransportKind transport_kind(transport::Scheme scheme) {
  switch (scheme) {
    case transport::Scheme::udp:
    case transport::Scheme::dtls:
      return ipfix::TransportKind::datagram;
    case transport::Scheme::sctp:
      return ipfix::TransportKind::sctp;
    case transport::Scheme::tcp:
    case transport::Scheme::tls:
      break;
  }
  return ipfix::TransportKind::stream;
}

std::string peer_text(const transport::SessionInfo& info) {
  const std::string address = info.peer_address.to_string();
  std::string text = info.peer_address.is_v6() ? fmt::format("[{}]:{}", address, info.peer_port)
                                               : fmt::format("{}:{}", address, info.peer_port);
  if (!info.tls_identity.empty()) text += fmt::format(" ({})", info.tls_identity);
  return text;
}

}  // namespace

struct Collector::Session {
  Session(const transport::SessionInfo& session_info, const Clock& clock)
      : info(session_info),
        peer(peer_text(session_info)),
        stream(transport::is_stream(session_info.scheme)),
        templates(transport_kind(session_info.scheme), clock) {}

  transport::SessionInfo info;
  std::string peer;  // for log lines
  bool stream;
  bool allowed = true;
  ipfix::TemplateStore templates;
  ipfix::StreamFramer framer;
  ipfix::SequenceTracker sequence;
  ipfix::SequenceCounters sequence_seen{};  // what was already added to the totals
  std::shared_ptr<ipfix::RecordBatch> pending;
  ipfix::UptimeReference uptime;
  std::size_t last_batch_bytes = 0;  // to reserve the next batch
  std::size_t last_batch_records = 0;
  ExporterCounters* exporter = nullptr;  // node of stats_.exporters (stable address)
};

Collector::Collector(CollectorOptions options) : options_(std::move(options)) {}

Collector::~Collector() = default;

Collector::Session& Collector::session_for(const transport::SessionInfo& info) {
  auto it = sessions_.find(info.id);
  if (it != sessions_.end()) return *it->second;
  auto session = std::make_unique<Session>(info, *options_.clock);
  if (!options_.allow.empty()) {
    session->allowed = false;
    for (const IpNetwork& net : options_.allow) {
      if (net.contains(info.peer_address)) {
        session->allowed = true;
        break;
      }
    }
  }
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.sessions_opened;
    ++stats_.sessions_active;
    if (session->allowed) {
      // Spoofed UDP sources could otherwise grow this map (and the metrics) without bound.
      std::string key = info.peer_address.to_string();
      if (stats_.exporters.size() >= kMaxExporterEntries && !stats_.exporters.contains(key)) {
        key = kOtherExporters;
      }
      session->exporter = &stats_.exporters[key];
    } else {
      ++stats_.sessions_not_allowed;
    }
  }
  if (!session->allowed) {
    log::warning(kComponent, fmt::format("{} {}: exporter not in --collector-allow, ignored",
                                         to_string(info.scheme), session->peer));
  }
  return *sessions_.emplace(info.id, std::move(session)).first->second;
}

void Collector::on_session_open(const transport::SessionInfo& session) {
  (void)session_for(session);
}

bool Collector::on_data(const transport::SessionInfo& info, std::span<const std::byte> data) {
  Session& s = session_for(info);
  if (!s.allowed) return false;
  if (!s.stream) {
    (void)decode_message(s, data);
    return true;
  }
  // RFC 7011 §10: a stream carries IPFIX messages back to back, framed by their length.
  // SPEC §9: a malformed stream — bad framing or a message that does not decode — closes
  // that session only; the messages after the bad one are not trusted.
  bool decoded_all = true;
  auto framed = s.framer.feed(data, [&](Bytes message) {
    if (decoded_all) decoded_all = decode_message(s, message);
  });
  if (!framed) {
    count_error(s, framed.error().code, framed.error().offset);
    return false;
  }
  return decoded_all;
}

bool Collector::decode_message(Session& s, std::span<const std::byte> message) {
  {
    // Received, whether it decodes or not (SPEC §7 "received per exporter").
    std::lock_guard lock(stats_mutex_);
    ++stats_.messages;
    stats_.bytes += message.size();
    if (s.exporter != nullptr) {
      ++s.exporter->messages;
      s.exporter->bytes += message.size();
    }
  }
  if (!s.pending) {
    s.pending = batches_.acquire();
    // Sized like the session's last batch: growing a batch message by message (reallocating
    // and copying) cost a fifth of the collector's CPU at high rates. A recycled batch
    // usually has the capacity already.
    s.pending->reserve(s.last_batch_bytes, s.last_batch_records);
    s.pending->exporter.address = s.info.peer_address;
    s.pending->exporter.port = s.info.peer_port;
    s.pending->exporter.tls_identity = s.info.tls_identity;
  }
  const ipfix::RecordBatch::Mark mark = s.pending->mark();
  const std::size_t before = s.pending->size();
  auto decoded = s.stream ? ipfix::decode_ipfix(message, s.templates, *s.pending)
                          : ipfix::decode_any(message, s.templates, *s.pending);
  if (!decoded) {
    count_error(s, decoded.error().code, decoded.error().offset);
    return false;
  }
  const std::size_t records = s.pending->size() - before;
  s.uptime.apply(*s.pending, mark);
  s.sequence.observe(decoded->protocol, decoded->observation_domain, decoded->sequence,
                     decoded->protocol == ipfix::Protocol::ipfix
                         ? decoded->data_records
                         : static_cast<std::uint32_t>(records));
  const ipfix::SequenceCounters seq = s.sequence.counters();
  const std::uint64_t new_lost = seq.lost - s.sequence_seen.lost;
  const std::uint64_t new_reorder = seq.out_of_order - s.sequence_seen.out_of_order;
  const std::uint64_t new_resets = seq.resets - s.sequence_seen.resets;
  s.sequence_seen = seq;
  {
    std::lock_guard lock(stats_mutex_);
    stats_.records += records;
    stats_.unknown_template_sets += decoded->unknown_template_sets;
    stats_.unknown_template_bytes += decoded->unknown_template_bytes;
    stats_.sequence_lost += new_lost;
    stats_.sequence_out_of_order += new_reorder;
    stats_.sequence_resets += new_resets;
    if (s.exporter != nullptr) s.exporter->records += records;
  }
  if (new_lost + new_reorder + new_resets > 0) {
    std::uint64_t suppressed = 0;
    if (sequence_log_.allow(suppressed)) {
      log::warning(kComponent,
                   fmt::format("{} {} domain {}: sequence {}: {} lost, {} out of order, {} resets "
                               "(+{} similar lines suppressed)",
                               to_string(s.info.scheme), s.peer, decoded->observation_domain,
                               decoded->sequence, new_lost, new_reorder, new_resets, suppressed));
    }
  }
  if (s.pending->size() >= options_.batch_records) publish(s);
  return true;
}

void Collector::count_error(Session& s, ipfix::Errc code, std::size_t offset) {
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.messages_malformed;
    ++stats_.decode_errors[static_cast<std::size_t>(code)];
    if (code == ipfix::Errc::unsupported_version) ++stats_.not_flow_protocol;
  }
  std::uint64_t suppressed = 0;
  if (error_log_.allow(suppressed)) {
    log::warning(kComponent,
                 fmt::format("{} {}: {} at offset {}, {} (+{} similar lines suppressed)",
                             to_string(s.info.scheme), s.peer, ipfix::describe(code), offset,
                             s.stream ? "session closed" : "message dropped", suppressed));
  }
}

void Collector::publish(Session& s) {
  if (!s.pending || s.pending->empty()) return;
  s.last_batch_bytes = s.pending->storage().size();
  s.last_batch_records = s.pending->size();
  BatchPtr batch = std::move(s.pending);
  s.pending.reset();
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.batches_published;
  }
  if (options_.publish) options_.publish(std::move(batch));
}

void Collector::flush() {
  for (auto& [id, session] : sessions_) publish(*session);
}

void Collector::on_session_close(const transport::SessionInfo& info, std::string_view reason) {
  auto it = sessions_.find(info.id);
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  publish(s);
  // A stream that ends inside a message lost that message's tail (RFC 7011 §10). A framer
  // that already failed (counted as malformed) may still hold the bad header's bytes:
  // finish() reports its own error then, so it is not counted twice.
  const auto finished = s.framer.finish();
  const bool truncated =
      s.stream && s.allowed && !finished && finished.error().code == ipfix::Errc::stream_truncated;
  {
    std::lock_guard lock(stats_mutex_);
    --stats_.sessions_active;
    if (truncated) ++stats_.streams_truncated;
  }
  if (truncated) {
    log::warning(kComponent,
                 fmt::format("{} {}: stream ended inside a message ({} bytes held): {}",
                             to_string(s.info.scheme), s.peer, s.framer.buffered(), reason));
  }
  sessions_.erase(it);
}

CollectorStats Collector::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

}  // namespace flowsec::collector
