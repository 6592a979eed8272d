#include "app/options.hpp"

#include <fmt/core.h>

#include <charconv>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <span>
#include <string_view>

namespace flowsec::app {
namespace {

using Setter = std::function<Expected<void, std::string>(Options&, std::string_view)>;

struct OptionSpec {
  char short_name;  // 0 when the option has only a long name
  std::string_view long_name;
  bool takes_value;
  bool repeatable;  // a list: the command line replaces the configuration file's values
  Setter set;
};

Expected<std::uint64_t, std::string> parse_number(std::string_view text, std::uint64_t min,
                                                  std::uint64_t max) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
    return tl::unexpected(fmt::format("'{}' is not a number", text));
  }
  if (v < min || v > max) {
    return tl::unexpected(fmt::format("'{}' is outside {}..{}", text, min, max));
  }
  return v;
}

template <class T>
Setter number(T Options::*field, std::uint64_t min,
              std::uint64_t max = std::numeric_limits<T>::max()) {
  return [=](Options& o, std::string_view v) -> Expected<void, std::string> {
    auto n = parse_number(v, min, max);
    if (!n) return tl::unexpected(n.error());
    o.*field = static_cast<T>(*n);
    return {};
  };
}

Setter text(std::string Options::*field) {
  return [=](Options& o, std::string_view v) -> Expected<void, std::string> {
    if (v.empty()) return tl::unexpected(std::string("empty value"));
    o.*field = std::string(v);
    return {};
  };
}

Setter flag(bool Options::*field) {
  return [=](Options& o, std::string_view) -> Expected<void, std::string> {
    o.*field = true;
    return {};
  };
}

// Appends each comma-separated item; "none" (nProbe's -n none) adds nothing.
Setter list(std::vector<std::string> Options::*field) {
  return [=](Options& o, std::string_view v) -> Expected<void, std::string> {
    if (v == "none") return {};
    while (!v.empty()) {
      const auto comma = v.find(',');
      const auto item = v.substr(0, comma);
      if (item.empty()) return tl::unexpected(std::string("empty item in list"));
      (o.*field).emplace_back(item);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
      if (v.empty()) return tl::unexpected(std::string("empty item in list"));
    }
    return {};
  };
}

// Listen endpoints are not comma lists (an IPv6 host has none, but keep URLs whole).
Setter append(std::vector<std::string> Options::*field) {
  return [=](Options& o, std::string_view v) -> Expected<void, std::string> {
    if (v.empty()) return tl::unexpected(std::string("empty value"));
    (o.*field).emplace_back(v);
    return {};
  };
}

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> table = {
      {'i', "interface", true, false, text(&Options::interface)},
      {'f', "bpf-filter", true, false, text(&Options::bpf_filter)},
      {'s', "snaplen", true, false, number(&Options::snaplen, 64, 262144)},
      {'n', "collector", true, true, list(&Options::collectors)},
      {'a', "all-collectors", false, false, flag(&Options::all_collectors)},
      {'3', "collector-port", true, true, append(&Options::listen)},
      {'V', "flow-version", true, false,
       [](Options& o, std::string_view v) -> Expected<void, std::string> {
         if (v != "5" && v != "9" && v != "10") {
           return tl::unexpected(fmt::format("'{}' is not 5, 9 or 10", v));
         }
         o.flow_version = v == "5" ? 5 : v == "9" ? 9 : 10;
         return {};
       }},
      {'T', "flow-templ", true, false,
       [](Options& o, std::string_view v) -> Expected<void, std::string> {
         if (v.empty()) return tl::unexpected(std::string("empty template"));
         o.flow_template = std::string(v);
         return {};
       }},
      {'U', "flow-templ-id", true, false, number(&Options::template_id, 256, 65535)},
      {'t', "lifetime-timeout", true, false, number(&Options::lifetime_timeout, 1, 86400)},
      {'d', "idle-timeout", true, false, number(&Options::idle_timeout, 1, 86400)},
      {'M', "max-num-flows", true, false, number(&Options::max_flows, 1, 1u << 28)},
      {'E', "netflow-engine", true, false,
       [](Options& o, std::string_view v) -> Expected<void, std::string> {
         const auto colon = v.find(':');
         if (colon == std::string_view::npos) {
           return tl::unexpected(fmt::format("'{}' is not TYPE:ID", v));
         }
         auto type = parse_number(v.substr(0, colon), 0, 255);
         if (!type) return tl::unexpected("engine type " + type.error());
         auto id = parse_number(v.substr(colon + 1), 0, 0xffffffffu);
         if (!id) return tl::unexpected("engine id " + id.error());
         o.engine_type = static_cast<std::uint8_t>(*type);
         o.engine_id = static_cast<std::uint32_t>(*id);
         return {};
       }},
      {'P', "dump-path", true, false, text(&Options::dump_path)},
      {'D', "dump-format", true, false,
       [](Options& o, std::string_view v) -> Expected<void, std::string> {
         if (v.size() != 1 || std::string_view("tjcb").find(v[0]) == std::string_view::npos) {
           return tl::unexpected(fmt::format("'{}' is not t, j, c or b", v));
         }
         o.dump_format = v[0];
         return {};
       }},
      {'F', "dump-frequency", true, false, number(&Options::dump_frequency, 1, 86400)},
      {0, "tls-cert", true, false, text(&Options::tls_cert)},
      {0, "tls-priv-key", true, false, text(&Options::tls_key)},
      {0, "tls-ca", true, false, text(&Options::tls_ca)},
      {0, "tls-insecure", false, false, flag(&Options::tls_insecure)},
      {0, "tls-peer", true, true, append(&Options::tls_peers)},
      {0, "collector-allow", true, true, list(&Options::collector_allow)},
      {0, "ntopng", true, false, text(&Options::ntopng)},
      {0, "zmq", true, false, text(&Options::ntopng)},
      {0, "zmq-encryption-key", true, false, text(&Options::zmq_key)},
      {0, "zmq-probe-mode", false, false, flag(&Options::zmq_probe_mode)},
      {0, "zmq-disable-compression", false, false, flag(&Options::zmq_disable_compression)},
      {0, "clickhouse", true, false, text(&Options::clickhouse)},
      {0, "metrics", true, false, text(&Options::metrics)},
      {'b', "verbose", true, false, number(&Options::verbose, 0, 2)},
      {'u', "user", true, false, text(&Options::user)},
      {'g', "pid-file", true, false, text(&Options::pid_file)},
      {0, "no-l7", false, false, flag(&Options::no_l7)},
      {0, "tunnel", false, false, flag(&Options::tunnel)},
      {0, "export-queue-size", true, false,
       number(&Options::export_queue_size, 64 * 1024, std::uint64_t{1} << 40)},
      {0, "max-message-size", true, false, number(&Options::max_message_size, 256, 65535)},
      {0, "shutdown-timeout", true, false, number(&Options::shutdown_timeout, 0, 3600)},
      {0, "template-refresh", true, false, number(&Options::template_refresh, 1, 86400)},
      {0, "template-refresh-messages", true, false,
       number(&Options::template_refresh_messages, 1, 1u << 20)},
      {0, "handshake-timeout", true, false, number(&Options::handshake_timeout, 1, 3600)},
      {0, "session-idle-timeout", true, false,
       number(&Options::session_idle_timeout, 1, 7 * 86400)},
      {0, "max-sessions", true, false, number(&Options::max_sessions, 1, 1u << 20)},
      {0, "output-queue-size", true, false,
       number(&Options::output_queue_records, 1024, std::uint64_t{1} << 32)},
      {'h', "help", false, false, flag(&Options::help)},
      {'v', "version", false, false, flag(&Options::version)},
  };
  return table;
}

const OptionSpec* find_short(char c) {
  for (const auto& o : option_table()) {
    if (o.short_name == c) return &o;
  }
  return nullptr;
}

const OptionSpec* find_long(std::string_view name) {
  for (const auto& o : option_table()) {
    if (o.long_name == name) return &o;
  }
  return nullptr;
}

// Where a token came from, for error messages and for list overriding.
enum class Source : std::uint8_t { file, command_line };

struct Parser {
  Options& options;
  std::set<std::string_view> lists_from_command_line;
  std::vector<std::string> positionals;

  Expected<void, std::string> parse(std::span<const std::string> tokens, Source source,
                                    std::string_view where) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string& tok = tokens[i];
      if (tok.size() < 2 || tok[0] != '-') {
        positionals.push_back(tok);
        continue;
      }
      const OptionSpec* spec = nullptr;
      std::string shown;  // the option as written, for errors
      std::optional<std::string_view> value;
      if (tok[1] == '-') {
        std::string_view body = std::string_view(tok).substr(2);
        const auto eq = body.find('=');
        if (eq != std::string_view::npos) value = body.substr(eq + 1);
        const auto name = body.substr(0, eq);
        shown = fmt::format("--{}", name);
        spec = find_long(name);
      } else {
        shown = fmt::format("-{}", tok[1]);
        spec = find_short(tok[1]);
        if (tok.size() > 2) {
          // "-b=1" (configuration files) or "-ieth0" (getopt style).
          value = std::string_view(tok).substr(tok[2] == '=' ? 3 : 2);
        }
      }
      if (spec == nullptr) {
        return tl::unexpected(fmt::format("{}unknown option {}", where, shown));
      }
      if (!spec->takes_value && value) {
        return tl::unexpected(fmt::format("{}option {} takes no value", where, shown));
      }
      if (spec->takes_value && !value) {
        if (i + 1 >= tokens.size()) {
          return tl::unexpected(fmt::format("{}option {} needs a value", where, shown));
        }
        value = tokens[++i];
      }
      if (spec->repeatable && source == Source::command_line &&
          lists_from_command_line.insert(spec->long_name).second) {
        clear_list(*spec);
      }
      auto ok = spec->set(options, value.value_or(""));
      if (!ok) {
        return tl::unexpected(fmt::format("{}option {}: {}", where, shown, ok.error()));
      }
    }
    return {};
  }

  void clear_list(const OptionSpec& spec) {
    if (spec.long_name == "collector") options.collectors.clear();
    if (spec.long_name == "collector-port") options.listen.clear();
    if (spec.long_name == "tls-peer") options.tls_peers.clear();
    if (spec.long_name == "collector-allow") options.collector_allow.clear();
  }
};

// Splits one configuration line into tokens: "--name=value" stays whole, "--name value"
// becomes two tokens (the value is the rest of the line, so it may contain spaces).
std::vector<std::string> line_tokens(std::string_view line) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
      s.remove_suffix(1);
    }
    return s;
  };
  line = trim(line);
  if (line.empty() || line.front() == '#') return {};
  const auto eq = line.find('=');
  const auto space = line.find_first_of(" \t");
  if (space == std::string_view::npos || (eq != std::string_view::npos && eq < space)) {
    return {std::string(line)};
  }
  return {std::string(line.substr(0, space)), std::string(trim(line.substr(space)))};
}

}  // namespace

Expected<Options, std::string> parse_options(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);

  // First pass over the command line only to find the configuration file.
  Options probe_only;
  Parser first{probe_only, {}, {}};
  if (auto ok = first.parse(args, Source::command_line, ""); !ok) {
    return tl::unexpected(ok.error());
  }
  if (first.positionals.size() > 1) {
    return tl::unexpected(
        fmt::format("unexpected argument '{}' (only one configuration file may be given)",
                    first.positionals[1]));
  }

  Options options;
  Parser parser{options, {}, {}};
  if (!first.positionals.empty()) {
    options.config_file = first.positionals.front();
    std::ifstream in(options.config_file);
    if (!in) {
      return tl::unexpected(
          fmt::format("configuration file '{}': cannot be read", options.config_file));
    }
    std::string line;
    std::size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      const auto tokens = line_tokens(line);
      if (tokens.empty()) continue;
      const std::string where = fmt::format("{}:{}: ", options.config_file, line_no);
      if (tokens.front().empty() || tokens.front()[0] != '-') {
        return tl::unexpected(fmt::format("{}'{}' is not an option", where, tokens.front()));
      }
      if (auto ok = parser.parse(tokens, Source::file, where); !ok) {
        return tl::unexpected(ok.error());
      }
    }
    parser.positionals.clear();
  }
  if (auto ok = parser.parse(args, Source::command_line, ""); !ok) {
    return tl::unexpected(ok.error());
  }
  return options;
}

std::string usage_text() {
  return R"(usage: flowsec [OPTIONS] [CONFIG_FILE]
       flowsec decode [-D t|j|c|b] [-w OUT] FILE...

Modes (as in nProbe):
  probe      flowsec -i eth0 -n tls://collector.example.org:2055
  file       flowsec -i trace.pcap -n udp://127.0.0.1:2055
  collector  flowsec -i none -n none --collector-port tls://2055 --tls-cert c.pem
                     --tls-priv-key k.pem -P /var/lib/flowsec
  proxy      flowsec -i none --collector-port udp://2055 -n tls://central.example.org:2055
  replay     flowsec -i flows.ipfix -P -

Capture:
  -i, --interface IF|FILE|DIR|-|none   capture source (FILE.ipfix: replay an IPFIX file)
  -f, --bpf-filter EXPR                BPF filter
  -s, --snaplen N                      capture length (1600)
      --tunnel                         account the inner flow of GRE, IP-in-IP, VXLAN, GTP-U
      --no-l7                          no nDPI classification
Flows:
  -t, --lifetime-timeout S             active timeout (120)
  -d, --idle-timeout S                 idle timeout (60)
  -M, --max-num-flows N                flow cache capacity (1048576)
Export:
  -n, --collector URL                  [udp|tcp|tls|dtls|sctp]://HOST:PORT, repeatable; none
  -a, --all-collectors                 every message to every collector (default: round-robin)
  -V, --flow-version 5|9|10            9 over udp/dtls, 10 over tcp/tls/sctp
  -T, --flow-templ "%F1 %F2 ..."       fields (nProbe names); default nProbe's template
  -U, --flow-templ-id N                first template id (257)
  -E, --netflow-engine TYPE:ID         engine type and id (IPFIX observation domain) (0:0)
      --export-queue-size BYTES        per stream collector (64 MiB); oldest dropped, counted
      --max-message-size BYTES         datagram message size (1400)
      --template-refresh S             datagram template refresh period (60)
      --template-refresh-messages N    and every N messages (20)
      --shutdown-timeout S             time to deliver everything at exit (10)
Collection:
  -3, --collector-port URL             [udp|tcp|tls|dtls|sctp]://[HOST:]PORT or PORT, repeatable
      --collector-allow CIDR,...       accept only these exporters
      --handshake-timeout S            TLS/DTLS handshake limit (10)
      --session-idle-timeout S         idle session limit (600)
      --max-sessions N                 sessions per listener (4096)
Outputs:
  -P, --dump-path DIR|-                files under DIR, or standard output
  -D, --dump-format t|j|c|b            text, JSON lines, CSV, binary IPFIX (RFC 5655) (t)
  -F, --dump-frequency S               file rotation (60)
      --output-queue-size N            records queued per output (1048576); excess dropped
                                       and counted, except that a file waits for room
      --ntopng zmq://HOST:PORT         publish flows to ntopng over ZeroMQ (alias --zmq tcp://..)
      --zmq-probe-mode                 connect to ntopng instead of binding (probes behind NAT)
      --zmq-encryption-key KEY         ntopng's CURVE public key (Z85, 40 characters)
      --zmq-disable-compression        send ntopng plain JSON (default: zlib)
      --clickhouse URL                 http://[USER[:PASS]@]HOST:PORT/DB[?table=NAME]
TLS:
      --tls-cert FILE, --tls-priv-key FILE   own certificate and key
      --tls-ca FILE                    trust anchors; on a collector: require client certificates
      --tls-insecure                   exporter: accept any certificate (still encrypted)
      --tls-peer NAME                  collector: allow only these certificate names
Operation:
      --metrics [ADDR:]PORT            Prometheus metrics over HTTP
  -b, --verbose 0|1|2                  1: a stats line every 5 s; 2: debug
  -u, --user NAME                      drop privileges after opening sockets
  -g, --pid-file FILE                  write the process id
  -h, --help    -v, --version
A configuration file holds one option per line (--collector=tls://host:2055, -b=1, # comments);
the command line overrides it.
)";
}

}  // namespace flowsec::app
