// MetricsHttpServer's state, shared by the files that implement it
// (http_server.cc: binding and lifecycle; http_handlers.cc: routing and
// pages). Not for other users: it pulls in httplib.
#pragma once

#include <httplib.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "exporters/http_server.h"

namespace sockeye::metrics {

struct MetricsHttpServer::Impl {
  HttpServerOptions options;
  GatherFn gather;
  HealthFn health;
  std::shared_ptr<ScrapeStatsCollector> stats = std::make_shared<ScrapeStatsCollector>();

  std::mutex lifecycle_mu;  // serializes Start and Stop
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  std::atomic<int> port{0};

  // Socket options and httplib's own limits (http_server.cc), then
  // InstallHandlers.
  void Configure(httplib::Server& srv);
  // Method check, routing, error pages and response counting
  // (http_handlers.cc).
  void InstallHandlers(httplib::Server& srv);
  void Route(const httplib::Request& req, httplib::Response& res);
  void ServeMetrics(const httplib::Request& req, httplib::Response& res);
  void ServeLanding(httplib::Response& res);
  void ServeHealth(httplib::Response& res);
};

}  // namespace sockeye::metrics
