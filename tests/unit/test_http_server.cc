#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "exporters/http_server.h"
#include "exporters/text_format.h"
#include "tests/unit/gunzip.h"

namespace sockeye::metrics {
namespace {

using test_util::Gunzip;

std::vector<MetricFamily> FixedFamilies() {
  MetricFamily counter;
  counter.name = "test_requests_total";
  counter.help = "Requests.";
  counter.type = MetricType::kCounter;
  counter.samples = {{{{"code", "200"}}, 5}, {{{"code", "500"}}, 1}};

  MetricFamily histogram;
  histogram.name = "test_latency_seconds";
  histogram.help = "Latency.";
  histogram.type = MetricType::kHistogram;
  histogram.histograms.push_back({{{"pool", "a"}}, {0.1, 1}, {2, 3}, 2.25, 6});

  // Large enough that gzip clearly pays off.
  MetricFamily gauge;
  gauge.name = "test_backend_up";
  gauge.help = "Backend state.";
  gauge.type = MetricType::kGauge;
  for (int i = 0; i < 200; ++i)
    gauge.samples.push_back({{{"backend", "10.0.0." + std::to_string(i)}}, 1});
  return {counter, histogram, gauge};
}

// FixedFamilies plus 4,000 histogram series: ~2.7 MB of text, many times
// the size of one rendered piece, so the page is streamed in HTTP chunks.
std::vector<MetricFamily> LargeFamilies() {
  std::vector<MetricFamily> families = FixedFamilies();
  MetricFamily ttfb;
  ttfb.name = "test_backend_ttfb_seconds";
  ttfb.help = "Time to first byte.";
  ttfb.type = MetricType::kHistogram;
  for (int i = 0; i < 4000; ++i) {
    ttfb.histograms.push_back(
        {{{"backend", "10.2." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":80"}},
         {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5},
         {1, 2, 3, 4, 5, 6, 7, static_cast<uint64_t>(i)},
         0.125 * i,
         100});
  }
  families.push_back(std::move(ttfb));
  return families;
}

// EXPECT_EQ on megabytes would print all of them on a mismatch.
::testing::AssertionResult SameBody(const std::string& actual, const std::string& expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  size_t at = 0;
  while (at < actual.size() && at < expected.size() && actual[at] == expected[at]) ++at;
  return ::testing::AssertionFailure()
         << "bodies differ: " << actual.size() << " vs " << expected.size()
         << " bytes, first difference at " << at << ": \"" << actual.substr(at, 40) << "\" vs \""
         << expected.substr(at, 40) << "\"";
}

// A server on 127.0.0.1 with an ephemeral port, serving FixedFamilies().
class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}) {
    if (options.listen_address == HttpServerOptions().listen_address) {
      options.listen_address = "127.0.0.1:0";
    }
    if (options.version.empty()) options.version = "1.2.3-test";
    server_ = std::make_unique<MetricsHttpServer>(
        options, [this] { return gather_(); }, [this] { return health_reason_; });
    std::string error;
    ASSERT_TRUE(server_->Start(&error)) << error;
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_decompress(false);  // see the bytes on the wire
  }

  httplib::Result Get(const std::string& path, httplib::Headers headers = {}) {
    return client_->Get(path, headers);
  }

  std::function<std::vector<MetricFamily>()> gather_ = FixedFamilies;
  std::string health_reason_;
  std::unique_ptr<MetricsHttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpServerTest, ServesPrometheusTextByDefault) {
  StartServer();
  for (const httplib::Headers& headers :
       {httplib::Headers{}, httplib::Headers{{"Accept", "text/plain"}},
        httplib::Headers{{"Accept", "*/*"}, {"Accept-Encoding", "identity"}}}) {
    auto res = Get("/metrics", headers);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(res->get_header_value("Vary"), "Accept, Accept-Encoding");
    EXPECT_FALSE(res->has_header("Content-Encoding"));
    EXPECT_EQ(res->body, Serialize(FixedFamilies(), Format::kPrometheusText004));
  }
}

// The agent returns a scrape's memory to the kernel from this hook, so it
// must run once per metrics page, small or streamed, and not for other pages.
TEST_F(HttpServerTest, AfterScrapeRunsOncePerMetricsPage) {
  std::atomic<int> calls{0};
  HttpServerOptions options;
  options.after_scrape = [&calls] { ++calls; };
  StartServer(options);
  ASSERT_TRUE(Get("/metrics"));
  ASSERT_TRUE(Get("/healthz"));
  ASSERT_TRUE(Get("/"));
  EXPECT_EQ(calls.load(), 1);
  gather_ = LargeFamilies;
  auto res = Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_TRUE(res->has_header("Transfer-Encoding"));
  // Streamed: the provider is released after the last chunk went out,
  // which may be just after the client has it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (calls.load() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(HttpServerTest, ServesOpenMetricsWhenAsked) {
  StartServer();
  // What Prometheus 2.x sends.
  auto res =
      Get("/metrics", {{"Accept",
                        "application/openmetrics-text;version=1.0.0,application/"
                        "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,"
                        "*/*;q=0.1"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(res->body, Serialize(FixedFamilies(), Format::kOpenMetrics100));
  ASSERT_GE(res->body.size(), 6u);
  EXPECT_EQ(res->body.substr(res->body.size() - 6), "# EOF\n");
}

TEST_F(HttpServerTest, GzipsWhenAccepted) {
  StartServer();
  for (const char* accept_encoding : {"gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8"}) {
    auto res = Get("/metrics", {{"Accept-Encoding", accept_encoding}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    // Exactly one Content-Encoding: httplib must not compress again.
    EXPECT_EQ(res->get_header_value_count("Content-Encoding"), 1u) << accept_encoding;
    EXPECT_EQ(res->get_header_value("Content-Encoding"), "gzip");
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    const std::string text = Serialize(FixedFamilies(), Format::kPrometheusText004);
    EXPECT_LT(res->body.size(), text.size());
    EXPECT_EQ(Gunzip(res->body), text);
  }
  auto om =
      Get("/metrics", {{"Accept", "application/openmetrics-text"}, {"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(om);
  EXPECT_EQ(om->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(Gunzip(om->body), Serialize(FixedFamilies(), Format::kOpenMetrics100));
}

TEST_F(HttpServerTest, NoGzipWhenRefused) {
  StartServer();
  auto res = Get("/metrics", {{"Accept-Encoding", "gzip;q=0, br"}});
  ASSERT_TRUE(res);
  EXPECT_FALSE(res->has_header("Content-Encoding"));
  EXPECT_EQ(res->body, Serialize(FixedFamilies(), Format::kPrometheusText004));
}

TEST_F(HttpServerTest, EmptyGatherGivesEmptyBody) {
  gather_ = [] { return std::vector<MetricFamily>(); };
  StartServer();
  auto res = Get("/metrics", {{"Accept-Encoding", "br"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "");
  EXPECT_FALSE(res->has_header("Content-Encoding"));
  EXPECT_EQ(res->get_header_value("Content-Length"), "0");
}

TEST_F(HttpServerTest, HeadHasHeadersOnly) {
  StartServer();
  auto res = client_->Head("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "");
  EXPECT_EQ(res->get_header_value("Content-Length"),
            std::to_string(Serialize(FixedFamilies(), Format::kPrometheusText004).size()));
}

TEST_F(HttpServerTest, StreamsLargePagesInChunks) {
  gather_ = LargeFamilies;
  StartServer();
  const std::string text = Serialize(LargeFamilies(), Format::kPrometheusText004);
  ASSERT_GT(text.size(), 1u << 20);

  auto plain = Get("/metrics");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);
  EXPECT_EQ(plain->get_header_value("Transfer-Encoding"), "chunked");
  EXPECT_FALSE(plain->has_header("Content-Length"));
  EXPECT_FALSE(plain->has_header("Content-Encoding"));
  EXPECT_EQ(plain->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(plain->get_header_value("Vary"), "Accept, Accept-Encoding");
  EXPECT_TRUE(SameBody(plain->body, text));

  // httplib compresses streamed text/* bodies on its own unless kept from
  // it: the body must be our gzip, once, also when br is listed first.
  for (const char* accept_encoding : {"gzip", "br;q=1.0, gzip;q=0.8"}) {
    auto gz = Get("/metrics", {{"Accept-Encoding", accept_encoding}});
    ASSERT_TRUE(gz);
    EXPECT_EQ(gz->status, 200);
    EXPECT_EQ(gz->get_header_value("Transfer-Encoding"), "chunked");
    EXPECT_EQ(gz->get_header_value_count("Content-Encoding"), 1u) << accept_encoding;
    EXPECT_EQ(gz->get_header_value("Content-Encoding"), "gzip");
    EXPECT_LT(gz->body.size(), text.size() / 10);
    EXPECT_TRUE(SameBody(Gunzip(gz->body), text)) << accept_encoding;
  }
  // Encodings we do not do (or gzip refused): identity, never httplib's.
  for (const char* accept_encoding : {"br", "gzip;q=0, br", "identity"}) {
    auto res = Get("/metrics", {{"Accept-Encoding", accept_encoding}});
    ASSERT_TRUE(res);
    EXPECT_FALSE(res->has_header("Content-Encoding")) << accept_encoding;
    EXPECT_TRUE(SameBody(res->body, text)) << accept_encoding;
  }

  const std::string open_metrics = Serialize(LargeFamilies(), Format::kOpenMetrics100);
  auto om =
      Get("/metrics", {{"Accept", "application/openmetrics-text"}, {"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(om);
  EXPECT_EQ(om->get_header_value("Content-Type"),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  const std::string decoded = Gunzip(om->body);
  EXPECT_TRUE(SameBody(decoded, open_metrics));
  EXPECT_TRUE(decoded.ends_with("\n# EOF\n"));
}

TEST_F(HttpServerTest, HeadOfStreamedPageHasTheBodysLength) {
  gather_ = LargeFamilies;
  StartServer();
  auto head = client_->Head("/metrics");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
  EXPECT_FALSE(head->has_header("Transfer-Encoding"));
  EXPECT_EQ(head->get_header_value("Content-Length"),
            std::to_string(Serialize(LargeFamilies(), Format::kPrometheusText004).size()));

  auto head_gz = client_->Head("/metrics", {{"Accept-Encoding", "gzip"}});
  auto get_gz = Get("/metrics", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(head_gz);
  ASSERT_TRUE(get_gz);
  EXPECT_EQ(head_gz->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(head_gz->get_header_value("Content-Length"), std::to_string(get_gz->body.size()));
}

TEST_F(HttpServerTest, StreamedScrapesAreCounted) {
  gather_ = LargeFamilies;
  StartServer();
  ASSERT_TRUE(Get("/metrics"));
  ASSERT_TRUE(Get("/metrics", {{"Accept-Encoding", "gzip"}}));
  ASSERT_TRUE(Get("/metrics", {{"Accept", "application/openmetrics-text"}}));

  std::vector<MetricFamily> families;
  server_->stats_collector()->Collect(families);
  const std::string text = Serialize(families, Format::kPrometheusText004);
  EXPECT_NE(text.find("sockeye_scrapes_total{format=\"prometheus\"} 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sockeye_scrapes_total{format=\"openmetrics\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sockeye_http_requests_total{code=\"200\"} 3\n"), std::string::npos) << text;
  for (const auto& f : families) {
    if (f.name != "sockeye_scrape_duration_seconds") continue;
    ASSERT_EQ(f.samples.size(), 1u);
    EXPECT_GT(f.samples[0].value, 0);
    EXPECT_LT(f.samples[0].value, 5);
  }
}

TEST_F(HttpServerTest, ClientLeavingMidStreamDoesNotHurt) {
  gather_ = LargeFamilies;
  StartServer();
  for (int i = 0; i < 3; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    char buf[1024];
    EXPECT_GT(recv(fd, buf, sizeof(buf), 0), 0);
    close(fd);  // with most of the body unread
  }
  auto res = Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(SameBody(res->body, Serialize(LargeFamilies(), Format::kPrometheusText004)));
}

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
