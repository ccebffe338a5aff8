// The metrics server's limits, fixed and documented in docs/security.md
// ("Endpoint limits"). They keep slow, half-open or greedy clients from
// holding the threads an honest scrape needs: a request header is read by
// one event-driven thread with a deadline, and a worker thread only ever
// sees a connection whose whole request header has arrived.
#pragma once

#include <chrono>
#include <cstddef>

namespace sockeye::metrics::http_limits {

// Open connections in all. The effective cap is lower when the open-file
// limit is: half of RLIMIT_NOFILE's soft limit, so that connections never
// starve the agent's own files (BPF maps, /proc). At the cap, the oldest
// connection still waiting for its request header (or idle between
// requests) is dropped to make room; an honest scraper sends its header at
// once, so it is never that one.
inline constexpr size_t kMaxConnections = 1024;
// Open connections from one client address. A Prometheus server keeps one
// connection per target; this leaves room for several scrapers and a
// browser behind one address, and makes one address unable to fill the
// server.
inline constexpr size_t kMaxConnectionsPerClient = 16;
// The request line and headers together. A scrape sends a few hundred bytes;
// a browser with cookies a few KiB. More is answered with 431 and closed.
inline constexpr size_t kMaxHeaderBytes = 16 * 1024;
// From accepting a connection (or from the end of the previous response) to
// the end of the request header. A scraper sends it in one round trip.
inline constexpr std::chrono::seconds kHeaderTimeout{5};
// An idle keep-alive connection is closed after this.
inline constexpr std::chrono::seconds kKeepAliveTimeout{2};
// Requests served on one connection before it is closed (httplib's
// default, kept).
inline constexpr size_t kKeepAliveMaxRequests = 5;
// Longest wait for a client to take response data (or send request body
// data) before the connection is dropped.
inline constexpr std::chrono::seconds kReadWriteTimeout{5};
// Longest time one response may take to send in all. Prometheus's scrape
// timeout defaults to 10 s: a page that takes longer is useless to it.
inline constexpr std::chrono::seconds kResponseDeadline{30};
// Worker threads that run requests whose header has arrived. A scrape is
// one request at a time per Prometheus server; four leave room for a second
// scraper, a browser and a slow reader.
inline constexpr size_t kWorkerThreads = 4;
// Workers one client address may occupy at once; its other ready requests
// wait, so one client cannot take every worker.
inline constexpr size_t kMaxBusyWorkersPerClient = 2;
// Pending connections the kernel queues before the accept loop takes them
// (httplib's own backlog is 5, which a burst of connections overflows).
inline constexpr int kListenBacklog = 1024;

// kMaxConnections, or less when the soft RLIMIT_NOFILE is low (see above).
size_t EffectiveMaxConnections();

}  // namespace sockeye::metrics::http_limits
