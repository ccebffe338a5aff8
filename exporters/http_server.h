// The HTTP endpoint: serves the metrics page, a landing page and /healthz
// from a small background thread pool, within fixed limits on connections,
// header size and time (exporters/http_server_limits.h). A metrics page
// larger than one piece of PageStream (64 KiB of text) is streamed with
// chunked transfer encoding, rendered and gzipped piece by piece, so a
// scrape's memory does not grow with the page; smaller pages go out whole,
// with a Content-Length.
//
// The implementation is split by job: http_server.cc binds and runs the
// server, http_server_connections.cc carries connections from accept to
// close within the limits (http_server_stream.cc is the socket as httplib
// sees it), http_handlers.cc routes requests and serves the pages,
// content_negotiation.cc reads Accept and Accept-Encoding, scrape_stats.cc
// counts scrapes, responses and refused connections.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exporters/content_negotiation.h"
#include "exporters/metric_model.h"
#include "exporters/scrape_stats.h"
#include "exporters/text_format.h"

namespace sockeye::metrics {

struct HttpServerOptions {
  // HOST:PORT. Empty host = all interfaces (IPv6 dual-stack, IPv4 if the
  // host has no IPv6); IPv6 literals in brackets. Port 0 picks a free port.
  std::string listen_address = ":19480";
  std::string telemetry_path = "/metrics";
  std::string version;  // shown on the landing page
  // Called on a server thread once a metrics page has been rendered, sent
  // and released (the agent hands the scrape's freed memory back to the
  // kernel there). Must not throw.
  std::function<void()> after_scrape;
  // The exporter-toolkit web configuration file (exporters/web_config.h):
  // TLS, Basic authentication, extra headers. Empty: plain HTTP, open. (The
  // initializer lets positional initializers that stop before it compile
  // without a missing-initializer warning.)
  std::string web_config_file = {};
};

class MetricsHttpServer {
 public:
  using GatherFn = std::function<std::vector<MetricFamily>()>;
  // Returns "" when healthy, otherwise the reason (served with 503).
  using HealthFn = std::function<std::string()>;

  MetricsHttpServer(HttpServerOptions options, GatherFn gather, HealthFn health);
  ~MetricsHttpServer();  // Stop()s
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds the listen address and starts serving on a background thread.
  // On failure returns false and sets *error (if non-null) to a message
  // naming the address. Calling it again while running fails.
  bool Start(std::string* error);
  // Stops serving and joins the threads; idempotent. Connections waiting
  // for a request are closed; requests being served finish first (their
  // write deadlines bound that).
  void Stop();
  // The bound port once Start succeeded (the real one when 0 was asked).
  int port() const;

  // Reads the web configuration file `path` again (or, if empty, drops it)
  // and applies it to requests and connections from now on; connections
  // already open keep their TLS session. On failure (a broken file, or TLS
  // turned on or off, which needs a restart) keeps the running settings,
  // counts sockeye_web_config_reload_failures_total and sets *error to one
  // line naming the file and key.
  bool ReloadWebConfig(const std::string& path, std::string* error);

  // Exports sockeye_scrape_duration_seconds, sockeye_scrapes_total{format},
  // sockeye_http_requests_total{code},
  // sockeye_http_connections_rejected_total{reason} and
  // sockeye_web_config_reload_failures_total (kScrapeStatsFamilies).
  std::shared_ptr<Collector> stats_collector() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads and checks a web configuration file as Start would, loading its
// certificates and keys, so that a broken one is reported before anything
// slow starts. An empty path is fine (no file).
bool CheckWebConfigFile(const std::string& path, std::string* error);

// Helper, exposed for tests.

// Splits HOST:PORT as described for HttpServerOptions::listen_address.
// `host` comes back without brackets and is empty for "all interfaces".
bool ParseListenAddress(std::string_view address, std::string* host, int* port, std::string* error);

// NegotiateFormat and AcceptsGzip: see exporters/content_negotiation.h.

}  // namespace sockeye::metrics
