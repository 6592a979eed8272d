#include "transport/endpoint.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/ip_address.hpp"

// SPEC §2 "Endpoint URLs". Every error is one line: endpoint "ARG": what is wrong.
namespace flowsec::transport {
namespace {

enum class Kind : std::uint8_t { export_, listen };

constexpr std::string_view kSchemeSeparator = "://";
constexpr std::uint32_t kMaxPort = 65535;

struct SchemeName {
  std::string_view name;
  Scheme scheme;
};
constexpr std::array<SchemeName, 5> kSchemes{{{"udp", Scheme::udp},
                                              {"tcp", Scheme::tcp},
                                              {"tls", Scheme::tls},
                                              {"dtls", Scheme::dtls},
                                              {"sctp", Scheme::sctp}}};

// The argument as given, with control characters escaped so the message stays one line.
std::string printable(std::string_view arg) {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string s;
  for (char c : arg) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      s += "\\n";
    } else if (c == '\t') {
      s += "\\t";
    } else if (c == '\r') {
      s += "\\r";
    } else if (u < 0x20 || u == 0x7f) {
      s += "\\x";
      s += kHex[u >> 4];
      s += kHex[u & 0xf];
    } else {
      s += c;
    }
  }
  return s;
}

std::string fail_text(std::string_view arg, std::string_view what) {
  std::string s = "endpoint \"";
  s += printable(arg);
  s += "\": ";
  s += printable(what);
  return s;
}

tl::unexpected<std::string> fail(std::string_view arg, std::string_view what) {
  return unexpected(fail_text(arg, what));
}

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// URL schemes are case-insensitive (RFC 3986 §3.1).
std::optional<Scheme> scheme_from(std::string_view name) {
  for (const auto& s : kSchemes) {
    if (s.name.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size() && same; ++i) same = lower(name[i]) == s.name[i];
    if (same) return s.scheme;
  }
  return std::nullopt;
}

Expected<std::uint16_t, std::string> parse_port(std::string_view arg, std::string_view text,
                                                Kind kind) {
  if (text.empty()) return fail(arg, "missing port");
  if (!all_digits(text)) {
    return fail(arg, "port \"" + std::string(text) + "\" is not a number");
  }
  std::uint32_t value = 0;
  for (char c : text) {
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
    if (value > kMaxPort) {
      return fail(arg, "port " + std::string(text) + " is out of range (1-65535)");
    }
  }
  // Port 0 means "any free port": useful to listen on (tests), meaningless to send to.
  if (value == 0 && kind == Kind::export_) return fail(arg, "port 0 is not a valid destination");
  return static_cast<std::uint16_t>(value);
}

// A host name (RFC 1123 §2.1 letters, digits, '-', '.'; '_' tolerated as resolvers do)
// or an IPv4 address. IPv6 arrives here only without brackets, which is refused.
Expected<void, std::string> check_host(std::string_view arg, std::string_view host) {
  if (host.empty()) return fail(arg, "empty host");
  bool digits_and_dots = true;
  for (char c : host) {
    const bool name_char =
        std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_';
    if (!name_char) {
      return fail(
          arg, std::string("invalid character '") + c + "' in host \"" + std::string(host) + "\"");
    }
    if (!is_digit(c) && c != '.') digits_and_dots = false;
  }
  if (digits_and_dots) {
    const auto ip = IpAddress::parse(host);
    if (!ip || ip->is_v6()) {
      return fail(arg, "\"" + std::string(host) + "\" is not a valid IPv4 address");
    }
  }
  return {};
}

Expected<Endpoint, std::string> parse(std::string_view arg, Kind kind) {
  if (arg.empty()) return fail(arg, "empty");
  for (char c : arg) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0) return fail(arg, "contains whitespace");
  }

  Endpoint ep;
  ep.text = std::string(arg);
  std::string_view rest = arg;
  if (const auto sep = arg.find(kSchemeSeparator); sep != std::string_view::npos) {
    const std::string_view name = arg.substr(0, sep);
    if (name.empty()) return fail(arg, "missing scheme before \"://\"");
    const auto scheme = scheme_from(name);
    if (!scheme) {
      return fail(arg, "unknown scheme \"" + std::string(name) +
                           "\" (expected udp, tcp, tls, dtls or sctp)");
    }
    ep.scheme = *scheme;
    rest = arg.substr(sep + kSchemeSeparator.size());
  }  // no scheme: udp (SPEC §2)

  if (rest.empty()) return fail(arg, kind == Kind::listen ? "missing port" : "missing host");
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    return fail(arg, "unexpected \"" + std::string(rest.substr(slash)) +
                         "\": no path allowed (SCHEME://HOST:PORT)");
  }

  std::string_view host;
  std::string_view port;
  bool have_host = true;
  if (rest.front() == '[') {
    // [IPv6]:PORT (RFC 3986 §3.2.2).
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return fail(arg, "unbalanced '[': missing ']'");
    host = rest.substr(1, close - 1);
    if (host.find_first_of("[]") != std::string_view::npos) {
      return fail(arg, "unbalanced '[' and ']'");
    }
    const std::string_view after = rest.substr(close + 1);
    if (after.find(']') != std::string_view::npos) return fail(arg, "unbalanced ']'");
    if (after.empty()) return fail(arg, "missing port");
    if (after.front() != ':') {
      return fail(arg, "expected ':' and a port after ']', got \"" + std::string(after) + "\"");
    }
    port = after.substr(1);
    if (host.empty()) return fail(arg, "empty host in '[]'");
    const auto ip = IpAddress::parse(host);
    if (!ip) return fail(arg, "\"" + std::string(host) + "\" is not an IPv6 address");
    if (!ip->is_v6()) {
      return fail(arg, "brackets are for IPv6 addresses; write " + std::string(host) + ":" +
                           std::string(port));
    }
  } else if (rest.find_first_of("[]") != std::string_view::npos) {
    return fail(arg, "unbalanced '[' and ']'");
  } else {
    const auto first = rest.find(':');
    const auto last = rest.rfind(':');
    if (first == std::string_view::npos) {
      if (kind == Kind::listen && all_digits(rest)) {
        have_host = false;  // PORT alone: all addresses
        port = rest;
      } else if (kind == Kind::export_ && all_digits(rest)) {
        return fail(arg, "missing host (export needs HOST:PORT)");
      } else {
        return fail(arg, "missing port");
      }
    } else if (first != last) {
      // "a:b::1:2055": where does the address end? RFC 3986 §3.2.2 brackets decide.
      return fail(arg,
                  "IPv6 address without brackets is ambiguous; write [ADDRESS]:PORT, e.g. "
                  "[2001:db8::1]:2055");
    } else {
      host = rest.substr(0, first);
      port = rest.substr(first + 1);
      if (host.empty()) {
        return fail(arg, kind == Kind::listen
                             ? "empty host before ':' (give just the port to listen on all "
                               "addresses)"
                             : "empty host");
      }
      if (auto ok = check_host(arg, host); !ok) return unexpected(std::move(ok.error()));
    }
  }

  auto p = parse_port(arg, port, kind);
  if (!p) return unexpected(std::move(p.error()));
  ep.port = *p;
  if (have_host) ep.host = std::string(host);
  return ep;
}

}  // namespace

std::string_view to_string(Scheme s) {
  for (const auto& n : kSchemes) {
    if (n.scheme == s) return n.name;
  }
  return "udp";
}

Expected<Endpoint, std::string> parse_export_endpoint(std::string_view arg) {
  return parse(arg, Kind::export_);
}

Expected<Endpoint, std::string> parse_listen_endpoint(std::string_view arg) {
  return parse(arg, Kind::listen);
}

}  // namespace flowsec::transport
