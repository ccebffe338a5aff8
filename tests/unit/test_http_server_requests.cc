// The HTTP server's other pages and requests: health, landing page, errors,
// malformed requests, its own counters, start and stop, and negotiation.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "exporters/http_server.h"
#include "exporters/text_format.h"
#include "tests/unit/http_server_test_util.h"

namespace sockeye::metrics {
namespace {

using test_util::FixedFamilies;
using test_util::HttpServerTest;

TEST_F(HttpServerTest, Healthz) {
  StartServer();
  auto ok = Get("/healthz");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "ok\n");

  health_reason_ = "ring buffer reader stalled";
  auto bad = Get("/healthz");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 503);
  EXPECT_EQ(bad->body, "ring buffer reader stalled\n");
}

TEST_F(HttpServerTest, LandingPageLinksTelemetryPathAndHealth) {
  HttpServerOptions options;
  options.telemetry_path = "/custom/metrics";
  options.version = "0.1.0 <rev>";
  StartServer(options);
  auto res = Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(res->body.find("<a href=\"/custom/metrics\">"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("<a href=\"/healthz\">"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("0.1.0 &lt;rev&gt;"), std::string::npos) << res->body;

  auto metrics = Get("/custom/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  auto old_path = Get("/metrics");
  ASSERT_TRUE(old_path);
  EXPECT_EQ(old_path->status, 404);
}

TEST_F(HttpServerTest, UnknownPathIs404) {
  StartServer();
  auto res = Get("/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->body, "404 page not found\n");
  auto prefix = Get("/metricsx");
  ASSERT_TRUE(prefix);
  EXPECT_EQ(prefix->status, 404);
}

TEST_F(HttpServerTest, OtherMethodsAre405) {
  StartServer();
  const std::vector<std::function<httplib::Result()>> requests = {
      [&] { return client_->Post("/metrics"); }, [&] { return client_->Put("/metrics"); },
      [&] { return client_->Delete("/"); }, [&] { return client_->Options("/healthz"); },
      [&] { return client_->Post("/nope"); }};
  for (const auto& request : requests) {
    auto res = request();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 405);
    EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD");
    EXPECT_EQ(res->body, "405 method not allowed\n");
  }
}

TEST_F(HttpServerTest, GatherExceptionIs500AndServerSurvives) {
  bool fail = true;
  gather_ = [&fail]() -> std::vector<MetricFamily> {
    if (fail) throw std::runtime_error("boom");
    return FixedFamilies();
  };
  StartServer();
  auto res = Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(res->body, "500 internal server error\n");
  fail = false;
  auto again = Get("/metrics");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

// Sends raw bytes and returns the status line of the answer, or "" when
// the server sends nothing within a second. The write side stays open:
// httplib drops the response when it sees a half-closed connection.
std::string RawStatusLine(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "socket failed";
  timeval timeout{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    if (!request.empty()) (void)send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buf[4096];
    while (response.find("\r\n") == std::string::npos) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      response.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return response.substr(0, response.find("\r\n"));
}

TEST_F(HttpServerTest, MalformedRequestsDoNotHurt) {
  StartServer();
  struct Case {
    std::string request;
    std::string expected;  // status line; "*" = any or none
  };
  const std::vector<Case> cases = {
      {"GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET /metrics HTTP/9.9\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n", "HTTP/1.1 414 URI Too Long"},
      {"GET /metrics HTTP/1.1\r\nBroken header line\r\n\r\n", "*"},
      {std::string("\0\1\2\3\xff\xfe", 6), "*"},
      {"GET /metrics HTTP/1.1\r\n", "*"},  // never finished
      {"", "*"},
  };
  for (const auto& c : cases) {
    std::string status = RawStatusLine(server_->port(), c.request);
    if (c.expected == "*") {
      EXPECT_EQ(status.find("HTTP/1.1 5"), std::string::npos) << status;
    } else {
      EXPECT_EQ(status, c.expected) << c.request.substr(0, 40);
    }
  }
  auto res = Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, Serialize(FixedFamilies(), Format::kPrometheusText004));
}

TEST_F(HttpServerTest, StatsCollectorCountsScrapesAndResponses) {
  StartServer();
  ASSERT_TRUE(Get("/metrics"));
  ASSERT_TRUE(Get("/metrics", {{"Accept", "application/openmetrics-text"}}));
  ASSERT_TRUE(Get("/metrics"));
  ASSERT_TRUE(Get("/nope"));

  std::vector<MetricFamily> families;
  server_->stats_collector()->Collect(families);
  std::string text = Serialize(families, Format::kPrometheusText004);
  EXPECT_NE(text.find("# TYPE sockeye_scrape_duration_seconds gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sockeye_scrapes_total{format=\"prometheus\"} 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sockeye_scrapes_total{format=\"openmetrics\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sockeye_http_requests_total{code=\"200\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sockeye_http_requests_total{code=\"404\"} 1\n"), std::string::npos) << text;
  for (const auto& f : families) {
    if (f.name != "sockeye_scrape_duration_seconds") continue;
    ASSERT_EQ(f.samples.size(), 1u);
    EXPECT_GT(f.samples[0].value, 0);
    EXPECT_LT(f.samples[0].value, 5);
  }
}

TEST_F(HttpServerTest, StopIsIdempotentAndRestartable) {
  StartServer();
  server_->Stop();
  server_->Stop();
  EXPECT_FALSE(Get("/metrics"));
  std::string error;
  ASSERT_TRUE(server_->Start(&error)) << error;
  client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  auto res = Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_FALSE(server_->Start(&error));
  EXPECT_NE(error.find("already running"), std::string::npos) << error;
}

TEST(HttpServerStartTest, BadListenAddressNamesIt) {
  for (const char* address : {"256.1.1.1:80", "127.0.0.1:notaport", "127.0.0.1:65536", "::1:80",
                              "127.0.0.1", "[::1:80", "[nonsense]:80", "host name:80", ""}) {
    MetricsHttpServer server({address, "/metrics", "", {}}, nullptr, nullptr);
    std::string error;
    EXPECT_FALSE(server.Start(&error)) << address;
    EXPECT_NE(error.find(std::string("\"") + address + "\""), std::string::npos) << error;
  }
}

bool NonLocalBindAllowed() {
  std::ifstream in("/proc/sys/net/ipv4/ip_nonlocal_bind");
  int value = 0;
  return (in >> value) && value != 0;
}

TEST(HttpServerStartTest, UnavailableAddressNamesIt) {
  if (NonLocalBindAllowed()) GTEST_SKIP() << "net.ipv4.ip_nonlocal_bind is set";
  MetricsHttpServer server({"192.0.2.1:0", "/metrics", "", {}}, nullptr, nullptr);  // TEST-NET-1
  std::string error;
  EXPECT_FALSE(server.Start(&error));
  EXPECT_NE(error.find("\"192.0.2.1:0\""), std::string::npos) << error;
}

TEST(HttpServerStartTest, PortInUse) {
  MetricsHttpServer first({"127.0.0.1:0", "/metrics", "", {}}, nullptr, nullptr);
  std::string error;
  ASSERT_TRUE(first.Start(&error)) << error;
  const std::string address = "127.0.0.1:" + std::to_string(first.port());
  MetricsHttpServer second({address, "/metrics", "", {}}, nullptr, nullptr);
  EXPECT_FALSE(second.Start(&error));
  EXPECT_NE(error.find("\"" + address + "\""), std::string::npos) << error;
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
}

TEST(HttpServerStartTest, EmptyHostListensEverywhere) {
  MetricsHttpServer server(
      {":0", "/metrics", "", {}}, [] { return FixedFamilies(); }, nullptr);
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  httplib::Client v4("127.0.0.1", server.port());
  auto res = v4.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);

  // Dual-stack when the host has IPv6 loopback.
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  addr.sin6_port = htons(static_cast<uint16_t>(server.port()));
  const bool v6_ok =
      probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  if (probe >= 0) close(probe);
  if (!v6_ok) GTEST_SKIP() << "no IPv6 loopback; IPv4 checked";
  httplib::Client v6("::1", server.port());
  auto res6 = v6.Get("/healthz");
  ASSERT_TRUE(res6);
  EXPECT_EQ(res6->status, 200);
}

TEST(ListenAddressTest, Parses) {
  std::string host;
  int port = -1;
  std::string error;
  ASSERT_TRUE(ParseListenAddress(":19480", &host, &port, &error)) << error;
  EXPECT_EQ(host, "");
  EXPECT_EQ(port, 19480);
  ASSERT_TRUE(ParseListenAddress("127.0.0.1:19480", &host, &port, &error)) << error;
  EXPECT_EQ(host, "127.0.0.1");
  ASSERT_TRUE(ParseListenAddress("[::1]:19480", &host, &port, &error)) << error;
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 19480);
  ASSERT_TRUE(ParseListenAddress("0.0.0.0:9000", &host, &port, &error)) << error;
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 9000);
  ASSERT_TRUE(ParseListenAddress("localhost:0", &host, &port, &error)) << error;
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(port, 0);
  EXPECT_FALSE(ParseListenAddress("1.2.3.4:-1", &host, &port, &error));
  EXPECT_FALSE(ParseListenAddress("1.2.3.4:", &host, &port, &error));
  EXPECT_FALSE(ParseListenAddress("[]:80", &host, &port, &error));
}

TEST(NegotiationTest, Format) {
  EXPECT_EQ(NegotiateFormat(""), Format::kPrometheusText004);
  EXPECT_EQ(NegotiateFormat("*/*"), Format::kPrometheusText004);
  EXPECT_EQ(NegotiateFormat("text/plain;version=0.0.4"), Format::kPrometheusText004);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text"), Format::kOpenMetrics100);
  EXPECT_EQ(NegotiateFormat("Application/OpenMetrics-Text; version=1.0.0"),
            Format::kOpenMetrics100);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=0"), Format::kPrometheusText004);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=0.5,text/plain;q=0.9"),
            Format::kPrometheusText004);
  EXPECT_EQ(NegotiateFormat("text/plain;q=0.5, application/openmetrics-text ; q=0.5"),
            Format::kOpenMetrics100);
  EXPECT_EQ(NegotiateFormat("text/plain;version=0.0.4;q=0.3,application/openmetrics-text;q=0.4"),
            Format::kOpenMetrics100);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=bogus"), Format::kPrometheusText004);
}

TEST(NegotiationTest, Gzip) {
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("br, deflate"));
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("deflate, GZIP;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("x-gzip"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0.000, *"));
  EXPECT_FALSE(AcceptsGzip("*;q=0"));
}

}  // namespace
}  // namespace sockeye::metrics
