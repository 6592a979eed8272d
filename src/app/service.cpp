#include "app/service.hpp"

#include <fmt/core.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <future>
#include <thread>
#include <vector>

#include "app/metrics_server.hpp"
#include "app/probe.hpp"
#include "collector/collector.hpp"
#include "common/file_head.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "exporter/exporter.hpp"
#include "ipfix/ipfix_file.hpp"
#include "ipfix/template_string.hpp"
#include "sinks/clickhouse_sink.hpp"
#include "sinks/export_sink.hpp"
#include "sinks/fanout.hpp"
#include "sinks/file_sink.hpp"
#include "sinks/ntopng_sink.hpp"
#include "transport/listener.hpp"
#include "transport/sender.hpp"
#include "transport/sighup.hpp"

namespace flowsec::app {
namespace {

constexpr std::string_view kComponent = "flowsec";
using Error = std::string;

transport::TlsSettings tls_settings(const Options& o) {
  transport::TlsSettings tls;
  tls.cert_file = o.tls_cert;
  tls.key_file = o.tls_key;
  tls.ca_file = o.tls_ca;
  tls.insecure = o.tls_insecure;
  tls.peers = o.tls_peers;
  return tls;
}

// An IPFIX file (RFC 5655) starts with an IPFIX message header: version 10.
bool is_ipfix_file(const std::string& path) {
  std::array<std::byte, 2> head{};
  return read_file_head(path, head) == head.size() && head[0] == std::byte{0} &&
         head[1] == std::byte{10};
}

Expected<void, Error> write_pid_file(const std::string& path) {
  std::ofstream out(path, std::ios::trunc);
  if (!(out << ::getpid() << '\n')) {
    return tl::unexpected(fmt::format("pid file '{}': {}", path, std::strerror(errno)));
  }
  return {};
}

// -u: after every socket and capture is open (SPEC §2).
Expected<void, Error> drop_privileges(const std::string& user) {
  errno = 0;
  const passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) return tl::unexpected(fmt::format("option -u: no user '{}'", user));
  if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0) {
    return tl::unexpected(
        fmt::format("option -u: cannot become '{}': {}", user, std::strerror(errno)));
  }
  return {};
}

}  // namespace

struct Service::Impl {
  Options options;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread io_thread;
  MetricsRegistry registry;
  std::unique_ptr<MetricsServer> metrics_server;
  sinks::Fanout fanout;
  sinks::ExportSink* export_sink = nullptr;  // owned by fanout
  std::unique_ptr<collector::Collector> collector;
  std::vector<std::unique_ptr<transport::Listener>> listeners;
  std::unique_ptr<transport::SighupReloader> reloader;
  std::unique_ptr<Probe> probe;
  std::string replay_file;
  asio::signal_set stop_signals{io, SIGINT, SIGTERM};
  asio::steady_timer flush_timer{io};
  asio::steady_timer stats_timer{io};
  StatsLine stats_line;
  std::promise<void> stop_requested;
  std::atomic<bool> stopping{false};
  bool pid_file_written = false;

  ~Impl() {
    if (io_thread.joinable()) {
      io.stop();
      io_thread.join();
    }
    if (pid_file_written && ::unlink(options.pid_file.c_str()) != 0 && errno != ENOENT) {
      // Typically -u: the file was written before privileges were dropped.
      log::warning(kComponent, fmt::format("pid file '{}' not removed: {}", options.pid_file,
                                           std::strerror(errno)));
    }
  }

  Expected<void, Error> setup();
  // After a failed setup(): what was opened received nothing; it goes through the usual
  // shutdown() now, with the io thread running for the export's close. (Left to the
  // destructors, the export waited the whole shutdown deadline for an io thread never
  // started, then reported records "not delivered".)
  void close_unused_outputs() {
    for (auto& l : listeners) l->close();  // no handler runs yet: nothing is accepted
    io_thread = std::thread([this] { io.run(); });
    (void)shutdown();
  }
  Expected<void, Error> setup_outputs();
  Expected<void, Error> setup_ntopng();
  Expected<void, Error> setup_clickhouse();
  sinks::NtopngInterfaceCounters input_counters() const;
  Expected<void, Error> setup_export();
  Expected<void, Error> setup_collection();
  void setup_metrics_collectors();
  void request_stop() {
    if (!stopping.exchange(true)) stop_requested.set_value();
  }
  void start_flush_timer();
  void start_stats_timer();
  void log_stats();
  void replay();
  int shutdown();
};

Expected<void, Error> Service::Impl::setup() {
  const Options& o = options;
  log::set_level(o.verbose >= 2 ? log::Level::debug : log::Level::info);
  const bool capture = !o.interface.empty() && o.interface != "none";
  if (!capture && o.listen.empty()) {
    return tl::unexpected(std::string(
        "nothing to do: give a capture source (-i) or a listen endpoint (-3); see --help"));
  }
  if (capture && !o.listen.empty()) {
    return tl::unexpected(std::string(
        "options -i and -3 together: run the probe and the collector as two flowsec processes"));
  }
  if (capture && o.interface != "-" && is_ipfix_file(o.interface)) replay_file = o.interface;
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe or socket is an error we count, not a death

  if (capture && replay_file.empty()) {
    auto opened = Probe::open(o);
    if (!opened) return tl::unexpected(opened.error());
    probe = std::move(*opened);
  }
  if (auto ok = setup_outputs(); !ok) return ok;
  if (auto ok = setup_ntopng(); !ok) return ok;
  if (auto ok = setup_clickhouse(); !ok) return ok;
  if (auto ok = setup_export(); !ok) return ok;
  if (fanout.empty()) {
    return tl::unexpected(
        std::string("no output: give -P DIR (or -P - for standard output), -n URL, --ntopng URL or "
                    "--clickhouse URL"));
  }
  if (!o.listen.empty()) {
    if (auto ok = setup_collection(); !ok) return ok;
  }
  if (probe) {
    // The sysUpTime origin of the export: the exporter's, or the first packet's / now.
    std::int64_t start_ms = probe->offline() ? probe->first_packet_ms() : 0;
    if (export_sink != nullptr) start_ms = export_sink->exporter().start_time_ms();
    if (start_ms == 0) {
      start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    }
    if (auto ok = probe->start(fanout, start_ms); !ok) return ok;
  }
  if (!o.metrics.empty()) {
    auto address = parse_metrics_address(o.metrics);
    if (!address) return tl::unexpected(address.error());
    auto server = MetricsServer::start(io, *address, registry);
    if (!server) return tl::unexpected(server.error());
    metrics_server = std::move(*server);
  }
  setup_metrics_collectors();
  if (!o.pid_file.empty()) {
    if (auto ok = write_pid_file(o.pid_file); !ok) return ok;
    pid_file_written = true;
  }
  if (!o.user.empty()) {
    if (auto ok = drop_privileges(o.user); !ok) return ok;
  }
  return {};
}

Expected<void, Error> Service::Impl::setup_outputs() {
  const Options& o = options;
  if (o.dump_path.empty()) return {};
  sinks::FileSinkOptions file;
  file.path = o.dump_path;
  file.format = *sinks::parse_file_format(std::string_view(&o.dump_format, 1));
  file.rotation = std::chrono::seconds(o.dump_frequency);
  if (file.path == "-" && file.format == sinks::FileFormat::ipfix && ::isatty(1)) {
    return tl::unexpected(std::string("option -D b: binary output to a terminal; redirect it"));
  }
  if (auto problem = sinks::FileSink::check(file); !problem.empty()) {
    return tl::unexpected(fmt::format("option -P '{}': {}", o.dump_path, problem));
  }
  sinks::QueuedSinkOptions queue;
  queue.max_records = o.output_queue_records;
  fanout.add(std::make_unique<sinks::FileSink>(std::move(file)), queue);
  return {};
}

Expected<void, Error> Service::Impl::setup_ntopng() {
  const Options& o = options;
  if (o.ntopng.empty()) {
    if (!o.zmq_key.empty() || o.zmq_probe_mode || o.zmq_disable_compression) {
      return tl::unexpected(std::string("options --zmq-*: give --ntopng zmq://HOST:PORT too"));
    }
    return {};
  }
  sinks::NtopngSinkOptions no;
  no.endpoint = o.ntopng;
  no.connect = o.zmq_probe_mode;
  no.server_public_key = o.zmq_key;
  no.compress = !o.zmq_disable_compression;
  no.linger = std::chrono::seconds(o.shutdown_timeout);
  no.counters = [this] { return input_counters(); };
  if (auto problem = sinks::check_ntopng_options(no); !problem.empty()) {
    return tl::unexpected(fmt::format("option --ntopng '{}': {}", o.ntopng, problem));
  }
  auto sink = sinks::NtopngSink::open(std::move(no));
  if (!sink) return tl::unexpected(fmt::format("option --ntopng '{}': {}", o.ntopng, sink.error()));
  log::info(kComponent,
            fmt::format("ntopng: {} {}{}", o.zmq_probe_mode ? "connecting to" : "publishing on",
                        o.ntopng, o.zmq_key.empty() ? "" : " (CURVE)"));
  sinks::QueuedSinkOptions queue;
  queue.max_records = o.output_queue_records;
  fanout.add(std::move(*sink), queue);
  return {};
}

Expected<void, Error> Service::Impl::setup_clickhouse() {
  const Options& o = options;
  if (o.clickhouse.empty()) return {};
  auto target = sinks::parse_clickhouse_url(o.clickhouse);
  if (!target) return tl::unexpected(fmt::format("option --clickhouse: {}", target.error()));
  sinks::ClickHouseSinkOptions co;
  co.target = std::move(*target);
  co.linger = std::chrono::seconds(o.shutdown_timeout);
  auto sink = sinks::ClickHouseSink::open(std::move(co));
  if (!sink) return tl::unexpected(fmt::format("option --clickhouse: {}", sink.error()));
  sinks::QueuedSinkOptions queue;
  queue.max_records = o.output_queue_records;
  fanout.add(std::move(*sink), queue);
  return {};
}

// What ntopng shows as this flowsec's interface: the capture, or the collector's input.
sinks::NtopngInterfaceCounters Service::Impl::input_counters() const {
  sinks::NtopngInterfaceCounters c;
  if (probe) {
    const auto t = probe->input_totals();
    c.name = options.interface;
    c.in_packets = t.packets;
    c.in_bytes = t.bytes;
    c.in_errors = t.errors;
  } else if (collector) {
    const auto s = collector->stats();
    c.name = "collector";
    c.in_packets = s.messages;
    for (const auto& [address, e] : s.exporters) c.in_bytes += e.bytes;
    c.in_errors = s.messages_malformed;
    for (const auto& l : listeners) c.in_errors += l->stats().kernel_drops;
  } else {
    c.name = replay_file;
  }
  return c;
}

Expected<void, Error> Service::Impl::setup_export() {
  const Options& o = options;
  if (o.collectors.empty()) return {};
  std::vector<transport::Endpoint> endpoints;
  for (const auto& url : o.collectors) {
    auto ep = transport::parse_export_endpoint(url);
    if (!ep) return tl::unexpected(fmt::format("option -n: {}", ep.error()));
    endpoints.push_back(*ep);
  }
  exporter::ExporterOptions eo;
  eo.version = o.flow_version.value_or(exporter::default_version(endpoints));
  eo.first_template_id = o.template_id;
  eo.engine.type = o.engine_type;
  eo.engine.id = o.engine_id;
  eo.all_collectors = o.all_collectors;
  eo.template_refresh_messages = o.template_refresh_messages;
  eo.template_refresh_interval = std::chrono::seconds(o.template_refresh);
  for (const auto& ep : endpoints) {
    if (!transport::is_stream(ep.scheme)) eo.max_message_size = o.max_message_size;
  }
  // Proxy: -T maps every record onto these fields; absent, records keep their own fields.
  // Probe: the flow encoder already builds records with the -T fields.
  if (o.flow_template && (!o.listen.empty() || !replay_file.empty())) {
    auto parsed = ipfix::parse_template_string(*o.flow_template);
    if (!parsed) return tl::unexpected(fmt::format("option -T: {}", parsed.error()));
    eo.fields = parsed->fields;
  }
  if (probe && probe->offline() && probe->first_packet_ms() != 0) {
    // A file input exports in its own packet time, the same on every run (SPEC §5).
    eo.wall_clock_ms = probe->packet_clock_ms();
    eo.start_time_ms = probe->first_packet_ms();
  }
  if (auto ok = exporter::validate_export_config(eo, endpoints); !ok) {
    return tl::unexpected(ok.error());
  }
  transport::SenderOptions so;
  so.tls = tls_settings(o);
  so.queue_limit_bytes = o.export_queue_size;
  std::vector<std::unique_ptr<transport::Sender>> senders;
  for (const auto& ep : endpoints) {
    auto sender = transport::make_sender(io, ep, so);
    if (!sender) return tl::unexpected(fmt::format("option -n {}: {}", ep.text, sender.error()));
    senders.push_back(std::move(*sender));
  }
  if (o.tls_insecure) {
    log::warning(kComponent,
                 "--tls-insecure: collector certificates are NOT verified (traffic is still "
                 "encrypted, but anyone on the path can pose as the collector)");
  }
  auto exp = std::make_unique<exporter::Exporter>(io, std::move(senders), std::move(eo));
  auto sink =
      std::make_unique<sinks::ExportSink>(std::move(exp), std::chrono::seconds(o.shutdown_timeout));
  export_sink = sink.get();
  sinks::QueuedSinkOptions queue;
  queue.max_records = o.output_queue_records;
  fanout.add(std::move(sink), queue);
  return {};
}

Expected<void, Error> Service::Impl::setup_collection() {
  const Options& o = options;
  collector::CollectorOptions co;
  for (const auto& cidr : o.collector_allow) {
    auto net = IpNetwork::parse(cidr);
    if (!net) {
      return tl::unexpected(
          fmt::format("option --collector-allow: '{}' is not an address or CIDR prefix", cidr));
    }
    co.allow.push_back(*net);
  }
  co.publish = [this](collector::BatchPtr batch) { fanout.publish(batch); };
  collector = std::make_unique<collector::Collector>(std::move(co));

  transport::ListenerOptions lo;
  lo.tls = tls_settings(o);
  lo.handshake_timeout = std::chrono::seconds(o.handshake_timeout);
  lo.idle_timeout = std::chrono::seconds(o.session_idle_timeout);
  lo.max_sessions = o.max_sessions;
  std::vector<transport::Listener*> raw;
  for (const auto& url : o.listen) {
    auto ep = transport::parse_listen_endpoint(url);
    if (!ep) return tl::unexpected(fmt::format("option -3: {}", ep.error()));
    auto listener = transport::make_listener(io, *ep, lo, *collector);
    if (!listener) return tl::unexpected(fmt::format("option -3 {}: {}", url, listener.error()));
    log::info(kComponent, fmt::format("listening on {} (port {})", url, (*listener)->local_port()));
    raw.push_back(listener->get());
    listeners.push_back(std::move(*listener));
  }
  reloader = std::make_unique<transport::SighupReloader>(io, std::move(raw));
  return {};
}

void Service::Impl::setup_metrics_collectors() {
  registry.add_collector([this](MetricWriter& w) {
    if (collector) {
      const auto s = collector->stats();
      for (const auto& [address, c] : s.exporters) {
        // Owns the labels: a MetricLabels made from a braced list is a view of a temporary.
        const std::vector<MetricLabel> l{{"exporter", address}};
        w.counter("flowsec_messages_received_total", "Flow messages received, per exporter", l,
                  c.messages);
        w.counter("flowsec_records_received_total", "Flow records received, per exporter", l,
                  c.records);
        w.counter("flowsec_bytes_received_total", "Message bytes received, per exporter", l,
                  c.bytes);
      }
      for (std::size_t i = 0; i < s.decode_errors.size(); ++i) {
        if (s.decode_errors[i] == 0) continue;
        const std::string reason(ipfix::describe(static_cast<ipfix::Errc>(i)));
        w.counter("flowsec_decode_errors_total", "Malformed messages, by reason",
                  {{"reason", reason}}, s.decode_errors[i]);
      }
      w.counter("flowsec_unknown_template_sets_total", "Data sets for an unknown template",
                s.unknown_template_sets);
      w.counter("flowsec_sequence_lost_total",
                "Sequence gaps: records (IPFIX, v5) or packets (v9, sFlow)", s.sequence_lost);
      w.counter("flowsec_sequence_out_of_order_total", "Late or duplicate messages",
                s.sequence_out_of_order);
      w.counter("flowsec_exporters_not_allowed_total", "Sessions outside --collector-allow",
                s.sessions_not_allowed);
      w.counter("flowsec_streams_truncated_total", "Streams that ended inside a message",
                s.streams_truncated);
    }
    for (const auto& l : listeners) {
      const auto s = l->stats();
      const std::string ep(l->endpoint().text);
      w.gauge("flowsec_sessions_active", "Open transport sessions", {{"listener", ep}},
              static_cast<double>(s.sessions_active));
      w.counter("flowsec_sessions_refused_total", "Sessions refused at the session cap",
                {{"listener", ep}}, s.sessions_refused_cap);
      w.counter("flowsec_kernel_drops_total", "Datagrams dropped by the kernel (SO_RXQ_OVFL)",
                {{"listener", ep}}, s.kernel_drops);
      w.counter("flowsec_tls_handshakes_total", "TLS/DTLS handshakes by result",
                {{"listener", ep}, {"result", "ok"}}, s.handshakes_ok);
      for (std::size_t i = 0; i < s.handshakes_refused.size(); ++i) {
        if (s.handshakes_refused[i] == 0) continue;
        const std::string reason(transport::describe(static_cast<transport::TlsRefusal>(i)));
        w.counter("flowsec_tls_handshakes_total", "TLS/DTLS handshakes by result",
                  {{"listener", ep}, {"result", "refused"}, {"reason", reason}},
                  s.handshakes_refused[i]);
      }
    }
    for (const auto& out : fanout.stats()) {
      const std::vector<MetricLabel> l{{"output", out.name}};  // owns the labels (see above)
      w.gauge("flowsec_output_queue_records", "Records waiting in an output's queue", l,
              static_cast<double>(out.stats.queued_records));
      w.counter("flowsec_output_records_written_total", "Records an output wrote", l,
                out.stats.sink.records_written);
      w.gauge("flowsec_output_pending_records",
              "Records an output holds for a peer that is away (ClickHouse)", l,
              static_cast<double>(out.stats.sink.records_pending));
      w.counter("flowsec_output_records_dropped_total",
                "Records an output dropped (queue full, write failed)", l,
                out.stats.records_dropped + out.stats.sink.records_failed);
    }
    if (export_sink != nullptr) {
      const auto s = export_sink->exporter().stats();
      w.counter("flowsec_export_records_total", "Records put into export messages",
                s.records_exported);
      w.counter("flowsec_export_records_not_exportable_total",
                "Records the export format cannot carry", s.records_not_exportable);
      for (const auto& c : s.collectors) {
        w.counter("flowsec_export_messages_total", "Messages handed to a collector's sender",
                  {{"collector", c.endpoint}}, c.messages);
        w.gauge("flowsec_export_connected", "1 when the collector's connection is up",
                {{"collector", c.endpoint}}, c.connected ? 1.0 : 0.0);
      }
    }
    if (probe) probe->write_metrics(w);
  });
}

void Service::Impl::start_flush_timer() {
  // Records reach the outputs within 100 ms even at low rates.
  flush_timer.expires_after(std::chrono::milliseconds(100));
  flush_timer.async_wait([this](const std::error_code& ec) {
    if (ec) return;
    if (collector) collector->flush();
    start_flush_timer();
  });
}

void Service::Impl::start_stats_timer() {
  stats_timer.expires_after(std::chrono::seconds(5));
  stats_timer.async_wait([this](const std::error_code& ec) {
    if (ec) return;
    log_stats();
    start_stats_timer();
  });
}

void Service::Impl::log_stats() {
  std::vector<NamedValue> values;
  collector::CollectorStats cs;
  if (collector) {
    cs = collector->stats();
    values.push_back({"messages", cs.messages});
    values.push_back({"records", cs.records});
    values.push_back({"malformed", cs.messages_malformed});
    values.push_back({"seq_lost", cs.sequence_lost});
  }
  std::uint64_t kernel_drops = 0;
  for (const auto& l : listeners) kernel_drops += l->stats().kernel_drops;
  if (!listeners.empty()) values.push_back({"kernel_drops", kernel_drops});
  std::uint64_t written = 0;
  std::uint64_t dropped = 0;
  for (const auto& out : fanout.stats()) {
    written += out.stats.sink.records_written;
    dropped += out.stats.records_dropped + out.stats.sink.records_failed;
  }
  values.push_back({"written", written});
  values.push_back({"output_drops", dropped});
  if (probe) probe->stats_values(values);
  log::info(kComponent, stats_line.format(values, std::chrono::steady_clock::now()));
}

void Service::Impl::replay() {
  std::uint64_t records = 0;
  auto stats = ipfix::read_ipfix_file(replay_file, [&](ipfix::RecordBatch& batch) {
    records += batch.size();
    fanout.publish(std::make_shared<const ipfix::RecordBatch>(std::move(batch)));
  });
  if (!stats) {
    log::error(kComponent, fmt::format("{}: {}", replay_file, stats.error().message()));
  } else {
    log::info(kComponent, fmt::format("{}: {} messages, {} records replayed", replay_file,
                                      stats->messages, records));
  }
}

int Service::Impl::shutdown() {
  // Inputs first, on the io thread, then whatever the collector still holds.
  std::promise<void> inputs_closed;
  asio::post(io, [&] {
    for (auto& l : listeners) l->close();
    if (collector) collector->flush();
    if (reloader) reloader->stop();
    stop_signals.cancel();
    flush_timer.cancel();
    stats_timer.cancel();
    inputs_closed.set_value();
  });
  inputs_closed.get_future().wait();
  // Every output drains its queue; the export flushes, sends close_notify and reports;
  // false when an output did not finish in time or could not deliver (Sink::delivered).
  const bool closed =
      fanout.close(std::chrono::seconds(options.shutdown_timeout) + std::chrono::seconds(2));
  if (options.verbose >= 1) log_stats();
  std::promise<void> server_closed;
  asio::post(io, [&] {
    if (metrics_server) metrics_server->close();
    server_closed.set_value();
  });
  server_closed.get_future().wait();
  work.reset();
  io.stop();
  io_thread.join();
  if (!closed) {
    log::error(kComponent, "shutdown: not everything was delivered (see the lines above)");
    return 1;
  }
  return 0;
}

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Service::~Service() = default;

Expected<std::unique_ptr<Service>, std::string> Service::create(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (auto ok = impl->setup(); !ok) {
    impl->close_unused_outputs();
    return tl::unexpected(ok.error());
  }
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

int Service::run() {
  Impl& s = *impl_;
  s.stop_signals.async_wait([&s](const std::error_code& ec, int signo) {
    if (ec) return;
    log::info(kComponent, fmt::format("signal {}: shutting down", signo));
    s.request_stop();
  });
  s.start_flush_timer();
  if (s.options.verbose >= 1) s.start_stats_timer();
  s.io_thread = std::thread([&s] { s.io.run(); });

  std::shared_future<void> stop = s.stop_requested.get_future().share();
  if (!s.replay_file.empty()) {
    s.replay();
    s.request_stop();
  } else if (s.probe) {
    // Ends at the end of a file input, or when a signal stops the capture.
    std::thread watcher([&s, stop] {
      stop.wait();
      s.probe->stop();
    });
    s.probe->run();
    s.request_stop();
    watcher.join();
  }
  stop.wait();
  return s.shutdown();
}

}  // namespace flowsec::app
