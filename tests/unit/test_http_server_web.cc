// The metrics server with a web configuration file: Basic authentication on
// every path, the extra headers, TLS with client certificates through the
// same connection handling as plain HTTP, and reloads.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/unique_fd.h"
#include "exporters/http_server.h"
#include "tests/unit/http_server_test_util.h"
#include "tests/unit/web_config_test_util.h"

namespace sockeye::metrics {
namespace {

using test_util::Bcrypt;
using test_util::FixedFamilies;
using test_util::Identity;
using test_util::TempDir;
using ::testing::HasSubstr;

constexpr char kServerCertOnly[] =
    "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

class WebServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("ca.crt", ca_.CertPem());
    dir_.Write("server.crt", server_cert_.CertPem());
    dir_.Write("server.key", server_cert_.KeyPem());
    dir_.Write("client.crt", client_.CertPem());
    dir_.Write("client.key", client_.KeyPem());
    dir_.Write("stranger.crt", stranger_.CertPem());
    dir_.Write("stranger.key", stranger_.KeyPem());
  }

  void Start(const std::string& yaml) {
    HttpServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.web_config_file = dir_.Write("web.yml", yaml);
    server_ = std::make_unique<MetricsHttpServer>(options, FixedFamilies, [] { return ""; });
    std::string error;
    ASSERT_TRUE(server_->Start(&error)) << error;
  }

  std::unique_ptr<httplib::Client> Plain() {
    return std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  std::unique_ptr<httplib::SSLClient> Tls(const std::string& identity) {
    auto client = identity.empty()
                      ? std::make_unique<httplib::SSLClient>("127.0.0.1", server_->port())
                      : std::make_unique<httplib::SSLClient>("127.0.0.1", server_->port(),
                                                             dir_.Path(identity + ".crt"),
                                                             dir_.Path(identity + ".key"));
    client->set_ca_cert_path(dir_.Path("ca.crt"));
    client->enable_server_certificate_verification(true);
    return client;
  }

  double Rejected(const std::string& reason) {
    for (const MetricFamily& family : Stats()) {
      if (family.name != "sockeye_http_connections_rejected_total") continue;
      for (const auto& sample : family.samples) {
        if (sample.labels.at(0).value == reason) return sample.value;
      }
    }
    return -1;
  }
  double ReloadFailures() {
    for (const MetricFamily& family : Stats()) {
      if (family.name == "sockeye_web_config_reload_failures_total")
        return family.samples.at(0).value;
    }
    return -1;
  }
  std::vector<MetricFamily> Stats() {
    std::vector<MetricFamily> out;
    server_->stats_collector()->Collect(out);
    return out;
  }

  std::string TlsConfig(const std::string& auth = "RequireAndVerifyClientCert") {
    return "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
           "  client_auth_type: " +
           auth + "\n  client_ca_file: ca.crt\n";
  }

  TempDir dir_;
  Identity ca_{"test ca", nullptr, true};
  Identity server_cert_{"localhost", &ca_, false};
  Identity client_{"prometheus", &ca_, false};
  Identity stranger_{"stranger", nullptr, false};  // from no CA the server knows
  std::unique_ptr<MetricsHttpServer> server_;
};

TEST_F(WebServerTest, EveryPathNeedsCredentials) {
  Start("basic_auth_users:\n  prom: " + Bcrypt("scrape") +
        "\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n");
  auto client = Plain();
  for (const char* path : {"/metrics", "/", "/healthz", "/nope"}) {
    auto res = client->Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 401) << path;
    EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Basic") << path;
    EXPECT_EQ(res->get_header_value("X-Frame-Options"), "deny") << path;
    EXPECT_EQ(res->body.find("test_requests_total"), std::string::npos);
  }
  auto res = client->Post("/metrics", "x", "text/plain");  // before the method check
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);

  client->set_basic_auth("prom", "wrong");
  res = client->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);

  client->set_basic_auth("prom", "scrape");
  res = client->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->body, HasSubstr("test_requests_total"));
  EXPECT_EQ(res->get_header_value("X-Frame-Options"), "deny");
  EXPECT_FALSE(res->has_header("WWW-Authenticate"));
  for (const char* path : {"/", "/healthz"}) {
    res = client->Get(path);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << path;
  }
}

TEST_F(WebServerTest, TlsWithAVerifiedClientCertificate) {
  Start(TlsConfig() + "basic_auth_users:\n  prom: " + Bcrypt("scrape") + "\n");
  auto good = Tls("client");
  good->set_basic_auth("prom", "scrape");
  good->set_keep_alive(true);
  for (int i = 0; i < 3; ++i) {  // kept alive: back through the header reader
    auto res = good->Get("/metrics");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_THAT(res->body, HasSubstr("test_requests_total"));
  }
  good->set_basic_auth("prom", "wrong");
  auto res = good->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);

  const double handshakes_refused = Rejected("tls_handshake");
  auto stranger = Tls("stranger");
  stranger->set_basic_auth("prom", "scrape");
  EXPECT_FALSE(stranger->Get("/metrics"));
  auto anonymous = Tls("");
  anonymous->set_basic_auth("prom", "scrape");
  EXPECT_FALSE(anonymous->Get("/metrics"));
  auto plain = Plain();  // HTTP to the TLS port
  EXPECT_FALSE(plain->Get("/metrics"));
  EXPECT_EQ(Rejected("tls_handshake"), handshakes_refused + 3);
}

TEST_F(WebServerTest, ClientCertificatePolicies) {
  // RequireAnyClientCert takes any certificate, but not none.
  Start(TlsConfig("RequireAnyClientCert"));
  auto res = Tls("stranger")->Get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_FALSE(Tls("")->Get("/healthz"));
  server_.reset();

  // VerifyClientCertIfGiven: none is fine, a bad one is not.
  Start(TlsConfig("VerifyClientCertIfGiven"));
  res = Tls("")->Get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(Tls("client")->Get("/healthz"));
  EXPECT_FALSE(Tls("stranger")->Get("/healthz"));
}

TEST_F(WebServerTest, LargePagesStreamOverTls) {
  HttpServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.web_config_file = dir_.Write("web.yml", kServerCertOnly);
  server_ =
      std::make_unique<MetricsHttpServer>(options, test_util::LargeFamilies, [] { return ""; });
  std::string error;
  ASSERT_TRUE(server_->Start(&error)) << error;
  auto client = Tls("");
  client->set_decompress(false);
  auto res = client->Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_GT(res->body.size(), 2'000'000u);
  EXPECT_EQ(res->get_header_value("Transfer-Encoding"), "chunked");
}

TEST_F(WebServerTest, ReloadAppliesAGoodFileAndKeepsTheOldOneOtherwise) {
  Start("basic_auth_users:\n  prom: " + Bcrypt("old") + "\n");
  const std::string path = dir_.Path("web.yml");
  auto client = Plain();
  client->set_basic_auth("prom", "old");
  ASSERT_EQ(client->Get("/healthz")->status, 200);

  dir_.Write("web.yml", "basic_auth_users:\n  prom: not-a-hash\n");
  std::string error;
  EXPECT_FALSE(server_->ReloadWebConfig(path, &error));
  EXPECT_EQ(error, path +
                       ": basic_auth_users.prom: not a bcrypt hash (expected $2a$, $2b$ or "
                       "$2y$, e.g. from htpasswd -nBC 10) (line 2)");
  EXPECT_EQ(ReloadFailures(), 1);
  EXPECT_EQ(client->Get("/healthz")->status, 200);

  dir_.Write("web.yml", TlsConfig());
  EXPECT_FALSE(server_->ReloadWebConfig(path, &error));
  EXPECT_EQ(error, path + ": tls_server_config: turning TLS on needs a restart");
  EXPECT_EQ(ReloadFailures(), 2);
  EXPECT_EQ(client->Get("/healthz")->status, 200);

  dir_.Write("web.yml", "basic_auth_users:\n  prom: " + Bcrypt("new") + "\n");
  ASSERT_TRUE(server_->ReloadWebConfig(path, &error)) << error;
  EXPECT_EQ(client->Get("/healthz")->status, 401);
  client->set_basic_auth("prom", "new");
  EXPECT_EQ(client->Get("/healthz")->status, 200);

  ASSERT_TRUE(server_->ReloadWebConfig("", &error)) << error;  // the flag was dropped
  EXPECT_EQ(Plain()->Get("/healthz")->status, 200);
  EXPECT_EQ(ReloadFailures(), 2);
}

TEST_F(WebServerTest, TlsReloadTakesANewCertificateForNewConnections) {
  Start(kServerCertOnly);
  auto before = Tls("");
  before->set_keep_alive(true);
  ASSERT_TRUE(before->Get("/healthz"));

  // A certificate from another CA: clients that trust only the first CA
  // now refuse the server, which shows the new one is served.
  Identity other_ca{"other ca", nullptr, true};
  Identity other_server{"localhost", &other_ca, false};
  dir_.Write("server.crt", other_server.CertPem());
  dir_.Write("server.key", other_server.KeyPem());
  std::string error;
  ASSERT_TRUE(server_->ReloadWebConfig(dir_.Path("web.yml"), &error)) << error;
  EXPECT_FALSE(Tls("")->Get("/healthz"));
  EXPECT_TRUE(before->Get("/healthz"));  // its session was set up before
  dir_.Write("other-ca.crt", other_ca.CertPem());
  auto fresh = Tls("");
  fresh->set_ca_cert_path(dir_.Path("other-ca.crt"));
  EXPECT_TRUE(fresh->Get("/healthz"));
}

// A TCP connection from `source` that sends the first bytes of a TLS record
// and then nothing.
UniqueFd StalledHandshake(const std::string& source, int port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!fd.valid() || bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      connect(fd.get(), reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0 ||
      send(fd.get(), "\x16\x03\x01", 3, MSG_NOSIGNAL) != 3) {
    return UniqueFd();
  }
  return fd;
}

// The limits hold with TLS: stalled handshakes wait on the header reader,
// not on a worker, and are dropped at the header deadline.
TEST_F(WebServerTest, StalledHandshakesHoldNoWorkerAndExpire) {
  Start(kServerCertOnly);
  constexpr int kStalled = 200;
  std::vector<UniqueFd> stalled;
  for (int i = 0; i < kStalled; ++i) {
    // 20 addresses, 10 connections each: under the per-client cap.
    stalled.push_back(StalledHandshake("127.0.2." + std::to_string(1 + i / 10), server_->port()));
    ASSERT_TRUE(stalled.back().valid()) << i;
  }
  const auto start = std::chrono::steady_clock::now();
  auto res = Tls("")->Get("/healthz");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(took, std::chrono::seconds(1));

  const auto deadline = start + std::chrono::seconds(10);
  while (Rejected("header_timeout") < kStalled && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(Rejected("header_timeout"), kStalled);
  EXPECT_EQ(Rejected("tls_handshake"), 0);
}

TEST_F(WebServerTest, ABrokenFileAtStartNamesFileAndKey) {
  HttpServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.web_config_file = dir_.Write("web.yml", "tls_server_config:\n  min_version: TLS14\n");
  MetricsHttpServer server(options, FixedFamilies, [] { return ""; });
  std::string error;
  EXPECT_FALSE(server.Start(&error));
  EXPECT_EQ(error, dir_.Path("web.yml") +
                       ": tls_server_config.min_version: \"TLS14\" is not one of TLS10, TLS11, "
                       "TLS12, TLS13 (line 2)");
}

}  // namespace
}  // namespace sockeye::metrics
