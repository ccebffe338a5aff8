// The --web.config.file reader: the YAML file of Prometheus's
// exporter-toolkit (docs/security.md, "Web configuration file"), so that an
// operator's node_exporter file works here unchanged. Keys follow
// exporter-toolkit: unknown ones are errors, and so are the ones it knows but
// sockeye cannot honour (a setting silently ignored would weaken what the
// operator asked for). Every error names the file and the key.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sockeye::metrics {

enum class ClientAuth {
  kNoClientCert,
  kRequestClientCert,
  kRequireAnyClientCert,
  kVerifyClientCertIfGiven,
  kRequireAndVerifyClientCert,
};
const char* ClientAuthName(ClientAuth auth);

// Protocol versions as exporter-toolkit names them (TLS10 ... TLS13).
enum class TlsVersion { kTls10, kTls11, kTls12, kTls13 };
const char* TlsVersionName(TlsVersion version);

struct TlsSettings {
  // False when the file has no tls_server_config (or an empty one): plain
  // HTTP. Otherwise cert_file and key_file are set.
  bool enabled = false;
  // Paths as read, made absolute against the file's directory when relative
  // (as exporter-toolkit does).
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // empty: none
  ClientAuth client_auth = ClientAuth::kNoClientCert;
  TlsVersion min_version = TlsVersion::kTls12;
  TlsVersion max_version = TlsVersion::kTls13;
};

struct WebConfig {
  std::string path;  // the file it came from
  TlsSettings tls;
  // User name -> bcrypt hash. Empty: no authentication.
  std::map<std::string, std::string> basic_auth_users;
  // Added to every response, in the file's order.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Reads and checks `path`. On failure returns nullopt and sets *error to one
// line, "FILE: KEY: problem" (KEY dotted, e.g.
// tls_server_config.client_auth_type). The certificate and key files are
// only checked for being readable here; MakeTlsContext (tls_context.h)
// loads them.
std::optional<WebConfig> ReadWebConfig(const std::string& path, std::string* error);

// The same for text already read; `path` names it in errors and anchors
// relative paths.
std::optional<WebConfig> ParseWebConfig(const std::string& text, const std::string& path,
                                        std::string* error);

}  // namespace sockeye::metrics
