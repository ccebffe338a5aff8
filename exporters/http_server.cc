// Binding and running the metrics server: the listen address, the socket,
// the worker threads, timeouts and limits, Start and Stop.
#include "exporters/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "exporters/http_server_connections.h"
#include "exporters/http_server_impl.h"
#include "exporters/http_server_limits.h"
#include "exporters/web_config.h"

namespace sockeye::metrics {
namespace {

// Only GET and HEAD are served, so no legitimate request has a body.
constexpr size_t kMaxPayloadBytes = 16 * 1024;

// Runs each task at once on the thread that enqueues it: httplib's accept
// loop, whose task is GuardedServer::process_and_close_socket, which only
// hands the socket over. httplib's ThreadPool would instead queue every
// connection behind the ones already holding its threads.
class InlineTaskQueue final : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> task) override { task(); }
  void shutdown() override {}
};

// httplib's server with its connection handling replaced by a
// ConnectionDispatcher (see http_server_connections.h); httplib still
// binds, accepts, parses requests and writes responses.
class GuardedServer final : public httplib::Server {
 public:
  GuardedServer(std::shared_ptr<ScrapeStatsCollector> stats, ConnectionDispatcher::TlsSource tls)
      : dispatcher_(
            [this](httplib::Stream& stream, bool close_connection, bool& connection_closed) {
              return process_request(stream, close_connection, connection_closed, {});
            },
            std::move(stats), std::move(tls)) {
    new_task_queue = [] { return new InlineTaskQueue; };
  }
  // Requests being served still need the handlers of the base class.
  ~GuardedServer() override { dispatcher_.Stop(); }

  // httplib listens with a backlog of 5, too short for a burst of
  // connections: the ones beyond it wait for the client's SYN retransmit
  // (1 s and more). Calling listen() again on a listening socket only
  // changes its backlog.
  void WidenBacklog() { ::listen(svr_sock_, http_limits::kListenBacklog); }

 private:
  // Called by the accept loop (through InlineTaskQueue) for every
  // connection.
  bool process_and_close_socket(socket_t sock) override {
    dispatcher_.Admit(sock);
    return true;
  }

  ConnectionDispatcher dispatcher_;
};

bool IsDottedNumber(std::string_view host) {
  return std::all_of(host.begin(), host.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

bool IsHostName(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

// httplib's default socket options set SO_REUSEPORT, which lets a second
// agent bind the same port and silently steal half the scrapes. Use
// SO_REUSEADDR only (restarts need not wait out TIME_WAIT), and make IPv6
// sockets dual-stack so "::" also accepts IPv4.
void ConfigureListenSocket(socket_t fd) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int domain = 0;
  socklen_t length = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 && domain == AF_INET6) {
    int zero = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  }
}

// Returns the bound port, or -1 with *err set to errno (0 when httplib
// failed before any system call reported an error).
int Bind(httplib::Server& server, const std::string& host, int port, int* err) {
  errno = 0;
  int bound = -1;
  if (port == 0) {
    bound = server.bind_to_any_port(host);
  } else if (server.bind_to_port(host, port)) {
    bound = port;
  }
  *err = bound < 0 ? errno : 0;
  return bound;
}

}  // namespace

void MetricsHttpServer::Impl::Configure(httplib::Server& srv) {
  // The connections' timeouts and limits are the ConnectionDispatcher's;
  // httplib uses these two for the Keep-Alive response header.
  srv.set_socket_options(ConfigureListenSocket);
  srv.set_keep_alive_timeout(http_limits::kKeepAliveTimeout.count());
  srv.set_keep_alive_max_count(http_limits::kKeepAliveMaxRequests);
  srv.set_payload_max_length(kMaxPayloadBytes);

  InstallHandlers(srv);
}

// ---------------------------------------------------------------------------

MetricsHttpServer::MetricsHttpServer(HttpServerOptions options, GatherFn gather, HealthFn health)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->gather = std::move(gather);
  impl_->health = std::move(health);
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

bool MetricsHttpServer::Start(std::string* error) {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  const std::string& address = impl_->options.listen_address;
  auto fail = [error](std::string message) {
    if (error != nullptr) *error = std::move(message);
    return false;
  };
  if (impl_->server) return fail("metrics server on \"" + address + "\" is already running");

  std::string web_error;
  auto web = LoadWebSettings(impl_->options.web_config_file, &web_error);
  if (!web) return fail(web_error);
  {
    std::lock_guard<std::mutex> web_lock(impl_->web_mu);
    impl_->web = std::move(web);
  }

  std::string host;
  int port = 0;
  std::string parse_error;
  if (!ParseListenAddress(address, &host, &port, &parse_error)) {
    return fail("invalid listen address \"" + address + "\": " + parse_error);
  }

  std::unique_ptr<GuardedServer> server;
  try {
    Impl* impl = impl_.get();
    server = std::make_unique<GuardedServer>(impl_->stats, [impl] { return impl->Web()->tls; });
  } catch (const std::exception& e) {  // no threads or no epoll instance
    return fail("cannot serve \"" + address + "\": " + e.what());
  }
  impl_->Configure(*server);
  int err = 0;
  int bound = -1;
  if (host.empty()) {
    bound = Bind(*server, "::", port, &err);
    // No IPv6 on this host: fall back to every IPv4 address. A port
    // conflict is final, IPv4 would hit it as well.
    if (bound < 0 && err != EADDRINUSE) bound = Bind(*server, "0.0.0.0", port, &err);
  } else {
    bound = Bind(*server, host, port, &err);
  }
  if (bound < 0) {
    return fail("cannot listen on \"" + address + "\": " +
                (err != 0 ? std::generic_category().message(err)
                          : std::string("address cannot be resolved or bound")));
  }
  impl_->port = bound;
  server->WidenBacklog();

  // httplib's stop() does nothing until the accept loop has started, so a
  // Stop() right after Start() would hang in join; wait for the loop (or for
  // it to have given up).
  auto finished = std::make_shared<std::atomic<bool>>(false);
  httplib::Server* raw = server.get();
  impl_->thread = std::thread([raw, finished] {
    raw->listen_after_bind();
    finished->store(true);
  });
  while (!raw->is_running() && !finished->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!raw->is_running()) {
    impl_->thread.join();
    return fail("cannot listen on \"" + address + "\": the accept loop exited");
  }
  impl_->server = std::move(server);
  return true;
}

void MetricsHttpServer::Stop() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  if (!impl_->server) return;
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->server.reset();
}

int MetricsHttpServer::port() const { return impl_->port.load(); }

bool MetricsHttpServer::ReloadWebConfig(const std::string& path, std::string* error) {
  std::string message;
  auto next = LoadWebSettings(path, &message);
  std::lock_guard<std::mutex> lock(impl_->web_mu);
  if (next && static_cast<bool>(next->tls) != static_cast<bool>(impl_->web->tls)) {
    message = (path.empty() ? impl_->web->path : path) + ": tls_server_config: turning TLS " +
              (next->tls ? "on" : "off") + " needs a restart";
    next = nullptr;
  }
  if (!next) {
    impl_->stats->RecordWebConfigReloadFailure();
    if (error != nullptr) *error = message;
    return false;
  }
  impl_->web = std::move(next);
  return true;
}

bool CheckWebConfigFile(const std::string& path, std::string* error) {
  return LoadWebSettings(path, error) != nullptr;
}

std::shared_ptr<const WebSettings> LoadWebSettings(const std::string& path, std::string* error) {
  auto settings = std::make_shared<WebSettings>();
  settings->path = path;
  if (path.empty()) return settings;
  std::optional<WebConfig> config = ReadWebConfig(path, error);
  if (!config) return nullptr;
  if (config->tls.enabled) {
    settings->tls = MakeTlsContext(*config, error);
    if (!settings->tls) return nullptr;
  }
  if (!config->basic_auth_users.empty()) {
    settings->auth = std::make_shared<BasicAuth>(std::move(config->basic_auth_users));
  }
  settings->headers = std::move(config->headers);
  return settings;
}

std::shared_ptr<Collector> MetricsHttpServer::stats_collector() const { return impl_->stats; }

// ---------------------------------------------------------------------------

bool ParseListenAddress(std::string_view address, std::string* host, int* port,
                        std::string* error) {
  auto fail = [error](std::string message) {
    if (error != nullptr) *error = std::move(message);
    return false;
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return fail("expected HOST:PORT, e.g. \":19480\"");
  std::string_view host_part = address.substr(0, colon);
  const std::string_view port_part = address.substr(colon + 1);

  int value = -1;
  const bool digits_only =
      !port_part.empty() && port_part.size() <= 5 &&
      std::all_of(port_part.begin(), port_part.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits_only) std::from_chars(port_part.data(), port_part.data() + port_part.size(), value);
  if (value < 0 || value > 65535) {
    return fail("invalid port \"" + std::string(port_part) + "\"");
  }

  std::string parsed_host;
  if (!host_part.empty() && host_part.front() == '[') {
    if (host_part.size() < 2 || host_part.back() != ']') {
      return fail("missing ']' in \"" + std::string(host_part) + "\"");
    }
    parsed_host = host_part.substr(1, host_part.size() - 2);
    in6_addr v6{};
    if (inet_pton(AF_INET6, parsed_host.c_str(), &v6) != 1) {
      return fail("invalid IPv6 address \"" + parsed_host + "\"");
    }
  } else if (host_part.find(':') != std::string_view::npos) {
    return fail("IPv6 addresses need brackets, e.g. \"[::1]:19480\"");
  } else if (!host_part.empty()) {
    parsed_host = host_part;
    in_addr v4{};
    if (IsDottedNumber(host_part)) {
      if (inet_pton(AF_INET, parsed_host.c_str(), &v4) != 1) {
        return fail("invalid IPv4 address \"" + parsed_host + "\"");
      }
    } else if (!IsHostName(host_part)) {
      return fail("invalid host \"" + parsed_host + "\"");
    }
  }
  *host = std::move(parsed_host);
  *port = value;
  return true;
}

}  // namespace sockeye::metrics
