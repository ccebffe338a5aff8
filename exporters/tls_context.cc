#include "exporters/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace sockeye::metrics {
namespace {

// OpenSSL's reason for the last failure, e.g. "no start line" or "key values
// mismatch", or `fallback` when it gave none.
std::string OpenSslReason(const char* fallback) {
  unsigned long code = 0;
  unsigned long last = 0;
  while ((code = ERR_get_error()) != 0) last = code;
  const char* reason = last != 0 ? ERR_reason_error_string(last) : nullptr;
  return reason != nullptr ? reason : fallback;
}

int Protocol(TlsVersion version) {
  switch (version) {
    case TlsVersion::kTls10:
      return TLS1_VERSION;
    case TlsVersion::kTls11:
      return TLS1_1_VERSION;
    case TlsVersion::kTls12:
      return TLS1_2_VERSION;
    case TlsVersion::kTls13:
      return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

// RequestClientCert and RequireAnyClientCert take whatever certificate comes
// (the operator asked for no verification).
int AcceptAnyCertificate(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

}  // namespace

TlsContext MakeTlsContext(const WebConfig& config, std::string* error) {
  const TlsSettings& tls = config.tls;
  ERR_clear_error();
  auto fail = [&](const std::string& key, const std::string& file, const char* fallback) {
    if (error != nullptr) {
      *error = config.path + ": tls_server_config." + key + ": " +
               (file.empty() ? "" : "\"" + file + "\": ") + OpenSslReason(fallback);
    }
    return nullptr;
  };
  TlsContext ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return fail("cert_file", "", "cannot create a TLS context");
  SSL_CTX* raw = ctx.get();
  if (SSL_CTX_set_min_proto_version(raw, Protocol(tls.min_version)) != 1) {
    return fail("min_version", "", "not supported by this OpenSSL");
  }
  if (SSL_CTX_set_max_proto_version(raw, Protocol(tls.max_version)) != 1) {
    return fail("max_version", "", "not supported by this OpenSSL");
  }
  if (SSL_CTX_use_certificate_chain_file(raw, tls.cert_file.c_str()) != 1) {
    return fail("cert_file", tls.cert_file, "not a PEM certificate");
  }
  if (SSL_CTX_use_PrivateKey_file(raw, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail("key_file", tls.key_file, "not a PEM private key");
  }
  if (SSL_CTX_check_private_key(raw) != 1) {
    return fail("key_file", tls.key_file, "does not match cert_file");
  }

  int mode = SSL_VERIFY_NONE;
  switch (tls.client_auth) {
    case ClientAuth::kNoClientCert:
      break;
    case ClientAuth::kRequestClientCert:
    case ClientAuth::kVerifyClientCertIfGiven:
      mode = SSL_VERIFY_PEER;
      break;
    case ClientAuth::kRequireAnyClientCert:
    case ClientAuth::kRequireAndVerifyClientCert:
      mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      break;
  }
  const bool any = tls.client_auth == ClientAuth::kRequestClientCert ||
                   tls.client_auth == ClientAuth::kRequireAnyClientCert;
  SSL_CTX_set_verify(raw, mode, any ? AcceptAnyCertificate : nullptr);
  if (!tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(raw, tls.client_ca_file.c_str(), nullptr) != 1) {
      return fail("client_ca_file", tls.client_ca_file, "no PEM certificate in it");
    }
    // The CA names sent in the certificate request, so that a client with
    // several certificates picks the right one.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (names == nullptr) {
      return fail("client_ca_file", tls.client_ca_file, "no PEM certificate in it");
    }
    SSL_CTX_set_client_CA_list(raw, names);
  }
  // Resumed sessions must belong to this server: OpenSSL refuses to resume
  // a session that carried a client certificate without an id context.
  static const unsigned char kSessionContext[] = "sockeye";
  SSL_CTX_set_session_id_context(raw, kSessionContext, sizeof(kSessionContext) - 1);
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION);
  return ctx;
}

}  // namespace sockeye::metrics
