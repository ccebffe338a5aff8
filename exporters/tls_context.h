// The OpenSSL server context for tls_server_config (exporters/web_config.h):
// certificate chain and key, client certificate policy, protocol versions.
// The metrics server takes a new context on SIGHUP; connections keep the one
// they started with.
#pragma once

#include <memory>
#include <string>

#include "exporters/web_config.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace sockeye::metrics {

using TlsContext = std::shared_ptr<SSL_CTX>;

// Loads the files `config.tls` names. On failure returns null and sets
// *error to one line, "FILE: KEY: problem", FILE being the web config file
// and KEY the setting whose file or value failed.
TlsContext MakeTlsContext(const WebConfig& config, std::string* error);

}  // namespace sockeye::metrics
