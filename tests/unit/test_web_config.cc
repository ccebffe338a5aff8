// The --web.config.file reader: every key exporter-toolkit defines that
// sockeye honours, and every way a file can be wrong, each error naming the
// file and the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "exporters/tls_context.h"
#include "exporters/web_config.h"
#include "tests/unit/web_config_test_util.h"

namespace sockeye::metrics {
namespace {

using test_util::Bcrypt;
using test_util::Identity;
using test_util::TempDir;
using ::testing::HasSubstr;

class WebConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("server.crt", server_.CertPem());
    dir_.Write("server.key", server_.KeyPem());
    dir_.Write("ca.crt", ca_.CertPem());
    dir_.Write("other.key", other_.KeyPem());
  }

  std::optional<WebConfig> Parse(const std::string& yaml) {
    error_.clear();
    return ReadWebConfig(dir_.Write("web.yml", yaml), &error_);
  }
  // Fails the test unless `yaml` is refused with an error that starts with
  // the file and names `key`, and contains `problem`.
  void ExpectError(const std::string& yaml, const std::string& key, const std::string& problem) {
    SCOPED_TRACE(yaml);
    EXPECT_FALSE(Parse(yaml).has_value());
    EXPECT_EQ(error_.rfind(dir_.Path("web.yml") + ": ", 0), 0u) << error_;
    EXPECT_THAT(error_, HasSubstr(key + ": ")) << error_;
    EXPECT_THAT(error_, HasSubstr(problem));
    EXPECT_EQ(error_.find('\n'), std::string::npos) << "one line: " << error_;
  }

  TempDir dir_;
  Identity ca_{"test ca", nullptr, true};
  Identity server_{"localhost", &ca_, false};
  Identity other_{"other", nullptr, false};
  std::string error_;
};

TEST_F(WebConfigTest, AnEmptyFileChangesNothing) {
  auto config = Parse("");
  ASSERT_TRUE(config) << error_;
  EXPECT_FALSE(config->tls.enabled);
  EXPECT_TRUE(config->basic_auth_users.empty());
  EXPECT_TRUE(config->headers.empty());
  config = Parse("tls_server_config:\nhttp_server_config:\nbasic_auth_users:\n");
  ASSERT_TRUE(config) << error_;
  EXPECT_FALSE(config->tls.enabled);
}

TEST_F(WebConfigTest, ReadsEveryKey) {
  const std::string hash = Bcrypt("secret");
  auto config = Parse(
      "tls_server_config:\n"
      "  cert_file: server.crt\n"  // relative: to the file's directory
      "  key_file: " +
      dir_.Path("server.key") +
      "\n"
      "  client_auth_type: RequireAndVerifyClientCert\n"
      "  client_ca_file: ca.crt\n"
      "  min_version: TLS13\n"
      "  max_version: TLS13\n"
      "  prefer_server_cipher_suites: false\n"
      "http_server_config:\n"
      "  http2: true\n"
      "  headers:\n"
      "    Content-Security-Policy: \"default-src 'self'\"\n"
      "    Strict-Transport-Security: max-age=31536000\n"
      "    X-Content-Type-Options: nosniff\n"
      "    X-Frame-Options: SAMEORIGIN\n"
      "    X-XSS-Protection: \"1; mode=block\"\n"
      "basic_auth_users:\n"
      "  alice: " +
      hash +
      "\n"
      "  bob: '" +
      hash + "'\n");
  ASSERT_TRUE(config) << error_;
  EXPECT_TRUE(config->tls.enabled);
  EXPECT_EQ(config->tls.cert_file, dir_.Path("server.crt"));
  EXPECT_EQ(config->tls.key_file, dir_.Path("server.key"));
  EXPECT_EQ(config->tls.client_ca_file, dir_.Path("ca.crt"));
  EXPECT_EQ(config->tls.client_auth, ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(config->tls.min_version, TlsVersion::kTls13);
  EXPECT_EQ(config->tls.max_version, TlsVersion::kTls13);
  ASSERT_EQ(config->headers.size(), 5u);
  EXPECT_EQ(config->headers[0].first, "Content-Security-Policy");
  EXPECT_EQ(config->headers[0].second, "default-src 'self'");
  EXPECT_EQ(config->headers[3].second, "SAMEORIGIN");
  ASSERT_EQ(config->basic_auth_users.size(), 2u);
  EXPECT_EQ(config->basic_auth_users.at("alice"), hash);
  EXPECT_EQ(config->basic_auth_users.at("bob"), hash);

  std::string error;
  EXPECT_TRUE(MakeTlsContext(*config, &error)) << error;
}

TEST_F(WebConfigTest, DefaultsAsExporterToolkit) {
  auto config = Parse("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
  ASSERT_TRUE(config) << error_;
  EXPECT_TRUE(config->tls.enabled);
  EXPECT_EQ(config->tls.client_auth, ClientAuth::kNoClientCert);
  EXPECT_EQ(config->tls.min_version, TlsVersion::kTls12);
  EXPECT_EQ(config->tls.max_version, TlsVersion::kTls13);
  // A blank header is unset, as exporter-toolkit documents.
  config = Parse("http_server_config:\n  headers:\n    X-Frame-Options: ''\n");
  ASSERT_TRUE(config) << error_;
  EXPECT_TRUE(config->headers.empty());
}

TEST_F(WebConfigTest, EveryClientAuthType) {
  const std::string base = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
  const std::pair<const char*, ClientAuth> cases[] = {
      {"NoClientCert", ClientAuth::kNoClientCert},
      {"RequestClientCert", ClientAuth::kRequestClientCert},
      {"RequireAnyClientCert", ClientAuth::kRequireAnyClientCert},
      {"RequireClientCert", ClientAuth::kRequireAnyClientCert},  // the old name
      {"VerifyClientCertIfGiven", ClientAuth::kVerifyClientCertIfGiven},
      {"RequireAndVerifyClientCert", ClientAuth::kRequireAndVerifyClientCert},
  };
  for (const auto& [name, expected] : cases) {
    const bool verifies = expected == ClientAuth::kVerifyClientCertIfGiven ||
                          expected == ClientAuth::kRequireAndVerifyClientCert;
    const std::string ca = verifies ? "  client_ca_file: ca.crt\n" : "";
    auto config = Parse(base + "  client_auth_type: " + name + "\n" + ca);
    ASSERT_TRUE(config) << name << ": " << error_;
    EXPECT_EQ(config->tls.client_auth, expected) << name;
    std::string error;
    EXPECT_TRUE(MakeTlsContext(*config, &error)) << name << ": " << error;
  }
  // client_auth_type alone turns TLS on, and then the certificate is missing.
  ExpectError("tls_server_config:\n  client_auth_type: RequestClientCert\n",
              "tls_server_config.cert_file", "missing");
}

TEST_F(WebConfigTest, SyntaxAndStructureErrors) {
  ExpectError("tls_server_config: [\n", "not valid YAML", "line ");
  ExpectError("- a\n- b\n", "(top level)", "must be a mapping");
  ExpectError("tls_server_config: 3\n", "tls_server_config", "must be a mapping");
  ExpectError("basic_auth_users: [a]\n", "basic_auth_users", "must be a mapping");
  ExpectError("tls_config: {}\n", "tls_config", "unknown key");
  ExpectError("tls_server_config:\n  certfile: a\n", "tls_server_config.certfile", "unknown key");
  ExpectError("http_server_config:\n  header: {}\n", "http_server_config.header", "unknown key");
  ExpectError("basic_auth_users: {}\nbasic_auth_users: {}\n", "basic_auth_users", "given twice");
  ExpectError("tls_server_config:\n  cert_file: [a]\n", "tls_server_config.cert_file",
              "must be a string");
  ExpectError("http_server_config:\n  http2: maybe\n", "http_server_config.http2",
              "must be true or false");
}

// Found by tests/fuzz/fuzz_web_config.cc: yaml-cpp quoted a raw line break
// into its message, and a quoted key can hold one.
TEST_F(WebConfigTest, ErrorsStayOneLineWhateverTheFileHolds) {
  const char found[] = "tlsserver_config: {cert_file: a, key_file: .:S2 _serv\0\n\n\ntof\nigl";
  EXPECT_FALSE(Parse(std::string(found, sizeof(found) - 1)).has_value());
  EXPECT_THAT(error_, HasSubstr(": not valid YAML: line "));
  EXPECT_EQ(error_.find('\n'), std::string::npos) << error_;
  ExpectError("\"two\\nlines\": 1\n", "two\\nlines", "unknown key");
  ExpectError(std::string("\"nul\\0\": 1\n"), "nul\\x00", "unknown key");
}

TEST_F(WebConfigTest, KeysSockeyeDoesNotImplementAreRefused) {
  for (const std::string key :
       {"cert", "key", "client_ca", "client_allowed_sans", "cipher_suites", "curve_preferences"}) {
    ExpectError("tls_server_config:\n  " + key + ": x\n", "tls_server_config." + key,
                "not supported by sockeye");
  }
  ExpectError("rate_limit:\n  burst: 1\n", "rate_limit", "not supported by sockeye");
}

TEST_F(WebConfigTest, TlsErrors) {
  const std::string cert = "  cert_file: server.crt\n";
  const std::string key = "  key_file: server.key\n";
  ExpectError("tls_server_config:\n" + key, "tls_server_config.cert_file", "missing");
  ExpectError("tls_server_config:\n" + cert, "tls_server_config.key_file", "missing");
  ExpectError("tls_server_config:\n  cert_file: nope.crt\n" + key, "tls_server_config.cert_file",
              "No such file or directory");
  ExpectError("tls_server_config:\n" + cert + "  key_file: /nonexistent/k\n",
              "tls_server_config.key_file", "\"/nonexistent/k\": No such file");
  ExpectError("tls_server_config:\n" + cert + key + "  client_auth_type: RequireCert\n",
              "tls_server_config.client_auth_type", "\"RequireCert\" is not one of");
  ExpectError("tls_server_config:\n" + cert + key + "  client_ca_file: ca.crt\n",
              "tls_server_config.client_ca_file", "client_auth_type is NoClientCert");
  ExpectError("tls_server_config:\n" + cert + key + "  client_auth_type: VerifyClientCertIfGiven\n",
              "tls_server_config.client_ca_file", "missing");
  ExpectError("tls_server_config:\n" + cert + key + "  min_version: TLS1.2\n",
              "tls_server_config.min_version", "\"TLS1.2\" is not one of TLS10");
  ExpectError("tls_server_config:\n" + cert + key + "  max_version: SSL3\n",
              "tls_server_config.max_version", "is not one of");
  ExpectError("tls_server_config:\n" + cert + key + "  min_version: TLS13\n  max_version: TLS12\n",
              "tls_server_config.min_version", "TLS13 is above max_version TLS12");
}

TEST_F(WebConfigTest, HeaderErrors) {
  ExpectError("http_server_config:\n  headers:\n    Server: sockeye\n",
              "http_server_config.headers.Server", "this header cannot be configured");
  ExpectError("http_server_config:\n  headers:\n    Content-Type: text/html\n",
              "http_server_config.headers.Content-Type", "cannot be configured");
  ExpectError("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
              "http_server_config.headers.X-Frame-Options", "\"allow\" is not \"deny\" or");
  ExpectError("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
              "http_server_config.headers.X-Content-Type-Options", "is not \"nosniff\"");
  ExpectError("http_server_config:\n  headers:\n    X-XSS-Protection: \"1\\r\\nSet-Cookie: a\"\n",
              "http_server_config.headers.X-XSS-Protection", "line break");
}

TEST_F(WebConfigTest, UserErrors) {
  const std::string hash = Bcrypt("pw");
  ExpectError("basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice",
              "not a bcrypt hash");
  ExpectError("basic_auth_users:\n  alice:\n", "basic_auth_users.alice", "hash is empty");
  // SHA-512 crypt: libcrypt could check it, exporter-toolkit would not.
  ExpectError("basic_auth_users:\n  alice: $6$salt$abc\n", "basic_auth_users.alice",
              "not a bcrypt hash");
  ExpectError("basic_auth_users:\n  alice: " + hash.substr(0, 40) + "\n", "basic_auth_users.alice",
              "malformed bcrypt hash");
  ExpectError("basic_auth_users:\n  alice: $2y$03" + hash.substr(6) + "\n",
              "basic_auth_users.alice", "cost must be 04-31");
  ExpectError("basic_auth_users:\n  \"a:b\": " + hash + "\n", "basic_auth_users.a:b",
              "cannot contain ':'");
  ExpectError("basic_auth_users:\n  alice: " + hash + "\n  alice: " + hash + "\n",
              "basic_auth_users.alice", "given twice");
}

TEST_F(WebConfigTest, FileErrors) {
  std::string error;
  EXPECT_FALSE(ReadWebConfig(dir_.Path("missing.yml"), &error));
  EXPECT_EQ(error, dir_.Path("missing.yml") + ": No such file or directory");
  EXPECT_FALSE(ReadWebConfig(dir_.Path(""), &error));
  EXPECT_THAT(error, HasSubstr("is a directory"));
}

// What only loading the files finds: named by the key that points at them.
TEST_F(WebConfigTest, CertificateAndKeyContents) {
  dir_.Write("garbage.pem", "not a certificate\n");
  auto make = [&](const std::string& yaml) {
    auto config = Parse(yaml);
    EXPECT_TRUE(config) << error_;
    std::string error;
    EXPECT_FALSE(config && MakeTlsContext(*config, &error));
    return error;
  };
  std::string error =
      make("tls_server_config:\n  cert_file: garbage.pem\n  key_file: server.key\n");
  EXPECT_THAT(error, HasSubstr(dir_.Path("web.yml") + ": tls_server_config.cert_file: \"" +
                               dir_.Path("garbage.pem") + "\": "));
  error = make("tls_server_config:\n  cert_file: server.crt\n  key_file: garbage.pem\n");
  EXPECT_THAT(error, HasSubstr("tls_server_config.key_file: "));
  error = make("tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n");
  EXPECT_THAT(error, HasSubstr("tls_server_config.key_file: "));
  EXPECT_THAT(error, HasSubstr("mismatch"));
  error = make(
      "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
      "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: garbage.pem\n");
  EXPECT_THAT(error, HasSubstr("tls_server_config.client_ca_file: "));
}

}  // namespace
}  // namespace sockeye::metrics
