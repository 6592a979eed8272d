// Unit tests of --metrics without sockets (app/metrics_server.hpp): the [ADDR:]PORT
// argument of SPEC §2, request framing with its size cap, and the HTTP responses
// (RFC 9110/9112 status codes, Prometheus text format 0.0.4 content type).
#include "app/metrics_server.hpp"

#include <gtest/gtest.h>

#include <string>

namespace flowsec::app {
namespace {

TEST(ParseMetricsAddress, PortAloneListensEverywhere) {
  const auto a = parse_metrics_address("9100");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->host, "");
  EXPECT_EQ(a->port, 9100);
  EXPECT_EQ(a->text, "9100");
}

TEST(ParseMetricsAddress, AddressAndPort) {
  auto a = parse_metrics_address("127.0.0.1:9100");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9100);

  a = parse_metrics_address("[::1]:65535");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 65535);

  a = parse_metrics_address("[2001:db8::7]:1");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->host, "2001:db8::7");
  EXPECT_EQ(a->port, 1);

  a = parse_metrics_address("localhost:9100");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->host, "127.0.0.1");
}

TEST(ParseMetricsAddress, BadArgumentsAreOneLineNamingThem) {
  for (const char* bad : {"",
                          "0",
                          "65536",
                          "99999999",
                          "-1",
                          "+80",
                          "9100x",
                          "abc",
                          "127.0.0.1:",
                          ":9100",
                          "127.0.0.1:0",
                          "300.1.1.1:9100",
                          "example.com:9100",
                          "::1:9100",
                          "[::1]",
                          "[::1]9100",
                          "[::1:9100",
                          "[127.0.0.1]:9100",
                          "[nonsense]:80",
                          "127.0.0.1:9100:1"}) {
    const auto a = parse_metrics_address(bad);
    ASSERT_FALSE(a) << "accepted '" << bad << "'";
    EXPECT_NE(a.error().find("--metrics '" + std::string(bad) + "'"), std::string::npos)
        << a.error();
    EXPECT_EQ(a.error().find('\n'), std::string::npos) << a.error();
  }
}

TEST(RequestState, CompleteAtTheEmptyLine) {
  EXPECT_EQ(request_state(""), RequestState::incomplete);
  EXPECT_EQ(request_state("GET /metrics HTTP/1.1\r\nHost: x\r\n"), RequestState::incomplete);
  EXPECT_EQ(request_state("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), RequestState::complete);
  EXPECT_EQ(request_state("GET /metrics HTTP/1.0\n\n"), RequestState::complete);
}

TEST(RequestState, CapsTheRequestHead) {
  const std::string big = "GET /metrics HTTP/1.1\r\nX: " + std::string(kMaxRequestBytes, 'a');
  EXPECT_EQ(request_state(big), RequestState::too_large);
  EXPECT_EQ(request_state(big + "\r\n\r\n"), RequestState::too_large);
  // Just under the cap is fine.
  std::string fits = "GET /metrics HTTP/1.1\r\nX: ";
  fits += std::string(kMaxRequestBytes - fits.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), kMaxRequestBytes);
  EXPECT_EQ(request_state(fits), RequestState::complete);
  EXPECT_NE(http_too_large_response().find("HTTP/1.1 431 "), std::string::npos);
}

struct Response {
  std::string status_line;
  std::string headers;
  std::string body;
};
Response split(const std::string& r) {
  const auto eol = r.find("\r\n");
  const auto end = r.find("\r\n\r\n");
  if (eol == std::string::npos || end == std::string::npos) return {r, "", ""};
  return {r.substr(0, eol), r.substr(eol + 2, end - eol), r.substr(end + 4)};
}

class HttpResponse : public testing::Test {
 protected:
  HttpResponse() {
    registry_.add_collector([](MetricWriter& w) {
      w.counter("flowsec_records_received_total", "Records.", {{"exporter", "10.0.0.1"}}, 42);
    });
  }
  MetricsRegistry registry_;
};

TEST_F(HttpResponse, GetMetricsServesTheRegistry) {
  const auto r =
      split(http_response("GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", registry_));
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_NE(r.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos)
      << r.headers;
  EXPECT_NE(r.headers.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(r.headers.find("Content-Length: " + std::to_string(r.body.size()) + "\r\n"),
            std::string::npos)
      << r.headers;
  EXPECT_EQ(r.body, registry_.collect());
  EXPECT_NE(r.body.find("flowsec_records_received_total{exporter=\"10.0.0.1\"} 42\n"),
            std::string::npos);
}

TEST_F(HttpResponse, QueryStringIsIgnored) {
  const auto r = split(http_response("GET /metrics?x=1 HTTP/1.0\n\n", registry_));
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_FALSE(r.body.empty());
}

TEST_F(HttpResponse, HeadGivesHeadersOnly) {
  const auto r = split(http_response("HEAD /metrics HTTP/1.1\r\n\r\n", registry_));
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.body, "");
  EXPECT_NE(r.headers.find("Content-Length: " + std::to_string(registry_.collect().size())),
            std::string::npos);
}

TEST_F(HttpResponse, OtherPathsAre404) {
  for (const char* path : {"/", "/metricsx", "/metrics/", "/favicon.ico", "*"}) {
    const auto r =
        split(http_response("GET " + std::string(path) + " HTTP/1.1\r\n\r\n", registry_));
    EXPECT_EQ(r.status_line, "HTTP/1.1 404 Not Found") << path;
    EXPECT_EQ(r.body.find("flowsec_records"), std::string::npos);
  }
}

TEST_F(HttpResponse, OtherMethodsAre405) {
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "get"}) {
    const auto r =
        split(http_response(std::string(method) + " /metrics HTTP/1.1\r\n\r\n", registry_));
    EXPECT_EQ(r.status_line, "HTTP/1.1 405 Method Not Allowed") << method;
    EXPECT_NE(r.headers.find("Allow: GET, HEAD\r\n"), std::string::npos);
  }
}

TEST_F(HttpResponse, MalformedRequestLinesAre400) {
  for (const char* head :
       {"\r\n\r\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/2\r\n\r\n", "GET /metrics HTTP/1.1 extra\r\n\r\n",
        " GET /metrics HTTP/1.1\r\n\r\n", "\x16\x03\x01\x02\x05\x01\x01\x01\xfc\x03\x03\n\n"}) {
    const auto r = split(http_response(head, registry_));
    EXPECT_EQ(r.status_line, "HTTP/1.1 400 Bad Request") << head;
  }
}

}  // namespace
}  // namespace flowsec::app
