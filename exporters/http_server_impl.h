// MetricsHttpServer's state, shared by the files that implement it
// (http_server.cc: binding and lifecycle; http_handlers.cc: routing and
// pages). Not for other users: it pulls in httplib.
#pragma once

#include <httplib.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "exporters/basic_auth.h"
#include "exporters/http_server.h"
#include "exporters/tls_context.h"

namespace sockeye::metrics {

// What the web configuration file (--web.config.file) sets, as the server
// uses it; replaced whole on reload, so a request sees one file's settings.
struct WebSettings {
  std::string path;                       // empty: no file
  std::shared_ptr<const BasicAuth> auth;  // null: no authentication
  std::vector<std::pair<std::string, std::string>> headers;
  TlsContext tls;  // null: plain HTTP
};

// Reads `path` ("" = no file: plain HTTP, no authentication) into
// WebSettings; null with *error (one line naming file and key) on failure.
std::shared_ptr<const WebSettings> LoadWebSettings(const std::string& path, std::string* error);

struct MetricsHttpServer::Impl {
  HttpServerOptions options;
  GatherFn gather;
  HealthFn health;
  std::shared_ptr<ScrapeStatsCollector> stats = std::make_shared<ScrapeStatsCollector>();

  std::mutex lifecycle_mu;  // serializes Start and Stop
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  std::atomic<int> port{0};

  std::shared_ptr<const WebSettings> Web() const {
    std::lock_guard<std::mutex> lock(web_mu);
    return web;
  }
  mutable std::mutex web_mu;
  std::shared_ptr<const WebSettings> web = std::make_shared<WebSettings>();  // guarded by web_mu

  // Socket options and httplib's own limits (http_server.cc), then
  // InstallHandlers.
  void Configure(httplib::Server& srv);
  // Method check, routing, error pages and response counting
  // (http_handlers.cc).
  void InstallHandlers(httplib::Server& srv);
  // Extra headers and the Basic authentication check; true when the
  // request was answered (401).
  bool Authenticate(const httplib::Request& req, httplib::Response& res);
  void Route(const httplib::Request& req, httplib::Response& res);
  void ServeMetrics(const httplib::Request& req, httplib::Response& res);
  void ServeLanding(httplib::Response& res);
  void ServeHealth(httplib::Response& res);
};

}  // namespace sockeye::metrics
