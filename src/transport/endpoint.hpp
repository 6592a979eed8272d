#pragma once
// Endpoint URLs of SPEC §2, for export (-n, --collector) and listening
// (-3, --collector-port). Pure parsing; no name resolution here.
//
//   export:  [udp|tcp|tls|sctp|dtls]://HOST:PORT   bare HOST:PORT = udp
//            HOST: a name, an IPv4 address or [IPv6]
//   listen:  [udp|tcp|tls|sctp|dtls]://[HOST:]PORT bare PORT = udp on all addresses
//            HOST: an address ([IPv6] bracketed) or a name such as localhost
// Errors are one line that names the offending argument, for a start-up failure.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace flowsec::transport {

enum class Scheme : std::uint8_t { udp, tcp, tls, dtls, sctp };

[[nodiscard]] std::string_view to_string(Scheme s);
// Stream transports carry IPFIX messages back to back (RFC 7011 §10): tcp, tls, sctp.
[[nodiscard]] constexpr bool is_stream(Scheme s) {
  return s == Scheme::tcp || s == Scheme::tls || s == Scheme::sctp;
}
[[nodiscard]] constexpr bool is_secure(Scheme s) {
  return s == Scheme::tls || s == Scheme::dtls;
}

struct Endpoint {
  Scheme scheme = Scheme::udp;
  std::string host;  // without brackets; empty = all addresses (listen only)
  std::uint16_t port = 0;
  std::string text;  // the argument as given, for messages
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

[[nodiscard]] Expected<Endpoint, std::string> parse_export_endpoint(std::string_view arg);
[[nodiscard]] Expected<Endpoint, std::string> parse_listen_endpoint(std::string_view arg);

}  // namespace flowsec::transport
