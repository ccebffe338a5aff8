// Routing and the pages: the method check, the metrics page (whole or
// streamed in chunks), the landing page, /healthz, and the error pages.
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporters/http_server_impl.h"
#include "exporters/page_stream.h"

namespace sockeye::metrics {
namespace {

constexpr char kHealthPath[] = "/healthz";
constexpr char kTextPlain[] = "text/plain; charset=utf-8";
constexpr char kTextHtml[] = "text/html; charset=utf-8";

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
    case 401:
      return "unauthorized";
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

void MetricsHttpServer::Impl::InstallHandlers(httplib::Server& srv) {
  // Methods are checked before routing so every other method gets 405, not
  // httplib's 404 for "no handler registered for this method".
  // Authentication comes first, as in exporter-toolkit: without credentials
  // a client learns nothing, not even which paths or methods exist.
  srv.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (Authenticate(req, res)) return httplib::Server::HandlerResponse::Handled;
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

bool MetricsHttpServer::Impl::Authenticate(const httplib::Request& req, httplib::Response& res) {
  const std::shared_ptr<const WebSettings> settings = Web();
  for (const auto& [name, value] : settings->headers) res.set_header(name, value);
  if (!settings->auth || settings->auth->Check(req.get_header_value("Authorization"))) {
    return false;
  }
  res.set_header("WWW-Authenticate", "Basic");
  SetTextResponse(res, 401, "401 unauthorized\n");
  return true;
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

}  // namespace sockeye::metrics
