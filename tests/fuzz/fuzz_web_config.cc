// The --web.config.file reader: arbitrary text through ParseWebConfig, the
// YAML reader (yaml-cpp) and every check of exporters/web_config.cc. Nothing
// may crash, hang or throw; a refused file gets one line naming the file,
// and an accepted one holds only what the server can use as it is.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "exporters/web_config.h"

namespace {

// Relative certificate paths resolve against this directory, which does not
// exist: the reader's readability checks run, and refuse them.
constexpr char kPath[] = "/nonexistent-sockeye-fuzz/web-config.yml";

void Violation(const char* what, const std::string& detail) {
  std::fprintf(stderr, "property violated: %s\n%s\n", what, detail.c_str());
  std::abort();
}

void CheckConfig(const sockeye::metrics::WebConfig& config) {
  if (config.path != kPath) Violation("path not kept", config.path);
  const sockeye::metrics::TlsSettings& tls = config.tls;
  if (tls.enabled) {
    if (tls.cert_file.empty() || tls.key_file.empty()) Violation("TLS without a key pair", "");
    for (const std::string* file : {&tls.cert_file, &tls.key_file, &tls.client_ca_file}) {
      if (!file->empty() && file->front() != '/') Violation("relative file kept", *file);
    }
    if (tls.min_version > tls.max_version) Violation("min_version above max_version", "");
  }
  for (const auto& [user, hash] : config.basic_auth_users) {
    if (user.empty() || user.find(':') != std::string::npos) Violation("bad user name", user);
    if (hash.size() != 60 || hash.compare(0, 2, "$2") != 0) Violation("not a bcrypt hash", hash);
  }
  for (const auto& [name, value] : config.headers) {
    if (value.empty() || value.find_first_of("\r\n") != std::string::npos) {
      Violation("header value empty or with a line break", name + ": " + value);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string error;
  std::optional<sockeye::metrics::WebConfig> config =
      sockeye::metrics::ParseWebConfig(text, kPath, &error);
  if (config) {
    if (!error.empty()) Violation("accepted with an error", error);
    CheckConfig(*config);
    return 0;
  }
  const std::string prefix = std::string(kPath) + ": ";
  if (error.size() <= prefix.size() || error.compare(0, prefix.size(), prefix) != 0) {
    Violation("error does not name the file", error);
  }
  if (error.find('\n') != std::string::npos) Violation("error of more than one line", error);
  return 0;
}
