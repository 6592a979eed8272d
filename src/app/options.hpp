#pragma once
// The command line of SPEC §2: nProbe's option names, short and long forms, and
// a configuration file given as the only positional argument.
//
// Contract: parse_options() never exits or prints; it returns the options or one
// line naming the offending argument ("option -V: '7' is not 5, 9 or 10"),
// which the caller prints before exiting non-zero. Syntax only is checked here
// (numbers, ranges, formats, enumerations, a missing mode); the transport,
// template and TLS rules are checked where the endpoints and templates are
// built, with the same one-line errors.
//
// Configuration file (SPEC §2): one option per line, "--name=value",
// "--name value", "-x=value" or "-x value"; blank lines and lines starting
// with '#' are ignored. Options on the command line override the file's: a
// single-valued option given in both places takes the command line's value, and
// a repeatable one (-n, -3, --tls-peer, --collector-allow) given on the command
// line replaces the file's list. Order never matters otherwise (nProbe wants
// --tls-insecure before -n; flowsec does not).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace flowsec::app {

struct Options {
  // -i: interface, pcap/pcapng file, directory, "-" (stdin), IPFIX file for replay, or "none".
  std::string interface;
  std::string bpf_filter;                    // -f
  std::uint32_t snaplen = 1600;              // -s
  std::vector<std::string> collectors;       // -n (repeatable, comma lists); "none" leaves it empty
  bool all_collectors = false;               // -a
  std::vector<std::string> listen;           // -3 / --collector-port (repeatable)
  std::optional<int> flow_version;           // -V 5|9|10; default depends on the transport
  std::optional<std::string> flow_template;  // -T
  std::uint16_t template_id = 257;           // -U
  std::uint32_t lifetime_timeout = 120;      // -t, seconds
  std::uint32_t idle_timeout = 60;           // -d, seconds
  std::uint32_t max_flows = 1048576;         // -M
  std::uint8_t engine_type = 0;              // -E TYPE:ID
  std::uint32_t engine_id = 0;               // IPFIX observation domain
  std::string dump_path;                     // -P DIR, or "-" for standard output
  char dump_format = 't';                    // -D t|j|c|b
  std::uint32_t dump_frequency = 60;         // -F, seconds
  std::string tls_cert, tls_key, tls_ca;     // --tls-cert, --tls-priv-key, --tls-ca
  bool tls_insecure = false;                 // --tls-insecure
  std::vector<std::string> tls_peers;        // --tls-peer (repeatable)
  std::vector<std::string> collector_allow;  // --collector-allow CIDR,... (repeatable)
  std::string ntopng;                        // --ntopng / --zmq
  std::string zmq_key;                       // --zmq-encryption-key
  bool zmq_probe_mode = false;               // --zmq-probe-mode: connect to ntopng
  bool zmq_disable_compression = false;      // --zmq-disable-compression
  std::string clickhouse;                    // --clickhouse
  std::string metrics;                       // --metrics [ADDR:]PORT
  int verbose = 0;                           // -b 0|1|2
  std::string user;                          // -u
  std::string pid_file;                      // -g
  bool no_l7 = false;                        // --no-l7
  bool tunnel = false;                       // --tunnel
  std::uint64_t export_queue_size = 64ull << 20;  // --export-queue-size, bytes
  std::uint32_t max_message_size = 1400;          // --max-message-size (datagrams)
  std::uint32_t shutdown_timeout = 10;            // --shutdown-timeout, seconds
  std::uint32_t template_refresh = 60;            // --template-refresh, seconds (datagrams)
  std::uint32_t template_refresh_messages = 20;   // --template-refresh-messages
  std::uint32_t handshake_timeout = 10;           // --handshake-timeout, seconds
  std::uint32_t session_idle_timeout = 600;       // --session-idle-timeout, seconds
  std::uint32_t max_sessions = 4096;              // --max-sessions per listener
  std::uint64_t output_queue_records = 1u << 20;  // --output-queue-size, records per output
  std::string config_file;                        // the positional argument, if any
  bool help = false;                              // -h
  bool version = false;                           // -v
};

// argv[0] is the program name.
[[nodiscard]] Expected<Options, std::string> parse_options(int argc, char** argv);

// The usage text of -h.
[[nodiscard]] std::string usage_text();

}  // namespace flowsec::app
