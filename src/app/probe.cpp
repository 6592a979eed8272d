#include "app/probe.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <new>

#include "capture/capture_source.hpp"
#include "common/log.hpp"
#include "exporter/flow_encoder.hpp"
#include "flow/flow_cache.hpp"
#include "flow/l7_classifier.hpp"
#include "ipfix/batch_pool.hpp"
#include "ipfix/template_string.hpp"
#include "packet/parser.hpp"

namespace flowsec::app {
namespace {

constexpr std::string_view kComponent = "probe";
constexpr std::size_t kFlowsPerBatch = 1024;  // flows encoded into one record batch
// Expiry scan, in packet time: closed TCP flows free their entries for new flows within
// this much (a scan with nothing to export looks at three list heads).
constexpr std::int64_t kExpireEveryNs = 100'000'000;

}  // namespace

struct Probe::Impl {
  Options options;
  std::unique_ptr<capture::CaptureSource> source;
  capture::PacketBatch batch;
  capture::ReadStatus first_status = capture::ReadStatus::end;
  bool have_first_batch = false;
  std::unique_ptr<flow::L7Classifier> l7;
  std::unique_ptr<flow::FlowCache> cache;
  std::optional<exporter::FlowEncoder> encoder;
  sinks::Fanout* outputs = nullptr;
  // A file can wait for a full output queue, so nothing read from it is dropped; a live
  // capture cannot (the kernel would drop packets instead), so a full queue drops a batch.
  sinks::WhenFull when_full = sinks::WhenFull::drop;
  // Batches come back from the outputs with their capacity: the next publish() writes into
  // memory already mapped (fresh batches were a third of the probe's page faults).
  ipfix::BatchPool batches;
  // The batch being filled: each flow is encoded as the cache hands it over.
  std::shared_ptr<ipfix::RecordBatch> filling;
  std::int64_t next_expire_ns = 0;
  bool progress_line = false;
  std::chrono::steady_clock::time_point next_progress{};

  // Read by other threads (metrics, stats line, export clock).
  std::atomic<std::int64_t> packet_clock_ms{0};
  std::atomic<std::uint64_t> packets{0}, bytes{0}, non_ip{0}, flows_exported{0},
      records_published{0}, active_flows{0}, kernel_drops{0};
  std::array<std::atomic<std::uint64_t>, packet::kMalformedCount> malformed{};

  void on_flow(const flow::FlowRecord& f) {
    if (!filling) {
      filling = batches.acquire();
      encoder->begin(*filling, kFlowsPerBatch);
    }
    encoder->add(f);
    if (encoder->open_flows() >= kFlowsPerBatch) publish();
  }
  void publish() {
    if (!filling) return;
    flows_exported += encoder->open_flows();
    encoder->finish();
    auto records = std::move(filling);
    records_published += records->size();
    outputs->publish(std::move(records), when_full);
  }
  void account(const capture::PacketBatch& b);
  std::vector<packet::PacketView> views;     // account(): the batch, parsed
  std::vector<flow::FlowCache::Packet> run;  // and its IP packets for the flow cache
  void show_progress(bool final_line);
  void update_gauges();
};

Probe::Probe(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Probe::~Probe() = default;

Expected<std::unique_ptr<Probe>, std::string> Probe::open(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  capture::CaptureOptions co;
  co.interface = options.interface;
  co.bpf_filter = options.bpf_filter;
  co.snaplen = options.snaplen;
  auto source = capture::open_capture(co);
  if (!source) return tl::unexpected(fmt::format("option -i: {}", source.error()));
  impl->source = std::move(*source);
  using capture::SourceKind;
  const SourceKind kind = impl->source->kind();
  if (kind == SourceKind::file || kind == SourceKind::directory ||
      kind == SourceKind::standard_input) {
    impl->when_full = sinks::WhenFull::wait;
  }
  log::info(kComponent, fmt::format("capturing from {}", impl->source->description()));
  if (!options.no_l7) {
    auto l7 = flow::L7Classifier::create();
    if (!l7) return tl::unexpected(fmt::format("nDPI: {}", l7.error()));
    impl->l7 = std::move(*l7);
  }
  auto probe = std::unique_ptr<Probe>(new Probe(std::move(impl)));
  Impl& p = *probe->impl_;
  if (probe->offline()) {
    // The first packets give the export clock its origin (see the header).
    p.first_status = p.source->next_batch(p.batch);
    p.have_first_batch = true;
    if (p.first_status == capture::ReadStatus::packets) {
      p.packet_clock_ms = p.batch.packets[0].timestamp_ns / 1'000'000;
    }
  }
  return probe;
}

bool Probe::offline() const {
  const auto kind = impl_->source->kind();
  return kind == capture::SourceKind::file || kind == capture::SourceKind::directory ||
         kind == capture::SourceKind::standard_input;
}

std::int64_t Probe::first_packet_ms() const {
  return impl_->packet_clock_ms.load();
}

std::function<std::int64_t()> Probe::packet_clock_ms() const {
  Impl* p = impl_.get();
  return [p] { return p->packet_clock_ms.load(std::memory_order_relaxed); };
}

Expected<void, std::string> Probe::start(sinks::Fanout& outputs, std::int64_t start_time_ms) {
  Impl& p = *impl_;
  p.outputs = &outputs;
  exporter::FlowEncoderOptions eo;
  if (p.options.flow_template) {
    auto parsed = ipfix::parse_template_string(*p.options.flow_template);
    if (!parsed) return tl::unexpected(fmt::format("option -T: {}", parsed.error()));
    for (const auto& name : parsed->skipped) {
      log::warning(kComponent, fmt::format("-T: field {} is not known, left out", name));
    }
    eo.fields = std::move(parsed->fields);
  }
  eo.start_time_ms = start_time_ms;
  eo.observation_domain = p.options.engine_id;
  if (p.l7) {
    flow::L7Classifier* l7 = p.l7.get();
    eo.l7_name = [l7](std::uint16_t master, std::uint16_t app) { return l7->name(master, app); };
  }
  auto encoder = exporter::FlowEncoder::create(std::move(eo));
  if (!encoder) return tl::unexpected(fmt::format("option -T: {}", encoder.error()));
  p.encoder.emplace(std::move(*encoder));
  const auto unsupported = p.encoder->unsupported_fields();
  if (!unsupported.empty()) {
    std::string names;
    for (const auto& n : unsupported) names += (names.empty() ? "" : " ") + n;
    log::warning(kComponent,
                 fmt::format("-T: this probe does not compute {}; exported as zero/empty", names));
  }
  flow::FlowCacheConfig cc;
  cc.active_timeout_ns = std::int64_t{p.options.lifetime_timeout} * 1'000'000'000;
  cc.idle_timeout_ns = std::int64_t{p.options.idle_timeout} * 1'000'000'000;
  cc.max_flows = p.options.max_flows;
  // The cache reserves address space for -M flows up front (its slab and bucket array,
  // ~250 bytes a flow); where that is refused (a ulimit -v, strict overcommit) it is a
  // start-up error naming the option, not an abort.
  try {
    p.cache = std::make_unique<flow::FlowCache>(
        cc, [&p](const flow::FlowRecord& f) { p.on_flow(f); }, p.l7.get());
  } catch (const std::bad_alloc&) {
    return tl::unexpected(fmt::format(
        "option -M: cannot reserve {} MB of address space for {} flows (lower -M)",
        (std::size_t{cc.max_flows} * flow::FlowCache::kBytesPerFlow) >> 20, cc.max_flows));
  }
  p.progress_line =
      offline() && p.source->kind() != capture::SourceKind::standard_input && ::isatty(2) == 1;
  return {};
}

void Probe::Impl::account(const capture::PacketBatch& b) {
  const packet::ParseOptions popts{.strip_tunnels = options.tunnel};
  // Parse the whole batch first, then account it in one run: the flow cache prefetches
  // its hash buckets a few packets ahead (FlowCache::add_batch).
  const auto raw = b.view();
  if (views.size() < raw.size()) views.resize(raw.size());
  run.clear();
  std::int64_t last_ns = 0;
  std::uint64_t ip_packets = 0;
  std::uint64_t ip_bytes = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const capture::RawPacket& pkt = raw[i];
    last_ns = pkt.timestamp_ns;
    packet::PacketView& view = views[i];
    if (auto bad = packet::parse_packet_into(pkt.link_type, pkt.data, popts, view)) {
      ++malformed[static_cast<std::size_t>(*bad)];
      continue;
    }
    if (!view.is_ip()) {
      ++non_ip;
      continue;
    }
    ++ip_packets;
    ip_bytes += view.ip_length;
    run.push_back({&view, pkt.data, pkt.timestamp_ns});
  }
  packets += ip_packets;
  bytes += ip_bytes;
  // The expiry scan runs every kExpireEveryNs of packet time, just before the first packet
  // at or past the tick, wherever the batch boundaries fall: which flows a final ACK or a
  // late packet joins then depends on the packets alone, not on how the capture was read.
  std::size_t from = 0;
  bool expired = false;
  for (std::size_t i = 0; i < run.size(); ++i) {
    const std::int64_t ts = run[i].timestamp_ns;
    if (ts < next_expire_ns) continue;
    cache->add_batch(std::span(run).subspan(from, i - from));
    from = i;
    cache->expire(ts);
    next_expire_ns = ts + kExpireEveryNs;
    expired = true;
  }
  cache->add_batch(std::span(run).subspan(from));
  if (last_ns == 0) return;
  packet_clock_ms.store(last_ns / 1'000'000, std::memory_order_relaxed);
  if (expired) publish();  // flows that ended reach the outputs within ~100 ms
}

void Probe::Impl::update_gauges() {
  active_flows = cache->active_flows();
  if (auto drops = source->stats().kernel_drops) kernel_drops = *drops;
}

void Probe::Impl::show_progress(bool final_line) {
  if (!progress_line) return;
  const auto now = std::chrono::steady_clock::now();
  if (!final_line && now < next_progress) return;
  next_progress = now + std::chrono::milliseconds(500);
  std::string percent;
  if (auto pr = source->progress(); pr && pr->bytes_total > 0) {
    percent = fmt::format(" {:5.1f}%", 100.0 * static_cast<double>(pr->bytes_read) /
                                           static_cast<double>(pr->bytes_total));
  }
  fmt::print(stderr, "\r{} packets{}  {} active flows  {} flows exported{}", packets.load(),
             percent, cache->active_flows(), flows_exported.load(), final_line ? "\n" : "");
}

void Probe::run() {
  Impl& p = *impl_;
  auto status = p.have_first_batch ? p.first_status : p.source->next_batch(p.batch);
  p.have_first_batch = false;
  while (true) {
    if (status == capture::ReadStatus::packets) {
      p.account(p.batch);
      p.show_progress(false);
    } else if (status == capture::ReadStatus::idle) {
      // Live capture and nothing arrived: time still passes for the idle timeout.
      const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      p.cache->expire(now_ns);
      p.publish();
    } else {
      if (status == capture::ReadStatus::error) {
        log::error(kComponent, p.source->error());
      }
      break;
    }
    p.update_gauges();
    status = p.source->next_batch(p.batch);
  }
  // End of input or stop: every flow ends now (forced_end) and goes to the outputs.
  p.cache->flush();
  p.publish();
  p.update_gauges();
  p.show_progress(true);
  const auto& cs = p.cache->stats();
  log::info(kComponent, fmt::format("{} packets, {} bytes, {} flows exported, {} non-IP, {} "
                                    "malformed",
                                    p.packets.load(), p.bytes.load(), p.flows_exported.load(),
                                    p.non_ip.load(), [&] {
                                      std::uint64_t n = 0;
                                      for (const auto& m : p.malformed) n += m.load();
                                      return n;
                                    }()));
  (void)cs;
}

void Probe::stop() {
  impl_->source->stop();
}

void Probe::write_metrics(MetricWriter& w) const {
  const Impl& p = *impl_;
  w.counter("flowsec_probe_packets_total", "IP packets accounted to flows", p.packets.load());
  w.counter("flowsec_probe_bytes_total", "IP bytes accounted to flows", p.bytes.load());
  w.counter("flowsec_probe_non_ip_packets_total", "Frames without an IP packet", p.non_ip.load());
  for (std::size_t i = 0; i < p.malformed.size(); ++i) {
    const auto n = p.malformed[i].load();
    if (n == 0) continue;
    const std::string reason(packet::to_string(static_cast<packet::Malformed>(i)));
    w.counter("flowsec_probe_malformed_packets_total", "Malformed packets, by reason",
              {{"reason", reason}}, n);
  }
  w.gauge("flowsec_probe_active_flows", "Flows in the flow cache",
          static_cast<double>(p.active_flows.load()));
  w.counter("flowsec_probe_flows_exported_total", "Flows handed to the outputs",
            p.flows_exported.load());
  w.counter("flowsec_probe_kernel_drops_total", "Packets the capture ring dropped",
            p.kernel_drops.load());
}

Probe::InputTotals Probe::input_totals() const {
  const Impl& p = *impl_;
  InputTotals t;
  t.packets = p.packets.load();
  t.bytes = p.bytes.load();
  t.errors = p.kernel_drops.load();
  for (const auto& m : p.malformed) t.errors += m.load();
  return t;
}

void Probe::stats_values(std::vector<NamedValue>& out) const {
  const Impl& p = *impl_;
  out.push_back({"packets", p.packets.load()});
  out.push_back({"active_flows", p.active_flows.load()});
  out.push_back({"flows_exported", p.flows_exported.load()});
  out.push_back({"capture_drops", p.kernel_drops.load()});
}

}  // namespace flowsec::app
