#include "exporters/http_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <exception>
#include <system_error>
#include <thread>
#include <utility>

#include "exporters/page_stream.h"

namespace sockeye::metrics {
namespace {

constexpr char kHealthPath[] = "/healthz";
constexpr char kTextPlain[] = "text/plain; charset=utf-8";
constexpr char kTextHtml[] = "text/html; charset=utf-8";

// A scrape is one request at a time per Prometheus server; two workers
// leave room for a second scraper or a human with a browser.
constexpr size_t kWorkerThreads = 2;
// Each idle keep-alive connection pins a worker; keep that short.
constexpr time_t kKeepAliveTimeoutSeconds = 2;
constexpr time_t kReadWriteTimeoutSeconds = 5;
// Only GET and HEAD are served, so no legitimate request has a body.
constexpr size_t kMaxPayloadBytes = 16 * 1024;

// Every body goes through here rather than Response::set_content because
// httplib 0.11.4 compresses string bodies of text/* responses by itself:
// brotli or gzip picked by a substring match on Accept-Encoding that ignores
// q-values, even when Content-Encoding is already set (yielding two
// Content-Encoding headers over a doubly compressed body). Bodies from a
// sized content provider are sent as they are.
void SetBody(httplib::Response& res, std::string body, const char* content_type) {
  if (body.empty()) {
    // A zero-length provider would make httplib omit Content-Length; an
    // empty string body is never compressed.
    res.set_content(std::string(), content_type);
    return;
  }
  auto shared = std::make_shared<const std::string>(std::move(body));
  res.set_content_provider(shared->size(), content_type,
                           [shared](size_t offset, size_t length, httplib::DataSink& sink) {
                             return sink.write(shared->data() + offset, length);
                           });
}

// httplib 0.11.4 also compresses the bodies of chunked content providers
// with a text/* Content-Type by itself, by the same substring match, and
// has no switch for it. What it looks at, when writing, is the request's
// Accept-Encoding header, so a streamed response takes that header away once
// the encoding has been negotiated. httplib hands handlers its own non-const
// Request (const only in the handler signature), so the cast is well defined.
void KeepHttplibFromCompressing(const httplib::Request& req) {
  const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
}

void SetTextResponse(httplib::Response& res, int status, std::string body) {
  res.status = status;
  SetBody(res, std::move(body), kTextPlain);
}

// Texts for the statuses httplib produces on its own (bad or oversized
// requests) and those the handlers use.
const char* StatusText(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "page not found";
    case 405:
      return "method not allowed";
    case 408:
      return "request timeout";
    case 413:
      return "payload too large";
    case 414:
      return "uri too long";
    case 416:
      return "range not satisfiable";
    case 500:
      return "internal server error";
    case 503:
      return "service unavailable";
    default:
      return "error";
  }
}

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

struct QualityItem {
  std::string_view value;  // media range or content coding, trimmed
  double q = 1;
};

// Parses the comma-separated, q-weighted lists of Accept and
// Accept-Encoding. A q that does not parse counts as 0 (not acceptable).
std::vector<QualityItem> ParseQualityList(std::string_view header) {
  std::vector<QualityItem> items;
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view element = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);

    size_t semicolon = element.find(';');
    QualityItem item;
    item.value = Trim(element.substr(0, semicolon));
    if (item.value.empty()) continue;
    std::string_view params =
        semicolon == std::string_view::npos ? std::string_view() : element.substr(semicolon + 1);
    while (!params.empty()) {
      size_t next = params.find(';');
      std::string_view param = Trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
      if (param.size() < 2 || !IEquals(param.substr(0, 2), "q=")) continue;
      std::string_view number = Trim(param.substr(2));
      double q = 0;
      auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), q);
      item.q = (ec == std::errc() && ptr == number.data() + number.size()) ? std::clamp(q, 0.0, 1.0)
                                                                           : 0.0;
    }
    items.push_back(item);
  }
  return items;
}

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

// ---------------------------------------------------------------------------

void ScrapeStatsCollector::RecordScrape(Format format, std::chrono::duration<double> render_time) {
  std::lock_guard<std::mutex> lock(mu_);
  last_scrape_seconds_ = render_time.count();
  (format == Format::kOpenMetrics100 ? openmetrics_scrapes_ : prometheus_scrapes_)++;
}

void ScrapeStatsCollector::RecordResponse(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++responses_by_code_[status];
}

void ScrapeStatsCollector::Collect(std::vector<MetricFamily>& out) {
  std::lock_guard<std::mutex> lock(mu_);
  MetricFamily duration;
  duration.name = "sockeye_scrape_duration_seconds";
  duration.help = "Time the previous scrape spent gathering, rendering and compressing metrics.";
  duration.type = MetricType::kGauge;
  duration.samples.push_back({{}, last_scrape_seconds_});
  out.push_back(std::move(duration));

  MetricFamily scrapes;
  scrapes.name = "sockeye_scrapes_total";
  scrapes.help = "Metrics pages rendered, by exposition format.";
  scrapes.type = MetricType::kCounter;
  scrapes.samples.push_back(
      {{{"format", "openmetrics"}}, static_cast<double>(openmetrics_scrapes_)});
  scrapes.samples.push_back({{{"format", "prometheus"}}, static_cast<double>(prometheus_scrapes_)});
  out.push_back(std::move(scrapes));

  MetricFamily responses;
  responses.name = "sockeye_http_requests_total";
  responses.help = "HTTP requests answered by the metrics server, by status code.";
  responses.type = MetricType::kCounter;
  for (const auto& [code, count] : responses_by_code_) {
    responses.samples.push_back({{{"code", std::to_string(code)}}, static_cast<double>(count)});
  }
  out.push_back(std::move(responses));
}

// ---------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

// A metrics response too large for one piece: httplib calls WriteNext (via
// the chunked content provider) until it reports the end, and each call
// renders (and compresses) one more piece and sends it as one HTTP chunk.
struct StreamedScrape {
  StreamedScrape(std::vector<MetricFamily> families, Format format_in, bool gzip,
                 std::shared_ptr<ScrapeStatsCollector> stats_in, std::function<void()> after)
      : page(std::move(families), format_in, gzip),
        format(format_in),
        stats(std::move(stats_in)),
        after_scrape(std::move(after)) {}
  // Runs when httplib lets go of the provider (the response is sent) or,
  // for a page that fit in one piece, when the handler returns.
  ~StreamedScrape() {
    if (after_scrape) after_scrape();
  }
  StreamedScrape(const StreamedScrape&) = delete;
  StreamedScrape& operator=(const StreamedScrape&) = delete;

  bool WriteNext(httplib::DataSink& sink) {
    std::string_view piece = pending;  // the handler's first piece, sent first
    pending = {};
    if (piece.empty()) {
      const auto piece_start = Clock::now();
      piece = page.Next();
      busy += Clock::now() - piece_start;
    }
    if (page.done() && !recorded) {
      // Recorded before the last piece is written, so a client that has the
      // whole response also sees the scrape counted. A scrape whose client
      // went away before the end is not counted: its page was never
      // completed.
      stats->RecordScrape(format, busy);
      recorded = true;
    }
    // A zero-length write would read to httplib as the end of the data.
    if (!piece.empty() && !sink.write(piece.data(), piece.size())) return false;
    if (page.done()) sink.done();
    return true;
  }

  PageStream page;
  const Format format;
  const std::shared_ptr<ScrapeStatsCollector> stats;
  std::function<void()> after_scrape;
  std::string_view pending;  // into page's buffer, valid until the next page.Next()
  // Time spent gathering, rendering and compressing, not waiting for the
  // client to take the data: that is what the scrape-duration metric means.
  Clock::duration busy{};
  bool recorded = false;
};

}  // namespace

struct MetricsHttpServer::Impl {
  HttpServerOptions options;
  GatherFn gather;
  HealthFn health;
  std::shared_ptr<ScrapeStatsCollector> stats = std::make_shared<ScrapeStatsCollector>();

  std::mutex lifecycle_mu;  // serializes Start and Stop
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  std::atomic<int> port{0};

  void Configure(httplib::Server& srv);
  void Route(const httplib::Request& req, httplib::Response& res);
  void ServeMetrics(const httplib::Request& req, httplib::Response& res);
  void ServeLanding(httplib::Response& res);
  void ServeHealth(httplib::Response& res);
};

void MetricsHttpServer::Impl::Configure(httplib::Server& srv) {
  // httplib owns and deletes the queue it gets from this factory.
  srv.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  srv.set_socket_options(ConfigureListenSocket);
  srv.set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
  srv.set_read_timeout(kReadWriteTimeoutSeconds, 0);
  srv.set_write_timeout(kReadWriteTimeoutSeconds, 0);
  srv.set_payload_max_length(kMaxPayloadBytes);

  // Methods are checked before routing so every other method gets 405, not
  // httplib's 404 for "no handler registered for this method".
  srv.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "GET" || req.method == "HEAD") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.set_header("Allow", "GET, HEAD");
    SetTextResponse(res, 405, "405 method not allowed\n");
    return httplib::Server::HandlerResponse::Handled;
  });
  // One catch-all handler: the telemetry path is user-supplied and would
  // need regex escaping to be used as an httplib route pattern.
  srv.Get(".*", [this](const httplib::Request& req, httplib::Response& res) { Route(req, res); });
  srv.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.headers.clear();
        SetTextResponse(res, 500, "500 internal server error\n");
      });
  // httplib calls this for every status >= 400, including its own parse
  // errors, even when a handler already set a body; fill only empty ones.
  srv.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.has_header("Content-Type")) return;
    SetTextResponse(res, res.status,
                    std::to_string(res.status) + " " + StatusText(res.status) + "\n");
  });
  // Runs for every response just before it is written, so a client that
  // has its response also sees it counted.
  srv.set_post_routing_handler([stats = stats](const httplib::Request&, httplib::Response& res) {
    stats->RecordResponse(res.status);
  });
}

void MetricsHttpServer::Impl::Route(const httplib::Request& req, httplib::Response& res) {
  if (req.path == options.telemetry_path) {
    ServeMetrics(req, res);
  } else if (req.path == "/") {
    ServeLanding(res);
  } else if (req.path == kHealthPath) {
    ServeHealth(res);
  } else {
    SetTextResponse(res, 404, "404 page not found\n");
  }
}

void MetricsHttpServer::Impl::ServeMetrics(const httplib::Request& req, httplib::Response& res) {
  const auto start = Clock::now();
  const Format format = NegotiateFormat(req.get_header_value("Accept"));
  const bool gzip = AcceptsGzip(req.get_header_value("Accept-Encoding"));
  // Gathering stays here, not in the content provider, so that a collector
  // failure is still a 500 (the exception handler) rather than a cut-off
  // 200.
  auto scrape = std::make_shared<StreamedScrape>(gather ? gather() : std::vector<MetricFamily>(),
                                                 format, gzip, stats, options.after_scrape);
  const std::string_view first = scrape->page.Next();

  res.status = 200;
  res.set_header("Vary", "Accept, Accept-Encoding");
  if (gzip) res.set_header("Content-Encoding", "gzip");
  if (scrape->page.done()) {
    // The whole body fits in one piece: send it with a Content-Length as a
    // plain body, as every small page always was.
    stats->RecordScrape(format, Clock::now() - start);
    SetBody(res, std::string(first), ContentType(format));
    return;
  }
  if (req.method == "HEAD") {
    // Nothing is sent, but Content-Length has to be what the GET body would
    // be: render and count the pieces (in constant memory) without keeping
    // them.
    size_t length = first.size();
    while (!scrape->page.done()) length += scrape->page.Next().size();
    stats->RecordScrape(format, Clock::now() - start);
    res.set_header("Content-Type", ContentType(format));
    res.set_header("Content-Length", std::to_string(length));
    return;
  }
  scrape->pending = first;
  scrape->busy = Clock::now() - start;
  KeepHttplibFromCompressing(req);
  // httplib does not catch exceptions from a provider (one would end the
  // process); failing the write instead closes the connection mid-body,
  // which the client sees as an incomplete response.
  auto provider = [scrape](size_t /*offset*/, httplib::DataSink& sink) {
    try {
      return scrape->WriteNext(sink);
    } catch (...) {
      return false;
    }
  };
  res.set_chunked_content_provider(ContentType(format), std::move(provider));
}

void MetricsHttpServer::Impl::ServeLanding(httplib::Response& res) {
  const std::string path = HtmlEscape(options.telemetry_path);
  std::string page =
      "<!DOCTYPE html>\n"
      "<html>\n"
      "<head><meta charset=\"utf-8\"><title>sockeye</title></head>\n"
      "<body>\n"
      "<h1>sockeye</h1>\n"
      "<p>Version: " +
      HtmlEscape(options.version) +
      "</p>\n"
      "<ul>\n"
      "<li><a href=\"" +
      path + "\">" + path +
      "</a></li>\n"
      "<li><a href=\"/healthz\">/healthz</a></li>\n"
      "</ul>\n"
      "</body>\n"
      "</html>\n";
  res.status = 200;
  SetBody(res, std::move(page), kTextHtml);
}

void MetricsHttpServer::Impl::ServeHealth(httplib::Response& res) {
  std::string reason;
  try {
    if (health) reason = health();
  } catch (const std::exception& e) {
    reason = std::string("health check failed: ") + e.what();
  } catch (...) {
    reason = "health check failed";
  }
  if (reason.empty()) {
    SetTextResponse(res, 200, "ok\n");
  } else {
    SetTextResponse(res, 503, reason + "\n");
  }
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

  std::string host;
  int port = 0;
  std::string parse_error;
  if (!ParseListenAddress(address, &host, &port, &parse_error)) {
    return fail("invalid listen address \"" + address + "\": " + parse_error);
  }

  auto server = std::make_unique<httplib::Server>();
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

Format NegotiateFormat(std::string_view accept) {
  // Any openmetrics-text version counts: we only speak 1.0.0, which
  // Prometheus always lists alongside older versions.
  double openmetrics_q = -1;
  double other_q = -1;
  for (const QualityItem& item : ParseQualityList(accept)) {
    double& best = IEquals(item.value, "application/openmetrics-text") ? openmetrics_q : other_q;
    best = std::max(best, item.q);
  }
  return openmetrics_q > 0 && openmetrics_q >= other_q ? Format::kOpenMetrics100
                                                       : Format::kPrometheusText004;
}

bool AcceptsGzip(std::string_view accept_encoding) {
  double gzip_q = -1;
  double wildcard_q = -1;
  for (const QualityItem& item : ParseQualityList(accept_encoding)) {
    if (IEquals(item.value, "gzip") || IEquals(item.value, "x-gzip")) {
      gzip_q = std::max(gzip_q, item.q);
    } else if (item.value == "*") {
      wildcard_q = std::max(wildcard_q, item.q);
    }
  }
  // An explicit gzip entry wins over the wildcard, also when it says q=0.
  return gzip_q >= 0 ? gzip_q > 0 : wildcard_q > 0;
}

}  // namespace sockeye::metrics
