#include "app/decode_command.hpp"

#include <fmt/core.h>
#include <getopt.h>

#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "capture/pcap_file.hpp"
#include "common/clock.hpp"
#include "ipfix/decode.hpp"
#include "ipfix/ipfix_file.hpp"
#include "ipfix/render.hpp"
#include "packet/parser.hpp"

namespace flowsec::app {
namespace {

using namespace flowsec::ipfix;

struct Totals {
  std::uint64_t datagrams = 0;
  std::uint64_t messages = 0;
  std::uint64_t records = 0;
  std::uint64_t unknown_template_sets = 0;
  std::uint64_t counter_samples = 0;
  std::uint64_t not_flow = 0;  // UDP datagrams that are no flow protocol
  std::array<std::uint64_t, kErrcCount> errors{};
};

// Writes batches to stdout (or -w FILE) in the chosen format.
class Output {
 public:
  Output(char format, std::FILE* out)
      : out_(out), format_(format), renderer_(render_format(format)) {
    if (format_ == 'b') writer_ = std::make_unique<IpfixFileWriter>(out);
  }
  bool write(const RecordBatch& batch) {
    if (batch.empty()) return true;
    if (writer_) return writer_->write(batch).has_value();
    text_.clear();
    renderer_.render(batch, text_);
    return std::fwrite(text_.data(), 1, text_.size(), out_) == text_.size();
  }
  bool finish() {
    if (writer_ && !writer_->finish()) return false;
    return std::fflush(out_) == 0;
  }

 private:
  static RenderFormat render_format(char f) {
    if (f == 'j') return RenderFormat::json_lines;
    if (f == 'c') return RenderFormat::csv;
    return RenderFormat::text;
  }
  std::FILE* out_;
  char format_;
  RecordRenderer renderer_;
  std::unique_ptr<IpfixFileWriter> writer_;
  std::string text_;
};

// One collector-like session per exporter address and port.
struct ExporterSession {
  explicit ExporterSession(const Clock& clock) : templates(TransportKind::datagram, clock) {}
  TemplateStore templates;
};

bool is_pcap(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  std::array<unsigned char, 4> m{};
  const bool got = std::fread(m.data(), 1, 4, f) == 4;
  std::fclose(f);
  if (!got) return false;
  const std::uint32_t magic =
      (std::uint32_t{m[0]} << 24) | (std::uint32_t{m[1]} << 16) | (std::uint32_t{m[2]} << 8) | m[3];
  return magic == 0xa1b2c3d4 || magic == 0xd4c3b2a1 || magic == 0xa1b23c4d || magic == 0x4d3cb2a1 ||
         magic == 0x0a0d0d0a;  // pcap (µs, ns), pcapng
}

bool decode_capture(const std::string& path, Output& out, Totals& totals) {
  auto file = capture::PcapFile::open(path);
  if (!file) {
    fmt::print(stderr, "flowsec decode: {}\n", file.error());
    return false;
  }
  ManualClock clock;  // template lifetimes follow the capture's own time
  std::map<std::pair<IpAddress, std::uint16_t>, std::unique_ptr<ExporterSession>> sessions;
  const packet::ParseOptions opts;
  std::vector<SflowInterfaceCounters> counters;
  std::uint64_t frame = 0;
  while (auto pkt = file->next()) {
    ++frame;
    clock.set(std::chrono::nanoseconds(pkt->timestamp_ns));
    auto view = packet::parse_packet(pkt->link_type, pkt->data, opts);
    if (!view || !view->is_ip() || view->protocol != 17 || !view->has_l4) continue;
    const auto payload_at = view->payload_offset;
    if (payload_at > pkt->data.size()) continue;
    auto payload = pkt->data.subspan(payload_at);
    if (payload.size() > view->l4_payload_length) payload = payload.first(view->l4_payload_length);
    ++totals.datagrams;

    const auto key = std::pair{view->src_ip(), view->src_port};
    auto& session = sessions[key];
    if (!session) session = std::make_unique<ExporterSession>(clock);
    RecordBatch batch;
    batch.exporter.address = key.first;
    batch.exporter.port = key.second;
    counters.clear();
    auto r = decode_any(payload, session->templates, batch, &counters);
    if (!r) {
      if (r.error().code == Errc::unsupported_version) {
        ++totals.not_flow;
        continue;
      }
      ++totals.errors[static_cast<std::size_t>(r.error().code)];
      fmt::print(stderr, "{}: frame {} from {}:{}: {} at offset {}\n", path, frame,
                 key.first.to_string(), key.second, describe(r.error().code), r.error().offset);
      continue;
    }
    ++totals.messages;
    totals.records += batch.size();
    totals.unknown_template_sets += r->unknown_template_sets;
    totals.counter_samples += r->counter_samples;
    if (!out.write(batch)) return false;
  }
  if (!file->error().empty()) {
    fmt::print(stderr, "flowsec decode: {}: {}\n", path, file->error());
    return false;
  }
  return true;
}

bool decode_ipfix_file(const std::string& path, Output& out, Totals& totals) {
  bool write_ok = true;
  auto stats = read_ipfix_file(path, [&](RecordBatch& batch) {
    totals.records += batch.size();
    write_ok = write_ok && out.write(batch);
  });
  if (!stats) {
    fmt::print(stderr, "flowsec decode: {}: {}\n", path, stats.error().message());
    return false;
  }
  totals.messages += stats->messages;
  totals.unknown_template_sets += stats->unknown_template_sets;
  if (stats->messages_dropped > 0) {
    totals.errors[static_cast<std::size_t>(stats->last_decode_error.code)] +=
        stats->messages_dropped;
    fmt::print(stderr, "{}: {} messages dropped, last: {} at file offset {}\n", path,
               stats->messages_dropped, describe(stats->last_decode_error.code),
               stats->last_decode_error_offset);
  }
  return write_ok;
}

void usage(std::FILE* to) {
  fmt::print(to,
             "usage: flowsec decode [-D t|j|c|b] [-w OUT] FILE...\n"
             "  FILE   pcap/pcapng capture of NetFlow v5/v9, IPFIX or sFlow v5 over UDP,\n"
             "         or an IPFIX file (RFC 5655)\n"
             "  -D     output format: t text (default), j JSON lines, c CSV, b IPFIX file\n"
             "  -w     write to OUT instead of standard output\n");
}

}  // namespace

int decode_command(int argc, char** argv) {
  char format = 't';
  std::string out_path;
  optind = 1;
  int c = 0;
  static const option kLong[] = {{"dump-format", required_argument, nullptr, 'D'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  while ((c = getopt_long(argc, argv, "D:w:h", kLong, nullptr)) != -1) {
    switch (c) {
      case 'D':
        if (std::string(optarg).size() != 1 ||
            std::string("tjcb").find(optarg[0]) == std::string::npos) {
          fmt::print(stderr, "flowsec decode: -D {}: format must be t, j, c or b\n", optarg);
          return 2;
        }
        format = optarg[0];
        break;
      case 'w':
        out_path = optarg;
        break;
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (optind >= argc) {
    usage(stderr);
    return 2;
  }
  std::FILE* out = stdout;
  if (!out_path.empty()) {
    out = std::fopen(out_path.c_str(), "wb");
    if (out == nullptr) {
      fmt::print(stderr, "flowsec decode: -w {}: cannot open for writing\n", out_path);
      return 1;
    }
  } else if (format == 'b' && isatty(fileno(stdout))) {
    fmt::print(stderr, "flowsec decode: -D b writes binary IPFIX: give -w FILE or redirect\n");
    return 2;
  }
  Output output(format, out);
  Totals totals;
  bool ok = true;
  for (int i = optind; i < argc; ++i) {
    const std::string path = argv[i];
    ok = (is_pcap(path) ? decode_capture(path, output, totals)
                        : decode_ipfix_file(path, output, totals)) &&
         ok;
  }
  ok = output.finish() && ok;
  if (out != stdout) std::fclose(out);

  std::uint64_t errors = 0;
  for (auto n : totals.errors) errors += n;
  fmt::print(stderr,
             "flowsec decode: {} datagrams, {} messages, {} records, {} unknown-template sets, "
             "{} sFlow counter samples, {} malformed messages, {} non-flow datagrams\n",
             totals.datagrams, totals.messages, totals.records, totals.unknown_template_sets,
             totals.counter_samples, errors, totals.not_flow);
  for (std::size_t i = 0; i < kErrcCount; ++i) {
    if (totals.errors[i] > 0) {
      fmt::print(stderr, "  {}: {}\n", describe(static_cast<Errc>(i)), totals.errors[i]);
    }
  }
  return ok ? 0 : 1;
}

}  // namespace flowsec::app
