#include "exporters/web_config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "exporters/basic_auth.h"

namespace sockeye::metrics {
namespace {

// What a check throws: the dotted key and the problem. ParseWebConfig puts
// the file in front.
struct KeyError {
  std::string key;
  std::string problem;
};

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

// Control characters written as escapes: an error stays one line whatever
// the file holds (yaml-cpp quotes the offending character raw, and a quoted
// YAML key may hold a line break). Found by tests/fuzz/fuzz_web_config.cc.
std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

std::string Join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string LineOf(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.line >= 0 ? " (line " + std::to_string(mark.line + 1) + ")" : "";
}

[[noreturn]] void Fail(const std::string& key, const YAML::Node& node, std::string problem) {
  throw KeyError{key, std::move(problem) + LineOf(node)};
}

// Keys exporter-toolkit reads that sockeye does not implement; refusing
// them beats silently serving with less than the operator asked for.
const std::set<std::string, std::less<>> kUnsupported = {
    "tls_server_config.cert",
    "tls_server_config.key",
    "tls_server_config.client_ca",
    "tls_server_config.client_allowed_sans",
    "tls_server_config.cipher_suites",
    "tls_server_config.curve_preferences",
    "rate_limit",
};

// The entries of a mapping, refusing unknown and repeated keys. A null node
// (a key with nothing after it) is an empty mapping.
std::vector<std::pair<std::string, YAML::Node>> Entries(const YAML::Node& node,
                                                        const std::string& where,
                                                        const std::set<std::string>& known) {
  std::vector<std::pair<std::string, YAML::Node>> entries;
  if (node.IsNull()) return entries;
  if (!node.IsMap()) Fail(where.empty() ? "(top level)" : where, node, "must be a mapping");
  std::set<std::string> seen;
  for (const auto& item : node) {
    if (!item.first.IsScalar()) Fail(where, item.first, "keys must be strings");
    const std::string key = item.first.Scalar();
    const std::string dotted = Join(where, key);
    if (!seen.insert(key).second) Fail(dotted, item.first, "is given twice");
    if (kUnsupported.count(dotted) > 0) {
      Fail(dotted, item.first, "is not supported by sockeye (see docs/security.md)");
    }
    if (!known.empty() && known.count(key) == 0) Fail(dotted, item.first, "unknown key");
    entries.emplace_back(key, item.second);
  }
  return entries;
}

std::string Scalar(const YAML::Node& node, const std::string& key) {
  if (node.IsNull()) return "";
  if (!node.IsScalar()) Fail(key, node, "must be a string");
  return node.Scalar();
}

bool Boolean(const YAML::Node& node, const std::string& key) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    Fail(key, node, "must be true or false");
  }
  return value;
}

// Readable now, so that a typo is found at start rather than at the first
// handshake.
std::string FilePath(const YAML::Node& node, const std::string& key, const std::string& dir) {
  std::string path = Scalar(node, key);
  if (path.empty()) return path;
  if (path.front() != '/') path = (std::filesystem::path(dir) / path).lexically_normal().string();
  if (access(path.c_str(), R_OK) != 0) {
    Fail(key, node, Quote(path) + ": " + std::strerror(errno));
  }
  return path;
}

TlsVersion Version(const YAML::Node& node, const std::string& key) {
  const std::string text = Scalar(node, key);
  for (TlsVersion v :
       {TlsVersion::kTls10, TlsVersion::kTls11, TlsVersion::kTls12, TlsVersion::kTls13}) {
    if (text == TlsVersionName(v)) return v;
  }
  Fail(key, node, Quote(text) + " is not one of TLS10, TLS11, TLS12, TLS13");
}

ClientAuth ClientAuthFrom(const YAML::Node& node, const std::string& key) {
  const std::string text = Scalar(node, key);
  if (text.empty()) return ClientAuth::kNoClientCert;
  // exporter-toolkit's older name, still accepted there.
  if (text == "RequireClientCert") return ClientAuth::kRequireAnyClientCert;
  for (ClientAuth a : {ClientAuth::kNoClientCert, ClientAuth::kRequestClientCert,
                       ClientAuth::kRequireAnyClientCert, ClientAuth::kVerifyClientCertIfGiven,
                       ClientAuth::kRequireAndVerifyClientCert}) {
    if (text == ClientAuthName(a)) return a;
  }
  Fail(key, node,
       Quote(text) +
           " is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, "
           "VerifyClientCertIfGiven, RequireAndVerifyClientCert");
}

TlsSettings ReadTls(const YAML::Node& node, const std::string& dir) {
  const std::string where = "tls_server_config";
  TlsSettings tls;
  bool min_given = false;
  bool auth_given = false;
  YAML::Node section_node = node;
  for (const auto& [key, value] :
       Entries(node, where,
               {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
                "max_version", "prefer_server_cipher_suites"})) {
    const std::string dotted = Join(where, key);
    if (key == "cert_file") {
      tls.cert_file = FilePath(value, dotted, dir);
    } else if (key == "key_file") {
      tls.key_file = FilePath(value, dotted, dir);
    } else if (key == "client_ca_file") {
      tls.client_ca_file = FilePath(value, dotted, dir);
    } else if (key == "client_auth_type") {
      tls.client_auth = ClientAuthFrom(value, dotted);
      auth_given = !Scalar(value, dotted).empty();
    } else if (key == "min_version") {
      tls.min_version = Version(value, dotted);
      min_given = true;
    } else if (key == "max_version") {
      tls.max_version = Version(value, dotted);
    } else if (key == "prefer_server_cipher_suites") {
      Boolean(value, dotted);  // no cipher_suites: the order is OpenSSL's
    }
  }
  // As exporter-toolkit: any of these turns TLS on, and then both the
  // certificate and its key are needed.
  tls.enabled =
      !tls.cert_file.empty() || !tls.key_file.empty() || !tls.client_ca_file.empty() || auth_given;
  if (!tls.enabled) return tls;
  if (tls.cert_file.empty()) Fail(Join(where, "cert_file"), section_node, "missing");
  if (tls.key_file.empty()) Fail(Join(where, "key_file"), section_node, "missing");
  if (tls.min_version > tls.max_version) {
    Fail(Join(where, min_given ? "min_version" : "max_version"), section_node,
         std::string(TlsVersionName(tls.min_version)) + " is above max_version " +
             TlsVersionName(tls.max_version));
  }
  const bool verifies = tls.client_auth == ClientAuth::kVerifyClientCertIfGiven ||
                        tls.client_auth == ClientAuth::kRequireAndVerifyClientCert;
  if (!tls.client_ca_file.empty() && tls.client_auth == ClientAuth::kNoClientCert) {
    Fail(Join(where, "client_ca_file"), section_node,
         "is set but client_auth_type is NoClientCert (no certificate is asked for)");
  }
  if (verifies && tls.client_ca_file.empty()) {
    Fail(Join(where, "client_ca_file"), section_node,
         std::string("missing: client_auth_type ") + ClientAuthName(tls.client_auth) +
             " verifies client certificates against it");
  }
  return tls;
}

// exporter-toolkit's list: only these headers, and for two of them only
// these values.
struct AllowedHeader {
  const char* name;
  std::vector<const char*> values;  // empty: any
};
const std::vector<AllowedHeader> kAllowedHeaders = {
    {"Content-Security-Policy", {}},
    {"Strict-Transport-Security", {}},
    {"X-Content-Type-Options", {"nosniff"}},
    {"X-Frame-Options", {"deny", "sameorigin"}},
    {"X-XSS-Protection", {}},
};

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

void ReadHttp(const YAML::Node& node, WebConfig* config) {
  const std::string where = "http_server_config";
  for (const auto& [key, value] : Entries(node, where, {"http2", "headers"})) {
    const std::string dotted = Join(where, key);
    if (key == "http2") {
      Boolean(value, dotted);  // HTTP/1.1 only: there is nothing to turn off
      continue;
    }
    // Not a structured binding: clang before 16 cannot capture one in the
    // lambda below.
    for (const auto& header : Entries(value, dotted, {})) {
      const std::string& name = header.first;
      const YAML::Node& header_value = header.second;
      const std::string header_key = Join(dotted, name);
      auto allowed = std::find_if(kAllowedHeaders.begin(), kAllowedHeaders.end(),
                                  [&](const AllowedHeader& h) { return name == h.name; });
      if (allowed == kAllowedHeaders.end()) {
        Fail(header_key, header_value,
             "this header cannot be configured (only Content-Security-Policy, "
             "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options and "
             "X-XSS-Protection can)");
      }
      const std::string text = Scalar(header_value, header_key);
      if (text.find_first_of("\r\n") != std::string::npos) {
        Fail(header_key, header_value, "must not contain a line break");
      }
      if (text.empty()) continue;  // "unset if blank"
      if (!allowed->values.empty() &&
          std::none_of(allowed->values.begin(), allowed->values.end(),
                       [&](const char* v) { return EqualsIgnoringCase(text, v); })) {
        std::string expected;
        for (const char* v : allowed->values)
          expected += (expected.empty() ? "" : " or ") + Quote(v);
        Fail(header_key, header_value, Quote(text) + " is not " + expected);
      }
      config->headers.emplace_back(name, text);
    }
  }
}

void ReadUsers(const YAML::Node& node, WebConfig* config) {
  const std::string where = "basic_auth_users";
  for (const auto& [user, hash_node] : Entries(node, where, {})) {
    const std::string key = Join(where, user);
    if (user.empty()) Fail(where, hash_node, "a user name is empty");
    if (user.find(':') != std::string::npos) {
      Fail(key, hash_node, "user names cannot contain ':' (Basic authentication splits at it)");
    }
    const std::string hash = Scalar(hash_node, key);
    std::string problem;
    if (!IsBcryptHash(hash, &problem)) Fail(key, hash_node, problem);
    config->basic_auth_users.emplace(user, hash);
  }
}

}  // namespace

const char* ClientAuthName(ClientAuth auth) {
  switch (auth) {
    case ClientAuth::kNoClientCert:
      return "NoClientCert";
    case ClientAuth::kRequestClientCert:
      return "RequestClientCert";
    case ClientAuth::kRequireAnyClientCert:
      return "RequireAnyClientCert";
    case ClientAuth::kVerifyClientCertIfGiven:
      return "VerifyClientCertIfGiven";
    case ClientAuth::kRequireAndVerifyClientCert:
      return "RequireAndVerifyClientCert";
  }
  return "?";
}

const char* TlsVersionName(TlsVersion version) {
  switch (version) {
    case TlsVersion::kTls10:
      return "TLS10";
    case TlsVersion::kTls11:
      return "TLS11";
    case TlsVersion::kTls12:
      return "TLS12";
    case TlsVersion::kTls13:
      return "TLS13";
  }
  return "?";
}

std::optional<WebConfig> ParseWebConfig(const std::string& text, const std::string& path,
                                        std::string* error) {
  auto fail = [&](const std::string& message) {
    if (error != nullptr) *error = OneLine(path + ": " + message);
    return std::nullopt;
  };
  const std::string dir = std::filesystem::path(path).parent_path().string();
  WebConfig config;
  config.path = path;
  try {
    const YAML::Node root = YAML::Load(text);
    for (const auto& [key, value] :
         Entries(root, "", {"tls_server_config", "http_server_config", "basic_auth_users"})) {
      if (key == "tls_server_config") {
        config.tls = ReadTls(value, dir.empty() ? "." : dir);
      } else if (key == "http_server_config") {
        ReadHttp(value, &config);
      } else {
        ReadUsers(value, &config);
      }
    }
  } catch (const KeyError& e) {
    return fail(e.key + ": " + e.problem);
  } catch (const YAML::Exception& e) {
    const std::string where =
        e.mark.line >= 0 ? "line " + std::to_string(e.mark.line + 1) + ": " : std::string();
    return fail("not valid YAML: " + where + e.msg);
  }
  return config;
}

std::optional<WebConfig> ReadWebConfig(const std::string& path, std::string* error) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    if (error != nullptr) *error = path + ": is a directory";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error != nullptr) *error = path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    if (error != nullptr) *error = path + ": read error";
    return std::nullopt;
  }
  return ParseWebConfig(text.str(), path, error);
}

}  // namespace sockeye::metrics
