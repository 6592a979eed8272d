// Endpoint URL grammar of SPEC §2: every accepted form and every error, for export (-n)
// and listen (-3). Errors must be one line that names the argument.
#include "transport/endpoint.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace flowsec::transport {
namespace {

Endpoint ok_export(const std::string& arg) {
  auto r = parse_export_endpoint(arg);
  EXPECT_TRUE(r.has_value()) << arg << ": " << (r ? "" : r.error());
  return r ? *r : Endpoint{};
}

Endpoint ok_listen(const std::string& arg) {
  auto r = parse_listen_endpoint(arg);
  EXPECT_TRUE(r.has_value()) << arg << ": " << (r ? "" : r.error());
  return r ? *r : Endpoint{};
}

// The error, checked to name the argument and to be a single line.
std::string export_error(const std::string& arg) {
  auto r = parse_export_endpoint(arg);
  EXPECT_FALSE(r.has_value()) << arg << " was accepted";
  if (r) return {};
  EXPECT_NE(r.error().find("endpoint \"" + arg + "\": "), std::string::npos) << r.error();
  EXPECT_EQ(r.error().find('\n'), std::string::npos) << r.error();
  return r.error();
}

std::string listen_error(const std::string& arg) {
  auto r = parse_listen_endpoint(arg);
  EXPECT_FALSE(r.has_value()) << arg << " was accepted";
  if (r) return {};
  EXPECT_NE(r.error().find("endpoint \"" + arg + "\": "), std::string::npos) << r.error();
  EXPECT_EQ(r.error().find('\n'), std::string::npos) << r.error();
  return r.error();
}

MATCHER_P(Mentions, text, "") {
  return arg.find(text) != std::string::npos;
}

TEST(SchemeTest, NamesAndKinds) {
  EXPECT_EQ(to_string(Scheme::udp), "udp");
  EXPECT_EQ(to_string(Scheme::tcp), "tcp");
  EXPECT_EQ(to_string(Scheme::tls), "tls");
  EXPECT_EQ(to_string(Scheme::dtls), "dtls");
  EXPECT_EQ(to_string(Scheme::sctp), "sctp");
  EXPECT_TRUE(is_stream(Scheme::tcp));
  EXPECT_TRUE(is_stream(Scheme::tls));
  EXPECT_TRUE(is_stream(Scheme::sctp));
  EXPECT_FALSE(is_stream(Scheme::udp));
  EXPECT_FALSE(is_stream(Scheme::dtls));
  EXPECT_TRUE(is_secure(Scheme::tls));
  EXPECT_TRUE(is_secure(Scheme::dtls));
  EXPECT_FALSE(is_secure(Scheme::tcp));
}

// ---- export (-n) ----

TEST(ExportEndpointTest, EverySchemeWithAName) {
  const std::pair<const char*, Scheme> cases[] = {{"udp", Scheme::udp},
                                                  {"tcp", Scheme::tcp},
                                                  {"tls", Scheme::tls},
                                                  {"dtls", Scheme::dtls},
                                                  {"sctp", Scheme::sctp}};
  for (const auto& [name, scheme] : cases) {
    const std::string arg = std::string(name) + "://collector.example.org:2055";
    const Endpoint e = ok_export(arg);
    EXPECT_EQ(e.scheme, scheme) << arg;
    EXPECT_EQ(e.host, "collector.example.org");
    EXPECT_EQ(e.port, 2055);
    EXPECT_EQ(e.text, arg);
  }
}

TEST(ExportEndpointTest, BareHostPortIsUdp) {
  const Endpoint e = ok_export("127.0.0.1:2055");
  EXPECT_EQ(e, (Endpoint{Scheme::udp, "127.0.0.1", 2055, "127.0.0.1:2055"}));
  const Endpoint n = ok_export("collector:4739");
  EXPECT_EQ(n.scheme, Scheme::udp);
  EXPECT_EQ(n.host, "collector");
  EXPECT_EQ(n.port, 4739);
}

TEST(ExportEndpointTest, BracketedIpv6) {
  const Endpoint e = ok_export("tls://[2001:db8::1]:4740");
  EXPECT_EQ(e.scheme, Scheme::tls);
  EXPECT_EQ(e.host, "2001:db8::1");  // without brackets
  EXPECT_EQ(e.port, 4740);
  EXPECT_EQ(ok_export("[::1]:2055").host, "::1");
  EXPECT_EQ(ok_export("[::1]:2055").scheme, Scheme::udp);
  EXPECT_EQ(ok_export("dtls://[::ffff:192.0.2.1]:4740").host, "::ffff:192.0.2.1");
}

TEST(ExportEndpointTest, SchemeIsCaseInsensitive) {
  EXPECT_EQ(ok_export("TLS://h:1").scheme, Scheme::tls);  // RFC 3986 §3.1
  EXPECT_EQ(ok_export("Dtls://h:1").scheme, Scheme::dtls);
}

TEST(ExportEndpointTest, PortLimits) {
  EXPECT_EQ(ok_export("h:1").port, 1);
  EXPECT_EQ(ok_export("h:65535").port, 65535);
  EXPECT_EQ(ok_export("h:00080").port, 80);
  EXPECT_THAT(export_error("tls://h:65536"), Mentions("out of range"));
  EXPECT_THAT(export_error("tls://h:99999999999999999999999"), Mentions("out of range"));
  EXPECT_THAT(export_error("tls://h:0"), Mentions("port 0"));
  EXPECT_THAT(export_error("tls://h:abc"), Mentions("\"abc\" is not a number"));
  EXPECT_THAT(export_error("tls://h:-1"), Mentions("not a number"));
  EXPECT_THAT(export_error("tls://h:+1"), Mentions("not a number"));
  EXPECT_THAT(export_error("tls://h:20x"), Mentions("not a number"));
}

TEST(ExportEndpointTest, HostNames) {
  EXPECT_EQ(ok_export("tcp://my-collector_1.example.org:9995").host, "my-collector_1.example.org");
  EXPECT_EQ(ok_export("tcp://localhost:9995").host, "localhost");
  EXPECT_THAT(export_error("tcp://user@host:9995"), Mentions("invalid character '@'"));
  EXPECT_THAT(export_error("tcp://ho%st:9995"), Mentions("invalid character '%'"));
  EXPECT_THAT(export_error("tcp://300.1.1.1:9995"), Mentions("not a valid IPv4 address"));
  EXPECT_THAT(export_error("tcp://1.2.3:9995"), Mentions("not a valid IPv4 address"));
}

TEST(ExportEndpointTest, UnknownScheme) {
  EXPECT_EQ(export_error("http://h:80"),
            "endpoint \"http://h:80\": unknown scheme \"http\" (expected udp, tcp, tls, dtls "
            "or sctp)");
  EXPECT_THAT(export_error("zmq://h:5556"), Mentions("unknown scheme \"zmq\""));
  EXPECT_THAT(export_error("://h:1"), Mentions("missing scheme"));
}

TEST(ExportEndpointTest, MissingPort) {
  EXPECT_EQ(export_error("tls://host"), "endpoint \"tls://host\": missing port");
  EXPECT_THAT(export_error("tls://host:"), Mentions("missing port"));
  EXPECT_THAT(export_error("host"), Mentions("missing port"));
  EXPECT_THAT(export_error("tls://[::1]"), Mentions("missing port"));
  EXPECT_THAT(export_error("tls://[::1]:"), Mentions("missing port"));
}

TEST(ExportEndpointTest, MissingOrEmptyHost) {
  EXPECT_THAT(export_error("tls://:2055"), Mentions("empty host"));
  EXPECT_THAT(export_error(":2055"), Mentions("empty host"));
  EXPECT_THAT(export_error("tls://[]:2055"), Mentions("empty host"));
  EXPECT_THAT(export_error("2055"), Mentions("missing host"));
  EXPECT_THAT(export_error("tls://"), Mentions("missing host"));
}

TEST(ExportEndpointTest, UnbalancedBrackets) {
  EXPECT_THAT(export_error("tls://[::1:2055"), Mentions("missing ']'"));
  EXPECT_THAT(export_error("tls://::1]:2055"), Mentions("unbalanced"));
  EXPECT_THAT(export_error("tls://[::1]]:2055"), Mentions("unbalanced"));
  EXPECT_THAT(export_error("tls://[[::1]:2055"), Mentions("unbalanced"));
  EXPECT_THAT(export_error("tls://h[1]:2055"), Mentions("unbalanced"));
}

TEST(ExportEndpointTest, BracketsOnlyForIpv6) {
  EXPECT_THAT(export_error("tls://[127.0.0.1]:2055"), Mentions("brackets are for IPv6"));
  EXPECT_THAT(export_error("tls://[localhost]:2055"), Mentions("is not an IPv6 address"));
  EXPECT_THAT(export_error("tls://[::1]2055"), Mentions("expected ':'"));
}

TEST(ExportEndpointTest, Ipv6WithoutBracketsIsAmbiguous) {
  const std::string e = export_error("a:b::1:2055");
  EXPECT_THAT(e, Mentions("ambiguous"));
  EXPECT_THAT(e, Mentions("[2001:db8::1]:2055"));  // tells how to write it
  EXPECT_THAT(export_error("tls://2001:db8::1:4740"), Mentions("brackets"));
  EXPECT_THAT(export_error("::1"), Mentions("ambiguous"));
}

TEST(ExportEndpointTest, Whitespace) {
  EXPECT_THAT(export_error(" tls://h:1"), Mentions("whitespace"));
  EXPECT_THAT(export_error("tls://h:1 "), Mentions("whitespace"));
  EXPECT_THAT(export_error("tls://h :1"), Mentions("whitespace"));
  // Control characters are shown escaped: the message stays one line.
  EXPECT_EQ(parse_export_endpoint("tls://h:1\t").error(),
            "endpoint \"tls://h:1\\t\": contains whitespace");
  EXPECT_EQ(parse_export_endpoint("tls://h:1\n").error(),
            "endpoint \"tls://h:1\\n\": contains whitespace");
  EXPECT_EQ(parse_export_endpoint(std::string("h:1\x01", 4)).error(),
            "endpoint \"h:1\\x01\": port \"1\\x01\" is not a number");
}

TEST(ExportEndpointTest, EmptyAndPaths) {
  EXPECT_THAT(export_error(""), Mentions("empty"));
  EXPECT_THAT(export_error("tls://h:2055/"), Mentions("no path"));
  EXPECT_THAT(export_error("tls://h:2055/x"), Mentions("\"/x\""));
  EXPECT_THAT(export_error("tls:/h:2055"), Mentions("no path"));
}

// ---- listen (-3, --collector-port) ----

TEST(ListenEndpointTest, BarePortIsUdpOnAllAddresses) {
  const Endpoint e = ok_listen("2055");
  EXPECT_EQ(e, (Endpoint{Scheme::udp, "", 2055, "2055"}));
}

TEST(ListenEndpointTest, SchemeAndPort) {
  const Endpoint e = ok_listen("tls://2055");
  EXPECT_EQ(e.scheme, Scheme::tls);
  EXPECT_TRUE(e.host.empty());
  EXPECT_EQ(e.port, 2055);
  EXPECT_EQ(ok_listen("sctp://4739").scheme, Scheme::sctp);
  EXPECT_EQ(ok_listen("dtls://4740").scheme, Scheme::dtls);
}

TEST(ListenEndpointTest, SchemeHostAndPort) {
  // nProbe's own example (SPEC §2).
  const Endpoint l = ok_listen("tls://localhost:2055");
  EXPECT_EQ(l, (Endpoint{Scheme::tls, "localhost", 2055, "tls://localhost:2055"}));
  const Endpoint v6 = ok_listen("udp://[::1]:2055");
  EXPECT_EQ(v6.scheme, Scheme::udp);
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 2055);
  const Endpoint any4 = ok_listen("tcp://0.0.0.0:4739");
  EXPECT_EQ(any4.host, "0.0.0.0");  // kept as written: IPv4 only, unlike an empty host
  EXPECT_EQ(any4.port, 4739);
  EXPECT_EQ(ok_listen("tcp://[::]:4739").host, "::");
  EXPECT_EQ(ok_listen("127.0.0.1:2055").scheme, Scheme::udp);  // bare HOST:PORT
}

TEST(ListenEndpointTest, PortZeroMeansAnyFreePort) {
  EXPECT_EQ(ok_listen("tcp://127.0.0.1:0").port, 0);
  EXPECT_EQ(ok_listen("0").port, 0);
}

TEST(ListenEndpointTest, Errors) {
  EXPECT_THAT(listen_error("tls://localhost"), Mentions("missing port"));
  EXPECT_THAT(listen_error("tls://"), Mentions("missing port"));
  EXPECT_THAT(listen_error("tls://localhost:"), Mentions("missing port"));
  EXPECT_THAT(listen_error("tls://65536"), Mentions("out of range"));
  EXPECT_THAT(listen_error("tls://h:70000"), Mentions("out of range"));
  EXPECT_THAT(listen_error("tls://h:x"), Mentions("not a number"));
  EXPECT_THAT(listen_error("tls://:2055"), Mentions("give just the port"));
  EXPECT_THAT(listen_error("foo://2055"), Mentions("unknown scheme \"foo\""));
  EXPECT_THAT(listen_error("udp://[::1:2055"), Mentions("missing ']'"));
  EXPECT_THAT(listen_error("udp://::1]:2055"), Mentions("unbalanced"));
  EXPECT_THAT(listen_error("udp://::1:2055"), Mentions("ambiguous"));
  EXPECT_THAT(listen_error("udp://[]:2055"), Mentions("empty host"));
  EXPECT_THAT(listen_error("tls:// 2055"), Mentions("whitespace"));
  EXPECT_THAT(listen_error(""), Mentions("empty"));
  EXPECT_THAT(listen_error("tls://2055/"), Mentions("no path"));
}

}  // namespace
}  // namespace flowsec::transport
