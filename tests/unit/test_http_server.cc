// The metrics page over HTTP: formats, gzip, HEAD, streamed large pages, and
// clients that leave in the middle of one.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "exporters/http_server.h"
#include "exporters/text_format.h"
#include "tests/unit/gunzip.h"
#include "tests/unit/http_server_test_util.h"

namespace sockeye::metrics {
namespace {

using test_util::FixedFamilies;
using test_util::Gunzip;
using test_util::HttpServerTest;
using test_util::LargeFamilies;
using test_util::SameBody;

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

}  // namespace
}  // namespace sockeye::metrics
